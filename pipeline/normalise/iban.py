"""Bank accounts: IBAN, and old Finnish domestic account numbers converted to IBAN.

An IBAN is validated by python-stdnum (`stdnum.iban`: country format and the
ISO 7064 mod 97-10 check digits) and kept in its compact form: no spaces,
upper case. Åland IBANs (AX) follow the Finnish format, which stdnum does not
know, so they are checked as Finnish ones.

An old domestic account number (`123456-785`, also written without the
hyphen) becomes an IBAN by the Finnish rule: the first digit is the bank group;
for groups 4 and 5 zeros are inserted after the 7th digit, for the others after
the 6th, to 14 digits; the last of the 14 digits is a Luhn check digit; the
IBAN is FI, the ISO 7064 check digits and those 14 digits.

>>> validate('FI21 1234 5600 0007 85')
'FI2112345600000785'
>>> domestic_to_iban('123456-785')
'FI2112345600000785'
>>> domestic_to_iban('423456-781')
'FI5542345670000081'
>>> to_iban('423456781')
('FI5542345670000081', True)
>>> bic('FI2112345600000785')
'NDEAFIHH'
>>> repair('FI21 1234 56OO OOO7 85')
('FI2112345600000785', False, True)
>>> validate('FI21 1234 5600 0007 86')
Traceback (most recent call last):
    ...
pipeline.normalise.errors.InvalidChecksum: the check character or digits do not match
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import schwifty
from schwifty import exceptions as schwifty_errors
from stdnum import exceptions as stdnum_errors
from stdnum import iban as stdnum_iban
from stdnum import luhn

from pipeline.normalise import _text
from pipeline.normalise.status import Status
from pipeline.normalise.errors import (
    EmptyValue,
    InvalidChecksum,
    InvalidFormat,
    InvalidLength,
    NormaliseError,
    UnknownBankGroup,
    UnknownCountry,
)

# The BIC of a Finnish bank code (digits 5-7 of a Finnish or Åland IBAN, the first
# digits of an old domestic account number) comes from schwifty's bank registry
# (`schwifty.BIC.from_bank_code`, the registry behind `schwifty.IBAN(...).bic`),
# which follows Finance Finland's list "Suomalaiset rahalaitostunnukset ja
# BIC-koodit" release by release: no hand-kept table to fall behind (one did, by 40
# codes and 8 payment institutions). Public bank data, not personal data. A column
# asks the registry once per distinct bank code (`bic_series`), never per row.
BIC_REGISTRY_COUNTRY = "FI"  # Åland (AX) IBANs carry Finnish bank codes; schwifty has no AX registry

FINNISH_COUNTRIES = ("FI", "AX")
DOMESTIC_GROUPS_PADDED_AFTER_7 = ("4", "5")  # Säästöpankit, POP, Aktia; OP
_SEPARATORS = re.compile(_text.WHITESPACE_CLASS[:-1] + "\\-]")
_FINNISH_IBAN_RE = re.compile(r"(FI|AX)[0-9]{16}")
_DOMESTIC_RE = re.compile(r"[0-9]{8,14}")


def compact(value: str) -> str:
    """Spaces, all other whitespace and hyphens removed, ASCII letters upper case.

    >>> compact(' fi21 1234 5600 0007 85 ')
    'FI2112345600000785'
    """
    return _text.ascii_upper(_SEPARATORS.sub("", value))


def _country_code_digits(country: str) -> str:
    return "".join(str(ord(letter) - 55) for letter in country)


def validate(value: str) -> str:
    """The compact IBAN if valid (format of its country and check digits), else a typed error."""
    number = compact(value)
    if not number:
        raise EmptyValue()
    if number[:2] == "AX":  # Åland uses the Finnish format
        if not _FINNISH_IBAN_RE.fullmatch(number):
            raise InvalidFormat()
        if int(number[4:] + _country_code_digits("AX") + number[2:4]) % 97 != 1:
            raise InvalidChecksum()
        return number
    try:
        return stdnum_iban.validate(number)
    except stdnum_errors.InvalidChecksum:
        raise InvalidChecksum() from None
    except stdnum_errors.InvalidLength:
        raise InvalidLength() from None
    except stdnum_errors.InvalidComponent:
        raise UnknownCountry() from None
    except stdnum_errors.ValidationError:
        raise InvalidFormat() from None


def machine_format(value: str) -> str:
    """The 14-digit machine form of a domestic account number.

    >>> machine_format('123456-785'), machine_format('423456-781')
    ('12345600000785', '42345670000081')
    """
    digits = compact(value)
    if not _DOMESTIC_RE.fullmatch(digits):
        raise InvalidFormat()
    if digits[0] in "09":
        raise UnknownBankGroup()
    split = 7 if digits[0] in DOMESTIC_GROUPS_PADDED_AFTER_7 else 6
    return digits[:split] + digits[split:].rjust(14 - split, "0")


def domestic_to_iban(value: str) -> str:
    """A Finnish domestic account number as IBAN; its Luhn check digit is checked."""
    bban = machine_format(value)
    if not luhn.is_valid(bban):
        raise InvalidChecksum()
    return "FI" + stdnum_iban.calc_check_digits("FI00" + bban) + bban


def to_iban(value: str) -> tuple[str, bool]:
    """An IBAN or a domestic account number as IBAN; returns (iban, converted)."""
    number = compact(value)
    if _DOMESTIC_RE.fullmatch(number):
        return domestic_to_iban(number), True
    return validate(number), False


def repair_o_for_zero(number: str) -> str:
    """The letter O made a zero, except in an IBAN's country code.

    >>> repair_o_for_zero('FI21123456OO000785'), repair_o_for_zero('1234O6785')
    ('FI2112345600000785', '123406785')
    """
    if re.fullmatch(r"[A-Z]{2}.*", number):
        return number[:2] + number[2:].replace("O", "0")
    return number.replace("O", "0")


def repair(value: str) -> tuple[str, bool, bool]:
    """`to_iban`, retried once with O read as zero; returns (iban, converted, repaired)."""
    try:
        return (*to_iban(value), False)
    except NormaliseError:
        number = compact(value)
        fixed = repair_o_for_zero(number)
        if fixed != number:
            try:
                return (*to_iban(fixed), True)
            except NormaliseError:
                pass
        raise


@functools.cache
def bic_of_bank_code(code: str) -> str | None:
    """The BIC schwifty's registry gives a three-digit Finnish bank code, None if none.

    >>> bic_of_bank_code('423'), bic_of_bank_code('999')
    ('ITELFIHH', None)
    """
    try:
        return str(schwifty.BIC.from_bank_code(BIC_REGISTRY_COUNTRY, code))
    except schwifty_errors.SchwiftyException:  # no bank with this code (or no BIC for it)
        return None


def bic(iban: str) -> str | None:
    """The BIC of a Finnish (or Åland) IBAN's bank code, None if not known.

    >>> bic('FI5542345670000081'), bic('FI4279912345678900'), bic('DE89370400440532013000')
    ('ITELFIHH', 'HOLVFIHH', None)
    """
    if iban[:2] not in FINNISH_COUNTRIES or not iban[4:7].isdigit() or len(iban[4:7]) != 3:
        return None
    return bic_of_bank_code(iban[4:7])


# --- column-wise ----------------------------------------------------------------------------


class Inspection(NamedTuple):
    """What `normalise_series` says about one value."""

    status: Status
    iban: str | None
    bic: str | None
    converted: bool
    repaired: bool


def inspect(value: str | None) -> Inspection:
    """The scalar reference for one row of `normalise_series`.

    >>> inspect('123456-785')
    Inspection(status=<Status.VALID: 1>, iban='FI2112345600000785', bic='NDEAFIHH', converted=True, repaired=False)
    """
    if value is None or not compact(value):
        return Inspection(Status.MISSING, None, None, False, False)
    try:
        number, converted, repaired = repair(value)
    except NormaliseError:
        return Inspection(Status.INVALID, None, None, False, False)
    return Inspection(Status.VALID, number, bic(number), converted, repaired)


def _mod97(matrix: np.ndarray, start: np.ndarray | int = 0) -> np.ndarray:
    """Running remainder mod 97 of digit columns (ASCII bytes) appended to `start`."""
    remainder = np.zeros(len(matrix), dtype=np.int64) + start
    for column in matrix.T:
        remainder = (remainder * 10 + (column.astype(np.int64) - 48)) % 97
    return remainder


def _finnish_ibans(matrix: np.ndarray) -> np.ndarray:
    """Check-digit verdict for (n, 18) FI/AX IBAN byte rows."""
    remainder = _mod97(matrix[:, 4:])
    for column in (0, 1):  # country letters count as two digits each (A=10 ... Z=35)
        remainder = (remainder * 100 + matrix[:, column].astype(np.int64) - 55) % 97
    return _mod97(matrix[:, 2:4], remainder) == 1


def _luhn_ok(matrix: np.ndarray) -> np.ndarray:
    """Luhn verdict for (n, 14) digit byte rows."""
    digits = matrix.astype(np.int64) - 48
    doubled = digits[:, -2::-2] * 2
    total = digits[:, ::-2].sum(axis=1) + (doubled - 9 * (doubled > 9)).sum(axis=1)
    return total % 10 == 0


def _domestic(numbers: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Luhn verdict and IBAN strings (for every row) of 8-14 digit domestic numbers."""
    after_seven = pc.is_in(pc.utf8_slice_codeunits(numbers, 0, 1), pa.array(DOMESTIC_GROUPS_PADDED_AFTER_7))
    head = pc.if_else(after_seven, pc.utf8_slice_codeunits(numbers, 0, 7), pc.utf8_slice_codeunits(numbers, 0, 6))
    tail = pc.if_else(after_seven, pc.utf8_lpad(pc.utf8_slice_codeunits(numbers, 7), 7, "0"),
                      pc.utf8_lpad(pc.utf8_slice_codeunits(numbers, 6), 8, "0"))
    bban = _text.fixed_width_bytes(pc.binary_join_element_wise(head, tail, pa.scalar("", pa.large_string())), 14)
    luhn_ok = _luhn_ok(bban)
    remainder = _mod97(bban)
    for digit in "151800":  # F=15, I=18, then the check digits' places
        remainder = (remainder * 10 + int(digit)) % 97
    check = 98 - remainder
    iban = np.empty((len(bban), 18), dtype=np.uint8)
    iban[:, 0], iban[:, 1] = ord("F"), ord("I")
    iban[:, 2], iban[:, 3] = 48 + check // 10, 48 + check % 10
    iban[:, 4:] = bban
    return luhn_ok, _text.strings_from_bytes(iban)


