"""Benchmark of the register load: a million synthetic records into SQLite and PostgreSQL.

    .venv/bin/python bench/load_benchmark.py                 # both backends, 1,000,000 records
    .venv/bin/python bench/load_benchmark.py --backend sqlite --rows 200000

Per backend it loads two runs into a fresh, migrated register:
  1. "first day": ROWS records (accepted, plus 0.5 % quarantined) in five files, one per
     channel, into an empty register (no key lookup is needed);
  2. "next day": ROWS more, of which --resend-fraction are re-sends of day-1 records,
     which exercises the temporary-table lookup of held keys.
It prints wall time, rows/s and peak memory (getrusage maxrss; with --tracemalloc, a
second traced run reports Python-level peak allocation). Target: < 20 s per million.

The people are synthetic: names are built from syllables, identity codes are
computed with their check character from random dates, everything else is random
digits in the right shape. Nothing here is a real person.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.register.database import make_engine, migrate  # noqa: E402
from pipeline.register.load import FILE_COLUMNS, IntakeBatch, load_intake  # noqa: E402
from schemas.canonical import CHANNELS, PRODUCTS  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CHECK_CHARACTERS = np.array(list("0123456789ABCDEFHJKLMNPRSTUVWXY"))
SYLLABLES = np.array(["ka", "la", "mi", "nen", "sa", "ri", "to", "vi", "ai", "no", "le", "hä", "kö",
                      "ström", "berg", "lund", "ma", "ki", "pe", "ju", "ho", "ta", "us", "el"])
STREETS = np.array(["Testikatu", "Esimerkintie", "Kuvitteellinen polku", "Mallikuja", "Koetie",
                    "Harjoituskatu", "Näytetie", "Synteettinen raitti"])
CITIES = np.array(["HELSINKI", "ESPOO", "TAMPERE", "VANTAA", "OULU", "TURKU", "JYVÄSKYLÄ", "HAMINA"])
BICS = np.array(["NDEAFIHH", "OKOYFIHH", "HELSFIHH", "DABAFIHH", "AABAFI22"])
FLAG_CHOICES = np.array(["", "", "", "", "", "", "personal_id_missing", "phone_invalid",
                         "postal_code_padded", "email_invalid account_invalid"])


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _digits(rng: np.random.Generator, n: int, width: int) -> pa.Array:
    numbers = rng.integers(0, 10 ** min(width, 18), n, dtype=np.int64)
    return pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(values).cast(pa.string()), width, "0")


def _name(rng: np.random.Generator, n: int, parts: int) -> pa.Array:
    chosen = [pa.array(SYLLABLES[rng.integers(0, len(SYLLABLES), n)]) for _ in range(parts)]
    return pc.utf8_capitalize(_join(*chosen))


def _with_nulls(array: pa.Array, rng: np.random.Generator, fraction: float) -> pa.Array:
    return pc.if_else(pa.array(rng.random(len(array)) < fraction), pa.scalar(None, array.type), array)


def synthetic_batch(rows: int, *, day: str, seed: int, id_offset: int = 0,
                    resend_from: pd.DataFrame | None = None, resend_fraction: float = 0.0) -> IntakeBatch:
    """`rows` records (0.5 % of them quarantined) in one file per channel, built column-wise."""
    rng = np.random.default_rng(seed)
    n_quarantined = rows // 200
    n = rows - n_quarantined
    channel_index = rng.integers(0, len(CHANNELS), n)
    channels = np.array(CHANNELS)[channel_index]

    # Identity codes with their check character, from random birth dates 1930-2008.
    birth = pd.to_datetime("1930-01-01") + pd.to_timedelta(rng.integers(0, 28_800, n), unit="D")
    individual = rng.integers(2, 900, n)
    ddmmyy = birth.day.to_numpy() * 10_000 + birth.month.to_numpy() * 100 + birth.year.to_numpy() % 100
    check = CHECK_CHARACTERS[(ddmmyy.astype(np.int64) * 1000 + individual) % 31]
    century = np.where(birth.year.to_numpy() >= 2000, "A", "-")
    personal_id = _join(_padded(ddmmyy, 6), pa.array(century), _padded(individual, 3), pa.array(check))

    first_names = _name(rng, n, 2)
    second_given = _name(rng, n, 2)
    first_names = pc.if_else(pa.array(rng.random(n) < 0.6),
                             _join(first_names, pa.array(np.full(n, " ")), second_given), first_names)
    last_name = _join(_name(rng, n, 2), pa.array(SYLLABLES[rng.integers(0, 4, n)]))
    sequence = np.arange(id_offset, id_offset + n)
    source_record_id = _join(pa.array(np.char.upper(channels.astype("<U2")).astype(object)),
                             pa.array(np.full(n, f"-{day}-")), _padded(sequence, 7))
    street = _join(pa.array(STREETS[rng.integers(0, len(STREETS), n)]), pa.array(np.full(n, " ")),
                   pa.array(rng.integers(1, 120, n)).cast(pa.string()),
                   pa.array(np.full(n, " B ")), pa.array(rng.integers(1, 60, n)).cast(pa.string()))
    email = _join(pc.utf8_lower(first_names.cast(pa.string())).cast(pa.string()), pa.array(np.full(n, ".")),
                  pc.utf8_lower(last_name), pa.array(sequence % 1000).cast(pa.string()),
                  pa.array(np.full(n, "@example.fi")))
    email = pc.replace_substring(email, " ", ".")

    day_start = pd.Timestamp(f"{day}T06:00:00+02:00").tz_convert("UTC")
    observed_at = day_start + pd.to_timedelta(rng.integers(0, 14 * 3600 * 1000, n), unit="ms")
    marketing = rng.integers(0, 3, n)

    accepted = pd.DataFrame({
        "channel": pd.array(channels, dtype="string[pyarrow]"),
        "source_record_id": pd.arrays.ArrowStringArray(source_record_id),
        "record_number": np.zeros(n, dtype=np.int64),
        "observed_at": observed_at,
        "first_names": pd.arrays.ArrowStringArray(first_names),
        "last_name": pd.arrays.ArrowStringArray(last_name),
        "personal_id": pd.arrays.ArrowStringArray(_with_nulls(personal_id, rng, 0.3)),
        "birth_date": birth,
        "street_address": pd.arrays.ArrowStringArray(_with_nulls(street, rng, 0.05)),
        "postal_code": pd.arrays.ArrowStringArray(_digits(rng, n, 5)),
        "city": pd.array(CITIES[rng.integers(0, len(CITIES), n)], dtype="string[pyarrow]"),
        "phone": pd.arrays.ArrowStringArray(_with_nulls(_join(pa.array(np.full(n, "+35840")),
                                                              _digits(rng, n, 7)), rng, 0.2)),
        "email": pd.arrays.ArrowStringArray(_with_nulls(email, rng, 0.25)),
        "iban": pd.arrays.ArrowStringArray(_with_nulls(_join(pa.array(np.full(n, "FI")), _digits(rng, n, 16)),
                                                       rng, 0.5)),
        "bic": pd.array(BICS[rng.integers(0, len(BICS), n)], dtype="string[pyarrow]"),
        "product": pd.array(np.array(PRODUCTS)[rng.integers(0, len(PRODUCTS), n)], dtype="string[pyarrow]"),
        "metering_point": pd.arrays.ArrowStringArray(_with_nulls(_join(pa.array(np.full(n, "643")),
                                                                       _digits(rng, n, 15)), rng, 0.4)),
        "marketing_prohibited": pd.array(np.where(marketing == 2, None, marketing == 1), dtype="boolean"),
        "identity_verified": rng.random(n) < 0.4,
        "quality_flags": pd.array(FLAG_CHOICES[rng.integers(0, len(FLAG_CHOICES), n)], dtype="string[pyarrow]"),
    })
    if resend_from is not None and resend_fraction > 0:
        # Replace some records by re-sends of earlier ones (same channel and id, other content:
        # new versions of them, pipeline.register.versions).
        k = int(n * resend_fraction)
        picked = resend_from.sample(k, random_state=seed)
        accepted.loc[:k - 1, ["channel", "source_record_id"]] = picked[["channel", "source_record_id"]].to_numpy()

    files = pd.DataFrame({
        "channel": list(CHANNELS),
        "file_name": [f"{c}_{day.replace('-', '')}.dat" for c in CHANNELS],
        "checksum": [hashlib.sha256(f"{c}{day}{seed}".encode()).hexdigest() for c in CHANNELS],
        "size_bytes": 10_000_000, "file_reason": None, "file_detail": None,
    })[list(FILE_COLUMNS)]
    checksum_of = dict(zip(files["channel"], files["checksum"]))
    accepted["checksum"] = accepted["channel"].map(checksum_of).astype("string[pyarrow]")
    accepted["record_number"] = accepted.groupby("channel", observed=True).cumcount().to_numpy() + 1

    q_channels = np.array(CHANNELS)[rng.integers(0, len(CHANNELS), n_quarantined)]
    quarantined = pd.DataFrame({
        "channel": q_channels,
        "source_record_id": [None] * n_quarantined,
        "checksum": pd.Series(q_channels).map(checksum_of),
        "record_number": np.arange(n_quarantined) + 10_000_000,
        "reasons": np.array(["malformed_record", "invalid_timestamp", "no_identity missing_record_id"])[
            rng.integers(0, 3, n_quarantined)],
        "detail": "synthetic benchmark record",
        "raw_values": '{"raw": "synthetic line with about forty characters"}',
    })
    return IntakeBatch(files=files, accepted=accepted, quarantined=quarantined)


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _server_cpu_seconds() -> float:
    """CPU time of all local `postgres` processes (0 when the server is not local)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _timed_load(engine: sa.Engine, batch: IntakeBatch, run_id: str, traced: bool):
    if traced:
        tracemalloc.start()
    server_start = _server_cpu_seconds() if engine.dialect.name == "postgresql" else 0.0
    start, cpu_start = time.perf_counter(), time.process_time()
    summary = load_intake(engine, batch, run_id=run_id, now=datetime.now(timezone.utc))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    server = _server_cpu_seconds() - server_start if engine.dialect.name == "postgresql" else 0.0
    peak = 0.0
    if traced:
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return elapsed, (cpu, server), summary, peak


