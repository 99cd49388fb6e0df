"""Clustering records into people: the code rules, households, steward decisions, reviews,
and that the result depends only on the set of inputs and decomposes by component.

Codes are computed (`make_hetu`), names are common name words; all synthetic.
"""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.matching.cluster import (
    REVIEW_COLUMNS,
    connected_components,
    first_given_name,
    fold_name,
    resolve_clusters,
)
from synth.identifiers import make_hetu

LINK, REVIEW, DOUBT = 0.99, 0.8, 0.4
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CODE_A = make_hetu(datetime.date(1980, 3, 12), 234)
CODE_B = make_hetu(datetime.date(1980, 3, 12), 236)  # a twin: same birth date
CODE_FATHER = make_hetu(datetime.date(1955, 6, 1), 311)
CODE_SON = make_hetu(datetime.date(1985, 9, 20), 417)
CODE_DASH = make_hetu(datetime.date(1901, 1, 1), 123)        # 010101-123N
CODE_Y = make_hetu(datetime.date(1901, 1, 1), 123, "Y")      # 010101Y123N: another person


def records(*rows: tuple) -> pd.DataFrame:
    """Rows of (record_key, personal_id, first_names, last_name)."""
    frame = pd.DataFrame(rows, columns=["record_key", "personal_id", "first_names", "last_name"])
    frame["record_key"] = frame["record_key"].astype("int64")
    for column in ("personal_id", "first_names", "last_name"):
        frame[column] = frame[column].astype("string[pyarrow]")
    return frame


def edges(*rows: tuple) -> pd.DataFrame:
    """Rows of (key_l, key_r, probability[, weight]); weight defaults to the log2 odds."""
    out = []
    for row in rows:
        left, right, probability = row[:3]
        weight = row[3] if len(row) > 3 else float(np.log2(probability / (1 - probability)))
        out.append((left, right, probability, weight, json.dumps({"name": "exact"})))
    return pd.DataFrame(out, columns=["key_l", "key_r", "match_probability", "match_weight", "evidence"]).astype(
        {"key_l": "int64", "key_r": "int64", "match_probability": "float64", "match_weight": "float64"})


def resolve(recs, pairs, **kwargs):
    return resolve_clusters(recs, pairs, link_threshold=LINK, review_threshold=REVIEW, **kwargs)


def review_pairs(resolution, reason=None) -> set[tuple[int, int]]:
    reviews = resolution.reviews
    if reason is not None:
        reviews = reviews[reviews["reason"] == reason]
    return set(zip(reviews["key_l"].tolist(), reviews["key_r"].tolist()))


# --- the identity code ---------------------------------------------------------------------

def test_test_codes_are_distinct_and_the_century_pair_is_the_documented_one() -> None:
    assert (CODE_DASH, CODE_Y) == ("010101-123N", "010101Y123N")
    assert len({CODE_A, CODE_B, CODE_FATHER, CODE_SON, CODE_DASH, CODE_Y}) == 6


def test_same_code_is_one_cluster_without_any_edge() -> None:
    result = resolve(records((5, CODE_A, "Aino", "Mäkinen"), (3, CODE_A, "Aino", "Mäkinen"),
                             (9, None, "Aino", "Mäkinen")), edges())
    assert result.cluster_of.to_dict() == {3: 3, 5: 3, 9: 9}
    assert result.method.to_dict() == {3: "personal_id", 5: "personal_id", 9: "new"}
    assert result.probability.isna().all()


def test_different_codes_are_never_joined_by_a_direct_sure_edge_nor_reviewed() -> None:
    result = resolve(records((1, CODE_DASH, "Matti", "Aho"), (2, CODE_Y, "Matti", "Aho")),
                     edges((1, 2, 0.99999)))
    assert result.cluster_of[1] != result.cluster_of[2]
    assert result.reviews.empty  # they can never be merged: nothing for a steward to decide


