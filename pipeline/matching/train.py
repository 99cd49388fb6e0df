"""Train the match model on canonical records, without labels: `train_model`.

Both trainings run these steps, one definition for both: `register model train`
learns from the register's own records (`retrain.py`), and the generator's trainer
(`python -m synth.train`, in `generator/`) learns from a generated landing zone and
writes `model.json`. The steps:

1. term frequencies of first_name and last_name, frozen into the model;
2. the prior (probability that two random records match) from deterministic
   rules with an assumed recall;
3. u probabilities from random record pairs (seeded);
4. m probabilities by expectation maximisation over pairs blocked on
   (first_name, last_name), on birth_date and on phone (the last lets the name
   levels learn from pairs that share a number, not a name); names in another
   order or field are then weighed once, in first_name (`_reordered_names_counted_once`);
5. the household model: m, u and the prior by expectation maximisation over
   pairs at the same address;
6. namesakes' e-mail: of the pairs of records with the same first name and surname
   under two different valid codes, how many share an e-mail address
   (`namesake_email_counts`; the register's codes are the only labels it uses, and
   they only say "two people").

Same records and seed, same model (the version is a digest of the trained
parameters). Prints counts and timings only, never a value.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from pipeline.matching import model as match_model
from pipeline.matching.features import match_features
from pipeline.matching.model import MatchModel

U_MAX_PAIRS = 1e7
EM_RULES: tuple[tuple[str, ...], ...] = (("first_name", "last_name"), ("birth_date",), ("phone",))
# Pairs that are surely one person, and the share of all true pairs they are thought
# to find: the prior is (pairs found / recall) / all pairs.
PRIOR_RULES: tuple[tuple[str, ...], ...] = (
    ("first_names_all", "last_name", "street_key"), ("email", "first_name"), ("phone", "first_name", "last_name"),
)
PRIOR_RECALL = 0.7
HOUSEHOLD_START_PRIOR = 0.3


def log_progress(message: str) -> None:
    """A training's counts and timings to standard error, never a value."""
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
    # One thread: DuckDB's parallel sums add in no fixed order, so EM's estimates could differ
    # in their last digits from one run to the next, and a rounded weight flip. The same
    # register must give the same model (and version); training is rare, not hot.
    db_api.duckdb_con.execute("SET threads TO 1")
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
    general = _never_for(_reordered_names_counted_once(general, u_max_pairs))

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
    # A level that never counts for a match at home weighs nothing there from the start: on
    # a small register EM can drive its u to exactly zero, which Splink refuses.
    for comparison, label in match_model.HOUSEHOLD_NEVER_FOR:
        level = _level(household_start, comparison, label)
        if level is not None and level.get("m_probability"):
            level["u_probability"] = level["m_probability"]
            level["fix_m_probability"] = level["fix_u_probability"] = True
    household_linker = Linker(db_api.register(features, table_name="train_records_household"), household_start,
                              log_level=logging.WARNING)
    _register_tf(household_linker, db_api, tf, "household")
    session = household_linker.training.estimate_parameters_using_expectation_maximisation(
        match_model.HOUSEHOLD_TRAINING_RULE, fix_u_probabilities=False, estimate_without_term_frequencies=True)
    household = household_linker.misc.save_model_to_json()
    household.pop("linker_uid", None)
    household["probability_two_random_records_match"] = session.core_model_settings.probability_two_random_records_match
    household = _never_for(_reordered_no_stronger_than_in_order(household), match_model.HOUSEHOLD_NEVER_FOR)
    timings["household_em_s"] = time.perf_counter() - step

    namesakes = namesake_email_counts(records["personal_id"], features)
    general, household = _rounded(general), _rounded(household)
    digest = match_model.parameters_digest(general, household, tf, namesakes)
    trained = dict(info or {})
    trained.update({"records": int(len(features)), "seed": seed, "u_max_pairs": u_max_pairs,
                    "splink": _splink_version()})
    log_progress("training steps: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return MatchModel(version=f"{match_model.MODEL_FORMAT}.{digest}", splink_settings=general,
                      term_frequencies=tf, household_settings=household, trained=trained, namesakes=namesakes)


