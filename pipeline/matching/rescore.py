"""Score given pairs of records with a model, whether or not blocking would pair them.

The resolver scores only candidate pairs (records sharing a blocking key). Explaining
a customer (`register explain`) and measuring a model on steward decisions
(`register model train`) need the score of particular pairs: every pair of a
customer's few records, or the pairs stewards decided. Both go through the same
scorer as the resolver (`score.Scorer`: the frozen term frequencies, the household
model), so a pair scores here exactly as it would in a load.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.matching.model import UNIQUE_ID, MatchModel
from pipeline.matching.score import PAIR_COLUMNS, Scorer, _pairs, open_scorer, splink_input


def score_every_pair(records: pd.DataFrame, model: MatchModel, scorer: Scorer | None = None) -> pd.DataFrame:
    """Every pair of `records` (keep it small: n² pairs), as `score_pairs` gives them. `scorer`
    (of the same model), when given, is reused rather than set up anew (about 0.1 s); it serves
    one call at a time (a DuckDB connection): the caller serialises calls from threads."""
    if len(records) < 2:
        return pd.DataFrame(columns=list(PAIR_COLUMNS))
    if scorer is not None:
        return _every_pair(scorer, records)
    with open_scorer(model) as scorer:
        return _every_pair(scorer, records)


def _every_pair(scorer: Scorer, records: pd.DataFrame) -> pd.DataFrame:
    table = scorer.db_api.register(splink_input(records))
    try:
        predicted = scorer.linker.inference.predict_within(
            table, blocking_rules_to_generate_predictions=["1 = 1"], warning_mode="never")
        frame = scorer._result(predicted)
    finally:
        table.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
    return _pairs(scorer, frame, 0.0)


def score_listed_pairs(records: pd.DataFrame, pairs: pd.DataFrame, model: MatchModel) -> np.ndarray:
    """The model's probability for each listed pair (key_l, key_r) of `records`, in order."""
    if pairs.empty:
        return np.zeros(0)
    scored = scored_listed_pairs(records, pairs, model)
    probability = np.zeros(len(pairs))
    probability[scored["key_l"].to_numpy(np.int64)] = scored["match_probability"].to_numpy(float)
    return probability


def scored_listed_pairs(records: pd.DataFrame, pairs: pd.DataFrame, model: MatchModel) -> pd.DataFrame:
    """The scorer's pairs frame for the listed pairs (key_l, key_r) of `records`, keyed by the
    pair's position in `pairs` (`key_l`), with its probability and evidence.

    Each pair is one row on each side, keyed by its position, compared on equal keys:
    exactly the listed pairs.
    """
    features = splink_input(records).set_index(UNIQUE_ID)
    left = features.loc[pairs["key_l"].to_numpy()].reset_index(drop=True)
    right = features.loc[pairs["key_r"].to_numpy()].reset_index(drop=True)
    position = np.arange(len(pairs), dtype=np.int64)
    left.insert(0, UNIQUE_ID, position)
    right.insert(0, UNIQUE_ID, position)
    with open_scorer(model) as scorer:
        left_table, right_table = scorer.db_api.register(left), scorer.db_api.register(right)
        try:
            predicted = scorer.linker.inference.predict_between(
                left_table, right_table, blocking_rules_to_generate_predictions=[f"l.{UNIQUE_ID} = r.{UNIQUE_ID}"],
                warning_mode="never")
            frame = scorer._result(predicted)
        finally:
            left_table.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
            right_table.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
        return _pairs(scorer, frame, 0.0)
