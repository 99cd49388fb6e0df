"""Benchmark: parse + normalise, then load, 1,000,000 generated intake records.

    .venv/bin/python bench/intake_benchmark.py [--records 1000000] [--days 30] [--backend sqlite postgresql]
                                               [--spellings default|varied]

Generates the landing zone once (cached under bench/out/, keyed by records/days/seed),
then for each backend runs one fresh process that reads every file, normalises the
records into a batch, and loads it into an empty register, reporting wall time,
records per second, CPU seconds (steady when the machine is shared) and the
process's peak resident memory for each stage. `--spellings varied` writes a share
of the values in other spellings (generator/synth/spellings.py): the normalisers'
speed on real formats. Prints counts and timings only.
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


def _stage(landing: str, url: str, queue) -> None:
    """One whole run in a fresh process: read, normalise, load."""
    from pipeline.intake import build_batch, discover, read_all
    from pipeline.register.database import make_engine, migrate
    from pipeline.register.load import load_intake

    result: dict[str, float] = {}
    started, cpu = time.perf_counter(), time.process_time()
    files = discover(Path(landing))
    reads = read_all(files)
    result["read_s"] = time.perf_counter() - started
    result["read_cpu_s"] = time.process_time() - cpu
    batch = build_batch(reads, dt.date(2026, 11, 25))
    result["parse_normalise_s"] = time.perf_counter() - started
    result["parse_normalise_cpu_s"] = time.process_time() - cpu
    result["records"] = float(sum(r.records_read for r in reads))
    result["accepted"] = float(len(batch.accepted))
    result["quarantined"] = float(len(batch.quarantined))
    result["files"] = float(len(files))
    result["rss_after_normalise_mib"] = _peak_rss_mib()

    engine = make_engine(url)
    migrate(engine)
    started = time.perf_counter()
    summary = load_intake(engine, batch, run_id="bench", now=dt.datetime.now(dt.timezone.utc))
    result["load_s"] = time.perf_counter() - started
    result["inserted"] = float(summary.total.inserted)
    result["peak_rss_mib"] = _peak_rss_mib()
    engine.dispose()
    queue.put(result)


def run_backend(backend: str, landing: Path, workdir: Path) -> dict[str, float]:
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
        process = multiprocessing.get_context("spawn").Process(target=_stage, args=(str(landing), url, queue))
        process.start()
        result = queue.get()
        process.join()
        return result
    finally:
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--spellings", choices=["default", "varied"], default="default")
    args = parser.parse_args()

    landing = landing_zone(args.records, args.days, args.seed, args.spellings)
    workdir = ROOT / "bench" / "out"
    results = {}
    for backend in args.backend:
        r = run_backend(backend, landing, workdir)
        results[backend] = r
        n = r["records"]
        print(f"[{backend}] {int(r['files'])} files, {int(n):,} records read: "
              f"{int(r['accepted']):,} accepted, {int(r['quarantined']):,} quarantined")
        print(f"[{backend}]   read                {r['read_s']:6.1f} s  (CPU {r['read_cpu_s']:.1f} s)")
        print(f"[{backend}]   parse + normalise   {r['parse_normalise_s']:6.1f} s  (CPU {r['parse_normalise_cpu_s']:.1f} s) "
              f"{n / r['parse_normalise_s']:>9,.0f} records/s  peak {r['rss_after_normalise_mib']:,.0f} MiB")
        print(f"[{backend}]   load                {r['load_s']:6.1f} s  "
              f"{r['inserted'] / r['load_s']:>9,.0f} records/s  peak {r['peak_rss_mib']:,.0f} MiB")
    (workdir / "intake_benchmark.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
