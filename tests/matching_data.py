"""Canonical records with their ground truth, for the matching tests and benchmarks.

    matching_records(out_dir, people=..., days=..., seed=...) -> DataFrame

Generates a synthetic landing zone (`pipeline.synth.generate`), reads and
normalises it as the intake does (`pipeline.intake`), keeps each accepted record
once (a re-send of the same channel and id is one record, as the register holds
it) and joins the generator's ground truth on (channel, source_record_id) to add
`person_key` and `household_key`. `record_key` numbers the records 1.. in a
fixed order, so the same arguments give the same frame.

`true_pairs(records)` is every pair of record keys with the same person.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import intake
from pipeline.synth import GROUND_TRUTH_FILE, generate

# The day the intake runs: after any export day the generator writes by default.
TODAY = dt.date(2027, 6, 1)
MATCHING_INPUT_COLUMNS: tuple[str, ...] = (
    "record_key", "personal_id", "birth_date", "first_names", "last_name", "street_address",
    "postal_code", "city", "phone", "email", "iban", "observed_at", "channel",
)


def _truth(out_dir: Path) -> pd.DataFrame:
    truth = pd.read_csv(out_dir / GROUND_TRUTH_FILE, dtype=str, keep_default_na=False,
                        usecols=["channel", "source_record_id", "person_key", "household_key"])
    truth = truth[(truth["person_key"] != "") & (truth["source_record_id"] != "")]
    # E-mail record ids are Message-IDs: the truth keeps the angle brackets, the reader strips them.
    email = truth["channel"] == "email"
    truth.loc[email, "source_record_id"] = truth.loc[email, "source_record_id"].str.strip().str.strip("<>")
    return truth.drop_duplicates(["channel", "source_record_id"])


def matching_records(out_dir: Path, *, people: int | None = None, records: int | None = None,
                     days: int = 5, seed: int = 0, bad_input: bool = False) -> pd.DataFrame:
    """Accepted canonical records, once each, with `record_key`, `person_key`, `household_key`."""
    out_dir = Path(out_dir)
    if not (out_dir / GROUND_TRUTH_FILE).exists():
        generate(out_dir, people=people, records=records, days=days, seed=seed, bad_input=bad_input)
    batch = intake.build_batch(intake.read_all(intake.discover(out_dir / "landing")), TODAY)
    accepted = batch.accepted.drop_duplicates(["channel", "source_record_id"]).copy()
    accepted["source_record_id"] = accepted["source_record_id"].astype(str)
    accepted["channel"] = accepted["channel"].astype(str)
    joined = accepted.merge(_truth(out_dir), on=["channel", "source_record_id"], how="left", validate="1:1")
    if joined["person_key"].isna().any():
        raise AssertionError(f"{int(joined['person_key'].isna().sum())} accepted records have no ground truth")
    joined = joined.sort_values(["channel", "source_record_id"], kind="stable").reset_index(drop=True)
    joined.insert(0, "record_key", np.arange(1, len(joined) + 1, dtype=np.int64))
    return joined


def true_pairs(records: pd.DataFrame) -> set[tuple[int, int]]:
    """Every (key_l, key_r), key_l < key_r, of two records from the same person."""
    pairs: set[tuple[int, int]] = set()
    for keys in records.groupby("person_key")["record_key"]:
        members = sorted(int(k) for k in keys[1])
        pairs.update(itertools.combinations(members, 2))
    return pairs


def pairwise_accuracy(scored: pd.DataFrame, records: pd.DataFrame, threshold: float) -> dict[str, float]:
    """Precision and recall of the pairs scored at or above `threshold` against all true pairs."""
    truth = true_pairs(records)
    chosen = scored[scored["match_probability"] >= threshold]
    found = set(zip(chosen["key_l"].astype(int), chosen["key_r"].astype(int)))
    hits = len(found & truth)
    return {"threshold": threshold, "predicted": len(found), "true": len(truth), "hits": hits,
            "precision": hits / len(found) if found else 1.0, "recall": hits / len(truth) if truth else 1.0}
