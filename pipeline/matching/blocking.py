"""The matcher's blocking keys as 64-bit hashes, for the register's `match_key` index.

Every blocking rule of the model is an equality on plain feature columns, so a
record's key for rule i is a hash of (i, its values in those columns). Two records
are blocked together by rule i exactly when their keys for rule i are equal: the
register can find, for a new batch, every held record the matcher would have
paired with it had everything been loaded at once (docs/register_rules.md rule 3).

>>> import pandas as pd
>>> features = pd.DataFrame({"record_key": [1, 2, 3], "phone": ["+358401", "+358401", None]})
>>> keys = blocking_keys(features, rules=[("phone",)])
>>> sorted(keys["record_key"].tolist())
[1, 2]
>>> keys["blocking_key"].nunique()
1
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.compute as pc

# pandas' own combination of column hashes into a row hash (`hash_pandas_object` of a frame):
# the keys `match_key` holds are these bits (tests/test_register_match_keys.py pins them).
from pandas.core.util.hashing import combine_hash_arrays

_SEPARATOR = "\x1f"


def held_keys(features: pd.DataFrame, rules: Sequence[tuple[str, ...]],
              doubt_rules: Sequence[tuple[str, ...]] = ()) -> pd.DataFrame:
    """The keys the register holds for these records in `match_key`: each blocking rule's,
    and for each doubt-only rule two: its *reach* key for every record, and its *anchor*
    key for the doubt anchors only (`features.doubt_anchor`). Doubt rule j is keyed at
    positions len(rules) + 2j (reach) and + 2j + 1 (anchor), after the blocking rules.

    A later record probes (`probe_keys`) the anchor keys unless it is an anchor itself,
    and then the reach keys: an anchor meets every held namesake, any other record only
    the held anchors among them, as Splink pairs them when everything is loaded at once.

    >>> features = pd.DataFrame({"record_key": [1, 2, 3], "name_key": ["a b", "a b", "a b"],
    ...                          "doubt_anchor": [True, False, False]})
    >>> held = held_keys(features, [], [("name_key",)])
    >>> sorted(held["record_key"].tolist())  # reach keys of all three, the anchor key of 1
    [1, 1, 2, 3]
    >>> probe = probe_keys(features, [], [("name_key",)])
    >>> def met(key): return sorted(set(held.loc[held["blocking_key"].isin(
    ...     probe.loc[probe["record_key"] == key, "blocking_key"]), "record_key"]) - {key})
    >>> met(1), met(2)  # the anchor meets both namesakes; a namesake meets the anchor only
    ([2, 3], [1])
    """
    every, reach, anchor = _with_doubt_rules(rules, doubt_rules)
    return blocking_keys(features, every, masks={number: _anchors(features) for number in anchor})


def probe_keys(features: pd.DataFrame, rules: Sequence[tuple[str, ...]],
               doubt_rules: Sequence[tuple[str, ...]] = ()) -> pd.DataFrame:
    """The keys by which these records find their held candidates in `match_key` (`held_keys`)."""
    every, reach, anchor = _with_doubt_rules(rules, doubt_rules)
    anchors = _anchors(features)
    return blocking_keys(features, every, masks={**{number: anchors for number in reach},
                                                 **{number: ~anchors for number in anchor}})


def _with_doubt_rules(rules: Sequence[tuple[str, ...]], doubt_rules: Sequence[tuple[str, ...]]
                      ) -> tuple[list[tuple[str, ...]], list[int], list[int]]:
    """(every rule by its key position, the doubt rules' reach positions, their anchor positions)."""
    every = list(rules) + [rule for rule in doubt_rules for _ in ("reach", "anchor")]
    reach = [len(rules) + 2 * j for j in range(len(doubt_rules))]
    return every, reach, [number + 1 for number in reach]


def _anchors(features: pd.DataFrame) -> np.ndarray:
    if "doubt_anchor" not in features.columns:
        return np.zeros(len(features), dtype=bool)
    return features["doubt_anchor"].to_numpy(bool)


def blocking_keys(features: pd.DataFrame, rules: Sequence[tuple[str, ...]],
                  numbers: Collection[int] | None = None,
                  masks: Mapping[int, np.ndarray] | None = None) -> pd.DataFrame:
    """(blocking_key int64, record_key int64), one row per record and rule it has values for,
    sorted by (blocking_key, record_key).

    Column-wise: pandas hashes each row's values in the rule's columns (a stable,
    keyed 64-bit hash), mixed with the rule's number so equal values under two
    rules do not collide. `numbers`: only the rules at these positions (a migration
    adding a rule's keys to held records), each keyed by its own position. `masks`:
    by rule position, the only rows (a boolean array) that get that rule's key.
    """
    masks = masks or {}
    wanted = [(number, columns) for number, columns in enumerate(rules) if numbers is None or number in numbers]
    # Each column hashed once, whichever rules use it (postal code, street and names serve two).
    hashes: dict[str, np.ndarray] = {}
    present_in: dict[str, np.ndarray] = {}
    for column in dict.fromkeys(c for _, columns in wanted for c in columns):
        values = features[column]
        # pandas hashes a string column by its values as Python strings, whichever its storage:
        # arrow-backed columns are hashed as they are (no copy into Python strings), others as
        # "string", so the keys are the same bits either way (`match_key` holds them).
        hashes[column] = pd.util.hash_pandas_object(values if _arrow_strings(values) else values.astype("string"),
                                                    index=False, categorize=False).to_numpy(np.uint64)
        present_in[column] = _non_empty(values)
    record_keys = features["record_key"].to_numpy(np.int64)
    present = {number: np.logical_and.reduce([present_in[c] for c in columns]) for number, columns in wanted}
    for number, rows in masks.items():
        if number in present:
            present[number] = present[number] & rows
    total = sum(int(mask.sum()) for mask in present.values())
    # Filled in place, then sorted: no list of parts concatenated beside it (at 5M records the
    # 37M keys are 600 MB, and each copy held at once another 600 MB).
    blocking = np.empty(total, dtype=np.int64)
    records = np.empty(total, dtype=np.int64)
    filled = 0
    for number, columns in wanted:
        mask = present[number]
        count = int(mask.sum())
        if not count:
            continue
        # The row hash `hash_pandas_object` gives a frame of these columns, from the columns' own hashes.
        hashed = combine_hash_arrays(iter([hashes[c][mask] for c in columns]), len(columns))
        salt = pd.util.hash_array(np.array([f"rule{_SEPARATOR}{number}"], dtype=object))[0]
        blocking[filled:filled + count] = ((hashed ^ salt) * np.uint64(0x9E3779B97F4A7C15)).view(np.int64)
        records[filled:filled + count] = record_keys[mask]
        filled += count
    del hashes, present
    # One row per (rule, record) already; sorted as the `match_key` primary key is, so the register's
    # B-tree is appended to rather than split (numpy's lexsort: a third of pandas' two-column sort).
    order = np.lexsort((records, blocking))
    blocking = blocking[order]
    records = records[order]
    del order
    return pd.DataFrame({"blocking_key": blocking, "record_key": records}, copy=False)


def _arrow_strings(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow"


def _non_empty(column: pd.Series) -> np.ndarray:
    """Present and not the empty string, as a boolean array.

    >>> _non_empty(pd.Series(["a", "", None], dtype="string[pyarrow]")).tolist()
    [True, False, False]
    >>> _non_empty(pd.Series(["a", "", None], dtype=object)).tolist()
    [True, False, False]
    """
    if _arrow_strings(column):  # arrow's own kernels: no Python strings made
        lengths = pc.utf8_length(column.array._pa_array)
        return pc.fill_null(pc.greater(lengths, 0), False).to_numpy(zero_copy_only=False)
    return column.astype("string").str.len().fillna(0).to_numpy() > 0
