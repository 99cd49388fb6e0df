"""Records into people: constrained single-linkage over the scored pairs.

`resolve_clusters` decides which records are one person (docs/register_rules.md rules 4-5):

1. *Codes.* Records with the same valid personal identity code are one cluster.
   Records with different codes are never in one cluster, whatever the edges: no
   chain through code-less records may join them either.
2. *Steward links.* A `must_link` pair (a steward accepted a merge) is joined
   unless that would put two codes, or a `cannot_link` pair, into one cluster
   (then it is ignored). A `cannot_link` pair (a steward rejected) is never in one
   cluster and never proposed for review again. A code outranks a steward: a
   `cannot_link` between two records with the same code cannot split them.
3. *Ambiguity* (the household trap: a son with his father's exact names at the
   same address). A code-less record (with its steward links: a *unit*) whose
   sure edges point into two or more clusters of different codes, with the best
   match weight per code within `ambiguity_margin` of the next best, is
   *ambiguous*. Its cluster may never take a code: it links to neither person
   (nor does any code-less record that links to it), and each candidate gets a
   review entry. A candidate the steward rejected (`cannot_link`) does not count.
4. *Sure edges* (probability >= `link_threshold`) are taken one by one in a fixed
   order: descending probability, descending match weight (probabilities
   saturate at 1.0 where weights still differ), then key_l, key_r. An edge is
   skipped when it would break rule 1, 2 or 3.
5. *Reviews.* A review proposes a merge, so it is only proposed between two final
   clusters a steward could merge: not two different codes, not a pair with a
   steward's rejection between them. Such a pair gets one entry (its strongest
   edge): reason `uncertain` for an edge in [review_threshold, link_threshold),
   `ambiguous` for a sure edge that was withheld by rule 3. A sure edge skipped
   for a code conflict or a steward's rejection is *not* reviewed: its clusters
   can never be merged, so there is nothing to decide. A weaker edge, in
   [doubt_threshold, review_threshold), is reviewed too (reason `marketing_doubt`)
   when one of its records is a `doubt_keys` record: the register passes the records
   that prohibit direct marketing, so that a person who said no by phone, in a
   record too poor to link, is not marketed to through their other customer while
   the doubt stands (the open review holds it off the list). An edge that only a
   doubt-only blocking rule made (`doubt_only`: names alone, `model.DOUBT_BLOCKING_KEYS`)
   is never sure, whatever it scores: at or above the review threshold it is reviewed
   as `uncertain`.
6. *Same code, clearly different name* (first given name AND last name both
   differ after folding case and diacritics, both known): linked by the code and
   reviewed (reason `same_code_different_name`), once per pair of distinct name
   variants, unless a steward already decided that record pair.

How each record came in (`method`, `probability`): `personal_id` for a record
with a code (probability NA); else `steward` if a steward's link it is part of
holds (probability: the scorer's for that pair, NA if it was never scored); else
`probabilistic` if a sure edge of it lies inside its cluster (probability: the
strongest such edge); else `new`, alone in its cluster (NA).

The result is a function of the *set* of records, edges and steward pairs (row
order and the orientation of a pair do not matter; of duplicate pairs the
strongest counts). Exact ties (two edges of one weight, a code's name variants
each held by several records) are broken by the records' `order_key` when given,
else by their `record_key`: the register passes a rank by channel and source id,
which, unlike its keys, does not depend on the order the records were loaded in.
It decomposes: every decision looks only inside one
connected component of codes, steward links and edges, so resolving each
component alone gives the same answer as resolving them all at once.

Speed: components are found column-wise (numpy union-find by hooking and pointer
jumping). A component with at most one code and no steward rejection inside is
one cluster as it stands: rules 1-3 cannot skip any of its edges. Only the rare
*conflicted* components run the sequential constrained linkage in Python.

>>> import pandas as pd
>>> records = pd.DataFrame({"record_key": [1, 2, 3, 4],
...     "personal_id": ["131052-308T", None, None, "010101-123N"],
...     "first_names": ["Aino", "Aino", "Ville", "Ville"], "last_name": ["Testi"] * 4})
>>> edges = pd.DataFrame({"key_l": [1, 3, 2], "key_r": [2, 4, 3],
...     "match_probability": [0.999, 0.998, 0.97], "match_weight": [10.0, 9.0, 5.0], "evidence": ["{}"] * 3})
>>> r = resolve_clusters(records, edges, link_threshold=0.99, review_threshold=0.9)
>>> r.cluster_of.tolist(), r.method.tolist()
([1, 1, 3, 3], ['personal_id', 'probabilistic', 'probabilistic', 'personal_id'])
>>> r.reviews[["key_l", "key_r", "reason"]].to_dict("records")  # two codes: nothing to review
[]
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_AMBIGUITY_MARGIN", "METHODS", "REVIEW_REASONS", "Resolution", "resolve_clusters",
           "connected_components", "fold_name", "first_given_name"]

# In match weight (log2 Bayes factor): a factor of 8 between two candidates is
# not enough to tell a father from his namesake son.
DEFAULT_AMBIGUITY_MARGIN = 3.0
METHODS: tuple[str, ...] = ("personal_id", "probabilistic", "new", "steward")
REVIEW_REASONS: tuple[str, ...] = ("uncertain", "ambiguous", "same_code_different_name", "marketing_doubt")
REVIEW_COLUMNS: tuple[str, ...] = ("key_l", "key_r", "match_probability", "evidence", "reason")
EDGE_COLUMNS: tuple[str, ...] = ("key_l", "key_r", "match_probability", "match_weight", "evidence")

_NO_CODE = -1
_BLOCKED = -2  # an ambiguous unit's cluster: may never take a code


@dataclass(frozen=True)
class Resolution:
    """The clusters and how each record came into its own.

    All three Series are indexed by record_key, in ascending key order.
    """

    cluster_of: pd.Series   # int64: the record_key of the cluster's first record (in tie-break order)
    method: pd.Series       # 'personal_id' | 'probabilistic' | 'new' | 'steward'
    probability: pd.Series  # Float64: the strongest link that holds the record in; NA for new/personal_id
    reviews: pd.DataFrame   # REVIEW_COLUMNS, key_l < key_r, sorted by key_l, key_r


# --- names ----------------------------------------------------------------------------------

def fold_name(value: str) -> str:
    """Case and diacritics folded away, for comparing names.

    >>> fold_name("Mäkinen") == fold_name("MAKINEN"), fold_name("Åström"), fold_name("Élise")
    (True, 'astrom', 'elise')
    """
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def first_given_name(first_names: str) -> str:
    """The first of a person's given names, folded.

    >>> first_given_name("Anna-Liisa  Maria"), first_given_name("  ")
    ('anna-liisa', '')
    """
    parts = first_names.split()
    return fold_name(parts[0]) if parts else ""


def _map_distinct(values: pd.Series, function) -> pd.Series:
    """A scalar function once per distinct value; NA (and '') stay NA."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([function(str(u)) or None for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index)


