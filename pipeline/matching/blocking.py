"""The matcher's blocking keys as 64-bit hashes, for the register's `match_key` index.

Every blocking rule of the model is an equality on plain feature columns, so a
record's key for rule i is a hash of (i, its values in those columns). Two records
are blocked together by rule i exactly when their keys for rule i are equal: the
register can find, for a new batch, every held record the matcher would have
paired with it had everything been loaded at once (REGISTER.md rule 3).

>>> import pandas as pd
>>> features = pd.DataFrame({"record_key": [1, 2, 3], "phone": ["+358401", "+358401", None]})
>>> keys = blocking_keys(features, rules=[("phone",)])
>>> sorted(keys["record_key"].tolist())
[1, 2]
>>> keys["blocking_key"].nunique()
1
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

_SEPARATOR = "\x1f"


def blocking_keys(features: pd.DataFrame, rules: Sequence[tuple[str, ...]]) -> pd.DataFrame:
    """(blocking_key int64, record_key int64), one row per record and rule it has values for."""
    parts = []
    for number, columns in enumerate(rules):
        present = features[list(columns)].notna().all(axis=1)
        for column in columns:
            present &= features[column].astype("string").str.len().fillna(0) > 0
        if not present.any():
            continue
        rows = features.loc[present]
        text = pd.Series(f"{number}", index=rows.index, dtype=object)
        for column in columns:
            text = text + _SEPARATOR + rows[column].astype(str)
        hashed = pd.util.hash_array(text.to_numpy(dtype=object)).view(np.int64)
        parts.append(pd.DataFrame({"blocking_key": hashed, "record_key": rows["record_key"].to_numpy(np.int64)}))
    if not parts:
        return pd.DataFrame({"blocking_key": pd.Series(dtype="int64"), "record_key": pd.Series(dtype="int64")})
    return pd.concat(parts, ignore_index=True).drop_duplicates(ignore_index=True)
