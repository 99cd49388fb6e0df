"""Phone numbers: validated with `phonenumbers` (default region FI), kept as E.164.

>>> validate('040 123 4567')
'+358401234567'
>>> validate('09 1234567')
'+35891234567'
>>> validate('+358 40 123 4567'), validate('00358 40 123 4567'), validate('358401234567')
('+358401234567', '+358401234567', '+358401234567')
>>> validate('+46 8 123 456 78')
'+46812345678'
>>> validate('040 123')
Traceback (most recent call last):
    ...
pipeline.normalise.errors.InvalidFormat: the value does not have the expected format

phonenumbers costs tens of microseconds a call, too slow for a million rows,
so `normalise_series` has a fast path for the Finnish shapes (`0...`, `+358...`,
`00358...`, `+358 (0)...`), however they are punctuated (spaces, hyphens and
dashes, dots, slashes, brackets: `(040) 123 4567`, `040/123 4567`,
`040.123.4567`), and after a word such as `puh.` or `tel:`: it reads the national number with one regular expression and
decides validity the way phonenumbers does, with phonenumbers' own metadata
patterns for Finland and Åland, column-wise. Anything else goes to phonenumbers
once per distinct number, punctuation removed first, so ten spellings of one
number cost one call. phonenumbers ignores that punctuation itself; the tests
hold the verdict and the E.164 of both paths equal to phonenumbers' on the
value as written.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers.phonemetadata import PhoneMetadata

from pipeline.normalise import _text
from pipeline.normalise.status import Status
from pipeline.normalise.errors import EmptyValue, InvalidFormat

DEFAULT_REGION = "FI"
FINLAND_CALLING_CODE = 358


def compact(value: str) -> str:
    """Whitespace collapsed and stripped (phonenumbers reads the rest).

    >>> compact(' 040  123 4567 ')
    '040 123 4567'
    """
    return _text.collapse_whitespace(value)


@functools.lru_cache(maxsize=200_000)
def _parse(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate(value: str) -> str:
    """The number in E.164 if phonenumbers finds it valid, else a typed error."""
    text = compact(value)
    if not text:
        raise EmptyValue()
    e164 = _parse(text)
    if e164 is None:
        raise InvalidFormat()
    return e164


def is_valid(value: str) -> bool:
    try:
        return bool(validate(value))
    except (EmptyValue, InvalidFormat):
        return False


# --- column-wise ----------------------------------------------------------------------------


# Punctuation phonenumbers skips between digits (a subset of its VALID_PUNCTUATION,
# without the `x` it reads as an extension): whitespace, hyphens and dashes, minus,
# dot, slash, brackets. A value of only digits, this punctuation and one leading
# plus means what it means without the punctuation.
_PUNCTUATION = _text.WHITESPACE_CLASS[:-1] + "\\-\u2010-\u2015\u2212./()\\[\\]]"
# A word before the number (`puh.`, `tel:`, `GSM`): phonenumbers starts reading at the
# first digit or plus, so the word is dropped with the punctuation.
_LABEL = r"(?:[^\W\d_]{1,8}[.:]?)?"
_PUNCTUATED_NUMBER = f"{_PUNCTUATION}*{_LABEL}{_PUNCTUATION}*\\+?[0-9{_PUNCTUATION[1:-1]}]*"
_PUNCTUATION_RUN = f"^{_PUNCTUATION}*{_LABEL}|{_PUNCTUATION}+"
_MAX_PUNCTUATED = 64  # longer: left as written (phonenumbers has limits of its own on length)
# Shapes of the fast path, punctuation removed: a Finnish prefix (a trunk 0 after the
# country code, `+358 (0)40`, is dropped as phonenumbers drops it) and a national
# number that cannot start with 0.
_FAST_PREFIX = r"^(?:\+3580?|003580?|0)"
_FAST_SHAPE = r"(?:\+3580?|003580?|0)[1-9][0-9]{4,11}"

# The number-type descriptions phonenumbers' _number_type_helper tries.
_TYPE_DESCRIPTIONS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
                      "pager", "uan", "voicemail", "fixed_line", "mobile")


@functools.lru_cache(maxsize=None)
def _patterns_by_length(region: str) -> tuple[str, dict[int, str]]:
    """A region's general pattern, and per national-number length the union of
    the type patterns that allow that length (phonenumbers checks a type's
    possible lengths before its pattern; a type without lengths allows any)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc
    by_length: dict[int, list[str]] = {length: [] for length in general.possible_length}
    for name in _TYPE_DESCRIPTIONS:
        description = getattr(metadata, name)
        if description is None or not description.national_number_pattern:
            continue
        for length in by_length:
            if not description.possible_length or length in description.possible_length:
                by_length[length].append(f"(?:{description.national_number_pattern})")
    return general.national_number_pattern, {k: "|".join(v) for k, v in by_length.items() if v}


