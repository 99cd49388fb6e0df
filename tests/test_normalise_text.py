"""The shared column plumbing: the whitespace class, Arrow/scalar agreement, byte matrices."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.normalise import _text


def test_whitespace_class_is_exactly_pythons_whitespace() -> None:
    import re
    pattern = re.compile(_text.WHITESPACE_CLASS)
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert bool(pattern.fullmatch(char)) == char.isspace(), hex(code)


spaces = "\t\n\x0b\x0c\r\x1c\x1f \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"
texty = st.none() | st.text(alphabet=spaces + "ab-ä\u200b", max_size=10)


@settings(max_examples=300, deadline=None)
@given(st.lists(texty, max_size=20))
def test_arrow_whitespace_functions_equal_scalar_ones(values: list[str | None]) -> None:
    data = _text.to_arrow(pd.Series(values, dtype="object"))
    collapsed = _text.arrow_collapse_whitespace(data).to_pylist()
    removed = _text.arrow_remove_whitespace(data).to_pylist()
    for value, got_collapsed, got_removed in zip(values, collapsed, removed):
        if value is None:
            assert got_collapsed is None and got_removed is None
            continue
        assert got_collapsed == (_text.collapse_whitespace(value) or None)
        assert got_removed == _text.remove_whitespace(value)


def test_fixed_width_bytes_reads_sliced_arrays() -> None:
    data = pa.array(["xx", "abc", "def", "ghi"], pa.large_string()).slice(1)
    matrix = _text.fixed_width_bytes(data, 3)
    assert matrix.shape == (3, 3) and bytes(matrix[2]).decode() == "ghi"
    assert _text.strings_from_bytes(matrix).to_pylist() == ["abc", "def", "ghi"]


def test_scatter_and_map_unique_keep_positions() -> None:
    mask = np.array([False, True, False, True])
    assert _text.scatter(mask, pa.array(["a", "b"])).to_pylist() == [None, "a", None, "b"]
    data = pa.array(["x", None, "y", "x"], pa.large_string())
    assert _text.map_unique_arrow(data, str.upper).to_pylist() == ["X", None, "Y", "X"]


def test_to_arrow_accepts_every_string_dtype() -> None:
    for dtype in ("object", "string[python]", "string[pyarrow]"):
        data = _text.to_arrow(pd.Series(["a", None, "b"], dtype=dtype))
        assert data.type == pa.large_string() and data.to_pylist() == ["a", None, "b"]
