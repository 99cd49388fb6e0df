"""A grouping of records into customers, scored against the generator's ground truth.

    truth = read_truth(zone / GROUND_TRUTH_FILE)      # indexed by (channel, source_record_id)
    result = report(predicted, truth, without_code)   # predicted: customer id per record, indexed alike
    print("\\n".join(format_report(result)))

Pairwise scores: a pair of records is predicted when both have the same customer,
true when both came from the same person. Precision = true predicted pairs /
predicted pairs, recall = true predicted pairs / true pairs.

- overall, and among the records without a valid code (pairs of two such records);
- per noise kind: for each token of the truth's `noise` column ("field:operation")
  and each life event ("event:moved"...), the pairs that touch a record carrying it
  (at least one of the two): recall over the true pairs touching it, precision over
  the predicted pairs touching it;
- per household role: false merges between two members of one household by the
  kind of pair (junior and father, twins, partners, flatmates, parent and child,
  siblings), as person pairs merged of the pairs of members who both sent records;
  and people split over two or more customers by role.

Counts and scores only, never a personal value.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["channel", "source_record_id"]
ROLE_PAIRS = ("junior-father", "twins", "partners", "flatmates", "parent-child", "siblings", "other")
SPLIT_GROUPS = ("head", "partner", "child", "mate", "junior", "twin")
# Identity-code noise that leaves no valid code (a wrong century sign may leave a valid one).
INVALID_CODE = {"missing", "wrong_digit", "swapped_digits", "letter_o", "check_char"}


def read_truth(path: Path) -> pd.DataFrame:
    """One row per record sent by a person, indexed by (channel, source_record_id); ids without <>."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        truth = pd.read_csv(handle, dtype=str, keep_default_na=False)
    truth = truth[(truth["person_key"] != "") & (truth["source_record_id"] != "")].copy()
    truth["source_record_id"] = truth["source_record_id"].str.strip().str.strip("<>")
    truth = truth.drop_duplicates(KEY)
    keep = [c for c in ("person_key", "household_key", "personal_id_noise", "noise", "events", "role",
                        "household_kind", "junior", "twin") if c in truth.columns]
    return truth.set_index(KEY)[keep]