# --- connected components -------------------------------------------------------------------

def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each of n nodes' component, labelled by its smallest node.

    Column-wise union-find: hook every edge's larger root under its smaller one,
    then jump pointers until every node points at its root; repeat until no edge
    joins two roots. Parents only ever decrease, so there are no cycles.

    >>> connected_components(6, np.array([4, 1, 2]), np.array([2, 0, 1])).tolist()
    [0, 0, 0, 3, 0, 5]
    """
    parent = np.arange(n, dtype=np.int64)
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    while len(left):
        root_l, root_r = parent[left], parent[right]
        crossing = root_l != root_r
        if not crossing.any():
            break
        left, right = left[crossing], right[crossing]  # edges inside one tree stay there
        low = np.minimum(root_l[crossing], root_r[crossing])
        high = np.maximum(root_l[crossing], root_r[crossing])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return parent


# --- the sequential constrained linkage (conflicted components only) ------------------------

class _ConstrainedUnionFind:
    """Union-find over positions 0..m-1 whose clusters carry a code label and rejections.

    Label: a code number (>= 0), _NO_CODE, or _BLOCKED. Two clusters may join when
    their codes do not differ, a blocked cluster does not meet a code, and no
    steward rejection lies between them. The root is always the smallest
    position. State is kept in Python lists: the loop in `link` is the hot path.
    """

    def __init__(self, codes: np.ndarray, rejections: np.ndarray):
        m = len(codes)
        parent = np.arange(m, dtype=np.int64)
        coded = np.flatnonzero(codes >= 0)
        first_of_code = np.full(codes.max() + 1 if len(coded) else 0, m, dtype=np.int64)
        np.minimum.at(first_of_code, codes[coded], coded)
        parent[coded] = first_of_code[codes[coded]]
        label = np.full(m, _NO_CODE, dtype=np.int64)
        label[parent[coded]] = codes[coded]
        self.parent: list[int] = parent.tolist()
        self.label: list[int] = label.tolist()  # meaningful at roots only
        self.rejected: dict[int, set[int]] = {}
        for a, b in rejections.tolist():
            self.rejected.setdefault(self.find(a), set()).add(b)
            self.rejected.setdefault(self.find(b), set()).add(a)

    def find(self, node: int) -> int:
        parent = self.parent
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def roots(self) -> np.ndarray:
        """Every position's root, by pointer jumping over the parent array."""
        parent = np.asarray(self.parent, dtype=np.int64)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                return parent
            parent = jumped

    def is_rejected(self, root_a: int, root_b: int) -> bool:
        others = self.rejected.get(root_a)
        return bool(others) and any(self.find(other) == root_b for other in others)

    def link(self, left: list[int], right: list[int]) -> None:
        """Join each pair's clusters in the order given, where the rules allow."""
        parent, label, rejected = self.parent, self.label, self.rejected
        for a, b in zip(left, right):
            while parent[a] != a:  # find with path halving, inlined: this loop runs per edge
                parent[a] = parent[parent[a]]
                a = parent[a]
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            if a == b:
                continue
            label_a, label_b = label[a], label[b]
            if label_a != label_b and label_a != _NO_CODE and label_b != _NO_CODE:
                continue  # two codes, or a blocked unit meeting a code
            if rejected and (a in rejected or b in rejected) and self.is_rejected(a, b):
                continue
            root, other = (a, b) if a < b else (b, a)
            parent[other] = root
            if label[root] == _NO_CODE:
                label[root] = label[other]
            moved = rejected.pop(other, None)
            if moved:
                rejected.setdefault(root, set()).update(moved)


