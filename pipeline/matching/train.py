"""Train the match model on generated data and write `pipeline/matching/model.json`.

    python -m pipeline.matching.train --records N --seed S [--days D] [--out PATH]
                                      [--work DIR] [--no-report]

Generates a synthetic landing zone (`pipeline.synth`), reads and normalises it
as the intake does, and trains without labels:

1. term frequencies of first_name and last_name, frozen into the model;
2. the prior (probability that two random records match) from deterministic
   rules with an assumed recall;
3. u probabilities from random record pairs (seeded);
4. m probabilities by expectation maximisation over pairs blocked on
   (first_name, last_name), on birth_date and on phone (the last lets the name
   levels learn from pairs that share a number, not a name); names in another
   order or field are then weighed once, in first_name (`_reordered_names_counted_once`);
5. the household model: m, u and the prior by expectation maximisation over
   pairs at the same address.

The generator's ground truth is used only to print pairwise precision and
recall afterwards, never to set a parameter. Same arguments, same model (the
version is a digest of the trained parameters). Prints counts, timings and
accuracy only, never a value.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import intake
from pipeline.matching import model as match_model
from pipeline.matching.features import match_features
from pipeline.matching.model import MatchModel

DEFAULT_RECORDS = 200_000
INTAKE_DAY = dt.date(2027, 6, 1)  # after every export day the generator writes by default
U_MAX_PAIRS = 1e7
EM_RULES: tuple[tuple[str, ...], ...] = (("first_name", "last_name"), ("birth_date",), ("phone",))
# Pairs that are surely one person, and the share of all true pairs they are thought
# to find: the prior is (pairs found / recall) / all pairs.
PRIOR_RULES: tuple[tuple[str, ...], ...] = (
    ("first_names_all", "last_name", "street_key"), ("email", "first_name"), ("phone", "first_name", "last_name"),
)
PRIOR_RECALL = 0.7
HOUSEHOLD_START_PRIOR = 0.3


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
    from pipeline.synth import GROUND_TRUTH_FILE, generate

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


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _register_tf(linker, db_api, tf: dict[str, dict[str, float]], suffix: str) -> None:
    model = MatchModel("untrained", {}, tf)
    for column in match_model.TF_COLUMNS:
        table = db_api.register(model.tf_frame(column), table_name=f"train_tf_{column}_{suffix}")
        linker.table_management.register_term_frequency_lookup(table, column)


def train_model(records: pd.DataFrame, *, seed: int = 0, u_max_pairs: float = U_MAX_PAIRS,
                info: dict[str, Any] | None = None) -> MatchModel:
    """Train the general and the household model on canonical records (no labels)."""
    from splink import DuckDBAPI, Linker, block_on

    timings: dict[str, float] = {}
    began = time.perf_counter()
    features = match_features(records)
    features = features.drop(columns=["observed_at"]).reset_index(drop=True)
    timings["features_s"] = time.perf_counter() - began
    tf = {column: match_model.term_frequencies(features, column) for column in match_model.TF_COLUMNS}

    db_api = DuckDBAPI()
    table = db_api.register(features, table_name="train_records")
    linker = Linker(table, match_model.settings_creator(), log_level=logging.WARNING)
    _register_tf(linker, db_api, tf, "general")

    step = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*rule) for rule in PRIOR_RULES], recall=PRIOR_RECALL)
    timings["prior_s"] = time.perf_counter() - step
    step = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    timings["u_s"] = time.perf_counter() - step
    step = time.perf_counter()
    for rule in EM_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    timings["em_s"] = time.perf_counter() - step
    general = linker.misc.save_model_to_json()
    general.pop("linker_uid", None)
    general = _reordered_names_counted_once(general, u_max_pairs)

    # The household model starts from the general one, without the address comparison
    # (every pair it is trained on shares the address), and lets EM move u as well.
    step = time.perf_counter()
    household_start = copy.deepcopy(general)
    household_start["comparisons"] = [c for c in household_start["comparisons"]
                                      if c["output_column_name"] != "address"]
    household_start["probability_two_random_records_match"] = HOUSEHOLD_START_PRIOR
    # Reordered names stay as the general model weighs them: EM on a household's few
    # such pairs drives u to zero (an infinite weight).
    for comparison in household_start["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("label_for_charts") == match_model.SAME_NAMES_REORDERED:
                level["fix_m_probability"] = level["fix_u_probability"] = True
    household_linker = Linker(db_api.register(features, table_name="train_records_household"), household_start,
                              log_level=logging.WARNING)
    _register_tf(household_linker, db_api, tf, "household")
    session = household_linker.training.estimate_parameters_using_expectation_maximisation(
        match_model.HOUSEHOLD_TRAINING_RULE, fix_u_probabilities=False, estimate_without_term_frequencies=True)
    household = household_linker.misc.save_model_to_json()
    household.pop("linker_uid", None)
    household["probability_two_random_records_match"] = session.core_model_settings.probability_two_random_records_match
    timings["household_em_s"] = time.perf_counter() - step

    general, household = _rounded(general), _rounded(household)
    digest = match_model.parameters_digest(general, household, tf)
    trained = dict(info or {})
    trained.update({"records": int(len(features)), "seed": seed, "u_max_pairs": u_max_pairs,
                    "splink": _splink_version()})
    _log("training steps: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return MatchModel(version=f"{match_model.MODEL_FORMAT}.{digest}", splink_settings=general,
                      term_frequencies=tf, household_settings=household, trained=trained)


def _reordered_names_counted_once(settings: dict[str, Any], u_max_pairs: float) -> dict[str, Any]:
    """Names in another order or field are one piece of evidence, not two.

    Both name comparisons have the level (so neither falls to its 'different'
    level), but it is weighed once, in first_name: last_name's level gets m = u
    (no weight). Random sampling seldom or never sees two strangers with the same
    names in another order; an unseen u is taken as one in the pairs sampled
    (the most it can be), not left to Splink's default."""
    settings = copy.deepcopy(settings)
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("label_for_charts") != match_model.SAME_NAMES_REORDERED:
                continue
            if comparison["output_column_name"] == "first_name":
                if level.get("u_probability") is None:
                    level["u_probability"] = 1.0 / u_max_pairs
            else:
                level["m_probability"] = level["u_probability"] = 0.5
    return settings


_PARAMETER_KEYS = frozenset({"m_probability", "u_probability", "probability_two_random_records_match"})


def _rounded(value: Any, key: str | None = None) -> Any:
    """Trained probabilities to 10 significant digits: DuckDB sums in parallel, so the
    last bits differ from run to run; rounded, the same arguments give the same file."""
    if isinstance(value, dict):
        return {k: _rounded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if key in _PARAMETER_KEYS and isinstance(value, float):
        return float(f"{value:.10g}")
    return value


def _splink_version() -> str:
    import splink

    return splink.__version__


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
    p = argparse.ArgumentParser(prog="python -m pipeline.matching.train", description=__doc__.splitlines()[0])
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
        _log(f"{len(records)} records read and normalised in {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        model = train_model(records, seed=args.seed,
                            info={"generator": {"records": args.records, "days": args.days, "seed": args.seed}})
        _log(f"trained in {time.perf_counter() - began:.1f} s: version {model.version}")
        model.save(args.out)
        _log(f"model written to {args.out}")
        if args.report:
            for row in report(records, model):
                _log("p >= {threshold:<5} pairs {pairs:>7}  precision {precision:.4f}  recall {recall_all:.4f} "
                     "(of pairs not both with a code: {recall_visible:.4f})".format(**row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
