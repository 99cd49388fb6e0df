"""Scoring given pairs (`pipeline.matching.rescore`): the resolver's scorer, whether or not blocking pairs them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matching_data import frame, record
from pipeline.matching.model import MatchModel
from pipeline.matching.rescore import score_every_pair, score_listed_pairs, scored_listed_pairs
from pipeline.matching.score import PAIR_COLUMNS, score_pairs


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    # 1 and 2 share every key; 3 shares none with either (another name, address and contacts).
    return frame(record(1), record(2, channel="phone"),
                 record(3, first_names="Ville", last_name="Koskinen", street_address="Koivukuja 2",
                        postal_code="00100", city="Helsinki", phone=None, email=None))


def test_a_listed_pair_scores_as_the_resolver_scores_it(records):
    model = MatchModel.load()
    blocked = score_pairs(records, min_probability=0.0)
    assert blocked[["key_l", "key_r"]].values.tolist() == [[1, 2]]  # 3 is no candidate of either
    listed = pd.DataFrame({"key_l": [1, 1], "key_r": [2, 3]})
    probability = score_listed_pairs(records, listed, model)
    assert probability[0] == pytest.approx(blocked["match_probability"].iloc[0])
    assert probability[0] >= 0.95 and probability[1] < 0.5  # scored although blocking would not pair it


def test_no_listed_pairs_give_an_empty_frame_with_the_columns(records):
    scored = scored_listed_pairs(records, pd.DataFrame({"key_l": pd.Series(dtype="int64"),
                                                        "key_r": pd.Series(dtype="int64")}), MatchModel.load())
    assert scored.empty and list(scored.columns) == list(PAIR_COLUMNS)
    assert len(score_listed_pairs(records, pd.DataFrame({"key_l": [], "key_r": []}), MatchModel.load())) == 0


def test_every_pair_of_a_few_records_is_scored(records):
    pairs = score_every_pair(records, MatchModel.load())
    assert sorted(zip(pairs["key_l"], pairs["key_r"])) == [(1, 2), (1, 3), (2, 3)]
    assert np.all((pairs["match_probability"] >= 0) & (pairs["match_probability"] <= 1))