def _report(backend: str, label: str, rows: int, elapsed: float, cpu: tuple[float, float], summary,
            traced_peak: float) -> None:
    total = summary.total
    # Wall time is what the target is about. CPU times show how much of it was work
    # (for SQLite, all in this process) when other jobs share the two cores.
    client, server = cpu
    line = (f"{backend:<10} {label:<9} {rows:>9,} records  {elapsed:6.2f} s  {rows / elapsed:>9,.0f} rows/s  "
            f"(cpu: client {client:5.2f} s" + (f", server {server:5.2f} s" if server else "") +
            f"; load avg {os.getloadavg()[0]:.1f})  "
            f"inserted {total.inserted:,}  resent {total.resent:,}  versioned {total.versioned:,}  "
            f"quarantined {total.quarantined:,}  "
            f"maxrss {_maxrss_mib():,.0f} MiB")
    if traced_peak:
        line += f"  tracemalloc peak {traced_peak:,.0f} MiB (traced run, slower)"
    print(line, flush=True)


def run(backend: str, rows: int, resend_fraction: float, postgres_url: str, traced: bool) -> None:
    built = time.perf_counter()
    day1 = synthetic_batch(rows, day="2026-11-24", seed=1)
    day2 = synthetic_batch(rows, day="2026-11-25", seed=2, id_offset=rows,
                           resend_from=day1.accepted, resend_fraction=resend_fraction)
    print(f"{backend:<10} built 2 x {rows:,} synthetic records in {time.perf_counter() - built:.1f} s; "
          f"maxrss {_maxrss_mib():,.0f} MiB", flush=True)

    cleanup = None
    if backend == "sqlite":
        directory = tempfile.TemporaryDirectory(prefix="register_bench_")
        engine = make_engine(f"sqlite:///{Path(directory.name) / 'register.db'}")
        cleanup = directory.cleanup
    else:
        admin = make_engine(postgres_url, isolation_level="AUTOCOMMIT")
        name = f"register_bench_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine = make_engine(admin.url.set(database=name))

        def cleanup():
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    try:
        migrate(engine)
        for label, batch, run_id in (("first day", day1, "bench-1"), ("next day", day2, "bench-2")):
            elapsed, cpu, summary, _ = _timed_load(engine, batch, run_id, traced=False)
            _report(backend, label, rows, elapsed, cpu, summary, 0.0)
        if traced:
            with engine.begin() as connection:
                for table in ("source_record", "quarantine", "intake_file"):
                    connection.exec_driver_sql(f"DELETE FROM {table}")
            elapsed, cpu, summary, peak = _timed_load(engine, day1, "bench-traced", traced=True)
            _report(backend, "traced", rows, elapsed, cpu, summary, peak)
    finally:
        engine.dispose()
        if cleanup:
            cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--resend-fraction", type=float, default=0.1)
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL,
                        help="an admin URL; the benchmark creates and drops its own database")
    parser.add_argument("--tracemalloc", action="store_true", help="add a traced run reporting peak allocation")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        run(backend, args.rows, args.resend_fraction, args.postgres_url, args.tracemalloc)


if __name__ == "__main__":
    main()
