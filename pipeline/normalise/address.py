"""Postal addresses: street, postal code and city, and splitting one-line forms.

Street: whitespace collapsed; the street name's words capitalised, with the
generic word of a multi-word name in lower case (`Aleksis Kiven katu`); after
the house number, stair letters in upper case (`5 B 12`, also from `5 b12` and
`5, B 12`), apartment markers in lower case (`as`, `bst`, `lgh`), a letter joined
to a house number in lower case (`12a`: the house's own letter, not a stair). Postal code: five digits; one to four digits are a code whose leading
zeros a spreadsheet dropped, padded back (`100` -> `00100`). City: each word
and hyphenated part capitalised.

>>> normalise_street('RAUTATIENKATU 5 B 12')
'Rautatienkatu 5 B 12'
>>> normalise_street('aleksis kiven katu 3 as 4')
'Aleksis Kiven katu 3 as 4'
>>> normalise_street('Rautatienkatu 5, b12'), normalise_street('Rautatienkatu 5a 12')
('Rautatienkatu 5 B 12', 'Rautatienkatu 5a 12')
>>> normalise_postal_code('100'), normalise_postal_code(' 49400 ')
(('00100', True), ('49400', False))
>>> normalise_city('HAMINA'), normalise_city('mänttä-vilppula'), normalise_city('PEDERSÖRE')
('Hamina', 'Mänttä-Vilppula', 'Pedersöre')
>>> split_postal_code_and_city('49400 HAMINA')
('49400', 'HAMINA')
>>> split_address_line('Rautatienkatu 5 B 12, 49400 Hamina')
('Rautatienkatu 5 B 12', '49400', 'Hamina')
>>> split_address_line('Rautatienkatu 5 B 12 49400 Hamina')
('Rautatienkatu 5 B 12', '49400', 'Hamina')
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.normalise import _text
from pipeline.normalise.status import Status
from pipeline.normalise.errors import EmptyValue, InvalidFormat

# Generic words written in lower case when they stand alone after a proper name.
GENERIC_STREET_WORDS = frozenset({
    "katu", "tie", "kuja", "polku", "tori", "aukio", "väylä", "ranta", "rinne", "kaari", "raitti",
    "puistikko", "piha", "bulevardi", "gata", "gatan", "väg", "vägen", "gränd", "stig", "torg",
})
# Apartment markers, and words that go in lower case anywhere.
LOWER_WORDS = frozenset({"as", "as.", "asunto", "bst", "bst.", "lgh", "lgh.", "krs", "krs.", "c/o"})
# Post-office box abbreviations: postilokero, postbox.
UPPER_WORDS = frozenset({"pl", "pb"})
VOWELS = "aeiouyåäöéü"

_NAME_AND_REST = r"^(?P<name>[^0-9 ][^ ]*(?: [^0-9 ][^ ]*)*)?(?: ?(?P<rest>[0-9].*))?$"
_NAME_AND_REST_RE = re.compile(_NAME_AND_REST)
_HOUSE_NUMBER_LETTER = re.compile(r"[0-9]+[^\W\d_]+")
_LETTER_NUMBER = re.compile(r"[^\W\d_][0-9]+")


def _capitalise_part(part: str) -> str:
    first = part[:1].upper()
    if len(first) != len(part[:1]):  # 'ß' would become 'SS'
        first = part[:1]
    return first + part[1:].lower()


def _capitalise_word(word: str, *, compound_vowel_rule: bool) -> str:
    """Each hyphenated part capitalised; with the compound rule, a part that
    repeats the vowel before the hyphen stays lower case (`Kirkko-oja`)."""
    parts = word.split("-")
    out = [_capitalise_part(parts[0])]
    for before, part in zip(parts, parts[1:]):
        same_vowel = (compound_vowel_rule and before[-1:].lower() == part[:1].lower()
                      and part[:1].lower() in VOWELS)
        out.append(part.lower() if same_vowel else _capitalise_part(part))
    return "-".join(out)


def _case_street_name(name: str) -> str:
    words = name.split(" ")
    out = []
    for i, word in enumerate(words):
        lower = word.lower()
        if lower in UPPER_WORDS:
            out.append(word.upper())
        elif lower in LOWER_WORDS or (i > 0 and lower in GENERIC_STREET_WORDS):
            out.append(lower)
        else:
            out.append(_capitalise_word(word, compound_vowel_rule=True))
    return " ".join(out)


def _case_street_rest(rest: str) -> str:
    out = []
    tokens = rest.split(" ")
    # `5, B 12`: a comma after the house number (or a stair letter) separates nothing.
    tokens = [t[:-1] if t.endswith(",") and i < len(tokens) - 1 and t[:-1] else t for i, t in enumerate(tokens)]
    for token in tokens:
        lower = token.lower()
        if lower in LOWER_WORDS:
            out.append(lower)
        elif len(token) == 1 and token.isalpha():
            out.append(token.upper())  # stair letter
        elif _HOUSE_NUMBER_LETTER.fullmatch(token):
            out.append(lower)  # 12a: a letter of the house number
        elif _LETTER_NUMBER.fullmatch(token):
            out.append(f"{token[0].upper()} {token[1:]}")  # B12: stair and apartment written together
        elif any(c.isalpha() for c in token):
            out.append(_capitalise_word(token, compound_vowel_rule=True))
        else:
            out.append(token)
    return " ".join(out)


def _split_street(text: str) -> tuple[str | None, str | None]:
    match = _NAME_AND_REST_RE.fullmatch(text)
    if not match:  # cannot happen for collapsed text; kept total for safety
        return text, None
    return match.group("name"), match.group("rest")


def normalise_street(value: str | None) -> str | None:
    """A street address cased (see the module docstring); None when blank."""
    text = _text.collapse_whitespace(value) if value is not None else ""
    if not text:
        return None
    name, rest = _split_street(text)
    return " ".join(part for part in (_case_street_name(name) if name else None,
                                      _case_street_rest(rest) if rest else None) if part)


def validate_postal_code(value: str) -> str:
    """Five digits, or a typed error (no padding: see `normalise_postal_code`)."""
    code = _text.remove_whitespace(value)
    if not code:
        raise EmptyValue()
    if not re.fullmatch(r"[0-9]{5}", code):
        raise InvalidFormat()
    return code


def normalise_postal_code(value: str) -> tuple[str, bool]:
    """(five-digit code, padded): one to four digits are padded with leading zeros.

    A spreadsheet stores `00100` as the number 100 (or 100.0), so a short
    all-digit code is taken as one that lost its zeros. Anything else that is not
    five digits raises a typed error.
    """
    code = _text.remove_whitespace(value)
    if not code:
        raise EmptyValue()
    match = re.fullmatch(r"([0-9]{1,5})(?:\.0+)?", code)
    if not match:
        raise InvalidFormat()
    digits = match.group(1)
    return digits.rjust(5, "0"), len(digits) < 5


def normalise_city(value: str | None) -> str | None:
    """A city name with each word and hyphenated part capitalised; None when blank."""
    text = _text.collapse_whitespace(value) if value is not None else ""
    if not text:
        return None
    return " ".join(_capitalise_word(word, compound_vowel_rule=False) for word in text.split(" "))


# `postal_code_and_city`, tried in order; a city keeps no leading or trailing
# comma. The last two keep a mistyped code in the postal code, to be flagged.
POSTAL_AND_CITY_PATTERNS = (
    r"^(?P<postal>[0-9]+)(?:, ?| )(?P<city>[^0-9]+)$",
    r"^(?P<postal>[0-9]+)$",
    r"^(?P<city>[^0-9]+)$",
    r"^(?P<city>[^0-9]+?),? (?P<postal>[0-9]+)$",
    r"^(?P<postal>[^ ]+) (?P<city>.+)$",
    r"^(?P<postal>.+)$",
)
# One-line address: street, then a five-digit postal code and the city, with or
# without commas; or street and postal code; or street, comma, city; else all street.
ADDRESS_LINE_PATTERNS = (
    # postal code and city only (no street given); a street never starts with five digits
    r"^(?P<postal>[0-9]{5})(?:, ?| )(?P<city>[^0-9,]+)$",
    r"^(?P<street>.+?)(?:, ?| )(?P<postal>[0-9]{5})(?:, ?| )(?P<city>[^0-9,]+)$",
    r"^(?P<street>.+?)(?:, ?| )(?P<postal>[0-9]{5})$",
    r"^(?P<street>.+?), ?(?P<city>[^0-9,]+)$",
    r"^(?P<street>.+)$",
)
_POSTAL_AND_CITY_RES = tuple(re.compile(p) for p in POSTAL_AND_CITY_PATTERNS)
_ADDRESS_LINE_RES = tuple(re.compile(p) for p in ADDRESS_LINE_PATTERNS)


def _first_match(patterns: tuple[re.Pattern[str], ...], text: str) -> dict[str, str]:
    for pattern in patterns:
        match = pattern.fullmatch(text)
        if match:
            return match.groupdict()
    return {}


def split_postal_code_and_city(value: str | None) -> tuple[str | None, str | None]:
    """(postal code, city) from one field like `49400 HAMINA`, as written (collapsed)."""
    text = _text.collapse_whitespace(value) if value is not None else ""
    if not text:
        return None, None
    parts = _first_match(_POSTAL_AND_CITY_RES, text)
    return parts.get("postal"), (parts.get("city") or "").strip(" ,") or None


def split_address_line(value: str | None) -> tuple[str | None, str | None, str | None]:
    """(street, postal code, city) from a one-line address, as written (collapsed)."""
    text = _text.collapse_whitespace(value) if value is not None else ""
    if not text:
        return None, None, None
    parts = _first_match(_ADDRESS_LINE_RES, text)
    return tuple((parts.get(name) or "").strip(" ,") or None for name in ("street", "postal", "city"))


# --- column-wise ----------------------------------------------------------------------------



def postal_code_status(value: str | None) -> tuple[int, str | None]:
    """(status, code) of one raw postal code: the scalar reference of the column version."""
    if value is None or not _text.remove_whitespace(value):
        return Status.MISSING, None
    try:
        code, padded = normalise_postal_code(value)
    except InvalidFormat:
        return Status.INVALID, None
    return (Status.PADDED if padded else Status.VALID), code


def _postal_codes(codes: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Column version of `postal_code_status` on whitespace-free codes (null if blank)."""
    present = pc.is_valid(codes).to_numpy(zero_copy_only=False)
    full = _text.fullmatch(codes, r"[0-9]{5}(?:\.0+)?")
    short = _text.fullmatch(codes, r"[0-9]{1,4}(?:\.0+)?")
    digits = pc.utf8_lpad(pc.replace_substring_regex(codes, r"\.0+$", ""), 5, "0")
    status = np.select([full, short, present], [Status.VALID, Status.PADDED, Status.INVALID], Status.MISSING).astype(np.int8)
    return status, pc.if_else(pa.array(full | short), digits, pa.scalar(None, pa.large_string()))