def test_century_sign_pair_with_a_codeless_record_between_them() -> None:
    """010101-123N and 010101Y123N are two people; a code-less record equally like both joins neither."""
    recs = records((1, CODE_DASH, "Matti", "Aho"), (2, CODE_Y, "Matti", "Aho"), (3, None, "Matti", "Aho"))
    result = resolve(recs, edges((1, 2, 0.9999), (1, 3, 0.999, 12.0), (2, 3, 0.999, 12.0)))
    assert result.cluster_of.to_dict() == {1: 1, 2: 2, 3: 3}
    assert review_pairs(result, "ambiguous") == {(1, 3), (2, 3)}


def test_chain_between_two_codes_is_cut() -> None:
    """A(code1) – x – y – B(code2), every link sure: A and B stay apart, cut at the weakest link."""
    a, x, y, b = 10, 20, 30, 40
    recs = records((a, CODE_A, "Aino", "Mäkinen"), (x, None, "Aino", "Mäkinen"),
                   (y, None, "Aino", "Mäkinen"), (b, CODE_B, "Aino", "Mäkinen"))
    result = resolve(recs, edges((a, x, 0.9995), (x, y, 0.9994), (y, b, 0.9991)))
    assert result.cluster_of[a] != result.cluster_of[b]
    assert result.cluster_of.to_dict() == {a: a, x: a, y: a, b: b}
    assert result.method.to_dict() == {a: "personal_id", x: "probabilistic", y: "probabilistic", b: "personal_id"}
    assert result.probability[x] == pytest.approx(0.9995) and result.probability[y] == pytest.approx(0.9994)
    assert result.reviews.empty


def test_chain_cut_moves_with_the_weakest_link() -> None:
    a, x, y, b = 10, 20, 30, 40
    recs = records((a, CODE_A, "Aino", "Aho"), (x, None, "Aino", "Aho"), (y, None, "Aino", "Aho"), (b, CODE_B, "Aino", "Aho"))
    result = resolve(recs, edges((a, x, 0.992), (x, y, 0.9994), (y, b, 0.9991)))
    assert result.cluster_of.to_dict() == {a: a, x: x, y: x, b: x}  # keyed by its smallest record


def test_twins_with_a_codeless_record_in_between_is_ambiguous() -> None:
    """Twins: same birth date, surname and address; one code-less record matching both alike."""
    recs = records((1, CODE_A, "Aino", "Mäkinen"), (2, CODE_B, "Anni", "Mäkinen"), (3, None, None, "Mäkinen"))
    result = resolve(recs, edges((1, 3, 0.995, 9.0), (2, 3, 0.994, 8.0), (1, 2, 0.9)))
    assert result.cluster_of.to_dict() == {1: 1, 2: 2, 3: 3}
    assert result.method[3] == "new" and pd.isna(result.probability[3])
    assert review_pairs(result) == {(1, 3), (2, 3)}
    assert set(result.reviews["reason"]) == {"ambiguous"}


def test_clearly_better_candidate_links_outside_the_margin() -> None:
    recs = records((1, CODE_A, "Aino", "Mäkinen"), (2, CODE_B, "Anni", "Mäkinen"), (3, None, "Aino", "Mäkinen"))
    pairs = edges((1, 3, 0.9999, 14.0), (2, 3, 0.994, 8.0))
    linked = resolve(recs, pairs)
    assert linked.cluster_of.to_dict() == {1: 1, 2: 2, 3: 1}
    assert linked.reviews.empty
    wide = resolve(recs, pairs, ambiguity_margin=6.0)  # within a wider margin it is ambiguous again
    assert wide.cluster_of[3] == 3 and review_pairs(wide, "ambiguous") == {(1, 3), (2, 3)}