def _ambiguous_units(finder: _ConstrainedUnionFind, sure: pd.DataFrame, margin: float) -> np.ndarray:
    """Roots of code-less units whose sure edges point into 2+ codes within `margin`."""
    roots = finder.roots()
    label = np.asarray(finder.label, dtype=np.int64)[roots]  # each position's cluster label
    a, b = sure["a"].to_numpy(), sure["b"].to_numpy()
    weight = sure["match_weight"].to_numpy(float)
    unit = np.concatenate([roots[a], roots[b]])
    target = np.concatenate([roots[b], roots[a]])
    code = np.concatenate([label[b], label[a]])
    claim = (np.concatenate([label[a], label[b]]) == _NO_CODE) & (code >= 0)
    claims = pd.DataFrame({"unit": unit[claim], "target": target[claim], "code": code[claim],
                           "weight": np.concatenate([weight, weight])[claim]})
    if finder.rejected and not claims.empty:
        keep = [not finder.is_rejected(u, t) for u, t in zip(claims["unit"].tolist(), claims["target"].tolist())]
        claims = claims[np.array(keep, dtype=bool)]
    best = claims.groupby(["unit", "code"], sort=False)["weight"].max().reset_index()
    best = best.sort_values(["unit", "weight"], ascending=[True, False], kind="stable")
    rank = best.groupby("unit", sort=False).cumcount()
    top = best[(rank == 0).to_numpy()].set_index("unit")["weight"]
    runner_up = best[(rank == 1).to_numpy()].set_index("unit")["weight"]
    gap = top.reindex(runner_up.index) - runner_up
    return gap.index[(gap <= margin).to_numpy()].to_numpy(np.int64)


