"""Metering point: 18-digit GSRN starting 643 with a GS1 mod-10 check digit (stdnum.ean's; the column
path, numpy, held to it and to the scalar path)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import ean

from pipeline.normalise import metering_point
from pipeline.normalise.status import Status
from pipeline.normalise.errors import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seventeen = st.text(alphabet="0123456789", min_size=14, max_size=14).map(lambda d: "643" + d)


def gsrn(first17: str) -> str:
    return first17 + ean.calc_check_digit(first17)


def test_intake_example_and_separators() -> None:
    assert metering_point.validate("643007574000125688") == "643007574000125688"
    assert metering_point.validate(" 643 0075 7400-0125 688 ") == "643007574000125688"


@pytest.mark.parametrize(("typed", "error"), [
    ("643007574000125687", InvalidChecksum), ("64300757400012568", InvalidLength),
    ("6430075740001256880", InvalidLength), ("644007574000125688", InvalidComponent),
    ("64300757400012568X", InvalidFormat),
])
def test_invalid(typed: str, error: type) -> None:
    with pytest.raises(error) as caught:
        metering_point.validate(typed)
    assert typed not in str(caught.value)


@FAST
@given(seventeen)
def test_scalar_path_is_stdnums_check_digit(first17: str) -> None:
    assert metering_point.calc_check_digit(first17) == ean.calc_check_digit(first17)
    code = gsrn(first17)
    assert metering_point.validate(code) == code
    assert metering_point.validate(metering_point.validate(code)) == code


@FAST
@given(st.lists(st.tuples(seventeen, st.sampled_from("0123456789")), min_size=1, max_size=40))
def test_column_path_agrees_with_stdnum_ean(candidates: list[tuple[str, str]]) -> None:
    """Every last digit, right or wrong: the numpy path accepts exactly what stdnum's
    check digit says (nine in ten of these are wrong)."""
    values = [body + last for body, last in candidates]
    frame = metering_point.normalise_series(pd.Series(values, dtype="string[pyarrow]"))
    expected = [ean.calc_check_digit(body) == last for body, last in candidates]
    assert (frame["status"] == Status.VALID).tolist() == expected
    assert frame["metering_point"].notna().tolist() == expected


def test_every_wrong_last_digit_fails_on_both_paths() -> None:
    body = "64300757400012568"
    values = [body + str(d) for d in range(10)]
    frame = metering_point.normalise_series(pd.Series(values, dtype="string[pyarrow]"))
    assert (frame["status"] == Status.VALID).tolist() == [d == 8 for d in range(10)]
    assert [metering_point.is_valid(v) for v in values] == [d == 8 for d in range(10)]


@FAST
@given(seventeen, st.integers(0, 17), st.integers(1, 9))
def test_single_digit_change_is_rejected(first17: str, position: int, shift: int) -> None:
    code = gsrn(first17)
    changed = code[:position] + str((int(code[position]) + shift) % 10) + code[position + 1:]
    assert not metering_point.is_valid(changed)


mp_like = st.none() | st.just(" ") | seventeen.map(gsrn) | seventeen.map(lambda d: d + "0") \
    | st.text(alphabet="0123456789 -", max_size=22)


@FAST
@given(st.lists(mp_like, max_size=30))
def test_column_path_equals_scalar_path(values: list[str | None]) -> None:
    frame = metering_point.normalise_series(pd.Series(values, dtype="string[pyarrow]"))
    for i, value in enumerate(values):
        got = frame["metering_point"].iloc[i]
        got = None if pd.isna(got) else got
        if value is None or not metering_point.compact(value):
            assert frame["status"].iloc[i] == Status.MISSING and got is None
        elif metering_point.is_valid(value):
            assert frame["status"].iloc[i] == Status.VALID and got == metering_point.validate(value)
        else:
            assert frame["status"].iloc[i] == Status.INVALID and got is None