def test_junior_with_fathers_names_links_to_neither_and_takes_no_code_by_a_detour() -> None:
    """The household trap: a son with his father's exact names at the same address."""
    father_1, father_2, son, unknown, unknown_email = 11, 12, 21, 31, 32
    recs = records((father_1, CODE_FATHER, "Juhani Matti", "Virtanen"), (father_2, CODE_FATHER, "Juhani", "Virtanen"),
                   (son, CODE_SON, "Juhani Matti", "Virtanen"), (unknown, None, "Juhani Matti", "Virtanen"),
                   (unknown_email, None, "Juhani", "Virtanen"))
    pairs = edges((father_1, unknown, 0.998, 11.0), (father_2, unknown, 0.997, 10.0), (son, unknown, 0.997, 10.5),
                  (unknown, unknown_email, 0.9995, 13.0),   # the same code-less person, twice
                  (father_1, unknown_email, 0.992, 7.0),    # which alone would pull both to the father
                  (son, father_1, 0.999, 12.0))             # different codes: never joined
    result = resolve(recs, pairs)
    cluster = result.cluster_of
    assert cluster[father_1] == cluster[father_2] != cluster[son]
    assert cluster[unknown] == cluster[unknown_email] == unknown
    assert cluster[unknown] not in {cluster[father_1], cluster[son]}
    assert result.method[unknown] == result.method[unknown_email] == "probabilistic"
    # one review per candidate person, from its strongest edge
    assert review_pairs(result) == {(father_1, unknown), (son, unknown)}
    assert set(result.reviews["reason"]) == {"ambiguous"}


def test_a_rejected_candidate_does_not_make_a_record_ambiguous() -> None:
    recs = records((1, CODE_FATHER, "Juhani", "Virtanen"), (2, CODE_SON, "Juhani", "Virtanen"), (3, None, "Juhani", "Virtanen"))
    pairs = edges((1, 3, 0.998, 10.0), (2, 3, 0.998, 10.0))
    result = resolve(recs, pairs, cannot_link=[(3, 1)])
    assert result.cluster_of.to_dict() == {1: 1, 2: 2, 3: 2}
    assert result.reviews.empty


# --- probabilistic links and reviews ------------------------------------------------------

def test_sure_links_uncertain_reviews_weak_ignored() -> None:
    recs = records((1, CODE_A, "Aino", "Mäkinen"), (2, None, "Aino", "Mäkinen"), (3, None, "Aino", "Makinen"),
                   (4, None, "Aino", "Mäkelä"))
    result = resolve(recs, edges((1, 2, 0.999), (2, 3, 0.9), (1, 3, 0.85), (3, 4, 0.5)))
    assert result.cluster_of.to_dict() == {1: 1, 2: 1, 3: 3, 4: 4}
    assert result.method.to_dict() == {1: "personal_id", 2: "probabilistic", 3: "new", 4: "new"}
    # one review per pair of clusters, from the strongest edge between them
    assert result.reviews[["key_l", "key_r", "reason"]].to_dict("records") == [
        {"key_l": 2, "key_r": 3, "reason": "uncertain"}]
    assert result.reviews["match_probability"].tolist() == [0.9]
    assert json.loads(result.reviews["evidence"].iloc[0]) == {"name": "exact"}
    assert tuple(result.reviews.columns) == REVIEW_COLUMNS


def test_a_weak_edge_is_reviewed_only_when_a_record_of_it_prohibits_marketing() -> None:
    """Rule 5: down to the doubt threshold, a pair goes to review when one of its records is a
    prohibition (`doubt_keys`); any other weak pair is ignored, as before."""
    recs = records((1, CODE_A, "Aino", "Mäkinen"), (2, None, "Aino", "Mäkinen"), (3, None, "Aino", "Mäkelä"),
                   (4, None, "Aino", "Mäkinen"))
    weak = edges((1, 2, 0.6), (1, 3, 0.45), (1, 4, 0.3))
    assert review_pairs(resolve(recs, weak, doubt_threshold=DOUBT)) == set()  # nobody prohibits
    result = resolve(recs, weak, doubt_threshold=DOUBT, doubt_keys=[2, 3, 4, 99])  # 99: not among them
    assert review_pairs(result, "marketing_doubt") == {(1, 2), (1, 3)}  # 0.3 is below the doubt threshold
    assert set(result.reviews["reason"]) == {"marketing_doubt"}
    assert result.cluster_of.to_dict() == {1: 1, 2: 2, 3: 3, 4: 4}  # a review links nothing
    # The anchor may be either end; without a doubt threshold nothing weak is reviewed.
    assert review_pairs(resolve(recs, weak, doubt_threshold=DOUBT, doubt_keys=[1]), "marketing_doubt") == {
        (1, 2), (1, 3)}
    assert review_pairs(resolve(recs, weak, doubt_keys=[2, 3])) == set()
    with pytest.raises(ValueError, match="doubt_threshold"):
        resolve(recs, weak, doubt_threshold=0.9, doubt_keys=[2])