def _resolve_conflicted(codes: np.ndarray, must: np.ndarray, cannot: np.ndarray,
                        sure: pd.DataFrame, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Each position's final root, and the blocked roots, over local positions 0..m-1."""
    finder = _ConstrainedUnionFind(codes, cannot)
    finder.link(must[:, 0].tolist(), must[:, 1].tolist())  # already in (a, b) order
    for unit in _ambiguous_units(finder, sure, margin).tolist():
        finder.label[unit] = _BLOCKED
    finder.link(sure["a"].tolist(), sure["b"].tolist())  # already in linkage order
    roots = finder.roots()
    blocked = np.unique(roots[np.asarray(finder.label, dtype=np.int64)[roots] == _BLOCKED])
    return roots, blocked


# --- input checks and normalisation ---------------------------------------------------------

def _node_positions(keys: pd.Index, values: np.ndarray, what: str, *, strict: bool) -> np.ndarray:
    """Positions of `values` among the record keys (in node order); -1 (or an error, if strict) where absent."""
    position = keys.get_indexer(values)  # a hash lookup: several times faster than searchsorted here
    if strict and (position < 0).any():
        raise ValueError(f"{what}: {int((position < 0).sum())} record keys not among the records' record_key")
    return position


def _pairs(pairs, keys: pd.Index, what: str) -> np.ndarray:
    """Steward pairs as unique sorted (a < b) node position rows; pairs of absent records dropped."""
    array = np.asarray(list(pairs) if not isinstance(pairs, (np.ndarray, pd.DataFrame)) else pairs, dtype=np.int64)
    if array.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{what}: expected pairs of record keys")
    positions = _node_positions(keys, array.ravel(), what, strict=False).reshape(-1, 2)
    positions = positions[(positions >= 0).all(axis=1) & (positions[:, 0] != positions[:, 1])]
    positions.sort(axis=1)
    return np.unique(positions, axis=0)


def _normalise_edges(edges: pd.DataFrame, keys: pd.Index) -> pd.DataFrame:
    """Edges as node positions a < b, one per pair (the strongest), with the original columns."""
    missing = [c for c in EDGE_COLUMNS if c not in edges.columns]
    if missing:
        raise ValueError(f"edges: missing columns {missing}")
    left = _node_positions(keys, edges["key_l"].to_numpy(np.int64), "edges.key_l", strict=True)
    right = _node_positions(keys, edges["key_r"].to_numpy(np.int64), "edges.key_r", strict=True)
    probability = edges["match_probability"].to_numpy(float, na_value=np.nan)
    weight = edges["match_weight"].to_numpy(float, na_value=np.nan)
    if np.isnan(probability).any() or np.isnan(weight).any():
        raise ValueError("edges: match_probability or match_weight missing on "
                         f"{int(np.isnan(probability).sum() + np.isnan(weight).sum())} rows")
    doubt_only = (edges["doubt_only"].to_numpy(bool) if "doubt_only" in edges.columns
                  else np.zeros(len(edges), dtype=bool))
    frame = pd.DataFrame({"a": np.minimum(left, right), "b": np.maximum(left, right),
                          "match_probability": probability, "match_weight": weight,
                          "evidence": edges["evidence"].to_numpy(object), "doubt_only": doubt_only})
    frame = frame[frame["a"] != frame["b"]]
    pair_code = frame["a"].to_numpy() * len(keys) + frame["b"].to_numpy()  # < 2**63 below 3e9 records
    duplicated = pd.Series(pair_code).duplicated(keep=False).to_numpy()
    if duplicated.any():  # the strongest of a pair counts; evidence text breaks exact ties
        repeats = frame[duplicated].assign(_text=lambda f: f["evidence"].map(_evidence_text))
        repeats = repeats.sort_values(["a", "b", "match_probability", "match_weight", "_text"],
                                      ascending=[True, True, False, False, True], kind="stable")
        frame = pd.concat([frame[~duplicated], repeats.drop_duplicates(["a", "b"]).drop(columns="_text")])
    return frame.reset_index(drop=True)


def _evidence_text(evidence) -> str:
    return evidence if isinstance(evidence, str) else json.dumps(evidence, sort_keys=True, default=str)


def _linkage_order(frame: pd.DataFrame) -> pd.DataFrame:
    order = np.lexsort((frame["b"].to_numpy(), frame["a"].to_numpy(),
                        -frame["match_weight"].to_numpy(), -frame["match_probability"].to_numpy()))
    return frame.iloc[order]


# --- reviews ----------------------------------------------------------------------------------

def _same_code_reviews(keys: np.ndarray, codes: np.ndarray, first_names: pd.Series, last_name: pd.Series,
                       decided: set[tuple[int, int]]) -> pd.DataFrame:
    """One review per pair of a code's name variants that differ in both first given name and last name."""
    coded = codes >= 0
    variants = pd.DataFrame({
        "code": codes[coded],
        "node": np.flatnonzero(coded),
        "first": _map_distinct(first_names[coded], first_given_name).to_numpy(object),
        "last": _map_distinct(last_name[coded], fold_name).to_numpy(object),
    }).dropna(subset=["first", "last"])
    if variants.empty:
        return _empty_reviews()
    # several variants under one code are rare: keep each variant's smallest record, then pair them
    variants = variants.groupby(["code", "first", "last"], sort=False)["node"].min().reset_index()
    several = variants["code"].duplicated(keep=False)
    variants = variants[several]
    pairs = variants.merge(variants, on="code", suffixes=("_l", "_r"))
    pairs = pairs[(pairs["node_l"] < pairs["node_r"]) & (pairs["first_l"] != pairs["first_r"])
                  & (pairs["last_l"] != pairs["last_r"])]
    if pairs.empty:
        return _empty_reviews()
    key_l, key_r = keys[pairs["node_l"].to_numpy()], keys[pairs["node_r"].to_numpy()]
    undecided = np.array([(a, b) not in decided for a, b in zip(pairs["node_l"].tolist(), pairs["node_r"].tolist())],
                         dtype=bool)
    evidence = json.dumps({"personal_id": "same", "first_given_name": "different", "last_name": "different"})
    return pd.DataFrame({"key_l": key_l[undecided], "key_r": key_r[undecided],
                         "match_probability": 1.0, "evidence": evidence,
                         "reason": "same_code_different_name"})


def _empty_reviews() -> pd.DataFrame:
    return pd.DataFrame({"key_l": pd.Series(dtype="int64"), "key_r": pd.Series(dtype="int64"),
                         "match_probability": pd.Series(dtype="float64"),
                         "evidence": pd.Series(dtype=object), "reason": pd.Series(dtype=object)})


# --- the resolver -----------------------------------------------------------------------------

def resolve_clusters(records: pd.DataFrame, edges: pd.DataFrame, *, link_threshold: float,
                     review_threshold: float, must_link: Iterable[tuple[int, int]] = (),
                     cannot_link: Iterable[tuple[int, int]] = (),
                     ambiguity_margin: float = DEFAULT_AMBIGUITY_MARGIN,
                     doubt_threshold: float | None = None, doubt_keys: Iterable[int] = ()) -> Resolution:
    """Cluster records into people (see the module docstring for the rules).

    `records` needs record_key (unique), personal_id (a valid permanent code or
    NA), first_names and last_name; an optional `order_key` (unique) breaks exact
    ties. `edges` is the scorer's pairs frame (key_l, key_r, match_probability,
    match_weight, evidence); every key must be a record's. Steward pairs about
    records not given are ignored. `doubt_threshold` and `doubt_keys`: rule 5's weaker
    reviews (none unless both are given); `doubt_keys` not among the records are ignored.
    """
    if not review_threshold <= link_threshold:
        raise ValueError("review_threshold must not exceed link_threshold")
    if doubt_threshold is not None and not doubt_threshold <= review_threshold:
        raise ValueError("doubt_threshold must not exceed review_threshold")
    needed = ["record_key", "personal_id", "first_names", "last_name"]
    missing = [column for column in needed if column not in records.columns]
    if missing:
        raise ValueError(f"records: missing columns {missing}")
    # Node positions follow the tie-break order: every rule below breaks exact ties by position.
    tiebreak = "order_key" if "order_key" in records.columns else "record_key"
    for column in dict.fromkeys(["record_key", tiebreak]):
        if not records[column].is_unique:
            raise ValueError(f"records.{column}: {int(records[column].duplicated().sum())} duplicate keys")
    order = np.argsort(records[tiebreak].to_numpy(np.int64), kind="stable")
    ordered = records[needed].iloc[order]
    keys = ordered["record_key"].to_numpy(np.int64)
    n = len(keys)
    codes = pd.factorize(ordered["personal_id"], use_na_sentinel=True)[0].astype(np.int64)

    key_index = pd.Index(keys)
    pairs = _normalise_edges(edges, key_index)
    must = _pairs(must_link, key_index, "must_link")
    cannot = _pairs(cannot_link, key_index, "cannot_link")
    # A pair only a doubt-only rule made is never linked, however it scores (rule 5).
    sure_mask = ((pairs["match_probability"] >= link_threshold) & ~pairs["doubt_only"]).to_numpy()
    sure = _linkage_order(pairs[sure_mask])

    # Components of everything that could join records: codes, steward links, sure edges.
    coded = np.flatnonzero(codes >= 0)
    first_of_code = np.full(codes.max() + 1 if len(coded) else 0, n, dtype=np.int64)
    np.minimum.at(first_of_code, codes[coded], coded)
    component = connected_components(
        n,
        np.concatenate([coded, must[:, 0], sure["a"].to_numpy()]),
        np.concatenate([first_of_code[codes[coded]], must[:, 1], sure["b"].to_numpy()]),
    )

    # Conflicted: two codes, or a steward's rejection, inside one component.
    code_count = pd.Series(codes[coded]).groupby(component[coded]).nunique()
    conflicted = np.zeros(n, dtype=bool)
    conflicted[code_count.index[code_count.to_numpy() > 1].to_numpy()] = True
    # A rejection between two components cannot change the clusters (nothing could
    # join them), though it still silences a review between them.
    cannot_inside = cannot[component[cannot[:, 0]] == component[cannot[:, 1]]]
    conflicted[component[cannot_inside[:, 0]]] = True
    conflicted = conflicted[component]  # flag every node of a flagged component

    root = component.copy()
    blocked_roots = np.zeros(0, dtype=np.int64)
    if conflicted.any():
        # Local positions keep the key order (nodes ascending), so local roots map back to global ones.
        nodes = np.flatnonzero(conflicted)
        local = np.full(n, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        local_sure = sure[conflicted[sure["a"].to_numpy()]]
        local_sure = local_sure.assign(a=local[local_sure["a"].to_numpy()], b=local[local_sure["b"].to_numpy()])
        roots, blocked = _resolve_conflicted(
            codes[nodes], local[must[conflicted[must[:, 0]]]], local[cannot_inside[conflicted[cannot_inside[:, 0]]]],
            local_sure, ambiguity_margin)
        root[nodes] = nodes[roots]
        blocked_roots = nodes[blocked]

    # How each record came in.
    has_code = codes >= 0
    steward = np.zeros(n, dtype=bool)
    steward_probability = np.full(n, np.nan)
    if len(must):
        held = must[root[must[:, 0]] == root[must[:, 1]]]
        steward[held.ravel()] = True
        if len(held):  # the scorer's probability for the pair the steward accepted, if it scored it
            scored = pd.DataFrame(held, columns=["a", "b"]).merge(pairs[["a", "b", "match_probability"]], on=["a", "b"])
            np.fmax.at(steward_probability, scored["a"].to_numpy(), scored["match_probability"].to_numpy())
            np.fmax.at(steward_probability, scored["b"].to_numpy(), scored["match_probability"].to_numpy())
    a_sure, b_sure = sure["a"].to_numpy(), sure["b"].to_numpy()
    holding = root[a_sure] == root[b_sure]
    linked_probability = np.full(n, np.nan)
    for ends in (a_sure[holding], b_sure[holding]):
        np.fmax.at(linked_probability, ends, sure["match_probability"].to_numpy()[holding])
    method = np.where(has_code, "personal_id",
                      np.where(steward, "steward",
                               np.where(~np.isnan(linked_probability), "probabilistic", "new"))).astype(object)
    probability = np.where(has_code, np.nan, np.where(steward, steward_probability, linked_probability))

    doubt_nodes = _node_positions(key_index, np.fromiter((int(k) for k in doubt_keys), dtype=np.int64),
                                  "doubt_keys", strict=False)
    doubt_nodes = doubt_nodes[doubt_nodes >= 0]
    reviews = _cluster_reviews(pairs, root, codes, cannot, blocked_roots, keys,
                               link_threshold=link_threshold, review_threshold=review_threshold,
                               doubt_threshold=doubt_threshold, doubt_nodes=doubt_nodes)
    decided = {(int(a), int(b)) for a, b in np.concatenate([must, cannot]).tolist()}
    same_code = _same_code_reviews(keys, codes, ordered["first_names"], ordered["last_name"], decided)
    reviews = pd.concat([r for r in (reviews, same_code) if not r.empty] or [_empty_reviews()], ignore_index=True)
    low, high = np.minimum(reviews["key_l"], reviews["key_r"]), np.maximum(reviews["key_l"], reviews["key_r"])
    reviews = reviews.assign(key_l=low.astype("int64"), key_r=high.astype("int64"))
    reviews = reviews.sort_values(["key_l", "key_r", "reason"], kind="stable", ignore_index=True)

    index = pd.Index(keys, name="record_key")
    by_key = np.argsort(keys, kind="stable")
    return Resolution(
        cluster_of=pd.Series(keys[root], index=index, name="cluster_key").iloc[by_key],
        method=pd.Series(method, index=index, name="match_method").iloc[by_key],
        probability=pd.Series(pd.array(probability, dtype="Float64"), index=index,
                              name="match_probability").iloc[by_key],
        reviews=reviews,
    )


def _cluster_reviews(pairs: pd.DataFrame, root: np.ndarray, codes: np.ndarray, cannot: np.ndarray,
                     blocked_roots: np.ndarray, keys: np.ndarray, *, link_threshold: float,
                     review_threshold: float, doubt_threshold: float | None = None,
                     doubt_nodes: np.ndarray | None = None) -> pd.DataFrame:
    """One review per pair of final clusters a steward could merge, from its strongest edge."""
    probability = pairs["match_probability"].to_numpy()
    wanted = probability >= review_threshold
    if doubt_threshold is not None and doubt_nodes is not None and len(doubt_nodes):
        anchored = np.isin(pairs["a"].to_numpy(), doubt_nodes) | np.isin(pairs["b"].to_numpy(), doubt_nodes)
        wanted |= (probability >= doubt_threshold) & anchored
    candidates = pairs[wanted]
    root_a, root_b = root[candidates["a"].to_numpy()], root[candidates["b"].to_numpy()]
    apart = root_a != root_b
    candidates = candidates[apart]
    if candidates.empty:
        return _empty_reviews()
    low, high = np.minimum(root_a[apart], root_b[apart]), np.maximum(root_a[apart], root_b[apart])

    # A cluster's code (at most one, by construction); two codes can never be merged.
    cluster_code = np.full(len(root), _NO_CODE, dtype=np.int64)
    coded = codes >= 0
    cluster_code[root[coded]] = codes[coded]
    mergeable = (cluster_code[low] == _NO_CODE) | (cluster_code[high] == _NO_CODE)
    if len(cannot):
        rejected = pd.MultiIndex.from_arrays([np.minimum(root[cannot[:, 0]], root[cannot[:, 1]]),
                                              np.maximum(root[cannot[:, 0]], root[cannot[:, 1]])])
        mergeable &= ~pd.MultiIndex.from_arrays([low, high]).isin(rejected)
    sure = (candidates["match_probability"].to_numpy() >= link_threshold) & ~candidates["doubt_only"].to_numpy()
    if sure.any():  # only an ambiguity withholds a sure edge between mergeable clusters
        blocked = np.isin(low, blocked_roots) | np.isin(high, blocked_roots)
        assert not (sure & mergeable & ~blocked).any(), "a sure edge between mergeable clusters was not taken"
    weak = candidates["match_probability"].to_numpy() < review_threshold
    reason = np.where(sure, "ambiguous", np.where(weak, "marketing_doubt", "uncertain"))
    found = candidates.assign(low=low, high=high, reason=reason)[mergeable]
    found = _linkage_order(found).drop_duplicates(["low", "high"])
    return pd.DataFrame({"key_l": keys[found["a"].to_numpy()], "key_r": keys[found["b"].to_numpy()],
                         "match_probability": found["match_probability"].to_numpy(float),
                         "evidence": found["evidence"].to_numpy(object), "reason": found["reason"].to_numpy(object)})
