"""Why the matcher missed or made a link: counts per cause, against the ground truth.

    .venv/bin/python bench/resolve_misses.py --records 200000 --days 100 --seed 17 [--noise-profile varied]
        [--db bench/out/resolve-bench.db] [--top 25]

Reads the register a `resolve_benchmark.py` run left (its SQLite file) and the
zone's ground truth, then:

- *Splits*: every record without a valid code that sits apart from its person's
  main customer (the one holding most of the person's records). It is paired
  with each of the person's records in the main customer; the best pair (by the
  model's probability) says why: no blocking key in common, or a score below the
  review threshold, in review, or sure but withheld (ambiguity). Per bucket: the
  noise kinds the record carries, and the comparison levels of the best pair.
- *False merges*: for every customer holding records of two or more people, each
  minority person's best pair into the customer's main person, by kind of
  household pair (junior and father, twins, partners ...) and its levels.
- *Prohibited splits*: the same split analysis restricted to people who prohibited
  direct marketing.
- *Listed* (`--listed`): every customer on the marketing list that holds records of
  one person only, a person whose latest statement prohibited direct marketing in a
  record held by another customer (a split). Its records are paired with those
  prohibiting records: the best pair by probability, whether blocking makes any of
  the pairs, and whether the two share their full names (either way round); how many
  live customers carry the listed record's first given name and surname; and what two
  wider hold-back rules (by those names, and by those with the e-mail local part) would
  hold back.
- *Links* (`--links`): every record linked by probability, its best pair inside its
  customer, by the levels of that pair: how many of each pattern are right (the record's
  person is the customer's main person) and how many wrong. What a rule turning a pattern
  into a review would save, and what it would cost.

Counts and level names only, never a value.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.matching.blocking import blocking_keys  # noqa: E402
from pipeline.matching.features import match_features  # noqa: E402
from pipeline.matching.model import MatchModel  # noqa: E402
from pipeline.matching.rescore import scored_listed_pairs  # noqa: E402
from pipeline.register.database import make_engine  # noqa: E402
from pipeline.register.resolve import _read_records  # noqa: E402
from synth import GROUND_TRUTH_FILE  # noqa: E402
from synth import truth as scoring  # noqa: E402

BUCKETS = ((0.95, "sure, withheld"), (0.80, "review 0.80-0.95"), (0.50, "0.50-0.80"), (0.0, "below 0.50"))


def score_listed(records: pd.DataFrame, pairs: pd.DataFrame, model: MatchModel) -> pd.DataFrame:
    """(probability, evidence) for each listed pair, in order; evidence as a dict of levels."""
    scored = scored_listed_pairs(records, pairs, model)
    out = pd.DataFrame({"probability": np.zeros(len(pairs)), "evidence": [None] * len(pairs)})
    out.loc[scored["key_l"].to_numpy(np.int64), "probability"] = scored["match_probability"].to_numpy(float)
    out.loc[scored["key_l"].to_numpy(np.int64), "evidence"] = scored["evidence"].to_numpy(object)
    return out


def short(label: str) -> str:
    return (label.replace("Exact match on ", "=").replace("Exact match", "=").replace("All other comparisons", "else")
            .replace("the same names in another order or field", "reordered")[:28])


def level_pattern(evidence: str | None) -> str:
    if not evidence:
        return "-"
    parsed = json.loads(evidence)
    return " | ".join(f"{k[:5]}:{short(v[0])}" for k, v in parsed.items())


def bucket(p: float) -> str:
    return next(label for floor, label in BUCKETS if p >= floor)


def analyse_pairs(records: pd.DataFrame, pairs: pd.DataFrame, model: MatchModel) -> pd.DataFrame:
    """Per pair: probability, evidence, shares a blocking key."""
    scored = score_listed(records, pairs, model)
    # Features and keys are each record's own: those of the paired records suffice.
    paired = records[records["record_key"].isin(set(pairs["key_l"]) | set(pairs["key_r"]))]
    keys = blocking_keys(match_features(paired), model.blocking_rules)
    by_record = keys.groupby("record_key")["blocking_key"].apply(frozenset)
    left = by_record.reindex(pairs["key_l"].to_numpy()).to_numpy()
    right = by_record.reindex(pairs["key_r"].to_numpy()).to_numpy()
    blocked = [isinstance(a, frozenset) and isinstance(b, frozenset) and bool(a & b) for a, b in zip(left, right)]
    return pairs.assign(probability=scored["probability"].to_numpy(), evidence=scored["evidence"].to_numpy(),
                        blocked=blocked)


def print_counter(title: str, counter: Counter, top: int) -> None:
    print(f"  {title}:")
    for value, n in counter.most_common(top):
        print(f"    {n:>6}  {value}")


def report_splits(title: str, best: pd.DataFrame, truth_noise: pd.Series, top: int) -> None:
    print(f"\n== {title}: {len(best):,} records apart from their person's main customer")
    best = best.assign(bucket=np.where(~best["blocked"], "no blocking key", best["probability"].map(bucket)))
    for name, group in best.groupby("bucket"):
        unblocked = (~group["blocked"]).sum()
        print(f"-- {name}: {len(group):,} records" + (
            f" (if scored: {(group['probability'] >= 0.95).sum()} sure, "
            f"{((group['probability'] >= 0.8) & (group['probability'] < 0.95)).sum()} review)" if unblocked else ""))
        tokens = Counter(t for key in group["key_l"] for t in truth_noise.get(key, "").split())
        print_counter("noise kinds on the record", tokens, top)
        print_counter("levels of its best pair", Counter(group["evidence"].map(level_pattern)), top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--noise-profile", default="default")
    parser.add_argument("--db", default=str(ROOT / "bench" / "out" / "resolve-bench.db"))
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--merges-only", action="store_true", help="only the false merges (faster at 1M)")
    parser.add_argument("--listed", action="store_true", help="also the prohibited people on the marketing list "
                                                              "through a split: what ties them to their prohibition")
    parser.add_argument("--links", action="store_true", help="also the links by probability, right and wrong, "
                                                             "by level pattern")
    args = parser.parse_args()
    zone = ROOT / "bench" / "out" / f"zone-{args.records}-{args.days}-{args.seed}-{args.noise_profile}"
    engine = make_engine(f"sqlite:///{args.db}")
    with engine.connect() as conn:
        records = _read_records(conn, "")
    truth = scoring.read_truth(zone / GROUND_TRUTH_FILE)
    with gzip.open(zone / GROUND_TRUTH_FILE, "rt", encoding="utf-8") as handle:
        raw = pd.read_csv(handle, dtype=str, keep_default_na=False, usecols=["channel", "source_record_id"])
    del raw
    records["source_record_id"] = records["source_record_id"].astype(str)
    records["channel"] = records["channel"].astype(str)
    joined = truth.reindex(pd.MultiIndex.from_frame(records[["channel", "source_record_id"]]))
    records = records.assign(person=joined["person_key"].to_numpy(), noise=joined["noise"].fillna("").to_numpy(),
                             role=joined["role"].to_numpy(), junior=joined["junior"].to_numpy(),
                             twin=joined["twin"].to_numpy(), household=joined["household_key"].to_numpy(),
                             household_kind=joined["household_kind"].to_numpy(),
                             events=joined["events"].fillna("").to_numpy())
    records = records[records["person"].notna()].reset_index(drop=True)
    records["noise"] = (records["noise"] + " " + records["events"].map(
        lambda e: " ".join(f"event:{x}" for x in e.split()))).str.strip()
    model = MatchModel.load()
    noise = pd.Series(records["noise"].to_numpy(), index=records["record_key"].to_numpy())

    # Each person's main customer: the one holding most of their records (ties: smallest id).
    counts = records.groupby(["person", "customer_id"]).size().rename("n").reset_index()
    main = counts.sort_values(["person", "n", "customer_id"], ascending=[True, False, True]).drop_duplicates("person")
    main_of = main.set_index("person")["customer_id"]
    records["main"] = records["person"].map(main_of).astype("Int64")
    apart = records[(records["customer_id"] != records["main"]) & records["personal_id"].isna()]
    in_main = records[records["customer_id"] == records["main"]]
    pairs = apart[["record_key", "person"]].merge(in_main[["record_key", "person"]], on="person",
                                                  suffixes=("_l", "_r"))
    pairs = pairs.rename(columns={"record_key_l": "key_l", "record_key_r": "key_r"})[["key_l", "key_r"]]
    print(f"{len(records):,} records; {len(apart):,} code-less records apart from their main customer; "
          f"{len(pairs):,} pairs into it")
    prohibited_people = set()
    stated = records.dropna(subset=["marketing_prohibited"]).sort_values(["observed_at", "channel",
                                                                           "source_record_id"])
    latest = stated.groupby("person")["marketing_prohibited"].last().astype(bool)
    prohibited_people = set(latest[latest].index)
    if len(pairs) and not args.merges_only:
        analysed = analyse_pairs(records, pairs, model)
        # Best pair per record: blocked pairs first (what the matcher saw), then by probability.
        best = analysed.sort_values(["key_l", "blocked", "probability"], ascending=[True, False, False]) \
            .drop_duplicates("key_l")
        seen = analysed[analysed["blocked"]].groupby("key_l")["probability"].max()
        best["blocked"] = best["key_l"].isin(seen.index)
        report_splits("splits (code-less records)", best, noise, args.top)
        person_of = records.set_index("record_key")["person"]
        prohibited = best[best["key_l"].map(person_of).isin(prohibited_people)]
        report_splits("splits of people who prohibited marketing", prohibited, noise, args.top)

    # False merges: customers holding 2+ people.
    people = records.groupby("customer_id")["person"].nunique()
    mixed = records[records["customer_id"].isin(people[people > 1].index)]
    mixed = mixed.assign(main_person=mixed["customer_id"].map(main_person_of(mixed)))
    other = mixed[mixed["person"] != mixed["main_person"]]
    core = mixed[mixed["person"] == mixed["main_person"]]
    fpairs = other[["record_key", "customer_id"]].merge(core[["record_key", "customer_id"]], on="customer_id",
                                                         suffixes=("_l", "_r"))
    fpairs = fpairs.rename(columns={"record_key_l": "key_l", "record_key_r": "key_r"})[["key_l", "key_r"]]
    print(f"\n== false merges: {len(people[people > 1]):,} customers hold 2+ people; {len(other):,} records "
          f"of minority people")
    if len(fpairs):
        analysed = analyse_pairs(records, fpairs, model)
        best = analysed.sort_values(["key_l", "probability"], ascending=[True, False]).drop_duplicates("key_l")
        by_key = records.set_index("record_key")
        a = by_key.loc[best["key_l"].to_numpy()].reset_index()
        b = by_key.loc[best["key_r"].to_numpy()].reset_index()
        same_household = a["household"].to_numpy() == b["household"].to_numpy()
        kind = np.where(same_household, scoring._pair_kind(a, b), "across households")
        # Does the register know the minority person by a code, in a customer of their own?
        coded_in = records.dropna(subset=["personal_id"]).groupby("person")["customer_id"].agg(frozenset)
        own = [any(c != customer for c in coded_in.get(person, ())) for person, customer in
               zip(a["person"], a["customer_id"])]
        best = best.assign(kind=kind, coded=a["personal_id"].notna().to_numpy(),
                           method=a["match_method"].astype(str).to_numpy(), own=own)
        for name, group in best.groupby("kind"):
            print(f"-- {name}: {len(group):,} records ({int(group['coded'].sum())} with a valid code; the person "
                  f"has a coded customer of their own: {int(group['own'].sum())}); "
                  f"best pair: {(group['probability'] >= 0.95).sum()} sure")
            print_counter("method of the record", Counter(group["method"]), 5)
            print_counter("noise kinds on the record", Counter(t for k in group["key_l"] for t in
                                                               noise.get(k, "").split()), args.top)
            print_counter("levels of its best pair", Counter(group["evidence"].map(level_pattern)), args.top)
    if args.listed:
        report_listed(engine, records, prohibited_people, model, args.top)
    if args.links:
        report_links(records, model, args.top)


def main_person_of(records: pd.DataFrame) -> pd.Series:
    """Each customer's main person: the one with most of its records (ties: the smallest key)."""
    return records.groupby(["customer_id", "person"]).size().rename("n").reset_index() \
        .sort_values(["customer_id", "n", "person"], ascending=[True, False, True]).drop_duplicates("customer_id") \
        .set_index("customer_id")["person"]