def test_a_pair_only_a_doubt_rule_made_is_reviewed_never_linked() -> None:
    """Rule 5: a pair the names alone paired (`doubt_only`) may hold a customer off the list
    through a review, but is never a link, however it scores."""
    recs = records((1, None, "Aino", "Mäkinen"), (2, None, "Aino", "Mäkinen"), (3, None, "Aino", "Mäkinen"),
                   (4, None, "Aino", "Mäkinen"))
    pairs = edges((1, 2, 0.99), (1, 3, 0.85), (1, 4, 0.4)).assign(doubt_only=True)
    result = resolve(recs, pairs, doubt_threshold=DOUBT, doubt_keys=[1])
    assert result.cluster_of.to_dict() == {1: 1, 2: 2, 3: 3, 4: 4}
    assert set(result.method) == {"new"}
    assert result.reviews[["key_l", "key_r", "reason"]].to_dict("records") == [
        {"key_l": 1, "key_r": 2, "reason": "uncertain"}, {"key_l": 1, "key_r": 3, "reason": "uncertain"},
        {"key_l": 1, "key_r": 4, "reason": "marketing_doubt"}]
    # The same pairs made by a blocking rule: the sure one links.
    assert resolve(recs, pairs.assign(doubt_only=False), doubt_threshold=DOUBT,
                   doubt_keys=[1]).cluster_of.to_dict() == {1: 1, 2: 1, 3: 3, 4: 4}


def test_a_weak_doubt_gives_way_to_a_stronger_one_and_never_joins_two_codes() -> None:
    recs = records((1, CODE_A, "Aino", "Mäkinen"), (2, None, "Aino", "Mäkinen"), (3, None, "Aino", "Mäkinen"),
                   (4, CODE_B, "Aino", "Mäkinen"))
    # 2 and 3 are one person; the pair of clusters {1} / {2, 3} holds a weak and an uncertain edge.
    result = resolve(recs, edges((2, 3, 0.999), (1, 2, 0.5), (1, 3, 0.85), (1, 4, 0.6)),
                     doubt_threshold=DOUBT, doubt_keys=[1, 2, 4])
    assert result.reviews[["key_l", "key_r", "reason"]].to_dict("records") == [
        {"key_l": 1, "key_r": 3, "reason": "uncertain"}]  # one entry, the strongest; two codes: none


def test_thresholds_are_inclusive() -> None:
    recs = records((1, None, "A", "B"), (2, None, "A", "B"), (3, None, "A", "B"))
    result = resolve(recs, edges((1, 2, LINK), (2, 3, REVIEW)))
    assert result.cluster_of.to_dict() == {1: 1, 2: 1, 3: 3}
    assert review_pairs(result, "uncertain") == {(2, 3)}


def test_two_codeless_records_link_both_probabilistic() -> None:
    result = resolve(records((7, None, "Aino", "Aho"), (4, None, "Aino", "Aho")), edges((7, 4, 0.996)))
    assert result.cluster_of.to_dict() == {4: 4, 7: 4}
    assert result.method.tolist() == ["probabilistic", "probabilistic"]
    assert result.probability.tolist() == [pytest.approx(0.996)] * 2


def test_exact_ties_follow_the_order_key_not_the_load_order() -> None:
    """Two equal doubts between the same two people: which pair a steward sees is decided by
    `order_key` (what the register derives from channel and source id), so it is the same pair
    whatever keys the load order handed out. Without one, the record keys decide."""
    recs = records((1, None, "Aino", "Aho"), (2, None, "Aino", "Aho"), (3, None, "Aino", "Aho"))
    doubts = edges((1, 2, 0.999), (1, 3, 0.9, 3.0), (2, 3, 0.9, 3.0))  # 1 and 2 one person; 3 as near both
    assert review_pairs(resolve(recs, doubts)) == {(1, 3)}
    # The same records loaded the other way round: record 2 ranks first.
    reordered = recs.assign(order_key=[1, 0, 2])
    result = resolve(reordered, doubts)
    assert review_pairs(result) == {(2, 3)}
    assert result.cluster_of.index.tolist() == [1, 2, 3] and result.cluster_of.to_dict() == {1: 2, 2: 2, 3: 3}
    # Same-code name variants: each variant is represented by its first record in that order.
    coded = records((1, CODE_A, "Aino", "Aho"), (2, CODE_A, "Aino", "Aho"), (3, CODE_A, "Kalle", "Virta"))
    assert review_pairs(resolve(coded, edges())) == {(1, 3)}
    assert review_pairs(resolve(coded.assign(order_key=[2, 0, 1]), edges())) == {(2, 3)}
    with pytest.raises(ValueError, match="order_key"):
        resolve(recs.assign(order_key=[0, 0, 1]), doubts)


