"""Personal identity code (henkilötunnus): scalar rules, the numpy column path, stdnum as oracle.

All codes are synthetic: built here from a date, a century sign and an
individual number, with the check character computed by the rule written out
below (not by the module under test), or python-stdnum's documented examples.
"""

from __future__ import annotations

import datetime

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.fi import hetu as stdnum_hetu

from pipeline.normalise import hetu
from pipeline.normalise.status import Status
from pipeline.normalise.errors import (
    FutureBirthDate,
    ImplausibleBirthDate,
    InvalidChecksum,
    InvalidComponent,
    InvalidDate,
    InvalidFormat,
    NormaliseError,
    TemporaryCode,
)

TODAY = datetime.date(2026, 11, 24)
CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
SIGNS_BY_CENTURY = {1800: "+", 1900: "-YXWVU", 2000: "ABCDEF"}
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_code(born: datetime.date, individual: int, sign: str | None = None) -> str:
    """A well-formed code for the date and individual number (check character by the rule)."""
    century = born.year // 100 * 100
    sign = sign or SIGNS_BY_CENTURY[century][0]
    nine = f"{born:%d%m}{born.year % 100:02d}{individual:03d}"
    return f"{nine[:6]}{sign}{nine[6:]}{CHECK[int(nine) % 31]}"


dates = st.dates(min_value=hetu.EARLIEST_LIVING_BIRTH, max_value=TODAY)
permanent = st.integers(min_value=2, max_value=899)