def normalise_series(values: pd.Series) -> pd.DataFrame:
    """Validate and convert a column of accounts.

    Returns a frame with the input's index and columns `iban` (compact, NA if
    invalid or missing), `bic` (NA if unknown), `status` (Status.MISSING, Status.VALID,
    Status.INVALID), `converted` (from a domestic number) and `repaired` (O read as zero).
    Finnish IBANs and domestic numbers are checked with numpy; any other shape
    goes through `inspect` once per distinct value.
    """
    n = len(values)
    compacted = pc.ascii_upper(pc.replace_substring_regex(_text.to_arrow(values), _SEPARATORS.pattern, ""))
    present = pc.fill_null(pc.not_equal(compacted, ""), False).to_numpy(zero_copy_only=False)
    status = np.where(present, Status.INVALID, Status.MISSING).astype(np.int8)
    converted = np.zeros(n, dtype=bool)
    repaired = np.zeros(n, dtype=bool)
    parts: list[pa.Array] = []

    finnish = _text.fullmatch(compacted, _FINNISH_IBAN_RE.pattern)
    if finnish.any():
        rows = compacted.filter(pa.array(finnish))
        ok = _finnish_ibans(_text.fixed_width_bytes(rows, 18))
        good = np.zeros(n, dtype=bool)
        good[np.flatnonzero(finnish)[ok]] = True
        status[good] = Status.VALID
        parts.append(_text.scatter(good, rows.filter(pa.array(ok))))

    domestic = _text.fullmatch(compacted, _DOMESTIC_RE.pattern)
    domestic &= ~_text.fullmatch(compacted, "[09].*")  # no such bank group
    if domestic.any():
        ok, ibans = _domestic(compacted.filter(pa.array(domestic)))
        good = np.zeros(n, dtype=bool)
        good[np.flatnonzero(domestic)[ok]] = True
        status[good] = Status.VALID
        converted |= good
        parts.append(_text.scatter(good, ibans.filter(pa.array(ok))))

    # Everything else (other countries, O for zero, odd shapes) value by value.
    other = present & ~finnish & ~domestic
    if other.any():
        rows = np.flatnonzero(other)
        inspected = _text.map_unique(_text.to_series(compacted.filter(pa.array(other)), pd.RangeIndex(len(rows))),
                                     inspect)
        found = np.array([i.status == Status.VALID for i in inspected], dtype=bool)
        status[rows[found]] = Status.VALID
        converted[rows] = [i.converted for i in inspected]
        repaired[rows] = [i.repaired for i in inspected]
        good = np.zeros(n, dtype=bool)
        good[rows[found]] = True
        parts.append(_text.scatter(good, pa.array([i.iban for i in inspected[found]], pa.large_string())))

    iban = pc.coalesce(*parts) if parts else pa.nulls(n, pa.large_string())
    iban_series = _text.to_series(iban, values.index)
    return pd.DataFrame({
        "iban": iban_series,
        "bic": bic_series(iban_series),
        "status": status,
        "converted": converted,
        "repaired": repaired,
    }, index=values.index)


def bic_series(ibans: pd.Series) -> pd.Series:
    """`bic` for a column of valid compact IBANs (NA in, NA out): the registry is asked
    once per distinct bank code of the column (at most 1,000), then spread by position."""
    data = _text.to_arrow(ibans)
    finnish = _text.fullmatch(data, "(FI|AX)[0-9]{5}.*")
    result = pa.nulls(len(ibans), pa.large_string())
    if finnish.any():
        codes = pc.cast(pc.utf8_slice_codeunits(data.filter(pa.array(finnish)), 4, 7), pa.int64()).to_numpy()
        distinct, positions = np.unique(codes, return_inverse=True)
        bics = pa.array([bic_of_bank_code(f"{code:03d}") for code in distinct], pa.large_string())
        found = bics.take(pa.array(positions))
        result = pc.if_else(pa.array(finnish), _text.scatter(finnish, found), result)
    return _text.to_series(result, ibans.index)
