"""Henkilötunnus (HETU, Finnish personal identity code).

The code is `DDMMYYCNNNT`: birth date, century sign, individual number and a
check character (the nine digits DDMMYYNNN modulo 31). The century sign is part
of the identity (docs/intake_formats.md): `-YXWVU` mean the 1900s, `ABCDEF` the 2000s and `+`
the 1800s, so `010101-123N` and `010101Y123N` are two different people.

Checks are python-stdnum's (`stdnum.fi.hetu`), with the register's stricter
rules on top: all whitespace is removed (stdnum keeps inner spaces), temporary
codes (individual number 900-999) are rejected as identity with their own
error, and a birth date after `today` or in the 1800s (`+`, no living person's:
most often `+` typed for `-`) is invalid.

>>> validate('131052+308T')
Traceback (most recent call last):
    ...
pipeline.normalise.errors.ImplausibleBirthDate: the birth date of the identity code lies in the 1800s: no living person's

>>> validate('131052-308T')
'131052-308T'
>>> validate(' 131052 -308t ')
'131052-308T'
>>> validate('131052-308U')
Traceback (most recent call last):
    ...
pipeline.normalise.errors.InvalidChecksum: the check character or digits do not match
>>> validate('010101-123N'), validate('010101Y123N')
('010101-123N', '010101Y123N')
>>> validate('010101-923F')
Traceback (most recent call last):
    ...
pipeline.normalise.errors.TemporaryCode: a temporary identity code is not a person's identity
>>> validate('010130A1235', today=datetime.date(2026, 11, 24))
Traceback (most recent call last):
    ...
pipeline.normalise.errors.FutureBirthDate: the birth date of the identity code lies in the future
>>> birth_date('131052-308T')
datetime.date(1952, 10, 13)
>>> repair('131O52-3O8T')
('131052-308T', True)

`normalise_series` does the same for a whole column with numpy; the tests hold
it equal to the scalar functions and to stdnum.
"""

from __future__ import annotations

import datetime
import re

from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import exceptions as stdnum_errors
from stdnum.fi import hetu as stdnum_hetu

from pipeline.normalise import _text
from pipeline.normalise.status import Status
from pipeline.normalise.errors import (
    EmptyValue,
    FutureBirthDate,
    ImplausibleBirthDate,
    InvalidChecksum,
    InvalidComponent,
    InvalidDate,
    InvalidFormat,
    InvalidLength,
    NormaliseError,
    TemporaryCode,
)

CENTURY_SIGNS: dict[str, int] = {"+": 1800, **dict.fromkeys("-YXWVU", 1900), **dict.fromkeys("ABCDEF", 2000)}
CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
LENGTH = 11
SIGN_POSITION = 6
TEMPORARY_FROM = 900  # individual numbers 900-999 are temporary codes
FIRST_INDIVIDUAL = 2  # for historical reasons individual numbers start at 002
# Nobody born in the 1800s is alive (the oldest people ever documented reached about 122).
# A `+` code on a customer's record is a slipped century sign, most often `+` typed for
# `-`: read as it stands it would be another person's valid code and keep one person's
# records apart for good (rule 4). It is invalid, like a future birth date.
EARLIEST_LIVING_BIRTH = datetime.date(1900, 1, 1)

# First ten characters well formed; the check character is judged on its own, so
# any wrong letter or digit there (even G or Z, outside the check alphabet) is a
# checksum error, and the date part stays readable for `birth_date`.
_BODY_RE = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})([" + re.escape("".join(CENTURY_SIGNS)) + r"])([0-9]{3})")
_CHECK_SHAPE_RE = re.compile(r"[0-9A-Z]")


def compact(value: str) -> str:
    """All whitespace removed, ASCII letters upper case.

    >>> compact(' 131052 -308 t')
    '131052-308T'
    """
    return _text.ascii_upper(_text.remove_whitespace(value))


def calc_check_character(nine_digits: str) -> str:
    """The check character of DDMMYYNNN.

    >>> calc_check_character('131052308')
    'T'
    """
    return CHECK_CHARACTERS[int(nine_digits) % 31]


def _parse(code: str) -> tuple[datetime.date, int]:
    """Birth date and individual number of a compact code; format and date checked."""
    if len(code) != LENGTH:
        raise InvalidLength()
    match = _BODY_RE.fullmatch(code[:10])
    if not match or not _CHECK_SHAPE_RE.fullmatch(code[10]):
        raise InvalidFormat()
    day, month, year, sign, individual = match.groups()
    try:
        born = datetime.date(CENTURY_SIGNS[sign] + int(year), int(month), int(day))
    except ValueError:
        raise InvalidDate() from None
    return born, int(individual)


