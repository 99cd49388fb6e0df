"""Valid identifiers computed from synthetic numbers.

Nothing here is looked up: identity codes, bank accounts and metering points are
built from random numbers and given the check characters that the intake's
validators (python-stdnum) expect. Each value has a scalar function (documented
by example) and a vectorised twin over numpy arrays, because the generator makes
hundreds of thousands of them.

>>> make_hetu(datetime.date(1952, 10, 13), 308)
'131052-308T'
>>> fi_bban('123456', '78')
'12345600000785'
>>> iban_from_bban('12345600000785')
'FI2112345600000785'
>>> domestic_account('12345600000785')
'123456-785'
>>> gsrn('64300757400012568')
'643007574000125688'
"""

from __future__ import annotations

import datetime

import numpy as np

HETU_CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_HETU_CHECK_ARRAY = np.array(list(HETU_CHECK_CHARACTERS))

# Century signs by century; the first is the classic one, the others were added in 2023.
CENTURY_SIGNS: dict[int, str] = {1800: "+", 1900: "-YXWVU", 2000: "ABCDEF"}


# --- henkilötunnus ------------------------------------------------------------------

def hetu_check_character(date_and_individual: int) -> str:
    """The check character of DDMMYYNNN read as one integer.

    >>> hetu_check_character(131052308)
    'T'
    """
    return HETU_CHECK_CHARACTERS[date_and_individual % 31]


def make_hetu(birth_date: datetime.date, individual: int, sign: str | None = None) -> str:
    """A henkilötunnus for a birth date and individual number (2-999).

    The sign defaults to the classic one of the birth century.

    >>> make_hetu(datetime.date(2005, 1, 2), 123)
    '020105A123B'
    >>> make_hetu(datetime.date(2005, 1, 2), 123, 'B')
    '020105B123B'
    """
    century = birth_date.year // 100 * 100
    sign = sign or CENTURY_SIGNS[century][0]
    if sign not in CENTURY_SIGNS[century]:
        raise ValueError("century sign does not match the birth year")
    number = int(f"{birth_date:%d%m%y}{individual:03d}")
    return f"{birth_date:%d%m%y}{sign}{individual:03d}{hetu_check_character(number)}"


def hetu_array(day: np.ndarray, month: np.ndarray, year: np.ndarray,
               sign: np.ndarray, individual: np.ndarray) -> np.ndarray:
    """Vectorised `make_hetu`: arrays of day, month, full year, sign and individual number."""
    yy = year % 100
    number = day.astype(np.int64) * 10_000_000 + month * 100_000 + yy * 1_000 + individual
    check = _HETU_CHECK_ARRAY[number % 31]
    return np.array([f"{d:02d}{m:02d}{y:02d}{s}{n:03d}{c}"
                     for d, m, y, s, n, c in zip(day.tolist(), month.tolist(), yy.tolist(),
                                                 sign.tolist(), individual.tolist(), check.tolist())],
                    dtype=object)


# --- bank accounts ------------------------------------------------------------------

