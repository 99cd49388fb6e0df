"""Phone numbers: E.164 via phonenumbers, and the column fast path held equal to it.

Numbers are random digits after realistic Finnish prefixes; none is a real
subscriber's on purpose, and none is printed.
"""

from __future__ import annotations

import pandas as pd
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalise import _text, phone
from pipeline.normalise.status import Status
from pipeline.normalise.errors import NormaliseError

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# National-number starts: mobiles, Helsinki and other areas, Åland, service numbers, and some that are not valid.
LEADS = ["40", "41", "44", "45", "46", "49", "50", "9", "2", "3", "5", "6", "8", "13", "14", "17", "18",
         "19", "10", "11", "12", "20", "29", "30", "39", "60", "70", "71", "73", "75", "100", "800", "600", "7"]
SEPARATORS = ["", "", "", " ", " ", "-", "  ", "\t", "\u00a0", " - ", ".", "/", "\u2013", "(", ")", " (", ") ", "[", "]"]


def phonenumbers_e164(value: str) -> str | None:
    """The oracle: phonenumbers itself, on the value with whitespace collapsed."""
    try:
        number = phonenumbers.parse(_text.collapse_whitespace(value), "FI")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@st.composite
def fast_shaped(draw) -> str:
    """`0...`, `+358...`, `00358...` or with the trunk 0 after the country code (`+358 (0)40`),
    a national number of 5-12 digits, punctuation anywhere (`(040) 123 4567`, `040/123.45-67`)."""
    prefix = draw(st.sampled_from(["0", "+358", "00358", "+3580", "003580"]))
    lead = draw(st.sampled_from(LEADS))
    rest = draw(st.text(alphabet="0123456789", min_size=max(0, 5 - len(lead)), max_size=12 - len(lead)))
    text = ""
    for ch in prefix + lead + rest:
        text += ch + draw(st.sampled_from(SEPARATORS))
    return draw(st.sampled_from(["", " ", "(", " (", "puh. ", "Puh:", "tel:", "tel. ", "GSM ", "p.", "mob "])) + text


@st.composite
def phone_like_text(draw) -> str | None:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.none() | st.just("") | st.just(" "))
    if kind <= 2:
        return draw(fast_shaped())
    if kind == 3:
        return draw(st.sampled_from(["358 40 123 4567", "+46 8 123 456 78", "+358 (0)40 123 4567", "040-123 4567 ext 5",
                                     "tel. 09 1234567", "+1 202 555 0143", "(09) 123 4567", "0401234567/0501234567"]))
    return draw(st.text(alphabet="0123456789+()- x./\u2013[]puh:T", max_size=16))


def test_national_and_international_forms() -> None:
    for typed in ("040 123 4567", "0401234567", "+358 40 123 4567", "+358401234567", "00358 40 123 4567",
                  "358 40 123 4567", "040-123 4567"):
        assert phone.validate(typed) == "+358401234567", typed
    assert phone.validate("09 1234567") == "+35891234567"
    assert phone.validate("+46 8 123 456 78") == "+46812345678"


def test_invalid_numbers_raise_without_the_value() -> None:
    for bad in ("040 123", "abc", "+358 04 0123"):
        with pytest.raises(NormaliseError) as caught:
            phone.validate(bad)
        assert bad not in str(caught.value)


@FAST
@given(fast_shaped())
def test_fast_path_equals_phonenumbers(value: str) -> None:
    frame = phone.normalise_series(pd.Series([value], dtype="string[pyarrow]"))
    got = frame["phone"].iloc[0]
    assert (None if pd.isna(got) else got) == phonenumbers_e164(value)
    assert frame["status"].iloc[0] == (Status.VALID if phonenumbers_e164(value) else Status.INVALID)


def normalised_counting_calls(values: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """`normalise_series` over `values`, and the values it handed to phonenumbers."""
    original = phone._parse
    calls: list[str] = []

    def spy(value: str) -> str | None:
        calls.append(value)
        return original(value)

    phone._parse = spy
    try:
        return phone.normalise_series(pd.Series(values, dtype="string[pyarrow]")), calls
    finally:
        phone._parse = original


@settings(max_examples=100, deadline=None)
@given(st.lists(fast_shaped(), min_size=1, max_size=20))
def test_fast_path_decides_without_calling_phonenumbers(values: list[str]) -> None:
    assert normalised_counting_calls(values)[1] == []


def test_spellings_of_one_number_cost_one_phonenumbers_call() -> None:
    """Off the fast path (no `+` before 358 here), punctuation is removed before the
    once-per-distinct-value call: ten spellings of a number are one call, not ten."""
    spellings = ["358 40 123 4567", "358-40-1234567", "358 40 12 34 567", "(358) 40 123 4567", "358.40.123.4567",
                 "358/40 1234567", "358 401 234 567", "358\u201340\u20131234567", " 358 40 123 4567 ", "358401234567"]
    frame, calls = normalised_counting_calls(spellings)
    assert len(calls) == 1
    assert frame["phone"].tolist() == ["+358401234567"] * len(spellings)


@FAST
@given(st.lists(phone_like_text(), max_size=30))
def test_column_path_equals_scalar_path(values: list[str | None]) -> None:
    frame = phone.normalise_series(pd.Series(values, dtype="string[pyarrow]"))
    for i, value in enumerate(values):
        status, e164 = phone.inspect(value)
        assert frame["status"].iloc[i] == status
        got = frame["phone"].iloc[i]
        assert (None if pd.isna(got) else got) == e164
        if value is not None and e164 is not None:
            assert e164 == phonenumbers_e164(value)


@FAST
@given(fast_shaped())
def test_validate_is_idempotent(value: str) -> None:
    e164 = phonenumbers_e164(value)
    if e164 is not None:
        assert phone.validate(phone.validate(value)) == phone.validate(value) == e164
