"""Metering point (käyttöpaikka): an 18-digit GS1 GSRN starting 643.

The last digit is the GS1 mod-10 check digit, the one of EAN/GTIN (weights 3 and
1 alternating from the right). The scalar path takes it from python-stdnum:
`stdnum.ean.calc_check_digit` computes it for a number of any length (though
`stdnum.ean.validate` and `is_valid` accept only the EAN lengths 8, 12, 13 and 14,
not a GSRN's 18, so the length and the prefix are checked here). A column is
checked with numpy, the same weights over a matrix of digits: a million values in
milliseconds rather than seconds; the tests hold it to `stdnum.ean` value by value.
Spaces and hyphens people type between digit groups are removed.

>>> validate('643007574000125688')
'643007574000125688'
>>> validate('643 0075 7400 0125 688')
'643007574000125688'
>>> validate('643007574000125687')
Traceback (most recent call last):
    ...
pipeline.normalise.errors.InvalidChecksum: the check character or digits do not match
>>> calc_check_digit('64300757400012568')
'8'
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import ean

from pipeline.normalise import _text
from pipeline.normalise.status import Status
from pipeline.normalise.errors import EmptyValue, InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

LENGTH = 18
PREFIX = "643"  # GS1 Finland's company prefixes for metering points
_SEPARATORS = _text.WHITESPACE_CLASS[:-1] + "\\-]+"
_SEPARATORS_RE = re.compile(_SEPARATORS)


def compact(value: str) -> str:
    """Whitespace and hyphens removed."""
    return _SEPARATORS_RE.sub("", value)


def calc_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of the digits before it (`stdnum.ean.calc_check_digit`)."""
    return ean.calc_check_digit(digits)


def validate(value: str) -> str:
    """The compact metering point if valid, else a typed error."""
    number = compact(value)
    if not number:
        raise EmptyValue()
    if not re.fullmatch(r"[0-9]+", number):
        raise InvalidFormat()
    if len(number) != LENGTH:
        raise InvalidLength()
    if not number.startswith(PREFIX):
        raise InvalidComponent()
    if calc_check_digit(number[:-1]) != number[-1]:
        raise InvalidChecksum()
    return number


def is_valid(value: str) -> bool:
    try:
        return bool(validate(value))
    except (EmptyValue, InvalidFormat, InvalidLength, InvalidComponent, InvalidChecksum):
        return False


# Weights of the 17 digits before the check digit: 3, 1, 3, ... counted from the right,
# as `stdnum.ean.calc_check_digit` weighs them (tests/test_normalise_metering_point.py).
_WEIGHTS = np.where(np.arange(LENGTH - 1)[::-1] % 2 == 0, 3, 1)


def normalise_series(values: pd.Series) -> pd.DataFrame:
    """Validate a column of metering points: `metering_point` (NA if invalid or
    missing) and `status` (Status.MISSING, Status.VALID, Status.INVALID)."""
    compacted = _text.null_if_empty(pc.replace_substring_regex(_text.to_arrow(values), _SEPARATORS, ""))
    present = pc.is_valid(compacted).to_numpy(zero_copy_only=False)
    shaped = _text.fullmatch(compacted, f"{PREFIX}[0-9]{{{LENGTH - len(PREFIX)}}}")
    ok = np.zeros(len(values), dtype=bool)
    if shaped.any():
        digits = _text.fixed_width_bytes(compacted.filter(pa.array(shaped)), LENGTH).astype(np.int64) - 48
        total = (digits[:, :-1] * _WEIGHTS).sum(axis=1)
        ok[np.flatnonzero(shaped)] = (10 - total % 10) % 10 == digits[:, -1]
    status = np.where(ok, Status.VALID, np.where(present, Status.INVALID, Status.MISSING)).astype(np.int8)
    result = pc.if_else(pa.array(ok), compacted, pa.scalar(None, pa.large_string()))
    return pd.DataFrame({"metering_point": _text.to_series(result, values.index), "status": status},
                        index=values.index)