# --- steward decisions ---------------------------------------------------------------------

def test_must_link_joins_unconditionally_but_never_two_codes() -> None:
    recs = records((1, CODE_A, "Aino", "Aho"), (2, None, "Aino", "Aho"), (3, CODE_B, "Anni", "Aho"), (4, None, "X", "Y"))
    result = resolve(recs, edges((1, 2, 0.85)), must_link=[(2, 1), (3, 1), (4, 2)])
    assert result.cluster_of.to_dict() == {1: 1, 2: 1, 3: 3, 4: 1}
    assert result.method.to_dict() == {1: "personal_id", 2: "steward", 3: "personal_id", 4: "steward"}
    assert result.probability[2] == pytest.approx(0.85)  # the scored pair the steward accepted
    assert pd.isna(result.probability[4])                 # never scored
    assert result.reviews.empty


def test_a_stewards_link_settles_an_ambiguous_record() -> None:
    recs = records((1, CODE_FATHER, "Juhani", "Virtanen"), (2, CODE_SON, "Juhani", "Virtanen"), (3, None, "Juhani", "Virtanen"))
    pairs = edges((1, 3, 0.998, 10.0), (2, 3, 0.998, 10.0))
    assert resolve(recs, pairs).cluster_of[3] == 3
    settled = resolve(recs, pairs, must_link=[(3, 2)])
    assert settled.cluster_of.to_dict() == {1: 1, 2: 2, 3: 2}
    assert settled.method[3] == "steward" and settled.probability[3] == pytest.approx(0.998)
    assert settled.reviews.empty


def test_cannot_link_separates_and_is_never_reviewed_again() -> None:
    recs = records((1, CODE_A, "Aino", "Aho"), (2, None, "Aino", "Aho"), (3, None, "Aino", "Aho"))
    pairs = edges((1, 2, 0.999), (2, 3, 0.995), (1, 3, 0.9))
    assert resolve(recs, pairs).cluster_of.nunique() == 1
    result = resolve(recs, pairs, cannot_link=[(3, 1)])
    assert result.cluster_of.to_dict() == {1: 1, 2: 1, 3: 3}
    assert result.reviews.empty  # the edges 2-3 and 1-3 ask the rejected question again


def test_cannot_link_between_components_silences_an_uncertain_review() -> None:
    recs = records((1, None, "Aino", "Aho"), (2, None, "Aino", "Aho"))
    assert review_pairs(resolve(recs, edges((1, 2, 0.9)))) == {(1, 2)}
    assert resolve(recs, edges((1, 2, 0.9)), cannot_link=[(2, 1)]).reviews.empty


def test_cannot_link_does_not_split_a_code() -> None:
    recs = records((1, CODE_A, "Aino", "Aho"), (2, CODE_A, "Aino", "Aho"))
    assert resolve(recs, edges(), cannot_link=[(1, 2)]).cluster_of.nunique() == 1


def test_must_link_against_cannot_link_the_rejection_wins() -> None:
    recs = records((1, None, "A", "B"), (2, None, "A", "B"), (3, None, "A", "B"))
    result = resolve(recs, edges(), must_link=[(1, 2), (2, 3)], cannot_link=[(1, 3)])
    assert result.cluster_of.to_dict() == {1: 1, 2: 1, 3: 3}  # (1, 2) comes first in key order


