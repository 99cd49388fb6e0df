"""Doubt on the marketing list: prohibited people and minors listed, with and without doubt.

    .venv/bin/python bench/marketing_doubt.py --people 20000 --days 14 --seed 3 [--noise-profile varied]

Generates a landing zone (the project's generator), loads it day by day into a
SQLite register, and reads the marketing list three times: as migration 0003 defined
the view (every rule but doubt), with migration 0006's doubt (customers an open
review ties to someone prohibited or a possible minor left out), and as it is now
(0007: also those reached at a prohibiting contact point, and those whose own
prohibition linked by probability was never withdrawn under its code). Against the
generator's ground truth it counts the people on each list who prohibited direct
marketing (their latest statement) or are under 18, and how many customers doubt
holds back. Counts only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.intake import build_batch, discover, read_all  # noqa: E402
from pipeline.register.database import make_engine, migrate  # noqa: E402
from pipeline.register.load import load_intake  # noqa: E402
from pipeline.register.marketing import adult_born_on_or_before  # noqa: E402
from pipeline.register.resolve import resolve_identities  # noqa: E402
from synth import GROUND_TRUTH_FILE, generate  # noqa: E402

NOW = dt.datetime(2027, 1, 15, 3, 0, tzinfo=dt.timezone.utc)


def _migration(file_name: str):
    path = ROOT / "schemas" / "migrations" / "versions" / file_name
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _birth_date(code: str) -> dt.date | None:
    if not isinstance(code, str) or len(code) != 11:
        return None
    century = {"+": 1800, "-": 1900, "Y": 1900, "X": 1900, "W": 1900, "V": 1900, "U": 1900,
               "A": 2000, "B": 2000, "C": 2000, "D": 2000, "E": 2000, "F": 2000}.get(code[6])
    try:
        return dt.date(century + int(code[4:6]), int(code[2:4]), int(code[0:2])) if century else None
    except ValueError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--noise-profile", choices=("default", "varied"), default="default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-doubt-") as scratch:
        work = Path(scratch)
        generate(work / "zone", people=args.people, days=args.days, seed=args.seed,
                 noise_profile=args.noise_profile)
        landing = work / "zone" / "landing"
        engine = make_engine(f"sqlite:///{work / 'register.db'}")
        migrate(engine)
        began = time.perf_counter()
        days = sorted({p.stem.rsplit("_", 1)[-1] for p in landing.rglob("*_*.*")})
        for day in days:
            part = work / f"day-{day}"
            for path in landing.rglob(f"*_{day}.*"):
                target = part / path.relative_to(landing)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
            load_intake(engine, build_batch(read_all(discover(part)), NOW.date()), run_id="bench", now=NOW,
                        after_load=lambda c: resolve_identities(c, now=NOW, run_id="bench"))
        loaded = time.perf_counter() - began

        truth = pd.read_csv(work / "zone" / GROUND_TRUTH_FILE, dtype=str, keep_default_na=False,
                            usecols=["channel", "source_record_id", "person_key", "personal_id_true"])
        email = truth["channel"] == "email"
        truth.loc[email, "source_record_id"] = truth.loc[email, "source_record_id"].str.strip().str.strip("<>")
        truth = truth[truth["person_key"] != ""].drop_duplicates(["channel", "source_record_id"])
        with engine.connect() as connection:
            records = pd.read_sql_query(
                "SELECT channel, source_record_id, customer_id, observed_at, marketing_prohibited FROM source_record",
                connection)
            with_doubt = set(pd.read_sql_query("SELECT DISTINCT customer_id FROM marketing_contacts",
                                               connection)["customer_id"])
            held = int(connection.exec_driver_sql("SELECT COUNT(DISTINCT customer_id) FROM marketing_doubt").scalar())
        records = records.merge(truth, on=["channel", "source_record_id"], how="inner")
        stated = records.dropna(subset=["marketing_prohibited"]).sort_values("observed_at")
        prohibited = set(stated.groupby("person_key")["marketing_prohibited"].last().loc[lambda s: s == 1].index)
        cutoff = adult_born_on_or_before(dt.date.today())
        born = truth.drop_duplicates("person_key").set_index("person_key")["personal_id_true"].map(_birth_date)
        minors = {p for p, b in born.items() if b is not None and b > cutoff}

        without_view = _migration("0003_access_and_rights.py")._marketing_contacts("sqlite").split(" AS", 1)[1]
        review_doubt = _migration("0007_doubt_by_contact.py")._marketing_doubt("sqlite", by_contact=False)
        with engine.connect() as connection:
            without_doubt = set(pd.read_sql_query(f"SELECT DISTINCT customer_id FROM ({without_view}) v",
                                                  connection)["customer_id"])
            held_by_reviews = set(pd.read_sql_query(
                f"SELECT customer_id FROM ({review_doubt.split(' AS', 1)[1]}) v", connection)["customer_id"])
        print(f"{args.people} people ({args.noise_profile} noise), {len(records)} records, {args.days} days "
              f"loaded in {loaded:.1f} s; customers in marketing_doubt: {held}")
        for label, listed in (("without doubt (0003)", without_doubt),
                              ("reviews only (0006)", without_doubt - held_by_reviews),
                              ("as it is now", with_doubt)):
            people = set(records.loc[records["customer_id"].isin(listed), "person_key"])
            print(f"{label:<22} customers listed {len(listed):>7}  prohibited people listed "
                  f"{len(people & prohibited):>5}  minors listed {len(people & minors):>4}")
        print(f"held back under doubt and otherwise listed: {len(without_doubt - with_doubt)} customers")
        _why_still_listed(engine, records, with_doubt, prohibited)


def _share_a_blocking_key(keyed: pd.DataFrame, inside: pd.DataFrame, others: pd.DataFrame) -> bool:
    from pipeline.matching.blocking import blocking_keys
    from pipeline.matching.features import match_features
    from pipeline.matching.model import BLOCKING_KEYS

    both = keyed[keyed["record_key"].isin(set(inside["record_key"]) | set(others["record_key"]))]
    keys = blocking_keys(match_features(both), BLOCKING_KEYS)
    mine = set(keys.loc[keys["record_key"].isin(inside["record_key"]), "blocking_key"])
    theirs = set(keys.loc[keys["record_key"].isin(others["record_key"]), "blocking_key"])
    return bool(mine & theirs)


def _why_still_listed(engine, records: pd.DataFrame, listed: set[int], prohibited: set[str]) -> None:
    """Each prohibited person still listed: a false merge (the listed customer holds other
    people's records) or a split, with the best score between the listed customer's records
    and the person's other customers' records (frozen model, every pair, blocked or not),
    and whether such a pair was ever a candidate (shares a blocking key)."""
    from pipeline.matching.model import MatchModel
    from pipeline.matching.rescore import score_listed_pairs
    from pipeline.matching.retrain import register_records

    mine = records[records["person_key"].isin(prohibited)]
    people_of = records.groupby("customer_id")["person_key"].agg(set)
    still = sorted(set(mine.loc[mine["customer_id"].isin(listed), "person_key"]))
    if not still:
        return
    with engine.connect() as connection:
        held = register_records(connection)
    keyed = held.merge(records[["channel", "source_record_id", "person_key"]], on=["channel", "source_record_id"])
    kinds: dict[str, int] = {}
    for person in still:
        own = keyed[keyed["person_key"] == person]
        listed_customers = set(own["customer_id"].astype(int)) & listed
        merged = any(len(people_of[c]) > 1 for c in listed_customers)
        others = own[~own["customer_id"].astype(int).isin(listed_customers)]
        if others.empty:
            kind = "false merge" if merged else "statement outvoted within one customer"
        else:
            inside = own[own["customer_id"].astype(int).isin(listed_customers)]
            pairs = pd.DataFrame([(a, b) for a in inside["record_key"] for b in others["record_key"]],
                                 columns=["key_l", "key_r"])
            best = float(score_listed_pairs(keyed, pairs, MatchModel.load()).max())
            band = "below 0.5" if best < 0.5 else "0.5-0.8" if best < 0.8 else "0.8 or above"
            kind = f"split, best score {band}" + (" (and a false merge)" if merged else "")
            if best >= 0.8 and not _share_a_blocking_key(keyed, inside, others):
                kind += ", never a candidate pair (no blocking key shared)"
        kinds[kind] = kinds.get(kind, 0) + 1
    print("prohibited people still listed: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))


if __name__ == "__main__":
    main()
