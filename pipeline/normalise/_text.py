"""Column-wise string plumbing shared by the normalisers.

The vectorised paths run on Arrow arrays (RE2 regular expressions in Arrow
compute); the scalar paths run on Python strings (`re`). Every pattern used by
both is written so that the two engines agree: ASCII classes only, and an
explicit whitespace class instead of `\\s` (RE2's `\\s` is ASCII-only, Python's
is Unicode).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Exactly the characters for which Python's str.isspace() is true (so that
# "".join(value.split()) and the Arrow regex remove the same characters).
WHITESPACE_CLASS = "[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_WHITESPACE_RUN = WHITESPACE_CLASS + "+"
_WHITESPACE_RE = re.compile(_WHITESPACE_RUN)


# --- scalar -------------------------------------------------------------------------------

def remove_whitespace(value: str) -> str:
    """All whitespace removed, also inside the value.

    >>> remove_whitespace(" 131052 -308\\u00a0t ")
    '131052-308t'
    """
    return _WHITESPACE_RE.sub("", value)


def collapse_whitespace(value: str) -> str:
    """Runs of whitespace made one space, ends stripped.

    >>> collapse_whitespace("  Aino \\t  Maria ")
    'Aino Maria'
    """
    return _WHITESPACE_RE.sub(" ", value).strip(" ")


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_upper(value: str) -> str:
    """ASCII letters upper case, everything else as it was (Arrow's ascii_upper).

    Python's str.upper() would also turn some non-ASCII letters into ASCII ones
    ('\u017f' into 'S'), which a code must not pass for.

    >>> ascii_upper("fi21 ä\u017f")
    'FI21 ä\u017f'
    """
    return value.translate(_ASCII_UPPER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(value: str) -> str:
    """ASCII letters lower case, everything else as it was (Arrow's ascii_lower)."""
    return value.translate(_ASCII_LOWER)


# --- Arrow --------------------------------------------------------------------------------

def to_arrow(values: pd.Series) -> pa.Array:
    """A string Series as one contiguous Arrow large_string array (nulls for NA)."""
    array = values.array
    if hasattr(array, "_pa_array"):  # Arrow-backed already: no copy (pa.array(array) would copy)
        data = array._pa_array
        data = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    else:
        data = pa.array(values.astype(object).where(values.notna(), None), from_pandas=True)
    if data.type != pa.large_string():
        data = data.cast(pa.large_string())
    return data


def to_series(data: pa.Array, index: pd.Index) -> pd.Series:
    """An Arrow string array back as a pandas "string[pyarrow]" Series."""
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    if data.type != pa.large_string():
        data = data.cast(pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(data), index=index, copy=False)


def null_if_empty(data: pa.Array) -> pa.Array:
    """Empty strings become null."""
    return pc.if_else(pc.equal(data, ""), pa.scalar(None, pa.large_string()), data)


# Values that `collapse_whitespace` would change: any whitespace but a single
# inner space. Matching is several times cheaper than replacing, and most
# values need nothing, so only those rows are rewritten.
_NEEDS_COLLAPSE = WHITESPACE_CLASS.replace(" ", "") + "|  |^ | $"


def _rewrite(data: pa.Array, needs: str, rewrite: Callable[[pa.Array], pa.Array]) -> pa.Array:
    data = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    mask = pc.fill_null(pc.match_substring_regex(data, needs), False)
    if not pc.any(mask).as_py():
        return data
    return pc.replace_with_mask(data, mask, rewrite(data.filter(mask)))


def arrow_remove_whitespace(data: pa.Array) -> pa.Array:
    """Column version of `remove_whitespace`."""
    return _rewrite(data, WHITESPACE_CLASS, lambda rows: pc.replace_substring_regex(rows, _WHITESPACE_RUN, ""))


def arrow_collapse_whitespace(data: pa.Array) -> pa.Array:
    """Column version of `collapse_whitespace`; blank values become null."""
    collapsed = _rewrite(data, _NEEDS_COLLAPSE, lambda rows: pc.utf8_trim(
        pc.replace_substring_regex(rows, _WHITESPACE_RUN, " "), " "))
    return null_if_empty(collapsed)


def fullmatch(data: pa.Array, pattern: str) -> np.ndarray:
    """Boolean mask: the whole value matches the RE2 pattern (null -> False)."""
    matched = pc.match_substring_regex(data, f"^(?:{pattern})$")
    return pc.fill_null(matched, False).to_numpy(zero_copy_only=False)


def fixed_width_bytes(data: pa.Array, width: int) -> np.ndarray:
    """(n, width) uint8 matrix of values that are all exactly `width` ASCII bytes.

    The caller guarantees it (for instance with `fullmatch` on an ASCII class);
    the bytes are read straight from the Arrow buffer, no Python loop.
    """
    data = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    if len(data) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    data = data.cast(pa.large_binary())
    offsets = np.frombuffer(data.buffers()[1], dtype=np.int64)[data.offset:data.offset + len(data) + 1]
    start = int(offsets[0])
    raw = np.frombuffer(data.buffers()[2], dtype=np.uint8)[start:start + width * len(data)]
    return raw.reshape(len(data), width)


def strings_from_bytes(matrix: np.ndarray) -> pa.Array:
    """Rows of an (n, width) uint8 ASCII matrix as an Arrow large_string array."""
    n, width = matrix.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int64) * width).tobytes())
    body = pa.py_buffer(np.ascontiguousarray(matrix).tobytes())
    return pa.LargeStringArray.from_buffers(n, offsets, body)


def scatter(mask: np.ndarray, values: pa.Array) -> pa.Array:
    """A len(mask) string array: `values` in order where mask is true, null elsewhere."""
    empty = pa.nulls(len(mask), pa.large_string())
    if len(values) == 0:
        return empty
    if values.type != pa.large_string():
        values = values.cast(pa.large_string())
    return pc.replace_with_mask(empty, pa.array(mask, pa.bool_()), values)


def map_unique(values: pd.Series, function: Callable[[str], object]) -> pd.Series:
    """Apply a scalar function once per distinct non-null value (object results)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    results = np.empty(len(uniques) + 1, dtype=object)
    results[:-1] = [function(u) for u in uniques]
    results[-1] = None
    return pd.Series(results[codes], index=values.index)


def map_unique_arrow(data: pa.Array, function: Callable[[str], str | None]) -> pa.Array:
    """A string function applied once per distinct non-null value, all in Arrow."""
    data = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    encoded = pc.dictionary_encode(data)
    mapped = pa.array([function(value) for value in encoded.dictionary.to_pylist()], pa.large_string())
    return mapped.take(encoded.indices)
