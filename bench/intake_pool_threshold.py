"""Benchmark: from how many bytes does reading a channel's files in worker processes pay?

    .venv/bin/python bench/intake_pool_threshold.py [--records 1000000] [--days 30] [--seed 11] [--workers 2]

On the intake benchmark's cached zone (bench/intake_benchmark.py generates it), for each
channel and the first n = 2, 3, 4, 6, 8, 12 of its files: read + normalise + build the batch
serially and with worker processes (the pool threshold lifted), in one fresh process per
row. `cold` is the process's first pool (it starts multiprocessing's fork server, which
imports the readers and normalisers); `warm` is a later one (as for the second channel of
a run). Wall seconds, the median of three. Prints counts and timings only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TODAY = dt.date(2026, 11, 25)


def _row(landing: str, channel: str, count: int, workers: int, queue) -> None:
    import pipeline.intake_workers as intake_workers
    from pipeline.intake import build_batch, discover, read_all

    intake_workers.POOL_MIN_BYTES = dict.fromkeys(intake_workers.POOL_MIN_BYTES, 1)
    files = [f for f in discover(Path(landing)) if f.channel == channel][:count]

    def once(n: int) -> float:
        started = time.perf_counter()
        build_batch(read_all(files, today=TODAY, workers=n), TODAY)
        return time.perf_counter() - started

    cold = once(workers)
    warm = statistics.median(once(workers) for _ in range(3))
    once(1)  # the run's own process warmed as well
    serial = statistics.median(once(1) for _ in range(3))
    queue.put((sum(f.size_bytes for f in files), serial, cold, warm))


def main() -> None:
    from intake_benchmark import landing_zone

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--channels", nargs="+", default=["web", "phone", "mail", "email", "in_person"])
    parser.add_argument("--counts", nargs="+", type=int, default=[2, 3, 4, 6, 8, 12])
    args = parser.parse_args()
    landing = landing_zone(args.records, args.days, args.seed)
    context = multiprocessing.get_context("spawn")
    print(f"{'channel':10} {'files':>5} {'MiB':>6} {'serial':>7} {'cold':>7} {'warm':>7}   (s, wall)")
    for channel in args.channels:
        for count in args.counts:
            queue = context.Queue()
            process = context.Process(target=_row, args=(str(landing), channel, count, args.workers, queue))
            process.start()
            size, serial, cold, warm = queue.get()
            process.join()
            print(f"{channel:10} {count:5} {size / 2**20:6.1f} {serial:7.2f} {cold:7.2f} {warm:7.2f}", flush=True)


if __name__ == "__main__":
    main()