def pairs(sizes) -> int:
    n = np.asarray(sizes, dtype=np.int64)
    return int((n * (n - 1) // 2).sum())


def _scores(tp: int, predicted: int, true: int) -> dict[str, float]:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": true, "predicted_pairs": predicted,
            "false_pairs": predicted - tp, "missed_pairs": true - tp}


def pairwise_scores(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision/recall/F1 of a grouping (both Series indexed alike)."""
    frame = pd.DataFrame({"p": predicted, "t": truth}).dropna()
    return _scores(pairs(frame.groupby(["p", "t"]).size()), pairs(frame.groupby("p").size()),
                   pairs(frame.groupby("t").size()))


def _joined(predicted: pd.Series, truth: pd.DataFrame) -> pd.DataFrame:
    """The truth of the records that have a prediction, with integer person and cluster codes."""
    predicted = predicted[~predicted.index.duplicated()]
    frame = truth.assign(_predicted=predicted.reindex(truth.index).to_numpy())
    frame = frame[frame["_predicted"].notna()]
    frame["_person"] = pd.factorize(frame["person_key"])[0]
    frame["_cluster"] = pd.factorize(frame["_predicted"])[0]
    frame["_both"] = frame["_person"].astype(np.int64) * (int(frame["_cluster"].max()) + 1 if len(frame) else 1) \
        + frame["_cluster"]
    return frame


def kind_tokens(frame: pd.DataFrame) -> pd.DataFrame:
    """(row, token) for every noise token and life event of each record (row: position in `frame`)."""
    columns = [frame["noise"].str.split()]
    if "events" in frame.columns:
        columns.append(frame["events"].str.split().map(lambda e: [f"event:{x}" for x in e]))
    out = []
    for column in columns:
        exploded = pd.Series(column.to_numpy(), index=np.arange(len(frame))).explode().dropna()
        out.append(pd.DataFrame({"row": exploded.index.to_numpy(), "token": exploded.to_numpy()}))
    return pd.concat(out, ignore_index=True).drop_duplicates()


def _touching(tokens: pd.DataFrame, group: np.ndarray) -> pd.Series:
    """Per token: the pairs within groups that touch a record carrying it: C(n,2) - C(n-k,2) summed."""
    size = np.bincount(group)
    with_token = pd.DataFrame({"token": tokens["token"].to_numpy(), "group": group[tokens["row"].to_numpy()]})
    k = with_token.groupby(["token", "group"]).size()
    n = size[k.index.get_level_values("group")]
    kk = k.to_numpy()
    touching = n * (n - 1) // 2 - (n - kk) * (n - kk - 1) // 2
    return pd.Series(touching, index=k.index).groupby(level="token").sum()


def scores_by_kind(frame: pd.DataFrame) -> pd.DataFrame:
    """Per noise kind: records carrying it, pairs touching them, precision, recall, F1."""
    tokens = kind_tokens(frame)
    if tokens.empty:
        return pd.DataFrame(columns=["records", "true_pairs", "predicted_pairs", "false_pairs", "missed_pairs",
                                     "precision", "recall", "f1"])
    true = _touching(tokens, frame["_person"].to_numpy())
    predicted = _touching(tokens, frame["_cluster"].to_numpy())
    both = _touching(tokens, pd.factorize(frame["_both"])[0])
    records = tokens.groupby("token").size()
    rows = {token: {"records": int(records[token]), **_scores(int(both.get(token, 0)), int(predicted.get(token, 0)),
                                                              int(true.get(token, 0)))}
            for token in records.index}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def _pair_kind(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    role_a, role_b = a["role"].to_numpy(), b["role"].to_numpy()
    junior_a, junior_b = a["junior"].to_numpy() == "1", b["junior"].to_numpy() == "1"
    twin_a, twin_b = a["twin"].to_numpy() == "1", b["twin"].to_numpy() == "1"
    parent_a, parent_b = np.isin(role_a, ["head", "partner"]), np.isin(role_b, ["head", "partner"])
    child_a, child_b = role_a == "child", role_b == "child"
    partners = ((role_a == "head") & (role_b == "partner")) | ((role_a == "partner") & (role_b == "head"))
    return np.select(
        [(junior_a & (role_b == "head")) | (junior_b & (role_a == "head")), twin_a & twin_b, partners,
         a["household_kind"].to_numpy() == "flatmates", (child_a & parent_b) | (child_b & parent_a),
         child_a & child_b],
        list(ROLE_PAIRS[:-1]), ROLE_PAIRS[-1])


def household_report(frame: pd.DataFrame) -> dict:
    """False merges inside households by kind of pair, and people split, by role."""
    people = frame.groupby("_person").agg(household=("household_key", "first"), role=("role", "first"),
                                          household_kind=("household_kind", "first"),
                                          junior=("junior", "first"), twin=("twin", "first"),
                                          records=("_cluster", "size"), customers=("_cluster", "nunique"))
    # Pairs of members of one household who both sent records.
    members = people.reset_index()[["_person", "household"]]
    in_household = members.merge(members, on="household", suffixes=("_a", "_b"))
    in_household = in_household[in_household["_person_a"] < in_household["_person_b"]]
    kind = _pair_kind(people.loc[in_household["_person_a"]], people.loc[in_household["_person_b"]])
    present = pd.Series(kind).value_counts()
    # Person pairs of one household that share a customer.
    held = frame.groupby(["_cluster", "_person"]).size().rename("n").reset_index()
    held["household"] = people.loc[held["_person"], "household"].to_numpy()
    together = held.merge(held, on=["_cluster", "household"], suffixes=("_a", "_b"))
    together = together[together["_person_a"] < together["_person_b"]]
    together = together.assign(record_pairs=together["n_a"] * together["n_b"])
    merged_pairs = together.groupby(["_person_a", "_person_b"])["record_pairs"].sum().reset_index()
    merged_kind = _pair_kind(people.loc[merged_pairs["_person_a"]], people.loc[merged_pairs["_person_b"]])
    merged = pd.DataFrame({"kind": merged_kind, "record_pairs": merged_pairs["record_pairs"].to_numpy()})
    by_kind = merged.groupby("kind").agg(person_pairs=("record_pairs", "size"), record_pairs=("record_pairs", "sum"))
    merges = {k: {"person_pairs_in_data": int(present.get(k, 0)),
                  "person_pairs_merged": int(by_kind["person_pairs"].get(k, 0)),
                  "record_pairs_merged": int(by_kind["record_pairs"].get(k, 0))} for k in ROLE_PAIRS}
    # People whose records went to two or more customers.
    several = people[people["records"] > 1]
    split = several["customers"] > 1
    groups = {"head": several["role"] == "head", "partner": several["role"] == "partner",
              "child": several["role"] == "child", "mate": several["role"] == "mate",
              "junior": several["junior"] == "1", "twin": several["twin"] == "1"}
    splits = {g: {"people_with_2_records": int(mask.sum()), "people_split": int((mask & split).sum())}
              for g, mask in groups.items()}
    all_false = pairs(frame.groupby("_cluster").size()) - pairs(frame.groupby("_both").size())
    return {"merges": merges, "splits": splits,
            "false_pairs_in_households": int(merged["record_pairs"].sum()),
            "false_pairs_across_households": int(all_false - merged["record_pairs"].sum())}


def without_valid_code(truth: pd.DataFrame) -> pd.Series:
    """Records whose code is missing or invalid, by the truth's personal_id_noise."""
    return truth["personal_id_noise"].str.split().map(lambda ops: bool(INVALID_CODE & set(ops)))


def report(predicted: pd.Series, truth: pd.DataFrame, without_code: pd.Series | None = None) -> dict:
    """Scores of a grouping (customer id per record, indexed like `truth`): overall, without a
    valid code (`without_code`: bool per record; by default from the truth), per noise kind and,
    when the truth has roles, per household role."""
    frame = _joined(predicted, truth)
    if without_code is None:
        without_code = without_valid_code(truth)
    codeless = frame[without_code.reindex(frame.index).fillna(False).astype(bool).to_numpy()]
    out = {"records": int(len(frame)),
           "overall": pairwise_scores(frame["_cluster"], frame["_person"]),
           "without_code": {"records": int(len(codeless)),
                            **pairwise_scores(codeless["_cluster"], codeless["_person"])},
           "by_kind": scores_by_kind(frame).to_dict(orient="index")}
    if {"role", "household_kind", "junior", "twin"} <= set(frame.columns):
        out["households"] = household_report(frame)
    return out


def format_report(result: dict, kinds: bool = True) -> list[str]:
    """Printable lines of a `report`."""
    o, w = result["overall"], result["without_code"]
    lines = [f"{result['records']:,} records: precision {o['precision']:.5f} recall {o['recall']:.5f} "
             f"F1 {o['f1']:.5f} ({o['false_pairs']:,} false of {o['predicted_pairs']:,} predicted pairs, "
             f"{o['missed_pairs']:,} missed of {o['true_pairs']:,})",
             f"{w['records']:,} records without a valid code: precision {w['precision']:.5f} "
             f"recall {w['recall']:.5f} F1 {w['f1']:.5f}"]
    if kinds and result["by_kind"]:
        lines.append(f"{'noise kind':<32} {'records':>8} {'true pr':>8} {'missed':>7} {'recall':>8} "
                     f"{'pred pr':>8} {'false':>6} {'precision':>9}")
        for token, r in result["by_kind"].items():
            lines.append(f"{token:<32} {r['records']:>8,} {r['true_pairs']:>8,} {r['missed_pairs']:>7,} "
                         f"{r['recall']:>8.4f} {r['predicted_pairs']:>8,} {r['false_pairs']:>6,} "
                         f"{r['precision']:>9.4f}")
    households = result.get("households")
    if households:
        lines.append(f"false pairs inside households {households['false_pairs_in_households']:,}, "
                     f"across households {households['false_pairs_across_households']:,}")
        lines.append(f"{'household pair':<16} {'pairs':>8} {'merged':>7} {'rate':>8} {'record pairs':>13}")
        for kind, m in households["merges"].items():
            rate = m["person_pairs_merged"] / m["person_pairs_in_data"] if m["person_pairs_in_data"] else 0.0
            lines.append(f"{kind:<16} {m['person_pairs_in_data']:>8,} {m['person_pairs_merged']:>7,} {rate:>8.4f} "
                         f"{m['record_pairs_merged']:>13,}")
        lines.append(f"{'split people':<16} {'2+ recs':>8} {'split':>7} {'rate':>8}")
        for group, s in households["splits"].items():
            rate = s["people_split"] / s["people_with_2_records"] if s["people_with_2_records"] else 0.0
            lines.append(f"{group:<16} {s['people_with_2_records']:>8,} {s['people_split']:>7,} {rate:>8.4f}")
    return lines
