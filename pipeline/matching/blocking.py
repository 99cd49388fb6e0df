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

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd
import pyarrow.compute as pc

_SEPARATOR = "\x1f"


def blocking_keys(features: pd.DataFrame, rules: Sequence[tuple[str, ...]],
                  numbers: Collection[int] | None = None) -> pd.DataFrame:
    """(blocking_key int64, record_key int64), one row per record and rule it has values for,
    sorted by (blocking_key, record_key).

    Column-wise: pandas hashes each row's values in the rule's columns (a stable,
    keyed 64-bit hash), mixed with the rule's number so equal values under two
    rules do not collide. `numbers`: only the rules at these positions (a migration
    adding a rule's keys to held records), each keyed by its own position.
    """
    parts = []
    for number, columns in enumerate(rules):
        if numbers is not None and number not in numbers:
            continue
        present = np.ones(len(features), dtype=bool)
        for column in columns:
            present &= _non_empty(features[column])
        if not present.any():
            continue
        rows = features.loc[present, list(columns)]
        # pandas hashes a string column by its values as Python strings, whichever its storage:
        # arrow-backed columns are hashed as they are (no copy into Python strings), others as
        # "string", so the keys are the same bits either way (`match_key` holds them).
        rows = rows.astype({c: "string" for c in columns if not _arrow_strings(rows[c])})
        hashed = pd.util.hash_pandas_object(rows, index=False, categorize=False).to_numpy(np.uint64)
        salt = pd.util.hash_array(np.array([f"rule{_SEPARATOR}{number}"], dtype=object))[0]
        mixed = (hashed ^ salt) * np.uint64(0x9E3779B97F4A7C15)
        parts.append(pd.DataFrame({"blocking_key": mixed.view(np.int64),
                                   "record_key": features.loc[present, "record_key"].to_numpy(np.int64)}))
    if not parts:
        return pd.DataFrame({"blocking_key": pd.Series(dtype="int64"), "record_key": pd.Series(dtype="int64")})
    keys = pd.concat(parts, ignore_index=True)
    # One row per (rule, record) already; sorted as the `match_key` primary key is, so the register's
    # B-tree is appended to rather than split (numpy's lexsort: a third of pandas' two-column sort).
    order = np.lexsort((keys["record_key"].to_numpy(), keys["blocking_key"].to_numpy()))
    return keys.iloc[order].reset_index(drop=True)


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