def report_listed(engine, records: pd.DataFrame, prohibited_people: set, model: MatchModel, top: int) -> None:
    """Prohibited people listed through a split: the listed customer's records against the person's
    prohibiting records held elsewhere (see the module doc)."""
    with engine.connect() as conn:
        listed = set(pd.read_sql("SELECT DISTINCT customer_id FROM marketing_contacts", conn)["customer_id"])
        golden = pd.read_sql("SELECT first_names, last_name FROM customer WHERE merged_into IS NULL "
                             "AND erased_at IS NULL", conn)
    people_in = records.groupby("customer_id")["person"].nunique()
    mine = records[records["customer_id"].isin(listed) & records["person"].isin(prohibited_people)]
    mine = mine[mine["customer_id"].map(people_in) == 1]
    prohibiting = records[records["person"].isin(set(mine["person"]))
                          & records["marketing_prohibited"].astype("boolean").fillna(False).astype(bool)]
    pairs = mine[["record_key", "person", "customer_id"]].merge(
        prohibiting[["record_key", "person", "customer_id"]], on="person", suffixes=("_l", "_r"))
    pairs = pairs[pairs["customer_id_l"] != pairs["customer_id_r"]]
    pairs = pairs.rename(columns={"record_key_l": "key_l", "record_key_r": "key_r"}).reset_index(drop=True)
    print(f"\n== prohibited people listed through a split: {mine['person'].nunique():,} people in "
          f"{mine['customer_id'].nunique():,} listed customers; {len(pairs):,} pairs with their prohibiting records")
    if not len(pairs):
        return
    analysed = analyse_pairs(records, pairs[["key_l", "key_r"]], model).assign(customer=pairs["customer_id_l"])
    blocked = analysed.groupby("customer")["blocked"].any()
    best = analysed.sort_values(["customer", "probability"], ascending=[True, False]).drop_duplicates("customer")
    best = best.assign(blocked=best["customer"].map(blocked).to_numpy())
    paired = records[records["record_key"].isin(set(analysed["key_l"]) | set(analysed["key_r"]))]
    folded = match_features(paired).set_index("record_key")["name_sorted"]
    same_names = [folded.get(a) is not None and folded.get(a) == folded.get(b) for a, b in
                  zip(analysed["key_l"], analysed["key_r"])]
    names_shared = analysed.assign(same=same_names).groupby("customer")["same"].any()
    print_counter("best pair's probability, and whether blocking makes any pair",
                  Counter(f"{bucket(p)}, {'blocked' if b else 'not blocked'}"
                          for p, b in zip(best["probability"], best["blocked"])), top)
    print(f"  share their full names (either way round) with a prohibiting record: {int(names_shared.sum())}")
    print_counter("levels of the best pair", Counter(best["evidence"].map(level_pattern)), top)
    carriers = golden.assign(first=golden["first_names"].str.split().str[0]).groupby(["first", "last_name"]).size()
    keyed = records.assign(first=records["first_names"].astype("string").str.split().str[0]) \
        .set_index("record_key").loc[best["key_l"], ["first", "last_name"]]
    counts = carriers.reindex(pd.MultiIndex.from_frame(keyed)).fillna(0).astype(int)
    print_counter("customers carrying the listed customer's first given name and surname",
                  Counter(np.where(counts <= 1, "1", np.where(counts <= 3, "2-3", np.where(counts <= 10, "4-10",
                                                                                          "over 10")))), top)
    with engine.connect() as conn:
        report_hold_back_rules(conn, set(mine["customer_id"]))


