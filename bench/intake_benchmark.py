"""Benchmark: parse + normalise, then load, 1,000,000 generated intake records.

    .venv/bin/python bench/intake_benchmark.py [--records 1000000] [--days 30] [--backend sqlite postgresql]
                                               [--spellings default|varied] [--workers N] [--no-serial]

Generates the landing zone once (cached under bench/out/, keyed by records/days/seed),
then for each backend runs one fresh process per way of reading that reads every file,
normalises the records into a batch, and loads it into an empty register: first
serially (one process, `--workers 1`: the path of a night's few files), then with
`--workers` worker processes (default `REGISTER_INTAKE_WORKERS`, else one per CPU), one
`read_all` per channel as the intake assets call it. Reports wall time, CPU seconds (the
run's own, and its workers'), and peak resident memory of the run's process and of its
largest worker, for each stage, and whether the two batches are equal (a digest of every
frame). `--spellings varied` writes a share of the values in other spellings
(generator/synth/spellings.py): the normalisers' speed on real formats. Prints counts
and timings only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import resource
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def landing_zone(records: int, days: int, seed: int, spellings: str = "default") -> Path:
    from synth import generate

    suffix = "" if spellings == "default" else f"-spellings-{spellings}"
    out = ROOT / "bench" / "out" / f"zone-{records}-{days}-{seed}{suffix}"
    if not (out / "landing").is_dir():
        started = time.perf_counter()
        generate(out, records=records, days=days, seed=seed, spellings=spellings)
        print(f"generated {records:,} records over {days} days in {time.perf_counter() - started:.1f} s")
    return out / "landing"


def _children() -> tuple[float, float]:
    """(CPU seconds, largest peak RSS in MiB) of the worker processes ended so far.

    Workers are forked by multiprocessing's fork server, so they count as the fork
    server's children: it is stopped (a private call, for this measurement only) and
    waited for, so that its children's figures reach this process's RUSAGE_CHILDREN.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None) is not None:
        server._stop()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _digest(batch) -> str:
    """One hash over every frame of the batch: values, row order, column names and dtypes."""
    import hashlib

    import pandas as pd

    digest = hashlib.sha256()
    for frame in (batch.files, batch.accepted, batch.quarantined, batch.duplicates):
        digest.update(repr(list(frame.dtypes.astype(str).items())).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _stage(landing: str, url: str, workers: int, queue) -> None:
    """One whole run in a fresh process: read (per channel, as the intake assets do), normalise, load."""
    from pipeline.intake import build_batch, discover, read_all
    from pipeline.register.database import make_engine, migrate
    from pipeline.register.load import load_intake
    from schemas.canonical import CHANNELS

    today = dt.date(2026, 11, 25)
    result: dict[str, float | str] = {"workers": float(workers)}
    started, cpu = time.perf_counter(), time.process_time()
    files = discover(Path(landing))
    reads = [r for channel in CHANNELS
             for r in read_all([f for f in files if f.channel == channel], today=today, workers=workers)]
    result["read_s"] = time.perf_counter() - started
    result["read_cpu_s"] = time.process_time() - cpu
    batch = build_batch(reads, today)
    result["parse_normalise_s"] = time.perf_counter() - started
    result["parse_normalise_cpu_s"] = time.process_time() - cpu
    result["workers_cpu_s"], result["worker_peak_rss_mib"] = _children()
    result["files_normalised_in_workers"] = float(sum(r.prepared is not None for r in reads))
    result["records"] = float(sum(r.records_read for r in reads))
    result["accepted"] = float(len(batch.accepted))
    result["quarantined"] = float(len(batch.quarantined))
    result["files"] = float(len(files))
    result["rss_after_normalise_mib"] = _peak_rss_mib()
    result["digest"] = _digest(batch)

    engine = make_engine(url)
    migrate(engine)
    started = time.perf_counter()
    summary = load_intake(engine, batch, run_id="bench", now=dt.datetime.now(dt.timezone.utc))
    result["load_s"] = time.perf_counter() - started
    result["inserted"] = float(summary.total.inserted)
    result["peak_rss_mib"] = _peak_rss_mib()
    engine.dispose()
    queue.put(result)


def run_backend(backend: str, landing: Path, workdir: Path, workers: int) -> dict[str, float | str]:
    from sqlalchemy import create_engine, text

    if backend == "sqlite":
        db = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        url, cleanup = f"sqlite:///{db}", lambda: [p.unlink(missing_ok=True) for p in workdir.glob(db.name + "*")]
    else:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"

        def cleanup() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    try:
        queue = multiprocessing.get_context("spawn").Queue()
        process = multiprocessing.get_context("spawn").Process(target=_stage,
                                                               args=(str(landing), url, workers, queue))
        process.start()
        result = queue.get()
        process.join()
        return result
    finally:
        cleanup()


def _report(backend: str, runs: dict[str, dict]) -> None:
    first = next(iter(runs.values()))
    print(f"[{backend}] {int(first['files'])} files, {int(first['records']):,} records read: "
          f"{int(first['accepted']):,} accepted, {int(first['quarantined']):,} quarantined")
    for name, r in runs.items():
        n, workers = r["records"], int(r["workers"])
        way = "serial, in the run's process" if workers == 1 else f"{workers} worker processes"
        print(f"[{backend}] {name} ({way}; {int(r['files_normalised_in_workers'])} files normalised in workers)")
        print(f"[{backend}]   read                {r['read_s']:6.1f} s  CPU {r['read_cpu_s']:.1f} s")
        print(f"[{backend}]   read + normalise    {r['parse_normalise_s']:6.1f} s  CPU {r['parse_normalise_cpu_s']:.1f} s"
              f" + workers {r['workers_cpu_s']:.1f} s  {n / r['parse_normalise_s']:>9,.0f} records/s")
        print(f"[{backend}]   peak memory         run {r['rss_after_normalise_mib']:,.0f} MiB, "
              f"largest worker {r['worker_peak_rss_mib']:,.0f} MiB")
        print(f"[{backend}]   load                {r['load_s']:6.1f} s  "
              f"{r['inserted'] / r['load_s']:>9,.0f} records/s  peak {r['peak_rss_mib']:,.0f} MiB")
    digests = {r["digest"] for r in runs.values()}
    print(f"[{backend}] batch digest: {', '.join(sorted(digests))}"
          + ("" if len(runs) == 1 else ("  (equal)" if len(digests) == 1 else "  (DIFFERENT)")))


def main() -> None:
    from pipeline.intake_workers import workers_setting

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--spellings", choices=["default", "varied"], default="default")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes for the parallel run (default: REGISTER_INTAKE_WORKERS, else one per CPU)")
    parser.add_argument("--no-serial", action="store_true", help="skip the serial run")
    args = parser.parse_args()
    workers = args.workers or workers_setting()

    landing = landing_zone(args.records, args.days, args.seed, args.spellings)
    workdir = ROOT / "bench" / "out"
    ways = ([] if args.no_serial or workers == 1 else [("serial", 1)]) + [("parallel" if workers > 1 else "serial",
                                                                           workers)]
    results = {}
    for backend in args.backend:
        runs = {name: run_backend(backend, landing, workdir, n) for name, n in ways}
        results[backend] = runs
        _report(backend, runs)
    suffix = "" if args.spellings == "default" else f"-{args.spellings}"
    (workdir / f"intake_benchmark{suffix}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