def test_steward_pairs_about_absent_records_are_ignored() -> None:
    result = resolve(records((1, None, "A", "B")), edges(), must_link=[(1, 99)], cannot_link=[(98, 99)])
    assert result.cluster_of.to_dict() == {1: 1}


# --- same code, clearly different name ----------------------------------------------------

def test_same_code_different_name_is_linked_and_reviewed_once_per_name_variant() -> None:
    recs = records((1, CODE_A, "Aino Maria", "Mäkinen"), (2, CODE_A, "AINO", "MAKINEN"),
                   (3, CODE_A, "Aino", "Virtanen"),        # changed surname only: not clearly different
                   (4, CODE_A, "Ville", "Korhonen"),       # both differ from every other variant
                   (5, CODE_A, None, "Nieminen"))          # a missing name disagrees with nothing
    result = resolve(recs, edges())
    assert result.cluster_of.nunique() == 1
    assert review_pairs(result, "same_code_different_name") == {(1, 4), (3, 4)}
    assert (result.reviews["match_probability"] == 1.0).all()
    assert review_pairs(resolve(recs, edges(), cannot_link=[(3, 4)]), "same_code_different_name") == {(1, 4)}


def test_name_folding() -> None:
    assert fold_name("ÅSTRÖM") == fold_name("astrom") == "astrom"
    assert first_given_name("Anna-Liisa Maria") == "anna-liisa" != first_given_name("Anna Liisa")


# --- input checks ----------------------------------------------------------------------------

def test_unknown_edge_key_and_duplicate_record_key_are_rejected_without_values() -> None:
    with pytest.raises(ValueError, match=r"edges.key_r: 1 record keys") as error:
        resolve(records((1, CODE_A, "Aino", "Aho")), edges((1, 424242, 0.999)))
    assert "424242" not in str(error.value)
    with pytest.raises(ValueError, match="duplicate"):
        resolve(records((1, CODE_A, "Aino", "Aho"), (1, None, "A", "B")), edges())
    with pytest.raises(ValueError, match="review_threshold"):
        resolve_clusters(records((1, None, "A", "B")), edges(), link_threshold=0.5, review_threshold=0.9)


def test_no_records() -> None:
    result = resolve(records(), edges())
    assert result.cluster_of.empty and result.method.empty and result.reviews.empty
    assert tuple(result.reviews.columns) == REVIEW_COLUMNS


def test_duplicate_pairs_count_once_at_their_strongest() -> None:
    recs = records((1, None, "A", "B"), (2, None, "A", "B"))
    result = resolve(recs, edges((1, 2, 0.5), (2, 1, 0.995), (1, 2, 0.9)))
    assert result.cluster_of.nunique() == 1 and result.probability.tolist() == [pytest.approx(0.995)] * 2


def test_connected_components_matches_a_plain_union_find() -> None:
    rng = np.random.default_rng(3)
    n = 500
    left, right = rng.integers(0, n, 400), rng.integers(0, n, 400)
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x
    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    assert connected_components(n, left, right).tolist() == [find(x) for x in range(n)]


# --- properties: set function, decomposable, the code rules always hold -----------------------

CODES = [CODE_A, CODE_B, CODE_DASH, CODE_Y]
PROBABILITIES = [0.3, 0.5, 0.85, 0.95, 0.99, 0.995, 0.999, 0.9999]
WEIGHTS = [2.0, 8.0, 9.0, 10.5, 14.0]  # close enough for ambiguity, far enough for a clear winner


@st.composite
def problems(draw):
    n = draw(st.integers(1, 14))
    keys = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    rows = [(k, draw(st.sampled_from([None, None, *CODES])), draw(st.sampled_from(["Aino", "Ville", None])),
             draw(st.sampled_from(["Aho", "Virtanen", None]))) for k in keys]
    pair = st.tuples(st.sampled_from(keys), st.sampled_from(keys)).filter(lambda p: p[0] != p[1])
    edge_rows = [(a, b, draw(st.sampled_from(PROBABILITIES)), draw(st.sampled_from(WEIGHTS)))
                 for a, b in draw(st.lists(pair, min_size=n - 1, max_size=3 * n, unique_by=lambda p: frozenset(p))
                                  if n > 1 else st.just([]))]
    must = draw(st.lists(pair, max_size=2)) if n > 1 else []
    cannot = draw(st.lists(pair, max_size=2)) if n > 1 else []
    doubt = draw(st.lists(st.sampled_from(keys), max_size=3, unique=True))  # records that prohibit marketing
    return records(*rows), edges(*edge_rows), must, cannot, doubt


