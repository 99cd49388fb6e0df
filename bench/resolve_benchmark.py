"""Benchmark: identity resolution scored against the generator's ground truth.

    .venv/bin/python bench/resolve_benchmark.py --records 1000000 --days 100 [--nightly-days 1]
        [--noise-profile {default,varied}]

1. Generates a landing zone (cached under bench/out/, per size, seed and noise
   profile) with its ground truth; `--noise-profile varied` writes the profile the
   matcher was not tuned on (generator/synth/varied.py).
2. *Whole load*: every day but the last `--nightly-days` at once into an empty SQLite
   register (or `--database-url`: PostgreSQL) (ingest, match, load), timed by stage,
   peak memory of the process and of the largest intake worker (files are read and
   normalised in worker processes, as the intake asset does). The register is kept
   as a snapshot (a copy of the SQLite file; on PostgreSQL the database `<name>_whole`,
   vacuumed and analysed as autovacuum would after a bulk insert), from which
   `--from-snapshot` repeats only the nightly batch (`--profile` profiles it;
   `--profile-whole` the whole load, into bench/out/whole.prof; `--time-inserts` prints
   each bulk insert's table, rows and seconds).
   `--whole-chunks N` loads those days as N successive loads of consecutive days
   instead (the same grouping, rule 3), each timed with its own peak memory (Linux: the
   high-water mark is reset before each part): what memory and time a backlog loaded in
   parts costs.
3. *Nightly*: the remaining day(s) as one batch against that register, timed (wall, and the
   process's CPU seconds, every thread's: on a shared host they move less from run to run).
4. Scores the register's grouping of records into customers against the truth
   (generator/synth/truth.py): pairwise precision, recall and F1, overall and for
   records without a valid code, per noise kind and per household pair and role,
   and the number of customers holding two different valid codes.
5. Scores a plain Splink-alone baseline on the same accepted records (standard
   configuration trained on the data, personal_id as an ordinary comparison,
   connected components at 0.99) side by side.
Prints counts, timings and scores only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import re
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.intake import build_batch, discover, read_all  # noqa: E402
from pipeline.matching.cluster import connected_components  # noqa: E402
from pipeline.matching.score import baseline_splink_pairs  # noqa: E402
from pipeline.register.database import downgrade, make_engine, migrate  # noqa: E402
from pipeline.register.load import load_intake  # noqa: E402
from pipeline.matching.settings import MatchSettings  # noqa: E402
from pipeline.register.resolve import resolve_identities  # noqa: E402
from pipeline.normalise import hetu  # noqa: E402
from synth import GROUND_TRUTH_FILE, NOISE_PROFILES, generate  # noqa: E402
from synth import truth as scoring  # noqa: E402
from intake_benchmark import _children as worker_usage  # noqa: E402  (bench/, this script's folder)

TODAY = dt.date(2026, 12, 31)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Start the process's peak memory afresh (Linux: writing 5 to /proc/self/clear_refs resets
    the high-water mark `ru_maxrss` reports), so that `peak_mib` gives one part's own peak.
    False where it cannot (then `peak_mib` stays the process's peak so far)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


pairwise_scores = scoring.pairwise_scores


def marketing_promises(engine, zone: Path) -> dict[str, int]:
    """Who the marketing list reaches that it must not: people who prohibited direct
    marketing (by their own latest statement either way, docs/register_rules.md rule 6, over all
    their records whichever customers hold them) and minors (by their true birth date).
    A prohibited person is listed when any customer on the list holds a record of theirs:
    *split* when that customer holds only their records, *merged* when it mixes people."""
    with engine.connect() as conn:
        records = pd.read_sql("SELECT channel, source_record_id, customer_id, observed_at, marketing_prohibited "
                              "FROM source_record", conn)
        listed = set(pd.read_sql("SELECT customer_id FROM marketing_contacts", conn)["customer_id"].tolist())
        doubt = conn.exec_driver_sql("SELECT COUNT(DISTINCT customer_id) FROM marketing_doubt").scalar()
    with gzip.open(zone / GROUND_TRUTH_FILE, "rt", encoding="utf-8") as handle:
        truth = pd.read_csv(handle, dtype=str, keep_default_na=False,
                            usecols=["channel", "source_record_id", "person_key", "personal_id_true"])
    truth = truth[truth["person_key"] != ""]
    truth["source_record_id"] = truth["source_record_id"].str.strip().str.strip("<>")
    truth = truth.drop_duplicates(["channel", "source_record_id"])
    held = records.merge(truth, on=["channel", "source_record_id"], how="inner")
    held["observed_at"] = pd.to_datetime(held["observed_at"], utc=True, format="mixed")
    stated = held.dropna(subset=["marketing_prohibited"]).sort_values(["observed_at", "channel", "source_record_id"])
    latest = stated.groupby("person_key")["marketing_prohibited"].last().astype(bool)
    prohibited = set(latest[latest].index)
    births = held.drop_duplicates("person_key").set_index("person_key")["personal_id_true"].map(_birth_of)
    minors = set(births[births > pd.Timestamp(TODAY) - pd.DateOffset(years=18)].index)
    people_per_customer = held.groupby("customer_id")["person_key"].nunique()
    on_list = held[held["customer_id"].isin(listed)]
    prohibited_listed = on_list[on_list["person_key"].isin(prohibited)]
    mixed = people_per_customer.reindex(prohibited_listed["customer_id"]).to_numpy() > 1
    by_person = pd.Series(mixed, index=prohibited_listed["person_key"]).groupby(level=0).any()
    return {"listed_customers": len(listed), "prohibited_people": len(prohibited),
            "prohibited_listed": int(len(by_person)), "prohibited_listed_merged": int(by_person.sum()),
            "prohibited_listed_split": int((~by_person).sum()), "minors": len(minors),
            "minors_listed": int(on_list.loc[on_list["person_key"].isin(minors), "person_key"].nunique()),
            "held_under_doubt": int(doubt or 0)}


def _birth_of(code: str):
    """A true identity code's birth date (the generator's codes are valid), NaT if none."""
    try:
        return pd.Timestamp(hetu.birth_date(code))
    except Exception:  # no code (a person without one), or a temporary code
        return pd.NaT


def truth_of(zone: Path) -> pd.DataFrame:
    """The ground truth, one row per record, indexed by (channel, source_record_id)."""
    return scoring.read_truth(zone / GROUND_TRUTH_FILE)


def day_of(path: Path) -> str:
    """The export date in a file name (`web_20261124.jsonl`, a re-sent `web_20261124_2.jsonl`)."""
    match = re.search(r"_(\d{8})(?:_\d+)?\.", path.name)
    return match.group(1) if match else path.name


def stage_zone(landing: Path, target: Path, days: set[str]) -> Path:
    if target.exists():
        shutil.rmtree(target)
    for path in landing.rglob("*_*.*"):
        if day_of(path) in days:
            out = target / path.parent.name / path.name
            out.parent.mkdir(parents=True, exist_ok=True)
            try:  # a hard link, not a symbolic one: the intake never follows symbolic links
                os.link(path, out)
            except OSError:
                shutil.copyfile(path, out)
    return target


def cpu_seconds() -> float:
    """The process's CPU time so far, every thread's (DuckDB's too), user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_load(engine, landing: Path, settings: MatchSettings, label: str) -> dict[str, float]:
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    # As the intake asset reads: many files in worker processes, each normalising its own.
    batch = build_batch(read_all(discover(landing), today=TODAY), TODAY)
    t1 = time.perf_counter()
    _, worker_peak = worker_usage()
    marks: dict[str, float] = {}

    def resolve(connection):
        marks["records_written"] = time.perf_counter()
        summary = resolve_identities(connection, now=dt.datetime.now(dt.timezone.utc), run_id=label,
                                     settings=settings)
        marks["resolved"] = time.perf_counter()
        return summary

    summary = load_intake(engine, batch, run_id=label, now=dt.datetime.now(dt.timezone.utc), after_load=resolve)
    t2 = time.perf_counter()
    return {"records": float(len(batch.accepted) + len(batch.quarantined)),
            "ingest_s": t1 - t0, "write_records_s": marks["records_written"] - t1,
            "resolve_s": marks["resolved"] - marks["records_written"], "commit_s": t2 - marks["resolved"],
            "total_s": t2 - t0, "cpu_s": cpu_seconds() - cpu0, "peak_mib": peak_mib(),
            "worker_peak_mib": worker_peak,
            "customers_new": float(summary.after_load.new_customers), "merges": float(summary.after_load.merges),
            "reviews": float(summary.after_load.reviews_opened),
            "affected": float(summary.after_load.affected_records),
            "write_parts": float(summary.after_load.write_parts)}


def time_inserts() -> None:
    """Print each bulk insert (table, rows, seconds) and each index rebuild after one, as they
    happen: where a load's writing time goes, table by table (names and counts only)."""
    import contextlib
    from pipeline.register import bulk, pending, resolve

    def timed(insert):
        def wrapper(self, table, frame, columns):
            t = time.perf_counter()
            insert(self, table, frame, columns)
            print(f"  insert {table.name}: {len(frame):,} rows {time.perf_counter() - t:.1f} s", flush=True)
        return wrapper

    for writer in bulk.BulkWriter.__subclasses__():
        writer.insert = timed(writer.insert)
    built_after = bulk.indexes_and_keys_built_after

    @contextlib.contextmanager
    def rebuilt(connection, table, *args, **kwargs):
        with built_after(connection, table, *args, **kwargs):
            yield
            t = time.perf_counter()
        print(f"  indexes after {table.name}: {time.perf_counter() - t:.1f} s", flush=True)

    for module in (pending, resolve):  # the modules that write with it
        module.indexes_and_keys_built_after = rebuilt


def profiled(path: Path, function, *args):
    """`function(*args)` under cProfile: the top 40 by cumulative time printed (function names and
    times, no values), the whole profile written to `path` (for pstats or snakeviz)."""
    import cProfile
    import pstats
    profiler = cProfile.Profile()
    result = profiler.runcall(function, *args)
    profiler.dump_stats(path)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    return result


def chunked_load(engine, landing: Path, stage: Path, days: list[str], chunks: int,
                 settings: MatchSettings) -> dict[str, float]:
    """The whole load as `chunks` successive loads of consecutive days (rule 3: the same
    grouping as one load of them all), each printed; the sums, and the process's peak."""
    size = -(-len(days) // chunks)
    total: dict[str, float] = {}
    for number, start in enumerate(range(0, len(days), size), start=1):
        staged = stage_zone(landing, stage, set(days[start:start + size]))
        own = reset_peak()
        part = timed_load(engine, staged, settings, f"whole-{number}")
        print(f"  chunk {number}/{chunks}: {int(part['records']):,} records in {part['total_s']:.1f} s "
              f"(ingest {part['ingest_s']:.1f}, resolve {part['resolve_s']:.1f}; {int(part['affected']):,} "
              f"records re-resolved); peak {'of this part' if own else 'so far'} {part['peak_mib']:,.0f} MiB",
              flush=True)
        for name, value in part.items():
            total[name] = max(value, total.get(name, 0.0)) if name.endswith("peak_mib") \
                else total.get(name, 0.0) + value
    return total


def print_whole(whole: dict[str, float]) -> None:
    print(f"whole load: {int(whole['records']):,} records in {whole['total_s']:.1f} s "
          f"(ingest {whole['ingest_s']:.1f}, write {whole['write_records_s']:.1f}, "
          f"resolve {whole['resolve_s']:.1f}, commit {whole['commit_s']:.1f}); peak {whole['peak_mib']:,.0f} MiB "
          f"(an intake worker: {whole['worker_peak_mib']:,.0f} MiB); "
          f"{int(whole['customers_new']):,} customers, {int(whole['reviews']):,} reviews"
          + (f"; written in {int(whole['write_parts'])} parts" if whole.get("write_parts", 1) > 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--nightly-days", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--noise-profile", choices=NOISE_PROFILES, default="default",
                        help="the generator's noise profile (default: the one the matcher was tuned on)")
    parser.add_argument("--database-url", default=None,
                        help="an empty database to load into instead of bench/out/resolve-bench.db "
                             "(e.g. a PostgreSQL one); its tables are dropped and recreated first")
    parser.add_argument("--profile", action="store_true", help="print the nightly batch's cProfile (top 40; the whole "
                                                                    "profile in bench/out/nightly.prof)")
    parser.add_argument("--time-inserts", action="store_true",
                        help="print each bulk insert's table, rows and seconds, and each index rebuild after one")
    parser.add_argument("--profile-whole", action="store_true",
                        help="profile the whole load too (top 40 printed; bench/out/whole.prof); its times then "
                             "include cProfile's overhead")
    parser.add_argument("--from-snapshot", action="store_true",
                        help="skip the whole load: start the nightly batch from the register the last whole "
                             "load of these arguments left "
                             "(bench/out/resolve-bench-<records>-<days>-<seed>-<noise profile>-whole.db)")
    parser.add_argument("--link-threshold", type=float, default=MatchSettings().link_threshold)
    parser.add_argument("--review-threshold", type=float, default=MatchSettings().review_threshold)
    parser.add_argument("--whole-chunks", type=int, default=1,
                        help="load the whole history as this many successive loads of consecutive days")
    parser.add_argument("--doubt-threshold", type=float, default=MatchSettings().doubt_threshold)
    parser.add_argument("--ambiguity-margin", type=float, default=MatchSettings().ambiguity_margin)
    parser.add_argument("--score-batch-rows", type=int, default=MatchSettings().score_batch_rows,
                        help="scored pairs read from DuckDB at once (what the scoring's memory is set by)")
    parser.add_argument("--resolve-part-records", type=int, default=MatchSettings().resolve_part_records,
                        help="resolved records whose golden records are made and written at once")
    args = parser.parse_args()

    if args.time_inserts:
        time_inserts()
    out = ROOT / "bench" / "out"
    key = f"{args.records}-{args.days}-{args.seed}-{args.noise_profile}"
    zone = out / f"zone-{key}"
    if not (zone / "landing").is_dir():
        t = time.perf_counter()
        # Written aside and renamed when whole: an interrupted run leaves no half zone in the cache.
        partial = zone.with_name(zone.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(zone, ignore_errors=True)
        generate(partial, records=args.records, days=args.days, seed=args.seed, noise_profile=args.noise_profile)
        partial.rename(zone)
        print(f"generated {args.records:,} records over {args.days} days in {time.perf_counter() - t:.1f} s")
    landing = zone / "landing"
    days = sorted({day_of(p) for p in landing.rglob("*_*.*")})
    first, last = set(days[:-args.nightly_days]), set(days[-args.nightly_days:])

    db = out / "resolve-bench.db"
    snapshot = out / f"resolve-bench-{key}-whole.db"
    for p in out.glob("resolve-bench.db*"):
        p.unlink()
    settings = MatchSettings(link_threshold=args.link_threshold, review_threshold=args.review_threshold,
                             doubt_threshold=args.doubt_threshold, ambiguity_margin=args.ambiguity_margin,
                             score_batch_rows=args.score_batch_rows, resolve_part_records=args.resolve_part_records)
    def whole_load(engine) -> dict[str, float]:
        if args.whole_chunks > 1:
            return chunked_load(engine, landing, out / "stage-whole", sorted(first), args.whole_chunks, settings)
        staged = stage_zone(landing, out / "stage-whole", first)
        if not args.profile_whole:
            return timed_load(engine, staged, settings, "whole")
        return profiled(out / "whole.prof", timed_load, engine, staged, settings, "whole")

    if args.database_url:
        engine = make_engine(args.database_url)
        if engine.dialect.name != "postgresql":
            parser.error("--database-url: a PostgreSQL database (the SQLite default needs no URL)")
        template = f"{engine.url.database}_whole"
        admin = make_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        if args.from_snapshot:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{engine.url.database}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{engine.url.database}" TEMPLATE "{template}"')
            whole = None
        else:
            downgrade(engine, "base")
            migrate(engine)
            whole = whole_load(engine)
            print_whole(whole)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                t = time.perf_counter()
                # What autovacuum does after a bulk insert (PostgreSQL 13 and later): statistics, and
                # the visibility map that lets the nightly batch's lookups scan `match_key`'s index alone.
                conn.exec_driver_sql("VACUUM (ANALYZE)")
                print(f"VACUUM (ANALYZE) after the whole load: {time.perf_counter() - t:.1f} s")
            engine.dispose()
            with admin.connect() as conn:  # keep a copy for --from-snapshot
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{template}"')
                conn.exec_driver_sql(f'CREATE DATABASE "{template}" TEMPLATE "{engine.url.database}"')
        admin.dispose()
    elif args.from_snapshot:
        shutil.copyfile(snapshot, db)
        engine = make_engine(f"sqlite:///{db}")
        whole = None
    else:
        engine = make_engine(f"sqlite:///{db}")
        migrate(engine)
        whole = whole_load(engine)
        print_whole(whole)
        with engine.connect() as conn:  # fold the WAL into the file, then keep a copy for --from-snapshot
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        shutil.copyfile(db, snapshot)
        engine = make_engine(f"sqlite:///{db}")
    nightly_zone = stage_zone(landing, out / "stage-nightly", last)
    if args.profile:
        nightly = profiled(out / "nightly.prof", timed_load, engine, nightly_zone, settings, "nightly")
    else:
        nightly = timed_load(engine, nightly_zone, settings, "nightly")
    with engine.connect() as conn:
        customers = conn.exec_driver_sql("SELECT COUNT(*) FROM customer WHERE merged_into IS NULL").scalar()
    print(f"nightly: {int(nightly['records']):,} records against {customers:,} customers in "
          f"{nightly['total_s']:.1f} s (ingest {nightly['ingest_s']:.1f}, write {nightly['write_records_s']:.1f}, "
          f"resolve {nightly['resolve_s']:.1f}); {int(nightly['affected']):,} records re-resolved, "
          f"{int(nightly['merges'])} merges; CPU {nightly['cpu_s']:.1f} s"
          # The process's peak is the nightly batch's own only when no whole load ran before it.
          + (f"; peak {nightly['peak_mib']:,.0f} MiB" if args.from_snapshot else ""))

    with engine.connect() as conn:
        held = pd.read_sql("SELECT channel, source_record_id, customer_id, personal_id FROM source_record", conn)
        two_codes = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM (SELECT customer_id FROM source_record WHERE personal_id IS NOT NULL "
            "GROUP BY customer_id HAVING COUNT(DISTINCT personal_id) > 1) x").scalar()
    truth = truth_of(zone)
    held = held.set_index(["channel", "source_record_id"])
    scored = scoring.report(held["customer_id"], truth, held["personal_id"].isna())
    overall, without_code = scored["overall"], scored["without_code"]
    results = {"noise_profile": args.noise_profile, "whole": whole, "nightly": nightly, "overall": overall,
               "without_code": without_code, "by_kind": scored["by_kind"], "households": scored.get("households"),
               "customers_with_two_codes": int(two_codes), "records_scored": scored["records"]}
    print(f"project ({args.noise_profile} noise): precision {overall['precision']:.5f} recall {overall['recall']:.5f} "
          f"F1 {overall['f1']:.5f} ({overall['false_pairs']:,} false pairs of {overall['predicted_pairs']:,}); "
          f"customers holding two valid codes: {two_codes}")
    print(f"project, records without a valid code: precision {without_code['precision']:.5f} "
          f"recall {without_code['recall']:.5f} F1 {without_code['f1']:.5f}")
    print("\n".join(scoring.format_report(scored)[2:]))
    promises = marketing_promises(engine, zone)
    results["marketing"] = promises
    print(f"marketing list: {promises['listed_customers']:,} customers; people who prohibited direct marketing "
          f"on it: {promises['prohibited_listed']} (split {promises['prohibited_listed_split']}, merged "
          f"{promises['prohibited_listed_merged']}) of {promises['prohibited_people']:,}; minors on it: "
          f"{promises['minors_listed']} of {promises['minors']:,}; customers held back under doubt: "
          f"{promises['held_under_doubt']:,}")

    if not args.no_baseline:
        t = time.perf_counter()
        with engine.connect() as conn:
            records = pd.read_sql(
                "SELECT source_record_pk AS record_key, channel, source_record_id, observed_at, personal_id, "
                "birth_date, first_names, last_name, street_address, postal_code, city, phone, email, iban "
                "FROM source_record", conn)
        records["observed_at"] = pd.to_datetime(records["observed_at"], utc=True, format="mixed")
        records["birth_date"] = pd.to_datetime(records["birth_date"])
        edges = baseline_splink_pairs(records, min_probability=0.99)
        keys = records["record_key"].to_numpy()
        position = pd.Series(np.arange(len(keys)), index=keys)
        labels = connected_components(len(keys), position[edges["key_l"]].to_numpy(),
                                      position[edges["key_r"]].to_numpy())
        baseline_cluster = pd.Series(labels, index=keys)
        base = records[["record_key", "channel", "source_record_id", "personal_id"]].assign(
            cluster=baseline_cluster.reindex(keys).to_numpy())
        base = base.merge(truth["person_key"].reset_index(), on=["channel", "source_record_id"], how="inner")
        b_all = pairwise_scores(base["cluster"], base["person_key"])
        b_codeless = base[base["personal_id"].isna()]
        b_nocode = pairwise_scores(b_codeless["cluster"], b_codeless["person_key"])
        crossed = base.dropna(subset=["personal_id"]).groupby("cluster")["personal_id"].nunique()
        results["baseline"] = {"overall": b_all, "without_code": b_nocode,
                               "clusters_with_two_codes": int((crossed > 1).sum()),
                               "seconds": time.perf_counter() - t}
        print(f"Splink alone: precision {b_all['precision']:.5f} recall {b_all['recall']:.5f} F1 {b_all['f1']:.5f}; "
              f"without a valid code: P {b_nocode['precision']:.5f} R {b_nocode['recall']:.5f} "
              f"F1 {b_nocode['f1']:.5f}; clusters holding two valid codes: {(crossed > 1).sum()}; "
              f"{time.perf_counter() - t:.1f} s")
    (out / f"resolve_benchmark-{args.noise_profile}.json").write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
