"""Train the match model on generated data and write `pipeline/matching/model.json`.

    python -m synth.train --records N --seed S [--days D] [--out PATH]
                          [--work DIR] [--no-report]

Generates a synthetic landing zone (`synth.generate`), reads and normalises it as
the intake does, and trains without labels with the production steps
(`pipeline.matching.train.train_model`, the same ones `register model train` runs
on the register's own records).

The generator's ground truth is used only to print pairwise precision and
recall afterwards, never to set a parameter. Same arguments, same model (the
version is a digest of the trained parameters). Prints counts, timings and
accuracy only, never a value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import intake
from pipeline.matching import model as match_model
from pipeline.matching.model import MatchModel
from pipeline.matching.train import log_progress, train_model
from synth.landing_zone import GROUND_TRUTH_FILE, generate

DEFAULT_RECORDS = 200_000
INTAKE_DAY = dt.date(2027, 6, 1)  # after every export day the generator writes by default


def generated_records(out_dir: Path, *, records: int | None = None, people: int | None = None,
                      days: int = 7, seed: int = 0, bad_input: bool = False,
                      with_truth: bool = True) -> pd.DataFrame:
    """Accepted canonical records of a generated landing zone, once each, with `record_key`.

    Generates into `out_dir` unless it already holds a zone. A re-sent record (same
    channel and id) is kept once, as the register holds it. With `with_truth`, the
    ground truth's `person_key` and `household_key` are joined on (channel,
    source_record_id); the truth keeps e-mail Message-IDs in angle brackets, the
    reader strips them.
    """
    out_dir = Path(out_dir)
    if not (out_dir / GROUND_TRUTH_FILE).exists():
        generate(out_dir, records=records, people=people, days=days, seed=seed, bad_input=bad_input)
    batch = intake.build_batch(intake.read_all(intake.discover(out_dir / "landing")), INTAKE_DAY)
    accepted = batch.accepted.drop_duplicates(["channel", "source_record_id"]).copy()
    accepted["channel"] = accepted["channel"].astype(str)
    accepted["source_record_id"] = accepted["source_record_id"].astype(str)
    if with_truth:
        truth = pd.read_csv(out_dir / GROUND_TRUTH_FILE, dtype=str, keep_default_na=False,
                            usecols=["channel", "source_record_id", "person_key", "household_key"])
        truth = truth[(truth["person_key"] != "") & (truth["source_record_id"] != "")]
        email = truth["channel"] == "email"
        truth.loc[email, "source_record_id"] = truth.loc[email, "source_record_id"].str.strip().str.strip("<>")
        truth = truth.drop_duplicates(["channel", "source_record_id"])
        accepted = accepted.merge(truth, on=["channel", "source_record_id"], how="left", validate="1:1")
        missing = int(accepted["person_key"].isna().sum())
        if missing:
            raise ValueError(f"{out_dir}: {missing} accepted records have no ground-truth row")
    accepted = accepted.sort_values(["channel", "source_record_id"], kind="stable").reset_index(drop=True)
    accepted.insert(0, "record_key", np.arange(1, len(accepted) + 1, dtype=np.int64))
    return accepted


def report(records: pd.DataFrame, model: MatchModel, thresholds=(0.5, 0.9, 0.99)) -> list[dict[str, float]]:
    """Pairwise precision and recall of `score_pairs` against the ground truth.

    Recall is given twice: of all pairs of records of one person, and of those the
    probabilistic tier can see (not both holding a valid identity code).
    """
    from pipeline.matching.score import score_pairs

    scored = score_pairs(records, model=model, min_probability=min(thresholds))
    person = records.set_index("record_key")["person_key"]
    has_code = records.set_index("record_key")["personal_id"].notna()
    members = records.groupby("person_key")["record_key"].agg(list)
    true_pairs = set()
    for keys in members:
        keys = sorted(keys)
        true_pairs.update((a, b) for i, a in enumerate(keys) for b in keys[i + 1:])
    visible = {(a, b) for a, b in true_pairs if not (has_code[a] and has_code[b])}
    rows = []
    for threshold in thresholds:
        chosen = scored[scored["match_probability"] >= threshold]
        found = set(zip(chosen["key_l"].tolist(), chosen["key_r"].tolist()))
        same = person.reindex(chosen["key_l"]).to_numpy() == person.reindex(chosen["key_r"]).to_numpy()
        hits = int(same.sum())
        rows.append({"threshold": threshold, "pairs": len(found), "true_pairs": hits,
                     "precision": hits / len(found) if found else 1.0,
                     "recall_all": len(found & true_pairs) / len(true_pairs) if true_pairs else 1.0,
                     "recall_visible": len(found & visible) / len(visible) if visible else 1.0})
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m synth.train", description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=DEFAULT_RECORDS, help=f"records to generate (default {DEFAULT_RECORDS})")
    p.add_argument("--seed", type=int, default=0, help="generator and sampling seed (default 0)")
    p.add_argument("--days", type=int, default=20, help="export days to generate (default 20)")
    p.add_argument("--out", type=Path, default=match_model.MODEL_PATH, help="where to write the model")
    p.add_argument("--work", type=Path, help="directory for the generated zone (default: a temporary one)")
    p.add_argument("--no-report", dest="report", action="store_false", help="skip the accuracy report")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="match-train-") as scratch:
        work = args.work or Path(scratch)
        began = time.perf_counter()
        records = generated_records(work, records=args.records, days=args.days, seed=args.seed,
                                    with_truth=args.report)
        log_progress(f"{len(records)} records read and normalised in {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        model = train_model(records, seed=args.seed,
                            info={"generator": {"records": args.records, "days": args.days, "seed": args.seed}})
        log_progress(f"trained in {time.perf_counter() - began:.1f} s: version {model.version}")
        model.save(args.out)
        log_progress(f"model written to {args.out}")
        if args.report:
            for row in report(records, model):
                log_progress("p >= {threshold:<5} pairs {pairs:>7}  precision {precision:.4f}  "
                             "recall {recall_all:.4f} (of pairs not both with a code: {recall_visible:.4f})"
                             .format(**row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