def namesake_email_counts(personal_id: pd.Series, features: pd.DataFrame) -> dict[str, int]:
    """Pairs of records with the same first name and surname, both with an e-mail address,
    under two different valid codes, and how many of them share the address.

    Counted from group sizes, never by listing the pairs (a common name has thousands of
    records). `personal_id` (valid code or NA) and `features` (`match_features`) row for row.

    >>> features = pd.DataFrame({"first_name": ["aino"] * 4, "last_name": ["testi"] * 4,
    ...                          "email": ["a@x.example", "a@x.example", "a@x.example", "b@x.example"]})
    >>> namesake_email_counts(pd.Series(["010101-123N", "010101-123N", "131052-308T", "131052-308T"]), features)
    {'pairs': 4, 'same_email': 2}
    """
    frame = pd.DataFrame({"code": personal_id.to_numpy(object), "first": features["first_name"].to_numpy(object),
                          "last": features["last_name"].to_numpy(object), "email": features["email"].to_numpy(object)})
    frame = frame.dropna()

    def pairs_of_two_people(columns: list[str]) -> int:
        everyone = frame.groupby(columns, sort=False).size().to_numpy(np.int64)
        one_code = frame.groupby([*columns, "code"], sort=False).size().to_numpy(np.int64)
        return int((everyone * (everyone - 1) // 2).sum() - (one_code * (one_code - 1) // 2).sum())

    return {"pairs": pairs_of_two_people(["first", "last"]),
            "same_email": pairs_of_two_people(["first", "last", "email"])}


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


def _level(settings: dict[str, Any], comparison: str, label: str) -> dict[str, Any] | None:
    for item in settings["comparisons"]:
        if item["output_column_name"] == comparison:
            for level in item["comparison_levels"]:
                if level.get("label_for_charts") == label:
                    return level
    return None


def _weight(level: dict[str, Any] | None) -> float | None:
    if not level or not level.get("m_probability") or not level.get("u_probability"):
        return None
    return math.log2(level["m_probability"] / level["u_probability"])


def _never_for(settings: dict[str, Any], more: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The levels of `NEAR_NAMES_NEVER_FOR` never count for a match (u at least m): an
    e-mail address near another is made of the same names, which their own comparisons
    weigh; a namesake elsewhere has one. Against a match they may count (at home a
    namesake son's address is near his father's). `more`: further levels (the household
    model's `HOUSEHOLD_NEVER_FOR`)."""
    settings = copy.deepcopy(settings)
    for comparison, label in (*match_model.NEAR_NAMES_NEVER_FOR, *more):
        level = _level(settings, comparison, label)
        if level is not None and level.get("m_probability") and level.get("u_probability"):
            level["u_probability"] = max(level["u_probability"], level["m_probability"])
    return settings


def _reordered_no_stronger_than_in_order(settings: dict[str, Any]) -> dict[str, Any]:
    """The same names in another order say no more than the same names in order.

    The household model keeps the general model's weight for reordered names (EM on a
    household's few such pairs has nothing to learn from), but at home that weight is
    far above what the same names *in order* earn there (a father and his namesake son
    share them): a junior whose record was written surname first would be a sure match
    with his father. The reordered level is capped at the household weight of all
    given names and the surname exact."""
    settings = copy.deepcopy(settings)
    reordered = _level(settings, "first_name", match_model.SAME_NAMES_REORDERED)
    given = _weight(_level(settings, "first_name", "all given names exact"))
    surname = _weight(_level(settings, "last_name", "Exact match on last_name"))
    current = _weight(reordered)
    if reordered is None or given is None or surname is None or current is None:
        return settings
    cap = given + surname
    if current > cap:
        reordered["u_probability"] = min(1.0, reordered["m_probability"] / 2.0 ** cap)
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