def _canonical(resolution) -> tuple:
    reviews = resolution.reviews.sort_values(["key_l", "key_r", "reason"], ignore_index=True)
    return (resolution.cluster_of.to_dict(), resolution.method.to_dict(),
            {k: (None if pd.isna(v) else round(float(v), 12)) for k, v in resolution.probability.items()},
            reviews.to_dict("records"))


@FAST
@given(problems(), st.randoms(use_true_random=False))
def test_result_is_a_function_of_the_sets(problem, random) -> None:
    recs, pairs, must, cannot, doubt = problem
    expected = _canonical(resolve(recs, pairs, must_link=must, cannot_link=cannot, doubt_threshold=DOUBT,
                                  doubt_keys=doubt))
    shuffled_records = recs.sample(frac=1, random_state=random.randrange(2**32))
    shuffled_pairs = pairs.sample(frac=1, random_state=random.randrange(2**32)).reset_index(drop=True)
    flip = np.array([random.random() < 0.5 for _ in range(len(shuffled_pairs))], dtype=bool)
    shuffled_pairs.loc[flip, ["key_l", "key_r"]] = shuffled_pairs.loc[flip, ["key_r", "key_l"]].to_numpy()
    weaker_copies = shuffled_pairs.assign(match_probability=shuffled_pairs["match_probability"] / 2)
    shuffled_pairs = pd.concat([weaker_copies, shuffled_pairs], ignore_index=True)  # a weaker duplicate changes nothing
    must_shuffled = [(b, a) for a, b in reversed(must)]
    cannot_shuffled = [(b, a) for a, b in reversed(cannot)]
    assert _canonical(resolve(shuffled_records, shuffled_pairs, must_link=must_shuffled,
                              cannot_link=cannot_shuffled, doubt_threshold=DOUBT,
                              doubt_keys=list(reversed(doubt)))) == expected


@FAST
@given(problems())
def test_resolving_each_component_alone_gives_the_same(problem) -> None:
    recs, pairs, must, cannot, doubt = problem
    whole = resolve(recs, pairs, must_link=must, cannot_link=cannot, doubt_threshold=DOUBT, doubt_keys=doubt)
    # components of everything that connects records: any edge, steward links, shared codes
    keys = recs["record_key"].tolist()
    parent = {k: k for k in keys}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x
    by_code = recs.dropna(subset=["personal_id"]).groupby("personal_id")["record_key"].apply(list)
    links = list(zip(pairs["key_l"], pairs["key_r"])) + list(must)
    links += [(members[0], m) for members in by_code for m in members[1:]]
    for a, b in links:
        parent[find(a)] = find(b)
    parts = []
    for root in sorted({find(k) for k in keys}):
        members = {k for k in keys if find(k) == root}
        part_records = recs[recs["record_key"].isin(members)]
        part_pairs = pairs[pairs["key_l"].isin(members) & pairs["key_r"].isin(members)]
        part_must = [p for p in must if p[0] in members and p[1] in members]
        part_cannot = [p for p in cannot if p[0] in members and p[1] in members]
        parts.append(resolve(part_records, part_pairs, must_link=part_must, cannot_link=part_cannot,
                             doubt_threshold=DOUBT, doubt_keys=[k for k in doubt if k in members]))
    combined = type(whole)(
        cluster_of=pd.concat([p.cluster_of for p in parts]).sort_index(),
        method=pd.concat([p.method for p in parts]).sort_index(),
        probability=pd.concat([p.probability for p in parts]).sort_index(),
        reviews=pd.concat([p.reviews for p in parts], ignore_index=True),
    )
    assert _canonical(combined) == _canonical(whole)