def _split_by_patterns(lines: pa.Array, patterns: tuple[str, ...]) -> dict[str, pa.Array]:
    """Named groups of the first pattern each value matches (null where none)."""
    found: dict[str, list[pa.Array]] = {}
    undecided = pc.is_valid(lines).to_numpy(zero_copy_only=False)
    for pattern in patterns:
        matched = undecided & _text.fullmatch(lines, pattern[1:-1])
        if not matched.any():
            continue
        parts = pc.extract_regex(lines.filter(pa.array(matched)), pattern)
        for i in range(parts.type.num_fields):
            name = parts.type.field(i).name
            found.setdefault(name, []).append(_text.scatter(matched, pc.struct_field(parts, [i])))
        undecided &= ~matched
    return {name: pc.coalesce(*arrays) for name, arrays in found.items()}


def _street_column(streets: pa.Array) -> pa.Array:
    """Column version of `normalise_street` on collapsed text: the name and the
    rest after the house number are each cased once per distinct value."""
    parts = pc.extract_regex(streets, _NAME_AND_REST)
    name = _text.map_unique_arrow(_text.null_if_empty(pc.struct_field(parts, "name")), _case_street_name)
    rest = _text.map_unique_arrow(_text.null_if_empty(pc.struct_field(parts, "rest")), _case_street_rest)
    # (null_handling="skip" drops rows when every part is null in pyarrow 26: fill instead)
    joined = pc.utf8_trim(pc.binary_join_element_wise(
        pc.fill_null(name, ""), pc.fill_null(rest, ""), pa.scalar(" ", pa.large_string())), " ")
    return _text.null_if_empty(pc.if_else(pc.is_valid(streets), joined, streets))


