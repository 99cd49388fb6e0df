"""Canonical records with their ground truth, for the matching tests and benchmarks.

    matching_records(out_dir, people=..., days=..., seed=...) -> DataFrame

Generates a synthetic landing zone (`synth.generate`), reads and
normalises it as the intake does (`pipeline.intake.discover/read_all/build_batch`),
keeps each accepted record once (a re-send of the same channel and id is one
record, as the register holds it) and joins the generator's ground truth on
(channel, source_record_id) to add `person_key` and `household_key` (the truth
keeps e-mail Message-IDs in angle brackets; the records have them stripped).
`record_key` numbers the records 1.. in a fixed order: same arguments, same frame.
The work is `synth.train.generated_records`, which training on generated data uses too.

`true_pairs(records)` is every pair of record keys of one person;
`pairwise_accuracy(scored, records, threshold)` scores a pairs frame against it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from synth.train import INTAKE_DAY, generated_records

# The day the intake runs: after any export day the generator writes by default.
TODAY = INTAKE_DAY

MATCHING_INPUT_COLUMNS: tuple[str, ...] = (
    "record_key", "personal_id", "birth_date", "first_names", "last_name", "street_address",
    "postal_code", "city", "phone", "email", "iban", "observed_at", "channel",
)


def matching_records(out_dir: Path, *, people: int | None = None, records: int | None = None,
                     days: int = 5, seed: int = 0, bad_input: bool = False) -> pd.DataFrame:
    """Accepted canonical records, once each, with `record_key`, `person_key`, `household_key`."""
    return generated_records(Path(out_dir), people=people, records=records, days=days, seed=seed,
                             bad_input=bad_input)


def true_pairs(records: pd.DataFrame) -> set[tuple[int, int]]:
    """Every (key_l, key_r), key_l < key_r, of two records of the same person."""
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


# One hand-written record (a synthetic person) and a frame of such records, as the resolver reads them.
def record(key: int, **values) -> dict:
    base = {"record_key": key, "personal_id": None, "birth_date": None, "first_names": "Aino Maria",
            "last_name": "Mäkinen", "street_address": "Rautatienkatu 5 B 12", "postal_code": "49400",
            "city": "Hamina", "phone": "+358401234567", "email": "aino.makinen@example.fi", "iban": None,
            "observed_at": pd.Timestamp("2026-11-24 10:00", tz="UTC"), "channel": "web"}
    base.update(values)
    return base


def frame(*rows: dict) -> pd.DataFrame:
    records = pd.DataFrame(list(rows))
    for column in ("personal_id", "first_names", "last_name", "street_address", "postal_code", "city", "phone",
                   "email", "iban", "channel"):
        records[column] = records[column].astype("string")
    records["birth_date"] = pd.to_datetime(records["birth_date"])
    return records