@FAST
@given(problems())
def test_rules_hold_on_any_input(problem) -> None:
    recs, pairs, must, cannot, doubt = problem
    result = resolve(recs, pairs, must_link=must, cannot_link=cannot, doubt_threshold=DOUBT, doubt_keys=doubt)
    frame = recs.set_index("record_key").assign(cluster=result.cluster_of, method=result.method,
                                                probability=result.probability)
    # one code per cluster, one cluster per code; the cluster key is its smallest record
    assert (frame.dropna(subset=["personal_id"]).groupby("cluster")["personal_id"].nunique() <= 1).all()
    assert (frame.dropna(subset=["personal_id"]).groupby("personal_id")["cluster"].nunique() == 1).all()
    assert (frame.reset_index().groupby("cluster")["record_key"].min() == frame.groupby("cluster").size().index).all()
    # steward rejections hold unless a code says otherwise
    for a, b in cannot:
        code_a, code_b = frame.loc[a, "personal_id"], frame.loc[b, "personal_id"]
        same_code = not pd.isna(code_a) and not pd.isna(code_b) and code_a == code_b
        assert same_code or frame.loc[a, "cluster"] != frame.loc[b, "cluster"]
    # methods
    sizes = frame.groupby("cluster").size()
    assert (frame.loc[frame["method"] == "personal_id", "personal_id"].notna()).all()
    assert (frame.loc[frame["method"] != "personal_id", "personal_id"].isna()).all()
    new = frame[frame["method"] == "new"]
    assert (sizes[new["cluster"]].to_numpy() == 1).all() and new["probability"].isna().all()
    assert (frame.loc[frame["method"] == "probabilistic", "probability"] >= LINK).all()
    # every review is between two clusters a steward could merge, and not asked twice
    for row in result.reviews.itertuples():
        left, right = frame.loc[row.key_l], frame.loc[row.key_r]
        if row.reason == "marketing_doubt":  # a weaker edge, held by a record that prohibits marketing
            assert DOUBT <= row.match_probability < REVIEW and {row.key_l, row.key_r} & set(doubt)
        else:
            assert row.match_probability >= REVIEW
        if row.reason == "same_code_different_name":
            assert left["cluster"] == right["cluster"]
            continue
        assert left["cluster"] != right["cluster"]
        codes = frame[frame["cluster"].isin([left["cluster"], right["cluster"]])]["personal_id"].dropna()
        assert codes.nunique() <= 1
        rejected = {frozenset((frame.loc[a, "cluster"], frame.loc[b, "cluster"])) for a, b in cannot}
        assert frozenset((left["cluster"], right["cluster"])) not in rejected
    cluster_pairs = [frozenset(result.cluster_of[[r.key_l, r.key_r]]) for r in result.reviews.itertuples()
                     if r.reason != "same_code_different_name"]
    assert len(cluster_pairs) == len(set(cluster_pairs))
    # a sure edge between two clusters that could be merged exists only next to an ambiguous record
    sure = pairs[pairs["match_probability"] >= LINK]
    for row in sure.itertuples():
        left, right = result.cluster_of[row.key_l], result.cluster_of[row.key_r]
        codes = frame[frame["cluster"].isin([left, right])]["personal_id"].dropna()
        rejected = any({result.cluster_of[a], result.cluster_of[b]} == {left, right} for a, b in cannot)
        if left != right and codes.nunique() <= 1 and not rejected:
            assert frozenset((left, right)) in cluster_pairs
            assert "ambiguous" in set(result.reviews["reason"])
    # every doubt a steward could settle is in the queue: an edge at or above the review
    # threshold, or at or above the doubt threshold with a record that prohibits marketing
    for row in pairs.itertuples():
        if row.match_probability < REVIEW and not (row.match_probability >= DOUBT and {row.key_l, row.key_r} & set(doubt)):
            continue
        left, right = result.cluster_of[row.key_l], result.cluster_of[row.key_r]
        codes = frame[frame["cluster"].isin([left, right])]["personal_id"].dropna()
        rejected = any({result.cluster_of[a], result.cluster_of[b]} == {left, right} for a, b in cannot)
        if left != right and codes.nunique() <= 1 and not rejected:
            assert frozenset((left, right)) in cluster_pairs