def validate(value: str, today: datetime.date | None = None) -> str:
    """The canonical code if it is a valid permanent identity code, else a typed error.

    `today` (default: the real today) decides whether the birth date lies in the future.
    """
    code = compact(value)
    if not code:
        raise EmptyValue()
    born, individual = _parse(code)
    if individual < FIRST_INDIVIDUAL:
        raise InvalidComponent()
    try:  # stdnum's own verdict on the rest: the check character
        stdnum_hetu.validate(code, allow_temporary=True)
    except stdnum_errors.ValidationError:  # a wrong check character, or one outside its alphabet
        raise InvalidChecksum() from None
    today = today or datetime.date.today()
    if born > today:
        raise FutureBirthDate()
    if born < EARLIEST_LIVING_BIRTH:
        raise ImplausibleBirthDate()
    if individual >= TEMPORARY_FROM:
        raise TemporaryCode()
    return code


def is_valid(value: str, today: datetime.date | None = None) -> bool:
    """Whether the value is a valid permanent identity code."""
    try:
        return bool(validate(value, today))
    except NormaliseError:
        return False


def birth_date(code: str) -> datetime.date:
    """The birth date read from the date part and century sign.

    The check character and individual number are not checked, so this also
    reads the date of a temporary code or one with a wrong check character.
    """
    return _parse(compact(code))[0]


def repair_o_for_zero(code: str) -> str:
    """The letter O made a zero everywhere but the century sign (no O is valid there).

    >>> repair_o_for_zero('131O52-3O8T')
    '131052-308T'
    """
    if len(code) != LENGTH:
        return code
    return code[:SIGN_POSITION].replace("O", "0") + code[SIGN_POSITION] + code[SIGN_POSITION + 1:].replace("O", "0")


def repair(value: str, today: datetime.date | None = None) -> tuple[str, bool]:
    """`validate`, retried once with O read as zero; returns (code, repaired).

    The repair is only accepted when the repaired code validates; otherwise the
    error of the code as written is raised.
    """
    try:
        return validate(value, today), False
    except NormaliseError:
        repaired = repair_o_for_zero(compact(value))
        if repaired != compact(value) and is_valid(repaired, today):
            return repaired, True
        raise


class Inspection(NamedTuple):
    """What `normalise_series` says about one value."""

    status: Status
    personal_id: str | None
    repaired: bool
    birth_date: datetime.date | None


def inspect(value: str | None, today: datetime.date) -> Inspection:
    """The scalar reference for one row of `normalise_series`.

    >>> inspect('010101-923F', datetime.date(2026, 11, 24))
    Inspection(status=<Status.TEMPORARY: 4>, personal_id=None, repaired=False, birth_date=datetime.date(1901, 1, 1))
    """
    if value is None or not compact(value):
        return Inspection(Status.MISSING, None, False, None)
    try:
        code, repaired = repair(value, today)
        return Inspection(Status.VALID, code, repaired, birth_date(code))
    except TemporaryCode:
        return Inspection(Status.TEMPORARY, None, False, birth_date(value))
    except InvalidChecksum:
        born = birth_date(value)
        return Inspection(Status.BAD_CHECK, None, False, born if EARLIEST_LIVING_BIRTH <= born <= today else None)
    except FutureBirthDate:
        return Inspection(Status.FUTURE, None, False, None)
    except ImplausibleBirthDate:
        return Inspection(Status.TOO_OLD, None, False, None)
    except NormaliseError:
        return Inspection(Status.INVALID, None, False, None)


# --- column-wise ----------------------------------------------------------------------------

_SIGN_CENTURY = np.zeros(256, dtype=np.int64)
for _sign, _century in CENTURY_SIGNS.items():
    _SIGN_CENTURY[ord(_sign)] = _century
_CHECK_LOOKUP = np.frombuffer(CHECK_CHARACTERS.encode("ascii"), dtype=np.uint8)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_DIGIT_COLUMNS = [0, 1, 2, 3, 4, 5, 7, 8, 9]
_O, _ZERO = ord("O"), ord("0")