def luhn_check_digit(digits: str) -> str:
    """The Luhn (mod 10) check digit of a digit string.

    >>> luhn_check_digit('1234560000078')
    '5'
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _pads_after_seventh(bank_prefix: str) -> bool:
    # Savings and co-operative banks (groups 4 and 5) pad after the 7th digit.
    return bank_prefix[0] in "45"


def fi_bban(bank_prefix: str, body: str) -> str:
    """The 14-digit Finnish BBAN from a 6-digit bank prefix and the account body.

    The body is what follows the hyphen in the old domestic form, without
    its final check digit.

    >>> fi_bban('423456', '781')
    '42345670000818'
    """
    if _pads_after_seventh(bank_prefix):
        digits = bank_prefix + body[0] + body[1:].rjust(6, "0")
    else:
        digits = bank_prefix + body.rjust(7, "0")
    return digits + luhn_check_digit(digits)


def domestic_account(bban: str) -> str:
    """The old domestic form (`123456-785`) of a BBAN whose body has no leading zero.

    >>> domestic_account('42345670000818')
    '423456-7818'
    """
    if _pads_after_seventh(bban):
        return f"{bban[:6]}-{bban[6]}{bban[7:].lstrip('0')}"
    return f"{bban[:6]}-{bban[6:].lstrip('0')}"


def iban_from_bban(bban: str) -> str:
    """The FI IBAN of a BBAN: ISO 7064 mod 97-10 check digits."""
    check = 98 - int(bban + "151800") % 97
    return f"FI{check:02d}{bban}"


def format_iban(iban: str) -> str:
    """The printed form, in groups of four.

    >>> format_iban('FI2112345600000785')
    'FI21 1234 5600 0007 85'
    """
    if len(iban) == 18:  # every FI IBAN: the common case, sliced directly for speed
        return f"{iban[:4]} {iban[4:8]} {iban[8:12]} {iban[12:16]} {iban[16:]}"
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """The decimal digits of non-negative integers, most significant first, shape (n, width)."""
    out = np.empty((len(values), width), dtype=np.int64)
    rest = values.astype(np.int64).copy()
    for position in range(width - 1, -1, -1):
        out[:, position] = rest % 10
        rest //= 10
    return out


def _luhn_array(numbers: np.ndarray, width: int) -> np.ndarray:
    digits = _digits(numbers, width)
    weights = np.where((np.arange(width)[::-1] % 2) == 0, 2, 1)
    products = digits * weights
    products = np.where(products > 9, products - 9, products)
    return (10 - products.sum(axis=1) % 10) % 10


def bban_array(bank_prefix: np.ndarray, body: np.ndarray, body_length: np.ndarray) -> np.ndarray:
    """Vectorised `fi_bban` over integer prefixes (6 digits) and bodies of given lengths.

    Returns the BBANs as int64 (14 digits; the first digit is never zero).
    """
    prefix = bank_prefix.astype(np.int64)
    body = body.astype(np.int64)
    first_digit = body // (10 ** (body_length - 1))
    rest = body - first_digit * (10 ** (body_length - 1))
    after_seventh = (prefix // 100_000 == 4) | (prefix // 100_000 == 5)
    thirteen = np.where(after_seventh,
                        prefix * 10_000_000 + first_digit * 1_000_000 + rest,
                        prefix * 10_000_000 + body)
    return thirteen * 10 + _luhn_array(thirteen, 13)


def iban_array(bban: np.ndarray) -> np.ndarray:
    """Vectorised `iban_from_bban` over int64 BBANs; returns compact IBAN strings."""
    # int(bban + '151800') % 97 without overflowing int64.
    remainder = ((bban % 97) * (1_000_000 % 97) + 151800) % 97
    check = 98 - remainder
    return np.array([f"FI{c:02d}{b:014d}" for c, b in zip(check.tolist(), bban.tolist())], dtype=object)


# --- metering points ------------------------------------------------------------------

def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit (weights 3, 1, ... from the right).

    >>> gs1_check_digit('64300757400012568')
    '8'
    """
    total = sum((3 if i % 2 == 0 else 1) * int(ch) for i, ch in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def gsrn(seventeen_digits: str) -> str:
    """An 18-digit GSRN from its first 17 digits."""
    return seventeen_digits + gs1_check_digit(seventeen_digits)


def gsrn_array(seventeen: np.ndarray) -> np.ndarray:
    """Vectorised `gsrn` over int64 numbers of 17 digits; returns strings."""
    digits = _digits(seventeen, 17)
    weights = np.where((np.arange(17)[::-1] % 2) == 0, 3, 1)
    check = (10 - (digits * weights).sum(axis=1) % 10) % 10
    return np.array([f"{n:017d}{c}" for n, c in zip(seventeen.tolist(), check.tolist())], dtype=object)