def report_hold_back_rules(conn, split_listed: set) -> None:
    """What two wider hold-back rules would cost: listed customers held back, and how many of the
    split-listed they reach. A prohibiting record (of a live, prohibited customer) reaches a listed
    customer with the same first given name and surname, either way round, of an identity that could
    be one (codes and birth dates not both known and different); the second rule also needs the same
    e-mail local part."""
    prohibiting = pd.read_sql(
        "SELECT s.customer_id AS owner, s.first_names, s.last_name, s.email, c.personal_id AS owner_code, "
        "c.birth_date AS owner_birth FROM source_record s JOIN customer c ON c.customer_id = s.customer_id "
        "WHERE s.marketing_prohibited = 1 AND c.merged_into IS NULL AND c.marketing_prohibited = 1", conn)
    listed = pd.read_sql("SELECT DISTINCT m.customer_id, c.first_names, c.last_name, c.personal_id, c.birth_date, "
                         "c.email FROM marketing_contacts m JOIN customer c ON c.customer_id = m.customer_id", conn)
    for frame in (prohibiting, listed):
        frame["first"] = frame["first_names"].str.split().str[0]
        frame["local"] = frame["email"].str.split("@").str[0]
    prohibiting = prohibiting.dropna(subset=["first", "last_name"])
    either_way = pd.concat([prohibiting.assign(a=prohibiting["first"], b=prohibiting["last_name"]),
                            prohibiting.assign(a=prohibiting["last_name"], b=prohibiting["first"])])
    met = listed.merge(either_way[["a", "b", "owner", "owner_code", "owner_birth", "local"]],
                       left_on=["first", "last_name"], right_on=["a", "b"], suffixes=("", "_p"))
    met = met[met["customer_id"] != met["owner"]]
    same_code = met["personal_id"].isna() | met["owner_code"].isna() | (met["personal_id"] == met["owner_code"])
    same_birth = met["birth_date"].isna() | met["owner_birth"].isna() | (met["birth_date"] == met["owner_birth"])
    could_be_one = same_code & same_birth
    same_local = met["local"].notna() & (met["local"] == met["local_p"])
    print(f"  wider hold-back rules, of {len(listed):,} listed customers:")
    for label, rule in (("first given name and surname", could_be_one),
                        ("those and the e-mail local part", could_be_one & same_local)):
        held = set(met.loc[rule, "customer_id"])
        print(f"    {label}: {len(held):,} held back, {len(held & split_listed)} of the {len(split_listed)} "
              f"split-listed")


