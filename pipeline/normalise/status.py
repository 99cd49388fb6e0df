"""The status codes of the normalisers' column-wise results: one numbering for all.

Every `normalise_series` (and each scalar `inspect` beside it) says per value
whether it was missing, valid or invalid, and a few normalisers say more: the
postal code that was zero-padded, the identity code that is temporary, lies in
the future or in the 1800s, or fails only its check character. `normalise_records` turns these
into `Flag` codes (pipeline/codes.py); the statuses themselves are never stored.

>>> Status.VALID == 1 and Status(2) is Status.INVALID
True
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    MISSING = 0    # nothing but whitespace, or no value at all
    VALID = 1      # the canonical value is kept
    INVALID = 2    # present but not a valid value of its kind: dropped and flagged
    PADDED = 3     # postal code: fewer than five digits, padded with leading zeros
    TEMPORARY = 4  # identity code: individual number 900-999, not a person's identity
    FUTURE = 5     # identity code: the birth date lies after today
    BAD_CHECK = 6  # identity code: the date and number read, the check character does not match
    TOO_OLD = 7    # identity code: born in the 1800s (the + sign), no living person's