def _region_valid(numbers: pa.Array, region: str) -> np.ndarray:
    """phonenumbers' _number_type_helper(...) != UNKNOWN for a column of national numbers."""
    general, by_length = _patterns_by_length(region)
    lengths = pc.utf8_length(numbers).to_numpy(zero_copy_only=False)
    valid = np.zeros(len(lengths), dtype=bool)
    for length, typed in by_length.items():
        rows = np.flatnonzero(lengths == length)
        if len(rows):
            subset = numbers.take(pa.array(rows))
            valid[rows] = _text.fullmatch(subset, general) & _text.fullmatch(subset, typed)
    return valid


def _valid_national_numbers(numbers: pa.Array) -> np.ndarray:
    """phonenumbers.is_valid_number for +358 numbers given their national part.

    Mirrors region_code_for_number (the first region of the calling code whose
    leading digits match, or, without leading digits, whose patterns match) and
    then is_valid_number_for_region.
    """
    valid = np.zeros(len(numbers), dtype=bool)
    undecided = np.ones(len(numbers), dtype=bool)
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[FINLAND_CALLING_CODE]:
        metadata = PhoneMetadata.metadata_for_region(region)
        rows = np.flatnonzero(undecided)
        if not len(rows):
            break
        subset = numbers.take(pa.array(rows))
        region_valid = None
        if metadata.leading_digits is not None:
            chosen = pc.fill_null(pc.match_substring_regex(subset, f"^(?:{metadata.leading_digits})"),
                                  False).to_numpy(zero_copy_only=False)
            region_valid = np.zeros(len(rows), dtype=bool)
            region_valid[chosen] = _region_valid(subset.filter(pa.array(chosen)), region)
        else:
            region_valid = _region_valid(subset, region)
            chosen = region_valid
        valid[rows[chosen]] = region_valid[chosen]
        undecided[rows[chosen]] = False
    return valid


def inspect(value: str | None) -> tuple[int, str | None]:
    """(status, E.164) for one value: the scalar reference of `normalise_series`."""
    if value is None or not compact(value):
        return Status.MISSING, None
    e164 = _parse(compact(value))
    return (Status.VALID, e164) if e164 else (Status.INVALID, None)


def normalise_series(values: pd.Series) -> pd.DataFrame:
    """Validate a column of phone numbers.

    Returns a frame with the input's index and columns `phone` (E.164, NA if
    invalid or missing) and `status` (Status.MISSING, Status.VALID, Status.INVALID).
    """
    n = len(values)
    raw = _text.to_arrow(values)
    blank = pc.fill_null(pc.match_substring_regex(raw, f"^{_text.WHITESPACE_CLASS}*$"), True)
    present = ~blank.to_numpy(zero_copy_only=False)
    status = np.where(present, Status.INVALID, Status.MISSING).astype(np.int8)
    parts: list[pa.Array] = []

    punctuated = _text.fullmatch(raw, _PUNCTUATED_NUMBER) & \
        (pc.fill_null(pc.utf8_length(raw), 0).to_numpy(zero_copy_only=False) <= _MAX_PUNCTUATED)
    squeezed = pc.if_else(pa.array(punctuated), pc.replace_substring_regex(raw, _PUNCTUATION_RUN, ""),
                          _text.arrow_collapse_whitespace(raw))
    shaped = _text.fullmatch(squeezed, _FAST_SHAPE)
    if shaped.any():
        national = pc.replace_substring_regex(squeezed.filter(pa.array(shaped)), _FAST_PREFIX, "",
                                              max_replacements=1)
        ok = _valid_national_numbers(national)
        good = np.zeros(n, dtype=bool)
        good[np.flatnonzero(shaped)[ok]] = True
        status[good] = Status.VALID
        e164 = pc.binary_join_element_wise(pa.scalar("+358", pa.large_string()), national.filter(pa.array(ok)),
                                           pa.scalar("", pa.large_string()))
        parts.append(_text.scatter(good, e164))

    # Any other shape: phonenumbers, once per distinct number (punctuation removed where
    # the value is a punctuated number, else whitespace collapsed).
    slow = present & ~shaped
    if slow.any():
        rows = np.flatnonzero(slow)
        found = _text.map_unique(_text.to_series(squeezed.filter(pa.array(slow)), pd.RangeIndex(len(rows))),
                                 _parse).to_numpy()
        ok = np.array([f is not None for f in found], dtype=bool)
        good = np.zeros(n, dtype=bool)
        good[rows[ok]] = True
        status[good] = Status.VALID
        parts.append(_text.scatter(good, pa.array(list(found[ok]), pa.large_string())))

    phone = pc.coalesce(*parts) if parts else pa.nulls(n, pa.large_string())
    return pd.DataFrame({"phone": _text.to_series(phone, values.index), "status": status}, index=values.index)
