"""E-mail addresses: stripped, lower case, and a sound syntactic check (no DNS).

The check is the common dot-atom form of RFC 5322 that mail systems accept in
practice: a local part of letters, digits and ``!#$%&'*+/=?^_`{|}~-`` in
dot-separated runs (no leading, trailing or double dot), at most 64
characters; an @; a domain of at least two dot-separated labels of letters,
digits and inner hyphens (each at most 63 characters), whose last label is
alphabetic (or an IDN `xn--` label); at most 254 characters in all. Quoted
local parts, IP-address domains and non-ASCII addresses are rejected: a
customer register has no use for them and they are far likelier typing errors.

>>> validate('  Aino.Makinen@Example.FI ')
'aino.makinen@example.fi'
>>> validate('aino..makinen@example.fi')
Traceback (most recent call last):
    ...
pipeline.normalise.errors.InvalidFormat: the value does not have the expected format
>>> is_valid('aino@example'), is_valid('aino@@example.fi'), is_valid('aino+sahko@sub.example.fi')
(False, False, True)
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.normalise import _text
from pipeline.normalise.status import Status
from pipeline.normalise.errors import EmptyValue, InvalidFormat, InvalidLength

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TOP_LABEL = r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
# Shared by Python's re and Arrow's RE2: ASCII classes only, no look-arounds.
PATTERN = rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TOP_LABEL}"
_PATTERN_RE = re.compile(PATTERN)
MAX_LENGTH = 254
MAX_LOCAL_LENGTH = 64
_LOCAL_LENGTH_OK = r"[^@]{1,64}@.*"


def compact(value: str) -> str:
    """Whitespace stripped (and inner runs made one space), ASCII letters lower case.

    Only ASCII letters are lowered (as Arrow's ascii_lower does): a non-ASCII
    address is invalid anyway, and the column and scalar paths stay identical.

    >>> compact('  Aino.Makinen@Example.FI ')
    'aino.makinen@example.fi'
    """
    return _text.ascii_lower(_text.collapse_whitespace(value))


def validate(value: str) -> str:
    """The compact address if well formed, else a typed error."""
    address = compact(value)
    if not address:
        raise EmptyValue()
    if len(address) > MAX_LENGTH or len(address.partition("@")[0]) > MAX_LOCAL_LENGTH:
        raise InvalidLength()
    if not _PATTERN_RE.fullmatch(address):
        raise InvalidFormat()
    return address


def is_valid(value: str) -> bool:
    try:
        return bool(validate(value))
    except (EmptyValue, InvalidFormat, InvalidLength):
        return False




def normalise_series(values: pd.Series) -> pd.DataFrame:
    """Validate a column of e-mail addresses.

    Returns a frame with the input's index and columns `email` (NA if invalid
    or missing) and `status` (Status.MISSING, Status.VALID, Status.INVALID).
    """
    addresses = pc.ascii_lower(_text.arrow_collapse_whitespace(_text.to_arrow(values)))
    present = pc.is_valid(addresses).to_numpy(zero_copy_only=False)
    lengths = pc.fill_null(pc.utf8_length(addresses), 0).to_numpy(zero_copy_only=False)
    ok = (present & (lengths <= MAX_LENGTH) & _text.fullmatch(addresses, PATTERN)
          & _text.fullmatch(addresses, _LOCAL_LENGTH_OK))
    status = np.where(ok, Status.VALID, np.where(present, Status.INVALID, Status.MISSING)).astype(np.int8)
    email = pc.if_else(pa.array(ok), addresses, pa.scalar(None, pa.large_string()))
    return pd.DataFrame({"email": _text.to_series(email, values.index), "status": status}, index=values.index)