def _classify(matrix: np.ndarray, today: datetime.date) -> tuple[np.ndarray, np.ndarray]:
    """Status and birth date (datetime64[D], NaT if the date part is bad) per row.

    Same order of checks as `validate`: format, date, individual number, check
    character, future birth date, birth date in the 1800s, temporary code.
    """
    n = len(matrix)
    digits = matrix[:, _DIGIT_COLUMNS].astype(np.int64) - _ZERO
    digits_ok = ((digits >= 0) & (digits <= 9)).all(axis=1)
    century = _SIGN_CENTURY[matrix[:, SIGN_POSITION]]
    sign_ok = century > 0
    digits = np.where(digits_ok[:, None], digits, 0)
    day = digits[:, 0] * 10 + digits[:, 1]
    month = digits[:, 2] * 10 + digits[:, 3]
    year = century + digits[:, 4] * 10 + digits[:, 5]
    individual = digits[:, 6] * 100 + digits[:, 7] * 10 + digits[:, 8]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    days = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    date_ok = digits_ok & sign_ok & month_ok & (day >= 1) & (day <= days)
    born = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    if date_ok.any():
        y, m, d = year[date_ok], month[date_ok], day[date_ok]
        months = ((y - 1970) * 12 + (m - 1)).astype("datetime64[M]")
        born[date_ok] = months.astype("datetime64[D]") + (d - 1).astype("timedelta64[D]")
    nine = (day * 10_000_000 + month * 100_000 + (year % 100) * 1000 + individual)
    check_ok = _CHECK_LOOKUP[nine % 31] == matrix[:, 10]
    future = born > np.datetime64(today, "D")
    too_old = born < np.datetime64(EARLIEST_LIVING_BIRTH, "D")  # NaT compares False
    status = np.full(n, Status.VALID, dtype=np.int8)
    status[individual >= TEMPORARY_FROM] = Status.TEMPORARY
    status[too_old] = Status.TOO_OLD
    status[future] = Status.FUTURE
    status[~check_ok] = Status.BAD_CHECK
    status[~date_ok | (individual < FIRST_INDIVIDUAL)] = Status.INVALID
    return status, born


def normalise_series(values: pd.Series, today: datetime.date) -> pd.DataFrame:
    """Validate a column of identity codes.

    Returns a frame with the input's index and columns
    - `personal_id`: the canonical code where valid and permanent, else NA;
    - `status`: Status.MISSING, VALID, TEMPORARY, FUTURE, TOO_OLD, BAD_CHECK or INVALID;
    - `repaired`: the code only validated with O read as zero;
    - `birth_date`: from valid codes, and from the date part of temporary codes
      or codes with a wrong check character when that date is a past date
      since 1900;
    - `birth_date_from_invalid_code`: the birth date came from such a code.
    """
    n = len(values)
    compacted = pc.ascii_upper(_text.arrow_remove_whitespace(_text.to_arrow(values)))
    present = pc.fill_null(pc.not_equal(compacted, ""), False).to_numpy(zero_copy_only=False)
    status = np.where(present, Status.INVALID, Status.MISSING).astype(np.int8)
    born = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    repaired = np.zeros(n, dtype=bool)
    codes = pa.nulls(n, pa.large_string())

    shaped = _text.fullmatch(compacted, r"[0-9A-Z+\-]{10}[0-9A-Z]")
    rows = np.flatnonzero(shaped)
    if len(rows):
        matrix = _text.fixed_width_bytes(compacted.filter(pa.array(shaped)), LENGTH).copy()
        row_status, row_born = _classify(matrix, today)
        # O typed for zero: retry those rows, keep the repair only if it is valid
        has_o = (matrix[:, _DIGIT_COLUMNS + [10]] == _O).any(axis=1) & (row_status != Status.VALID)
        if has_o.any():
            fixed = matrix[has_o]
            body = fixed[:, _DIGIT_COLUMNS + [10]]
            body[body == _O] = _ZERO
            fixed[:, _DIGIT_COLUMNS + [10]] = body
            fixed_status, fixed_born = _classify(fixed, today)
            accepted = fixed_status == Status.VALID
            target = np.flatnonzero(has_o)[accepted]
            matrix[target] = fixed[accepted]
            row_status[target] = Status.VALID
            row_born[target] = fixed_born[accepted]
            repaired[rows[target]] = True
        status[rows] = row_status
        keep = (row_status == Status.VALID) | (((row_status == Status.TEMPORARY) | (row_status == Status.BAD_CHECK))
                                        & ~np.isnat(row_born) & (row_born <= np.datetime64(today, "D"))
                                        & (row_born >= np.datetime64(EARLIEST_LIVING_BIRTH, "D")))
        born[rows[keep]] = row_born[keep]
        valid_rows = row_status == Status.VALID
        if valid_rows.any():
            valid_mask = np.zeros(n, dtype=bool)
            valid_mask[rows[valid_rows]] = True
            codes = _text.scatter(valid_mask, _text.strings_from_bytes(matrix[valid_rows]))

    return pd.DataFrame({
        "personal_id": _text.to_series(codes, values.index),
        "status": status,
        "repaired": repaired,
        "birth_date": pd.Series(born.astype("datetime64[ns]"), index=values.index),
        "birth_date_from_invalid_code": (status != Status.VALID) & ~np.isnat(born),
    }, index=values.index)