def normalise_addresses(street_address: pd.Series, postal_code: pd.Series, city: pd.Series,
                        address_line: pd.Series, postal_code_and_city: pd.Series) -> pd.DataFrame:
    """Street, postal code and city per row, taking each from the first source that has it.

    Sources in order: the separate field; `postal_code_and_city` (postal code and
    city); `address_line` (all three). Returns `street_address`, `postal_code`,
    `city` (NA where missing or dropped) and `postal_status` (Status.MISSING, Status.VALID,
    Status.PADDED, Status.INVALID).
    """
    index = street_address.index
    n = len(index)
    nulls = pa.nulls(n, pa.large_string())
    line = {name: _text.null_if_empty(pc.utf8_trim(part, " ,")) for name, part in _split_by_patterns(
        _text.arrow_collapse_whitespace(_text.to_arrow(address_line)), ADDRESS_LINE_PATTERNS).items()}
    combined = _split_by_patterns(_text.arrow_collapse_whitespace(_text.to_arrow(postal_code_and_city)),
                                  POSTAL_AND_CITY_PATTERNS)
    combined_city = _text.null_if_empty(pc.utf8_trim(combined.get("city", nulls), " ,"))

    street = pc.coalesce(_text.arrow_collapse_whitespace(_text.to_arrow(street_address)), line.get("street", nulls))
    postal = pc.coalesce(_text.null_if_empty(_text.arrow_remove_whitespace(_text.to_arrow(postal_code))),
                         _text.arrow_remove_whitespace(combined.get("postal", nulls)), line.get("postal", nulls))
    town = pc.coalesce(_text.arrow_collapse_whitespace(_text.to_arrow(city)), combined_city, line.get("city", nulls))
    status, codes = _postal_codes(postal)
    return pd.DataFrame({
        "street_address": _text.to_series(_street_column(street), index),
        "postal_code": _text.to_series(codes, index),
        "city": _text.to_series(_text.map_unique_arrow(town, normalise_city), index),
        "postal_status": status,
    }, index=index)