@st.composite
def valid_codes(draw) -> str:
    born = draw(dates)
    signs = SIGNS_BY_CENTURY[born.year // 100 * 100]
    return make_code(born, draw(permanent), draw(st.sampled_from(signs)))


@st.composite
def code_like_text(draw) -> str | None:
    """Valid codes, damaged codes and noise, typed the ways people type them."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.none() | st.text(alphabet=" \t\u00a0", max_size=3))
    if kind == 1:
        return draw(st.text(alphabet="0123456789ABCDEFHJKLMNPRSTUVWXYZOo+-a ä", max_size=13))
    born = draw(st.dates(min_value=datetime.date(1800, 1, 1), max_value=datetime.date(2099, 12, 31)))
    individual = draw(st.integers(0, 999))
    sign = draw(st.sampled_from("+-YXWVUABCDEFG"))
    code = list(make_code(born, individual, sign))
    if kind >= 3:  # one character replaced by anything plausible (O for zero among them)
        position = draw(st.integers(0, 10))
        code[position] = draw(st.sampled_from("0123456789OoAZ-+ä"))
    if kind == 4:
        code = [c.replace("0", "O") if draw(st.booleans()) else c for c in code]
    text = "".join(code)
    if draw(st.booleans()):
        text = text.lower()
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = f" {text[:cut]}{draw(st.sampled_from([' ', '  ', chr(9), chr(160)]))}{text[cut:]} "
    return text


# --- scalar rules -----------------------------------------------------------------------------

def test_stdnum_documented_examples() -> None:
    assert hetu.validate("131052-308T") == "131052-308T"
    with pytest.raises(InvalidChecksum):
        hetu.validate("131052-308U")
    with pytest.raises(InvalidDate):  # 31 February
        hetu.validate("310252-308Y")
    assert hetu.compact("131052a308t") == "131052A308T"


def test_every_century_sign_gives_a_distinct_valid_code() -> None:
    born, individual = datetime.date(1985, 3, 12), 123
    codes = [make_code(born, individual, sign) for sign in "-YXWVU"]
    assert len(set(codes)) == 6
    for code in codes:
        assert hetu.validate(code, TODAY) == code
        assert hetu.birth_date(code) == born
    two_thousands = [make_code(datetime.date(2012, 3, 12), individual, sign) for sign in "ABCDEF"]
    assert {hetu.birth_date(code) for code in two_thousands} == {datetime.date(2012, 3, 12)}
    assert hetu.birth_date(make_code(datetime.date(1885, 3, 12), individual, "+")) == datetime.date(1885, 3, 12)


@pytest.mark.parametrize("born", [datetime.date(1885, 3, 12), datetime.date(1899, 12, 31)])
def test_a_code_born_in_the_1800s_is_no_living_persons_code(born: datetime.date) -> None:
    # Typed with + for -, a 1950s code reads as the 1850s: another person's valid code
    # by stdnum, which would keep one person's records apart for good.
    code = make_code(born, 123)
    assert stdnum_hetu.is_valid(code)
    with pytest.raises(ImplausibleBirthDate):
        hetu.validate(code, TODAY)
    assert hetu.inspect(code, TODAY) == (Status.TOO_OLD, None, False, None)
    wrong_check = code[:-1] + CHECK[(CHECK.index(code[-1]) + 1) % 31]
    assert hetu.inspect(wrong_check, TODAY).birth_date is None
    frame = hetu.normalise_series(pd.Series([code, make_code(hetu.EARLIEST_LIVING_BIRTH, 123)],
                                            dtype="string[pyarrow]"), TODAY)
    assert frame["status"].tolist() == [Status.TOO_OLD, Status.VALID]
    assert frame["personal_id"].isna().tolist() == [True, False]
    assert frame["birth_date"].isna().tolist() == [True, False]


def test_intake_example_pair_are_two_valid_codes() -> None:
    assert hetu.validate("010101-123N", TODAY) != hetu.validate("010101Y123N", TODAY)


def test_sign_must_match_nothing_but_the_sign_table() -> None:
    code = make_code(datetime.date(1985, 3, 12), 123)
    with pytest.raises(InvalidFormat):
        hetu.validate(code[:6] + "G" + code[7:], TODAY)


@pytest.mark.parametrize("individual", [900, 901, 950, 999])
def test_temporary_codes_are_rejected_as_identity(individual: int) -> None:
    code = make_code(datetime.date(1970, 6, 1), individual)
    assert stdnum_hetu.is_valid(code, allow_temporary=True)
    with pytest.raises(TemporaryCode):
        hetu.validate(code, TODAY)
    assert hetu.inspect(code, TODAY) == (Status.TEMPORARY, None, False, datetime.date(1970, 6, 1))


@pytest.mark.parametrize(("individual", "temporary"), [(899, False), (900, True), (999, True)])
@pytest.mark.parametrize("born", [datetime.date(1970, 6, 1), datetime.date(2004, 2, 29)])
def test_the_temporary_boundary_is_900_on_the_scalar_and_the_column_path(individual: int, temporary: bool,
                                                                         born: datetime.date) -> None:
    """899 is the last permanent individual number, 900 the first temporary one, 999 the last:
    the same verdict from `validate`, `inspect` and the vectorised `normalise_series`."""
    code = make_code(born, individual)
    assert stdnum_hetu.is_valid(code, allow_temporary=True)  # well formed, whatever the number
    expected = Status.TEMPORARY if temporary else Status.VALID
    # The scalar path.
    if temporary:
        with pytest.raises(TemporaryCode):
            hetu.validate(code, TODAY)
    else:
        assert hetu.validate(code, TODAY) == code
    assert hetu.inspect(code, TODAY) == (expected, None if temporary else code, False, born)
    # The column path, the code alone and among others (a permanent one, a temporary one, a gap).
    alone = hetu.normalise_series(pd.Series([code], dtype="string[pyarrow]"), TODAY)
    assert alone["status"].tolist() == [expected]
    mixed = hetu.normalise_series(pd.Series([make_code(born, 123), code, None, make_code(born, 950)],
                                            dtype="string[pyarrow]"), TODAY)
    assert mixed["status"].tolist() == [Status.VALID, expected, Status.MISSING, Status.TEMPORARY]
    for frame, row in ((alone, 0), (mixed, 1)):
        stored = frame["personal_id"].iloc[row]
        assert (pd.isna(stored) if temporary else stored == code), "a temporary code kept, or a permanent one lost"
        assert frame["birth_date"].iloc[row] == pd.Timestamp(born)
        assert bool(frame["birth_date_from_invalid_code"].iloc[row]) == temporary


@pytest.mark.parametrize("individual", [0, 1])
def test_individual_numbers_below_two_are_invalid(individual: int) -> None:
    code = make_code(datetime.date(1970, 6, 1), individual)
    for typed in (code, code[:-1] + "Z"):  # whatever the check character
        with pytest.raises(InvalidComponent):
            hetu.validate(typed, TODAY)
        assert hetu.inspect(typed, TODAY).status == Status.INVALID
        column = hetu.normalise_series(pd.Series([typed], dtype="string[pyarrow]"), TODAY)
        assert column["status"].iloc[0] == Status.INVALID


def test_birth_date_in_the_future_is_invalid() -> None:
    tomorrow = TODAY + datetime.timedelta(days=1)
    with pytest.raises(FutureBirthDate):
        hetu.validate(make_code(tomorrow, 123), TODAY)
    assert hetu.validate(make_code(TODAY, 123), TODAY) == make_code(TODAY, 123)
    assert hetu.inspect(make_code(tomorrow, 123), TODAY) == (Status.FUTURE, None, False, None)


def test_spaces_and_lower_case_are_normalised() -> None:
    code = make_code(datetime.date(2004, 2, 29), 77)
    typed = " " + code[:3] + " \u00a0" + code[3:].lower() + "\t"
    assert hetu.validate(typed, TODAY) == code


def test_letter_o_for_zero_is_repaired_only_when_the_code_then_validates() -> None:
    code = make_code(datetime.date(1990, 10, 10), 203)
    typed = code.replace("0", "O")
    assert hetu.repair(typed, TODAY) == (code, True)
    assert hetu.repair(code, TODAY) == (code, False)
    assert hetu.inspect(typed.lower(), TODAY) == (Status.VALID, code, True, datetime.date(1990, 10, 10))
    # repaired but still wrong (check character off): the error of the code as written
    wrong = code[:-1] + ("1" if code[-1] != "1" else "2")
    with pytest.raises(InvalidFormat):
        hetu.repair(wrong.replace("0", "O"), TODAY)
    # O is never a century sign: the sign position is not repaired
    assert hetu.repair_o_for_zero(code[:6] + "O" + code[7:])[6] == "O"


def test_bad_check_character_keeps_a_past_birth_date_for_the_caller() -> None:
    code = make_code(datetime.date(1961, 4, 30), 455)
    wrong = code[:-1] + CHECK[(CHECK.index(code[-1]) + 1) % 31]
    assert hetu.inspect(wrong, TODAY) == (Status.BAD_CHECK, None, False, datetime.date(1961, 4, 30))


def test_errors_carry_no_value() -> None:
    code = make_code(datetime.date(1961, 4, 30), 455)
    for bad in (code[:-1] + "Z", make_code(datetime.date(1961, 4, 30), 955), "31" + code[2:]):
        with pytest.raises(NormaliseError) as caught:
            hetu.validate(bad, TODAY)
        assert bad not in str(caught.value) and code[:6] not in str(caught.value)


# --- properties -------------------------------------------------------------------------------

@FAST
@given(valid_codes())
def test_generated_valid_codes_validate_and_agree_with_stdnum(code: str) -> None:
    assert hetu.validate(code, TODAY) == code
    assert stdnum_hetu.is_valid(code)
    assert hetu.birth_date(code).strftime("%d%m%y") == code[:6]


@FAST
@given(valid_codes(), st.sampled_from([0, 1, 2, 3, 4, 5, 7, 8, 9]), st.integers(1, 9))
def test_any_single_digit_change_is_rejected(code: str, position: int, shift: int) -> None:
    changed = code[:position] + str((int(code[position]) + shift) % 10) + code[position + 1:]
    assert not hetu.is_valid(changed, TODAY)
    try:
        born, individual = hetu._parse(changed)
    except NormaliseError:
        return  # the change broke the date: rejected before the check character
    if individual >= 2:
        with pytest.raises(InvalidChecksum):
            hetu.validate(changed, datetime.date(2100, 1, 1))


@FAST
@given(valid_codes())
def test_validate_is_idempotent(code: str) -> None:
    once = hetu.validate(code.lower(), TODAY)
    assert hetu.validate(once, TODAY) == once


@FAST
@given(st.lists(code_like_text(), max_size=40))
def test_column_path_equals_scalar_path(values: list[str | None]) -> None:
    frame = hetu.normalise_series(pd.Series(values, dtype="string[pyarrow]"), TODAY)
    for i, value in enumerate(values):
        expected = hetu.inspect(value, TODAY)
        row = frame.iloc[i]
        assert row["status"] == expected.status
        assert (None if pd.isna(row["personal_id"]) else row["personal_id"]) == expected.personal_id
        assert bool(row["repaired"]) == expected.repaired
        got_born = None if pd.isna(row["birth_date"]) else row["birth_date"].date()
        assert got_born == expected.birth_date
        assert bool(row["birth_date_from_invalid_code"]) == (expected.status != Status.VALID
                                                             and expected.birth_date is not None)


@FAST
@given(st.lists(code_like_text(), max_size=40))
def test_column_path_agrees_with_stdnum(values: list[str | None]) -> None:
    # stdnum has no notion of a birth date in the future or in the 1800s: those are
    # the register's own rules, so they are applied on top of stdnum's verdict.
    frame = hetu.normalise_series(pd.Series(values, dtype="string[pyarrow]"), TODAY)
    for value, status, repaired in zip(values, frame["status"], frame["repaired"]):
        if value is None or repaired:
            continue
        compact = hetu.compact(value)
        try:
            born = hetu.birth_date(compact)
        except NormaliseError:
            born = None
        living = born is None or hetu.EARLIEST_LIVING_BIRTH <= born <= TODAY
        assert (status == Status.VALID) == (stdnum_hetu.is_valid(compact) and living)
        assert (status == Status.TEMPORARY) == (stdnum_hetu.is_valid(compact, allow_temporary=True)
                                              and not stdnum_hetu.is_valid(compact) and living)


def test_column_path_keeps_the_index_and_never_outputs_an_invalid_code() -> None:
    good = make_code(datetime.date(1985, 3, 12), 123)
    temporary = make_code(datetime.date(1985, 3, 12), 923)
    future = make_code(datetime.date(2030, 1, 1), 123)
    values = pd.Series([good, temporary, future, None, "  ", good[:-1] + "Z"], index=[10, 11, 12, 13, 14, 15],
                       dtype="string[pyarrow]")
    frame = hetu.normalise_series(values, TODAY)
    assert list(frame.index) == [10, 11, 12, 13, 14, 15]
    assert frame["personal_id"].tolist()[:1] == [good] and frame["personal_id"].iloc[1:].isna().all()
    assert frame["status"].tolist() == [Status.VALID, Status.TEMPORARY, Status.FUTURE, Status.MISSING, Status.MISSING,
                                        Status.BAD_CHECK]
    assert frame["birth_date_from_invalid_code"].tolist() == [False, True, False, False, False, True]


def test_the_stored_shape_takes_every_century_sign_and_no_other():
    import re

    from schemas.canonical import PERSONAL_ID_SHAPE

    for sign in hetu.CENTURY_SIGNS:
        assert re.fullmatch(PERSONAL_ID_SHAPE, f"010101{sign}123N"), sign
    for sign in "GZO/ ":
        assert not re.fullmatch(PERSONAL_ID_SHAPE, f"010101{sign}123N"), sign
