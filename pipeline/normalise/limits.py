"""Length limits of the staged text fields, in characters.

A value longer than its field's limit is no name, address or code a person
typed: the record goes to quarantine as `value_too_long` (the detail names the
fields), and only the first `RAW_VALUE_LIMIT` characters of each raw value are
kept for the steward. The limits are generous for real values (docs/damaged_input.md)
and keep a 5 MB "name" out of the register, the marketing extract and the
quarantine alike.

>>> import pandas as pd
>>> staged = pd.DataFrame({"full_name": pd.Series(["Aino Testinen", "x" * 251, None], dtype="string")})
>>> too_long(staged).tolist()
[False, True, False]
>>> too_long_fields(staged.iloc[[1]]).tolist()
['full_name over 250 characters']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from pipeline.normalise import _text

# Staged column -> most characters a value may have (as read, before normalising).
FIELD_LIMITS: dict[str, int] = {
    "source_record_id": 200,       # the register's column is VARCHAR(200)
    "first_names": 150,            # four given names and then some
    "last_name": 100,              # double-barrelled names included
    "full_name": 250,              # first names and last name in one field
    "personal_id": 30,             # 11 characters, with room for typed spaces
    "street_address": 200,
    "postal_code": 20,
    "city": 100,
    "address_line": 300,           # street, postal code and city in one line (e-mail)
    "postal_code_and_city": 120,   # mail
    "phone": 40,                   # +358 40 123 4567 with spaces, dashes or brackets
    "email": 254,                  # RFC 5321's limit of an address in a path
    "account": 60,                 # an IBAN is at most 34, in groups of four
    "product": 100,                # free text in e-mails ("sähkö ja kaukolämpö")
    "metering_point": 40,          # 18 digits, with room for typed spaces
}
# What the quarantine keeps of one raw value, and of a whole raw line, row or message.
RAW_VALUE_LIMIT = 1_000
RAW_RECORD_LIMIT = 32_768


def _lengths(values: pd.Series) -> np.ndarray:
    lengths = pc.utf8_length(_text.to_arrow(values))
    return pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False)


def too_long_by_field(staged: pd.DataFrame) -> dict[str, np.ndarray]:
    """For each limited column present: which rows hold a value over its limit."""
    return {name: _lengths(staged[name]) > limit for name, limit in FIELD_LIMITS.items() if name in staged}


def too_long(staged: pd.DataFrame) -> np.ndarray:
    """Rows with at least one value over its field's limit."""
    rows = np.zeros(len(staged), dtype=bool)
    for mask in too_long_by_field(staged).values():
        rows |= mask
    return rows


def too_long_fields(staged: pd.DataFrame) -> pd.Series:
    """Per row, the quarantine detail: which fields are over which limit ("" for none)."""
    parts = [[] for _ in range(len(staged))]
    for name, mask in too_long_by_field(staged).items():
        for row in np.flatnonzero(mask):
            parts[row].append(f"{name} over {FIELD_LIMITS[name]} characters")
    return pd.Series(["; ".join(p) for p in parts], index=staged.index, dtype=object)


def bounded(text: str, limit: int) -> tuple[str, int | None]:
    """The text cut to `limit` characters, and its full length when it was cut (else None).

    >>> bounded("abcdef", 4), bounded("abc", 4)
    (('abcd', 6), ('abc', None))
    """
    if len(text) <= limit:
        return text, None
    return text[:limit], len(text)