def report_links(records: pd.DataFrame, model: MatchModel, top: int) -> None:
    """Each record linked by probability, its best pair inside its customer, right or wrong, by pattern."""
    main_person = main_person_of(records)
    linked = records[records["match_method"].astype(str) == "probabilistic"]
    pairs = linked[["record_key", "customer_id"]].merge(records[["record_key", "customer_id"]], on="customer_id",
                                                         suffixes=("_l", "_r"))
    pairs = pairs[pairs["record_key_l"] != pairs["record_key_r"]]
    pairs = pairs.rename(columns={"record_key_l": "key_l", "record_key_r": "key_r"})[["key_l", "key_r"]]
    pairs = pairs.reset_index(drop=True)
    scored = score_listed(records, pairs, model)
    pairs = pairs.assign(probability=scored["probability"].to_numpy(), evidence=scored["evidence"].to_numpy())
    best = pairs.sort_values(["key_l", "probability"], ascending=[True, False]).drop_duplicates("key_l")
    by_key = records.set_index("record_key")
    right = (by_key.loc[best["key_l"], "person"].to_numpy()
             == by_key.loc[best["key_l"], "customer_id"].map(main_person).to_numpy())
    table = pd.DataFrame({"pattern": best["evidence"].map(level_pattern).to_numpy(), "right": right})
    table = table.groupby("pattern")["right"].agg(right="sum", linked="size")
    table["wrong"] = table["linked"] - table["right"]
    print(f"\n== links by probability: {len(best):,} records, {int(table['wrong'].sum()):,} in another person's "
          f"customer; the patterns with most wrong links (wrong, right):")
    for pattern, row in table.sort_values(["wrong", "right"], ascending=False).head(top).iterrows():
        print(f"    {int(row['wrong']):>6} {int(row['right']):>7}  {pattern}")


if __name__ == "__main__":
    main()
