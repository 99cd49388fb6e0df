"""Comparison features for matching: the canonical record, folded and keyed.

The canonical record is already normalised for storage; matching needs values
that compare equal when a person wrote the same thing two ways. Every feature is
a plain column (strings, NA where unknown), so a blocking rule is an equality on
columns and the register can fetch a new batch's candidates by the same keys.

- Letters are folded to lower case without dots and rings (ä→a, ö→o, å→a, é→e,
  ü→u ...), as people on a foreign keyboard write them.
- `first_name` is the first given name only: people often give just the first of
  several. `first_names_all` keeps them all; `name_tokens` is every part of every
  name (the given names, then the surname, hyphens made spaces), so a double
  surname taken at marriage or names written in the wrong order still share a
  part.
- `name_key` is the first name and surname in alphabetical order, so a name
  written surname first where given names were expected still blocks together.
- `name_sorted` is every name part in alphabetical order: the same whichever
  order the parts were written in and whichever field they were typed into
  ("Liukkonen" / "Viivi Nea Sisko" and "Viivi Nea Sisko" / "Liukkonen").
- `doubt_anchor`: the record prohibits direct marketing and holds no valid code, so
  it is also compared with its namesakes (`model.DOUBT_BLOCKING_KEYS`, rule 5), by
  `doubt_name`: the first part of each name field in alphabetical order, or the first
  and last part of the only field written. Unlike `name_key` it is the same when the
  given names were typed into the surname field ("Liukkonen" / "Viivi Nea Sisko") and
  when all names went into one field, as a call centre often writes them.
- `postal_code` is the record's, or the five digits an address line without a
  street left at the start of the street field.
- `street_key` is the street name and house number with the Finnish and Swedish
  abbreviations written out (k./katu, t./tie, kj/kuja, p./pl/polku, g./gatan,
  bulev./bulevardi; v. is either väylä or vägen, so all three become `v`), and
  spaces, hyphens and dots dropped from the name; the stair and flat go to
  `apartment` (`B 12`, `b12` and `B12` are all `b12`; `as. 3` is `3`).

>>> fold("Mäkinen-Öhman ")
'makinen-ohman'
>>> street_parts("Rautatienk. 5 B 12"), street_parts("Rautatienkatu 5b12")
(('rautatienkatu 5', 'b12'), ('rautatienkatu 5', 'b12'))
>>> street_parts("Aleksis Kiven k. 3 as. 4"), street_parts("Aleksis Kivenkatu 3 as 4")
(('aleksiskivenkatu 3', '4'), ('aleksiskivenkatu 3', '4'))
>>> street_parts("Ylä-Fallin K. 29c"), street_parts("Koivukj 2"), street_parts("Björkv. 7 A")
(('ylafallinkatu 29c', None), ('koivukuja 2', None), ('bjorkv 7', 'a'))
>>> street_parts("Storgatan 1"), street_parts("Storg. 1"), street_parts("Fabianinbulev. 11 B 9")
(('storgatan 1', None), ('storgatan 1', None), ('fabianinbulevardi 11', 'b9'))
>>> street_parts("Kauppatori"), street_parts("PL 123")
(('kauppatori', None), ('pl 123', None))
>>> street_parts("23310 Kouvola"), street_parts(None)
((None, None), (None, None))
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.normalise import _text

# Letters folded as a foreign keyboard writes them; anything else keeps its letter.
FOLDS: dict[str, str] = {
    "ä": "a", "ö": "o", "å": "a", "é": "e", "è": "e", "ü": "u", "á": "a", "à": "a", "ó": "o",
    "í": "i", "ú": "u", "ñ": "n", "ç": "c", "æ": "ae", "ø": "o", "ß": "ss", "š": "s", "ž": "z",
}
_FOLD_TABLE = str.maketrans(FOLDS)

# The street name's generic ending, written out (RE2 patterns on the folded name with
# spaces, hyphens and apostrophes removed; only the end of the name is rewritten).
STREET_SUFFIXES: tuple[tuple[str, str], ...] = (
    (r"bulev\.$", "bulevardi"),  # before v.
    (r"k\.$", "katu"),
    (r"t\.$", "tie"),
    (r"kj\.?$", "kuja"),
    (r"(?:p|pl)\.$|pl$", "polku"),
    (r"g\.$|gata$", "gatan"),
    (r"(?:vayla|vagen|v\.)$", "v"),
    (r"\.", ""),
)
# name (with a letter) - optional space - house number - the rest (stair, flat, junk).
_STREET = r"^(?P<name>.*?\pL.*?) ?(?P<number>[0-9]+)(?P<rest>.*)$"
# A letter joined to the house number (12a) belongs to the house.
_HOUSE_LETTER = r"^[a-z]$"
# After the number: stair letter and flat number, or an apartment marker and flat number.
_APARTMENT = r"^ ?(?:(?:as|asunto|bst|lgh)\.? ?(?P<flat1>[0-9]+)|(?P<stair>[a-z])(?: ?(?P<flat2>[0-9]+))?)$"

FEATURE_COLUMNS: tuple[str, ...] = (
    "record_key", "has_personal_id", "first_name", "first_names_all", "last_name", "name_tokens", "name_key",
    "name_sorted", "doubt_name",
    "street_key", "apartment", "postal_code", "city", "phone", "email", "email_local", "iban",
    "birth_date", "birth_year", "observed_at", "channel", "doubt_anchor",
)


def fold(value: str | None) -> str | None:
    """Lower case, letters folded, whitespace collapsed; None when blank."""
    if value is None:
        return None
    text = " ".join(value.lower().translate(_FOLD_TABLE).split())
    return text or None


def _fold_arrow(data: pa.Array) -> pa.Array:
    """Column version of `fold` (input already whitespace-collapsed by the normaliser)."""
    data = pc.utf8_lower(data)
    needs = pc.fill_null(pc.match_substring_regex(data, "[" + "".join(FOLDS) + "]"), False)
    if pc.any(needs).as_py():
        folded = data.filter(needs)
        for letter, plain in FOLDS.items():
            folded = pc.replace_substring(folded, letter, plain)
        data = pc.replace_with_mask(data, needs, folded)
    return _text.null_if_empty(pc.utf8_trim_whitespace(data))


_EMPTY, _SPACE = pa.scalar("", pa.large_string()), pa.scalar(" ", pa.large_string())
_NULL = pa.scalar(None, pa.large_string())


def _per_distinct(data: pa.Array, function) -> pa.Array:
    """An Arrow column function applied once per distinct value (names and streets repeat)."""
    data = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    encoded = pc.dictionary_encode(data)
    return function(encoded.dictionary).take(encoded.indices)


def _street_arrow(streets: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(street_key, apartment) for folded street addresses."""
    name, number, rest = _split_street(streets)
    valid = pc.is_valid(number)
    # A number-less value is a name alone (Kauppatori) unless it starts with digits
    # (a postal code and city left in the street field): no street then.
    bare = pc.and_(pc.invert(valid), pc.match_substring_regex(streets, r"^\pL"))
    name = pc.if_else(valid, name, pc.if_else(bare, streets, _NULL))
    name = _rewrite(name, r"[ '\-]", lambda rows: pc.replace_substring_regex(rows, r"[ '\-]", ""))
    name = _rewrite(name, _SUFFIX_NEEDED, _expand_suffixes)
    house_letter = pc.fill_null(pc.match_substring_regex(rest, _HOUSE_LETTER), False)
    house = pc.if_else(house_letter, pc.binary_join_element_wise(number, rest, _EMPTY), number)
    key = pc.if_else(valid, pc.binary_join_element_wise(name, house, _SPACE), name)
    flat = pc.extract_regex(pc.if_else(house_letter, _NULL, _text.null_if_empty(rest)), _APARTMENT)
    # (a group that took no part in the match is "", so the three parts join to one value)
    apartment = pc.binary_join_element_wise(
        *(pc.fill_null(pc.struct_field(flat, group), "") for group in ("stair", "flat1", "flat2")), _EMPTY)
    apartment = pc.if_else(pc.is_valid(flat), apartment, _NULL)
    return _text.null_if_empty(key), _text.null_if_empty(apartment)


def _split_street(streets: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(name, house number, rest) of each street, nulls where there is no house number.

    Most streets are a name without digits, a space and the number: cut at the first
    digit (plain replacements, fast). The others (a digit inside the name) go
    through the full pattern."""
    fast = pc.fill_null(pc.match_substring_regex(streets, r"^[^0-9]*\pL[^0-9]*[0-9]"), False)
    tail = pc.replace_substring_regex(streets, r"^[^0-9]*", "", max_replacements=1)
    parts = [pc.replace_substring_regex(streets, r" ?[0-9].*", "", max_replacements=1),
             pc.replace_substring_regex(tail, r"[^0-9].*", "", max_replacements=1),
             pc.replace_substring_regex(tail, r"^[0-9]+", "", max_replacements=1)]
    parts = [pc.if_else(fast, part, _NULL) for part in parts]
    slow = pc.and_(pc.invert(fast), pc.is_valid(streets))
    if pc.any(slow).as_py():
        found = pc.extract_regex(streets.filter(slow), _STREET)
        parts = [pc.replace_with_mask(part, slow, pc.struct_field(found, group).cast(pa.large_string()))
                 for part, group in zip(parts, ("name", "number", "rest"))]
    return parts[0], parts[1], parts[2]


# Names that need a suffix written out: most do not, and matching is cheaper than replacing.
_SUFFIX_NEEDED = r"\.|kj$|pl$|gata$|vayla$|vagen$"


def _rewrite(data: pa.Array, needs: str, rewrite) -> pa.Array:
    mask = pc.fill_null(pc.match_substring_regex(data, needs), False)
    if not pc.any(mask).as_py():
        return data
    return pc.replace_with_mask(data, mask, rewrite(data.filter(mask)))


def _expand_suffixes(names: pa.Array) -> pa.Array:
    long_enough = pc.greater(pc.utf8_length(names), 2)  # 'pl 12' alone is a post-office box
    for pattern, replacement in STREET_SUFFIXES:
        replaced = pc.replace_substring_regex(names, pattern, replacement)
        names = pc.if_else(long_enough, replaced, names) if replacement == "polku" else replaced
    return names


def street_parts(value: str | None) -> tuple[str | None, str | None]:
    """(street_key, apartment) of one street address: the scalar view of the column code."""
    folded = fold(value)
    key, apartment = _street_arrow(pa.array([folded], pa.large_string()))
    return key[0].as_py(), apartment[0].as_py()


def _postal_code(postal: pa.Array, street: pa.Array) -> pa.Array:
    """The postal code, or the one left at the start of the street field ('11120 Mänttä'):
    an address line without a street keeps its postal code and city in the street."""
    missing = pc.and_(pc.is_null(postal), pc.fill_null(pc.match_substring_regex(street, r"^[0-9]{5}(?: |$)"), False))
    if not pc.any(missing).as_py():
        return postal
    return pc.replace_with_mask(postal, missing, pc.utf8_slice_codeunits(street.filter(missing), 0, 5))


def _sorted_parts(names: pa.Array) -> pa.Array:
    """Each value's space-separated parts in alphabetical order (Arrow has no list sort)."""
    return pa.array([None if name is None else " ".join(sorted(name.split())) for name in names.to_pylist()],
                    pa.large_string())


def _strings(data: pa.Array, index: pd.Index) -> pd.Series:
    return _text.to_series(data, index)


def match_features(records: pd.DataFrame) -> pd.DataFrame:
    """The comparison features of canonical records (one row per record, same index).

    `records` holds `record_key` and the canonical columns (schemas.canonical)
    used for matching; `personal_id` is a valid permanent code or NA. Strings come
    back Arrow-backed, NA where unknown.
    """
    index = records.index

    def arrow(column: str) -> pa.Array:
        return _text.to_arrow(records[column])

    first_all = _per_distinct(arrow("first_names"), _fold_arrow)
    last = _per_distinct(arrow("last_name"), _fold_arrow)
    first = pc.list_element(pc.split_pattern(first_all, " ", max_splits=1), 0)
    both = pc.binary_join_element_wise(pc.fill_null(first_all, ""), pc.fill_null(last, ""), _SPACE)
    tokens = _text.null_if_empty(pc.utf8_trim(pc.replace_substring(both, "-", " "), " "))
    # First name and surname in alphabetical order: the same key whichever way round they were written.
    first_before = pc.fill_null(pc.less_equal(first, last), True)
    name_key = pc.if_else(first_before, pc.binary_join_element_wise(first, last, _SPACE),
                          pc.binary_join_element_wise(last, first, _SPACE))
    name_sorted = _per_distinct(tokens, _sorted_parts)
    doubt_name = _doubt_name(first, first_all, last)
    street = arrow("street_address")
    street_key, apartment = _per_distinct(street,
                                          lambda streets: pa.StructArray.from_arrays(
                                              _street_arrow(_fold_arrow(streets)), ["key", "apartment"])).flatten()
    email = pc.utf8_lower(arrow("email"))
    email_local = _text.null_if_empty(pc.list_element(pc.split_pattern(email, "@", max_splits=1), 0))
    birth = pd.to_datetime(records["birth_date"], errors="coerce").to_numpy("datetime64[D]")
    known = ~np.isnat(birth)
    birth_text = pa.array(np.datetime_as_string(birth, unit="D"), pa.large_string(), mask=~known)
    birth_year = pd.array(birth.astype("datetime64[Y]").astype(np.int64) + 1970, dtype="Int64")
    birth_year[~known] = pd.NA

    return pd.DataFrame({
        "record_key": records["record_key"].to_numpy(np.int64),
        "has_personal_id": records["personal_id"].notna().to_numpy(bool),
        "first_name": _strings(first, index),
        "first_names_all": _strings(first_all, index),
        "last_name": _strings(last, index),
        "name_tokens": _strings(tokens, index),
        "name_key": _strings(name_key, index),
        "name_sorted": _strings(name_sorted, index),
        "doubt_name": _strings(doubt_name, index),
        "street_key": _strings(street_key, index),
        "apartment": _strings(apartment, index),
        "postal_code": _strings(_postal_code(arrow("postal_code"), street), index),
        "city": _strings(_per_distinct(arrow("city"), _fold_arrow), index),
        "phone": _strings(arrow("phone"), index),
        "email": _strings(email, index),
        "email_local": _strings(email_local, index),
        "iban": _strings(arrow("iban"), index),
        "birth_date": _strings(birth_text, index),
        "birth_year": pd.Series(birth_year, index=index),
        "observed_at": records["observed_at"],
        "channel": _strings(arrow("channel"), index),
        "doubt_anchor": doubt_anchors(records),
    }, index=index)


def _doubt_name(first: pa.Array, first_all: pa.Array, last: pa.Array) -> pa.Array:
    """Two name parts in alphabetical order: the first given name and the surname's first part;
    with one field written, its first and last parts (none if it holds one part).

    >>> folded = lambda *values: pa.array(values, pa.large_string())
    >>> given = folded("viivi nea", "liukkonen", "viivi nea liukkonen", None, "viivi")
    >>> surname = folded("liukkonen", "viivi nea", None, "liukkonen", None)
    >>> first = pc.list_element(pc.split_pattern(given, " ", max_splits=1), 0)
    >>> _doubt_name(first, given, surname).to_pylist()
    ['liukkonen viivi', 'liukkonen viivi', 'liukkonen viivi', None, None]
    """
    surname_first = pc.list_element(pc.split_pattern(last, " ", max_splits=1), 0)

    def last_part(names: pa.Array) -> pa.Array:
        return pc.struct_field(pc.extract_regex(names, r" (?P<part>[^ ]+)$"), [0])

    has_first, has_surname = pc.is_valid(first), pc.is_valid(surname_first)
    one = pc.if_else(has_first, first, surname_first)
    other = pc.if_else(pc.and_(has_first, has_surname), surname_first,
                       pc.if_else(has_first, last_part(first_all), last_part(last)))
    return pc.if_else(pc.fill_null(pc.less_equal(one, other), True), pc.binary_join_element_wise(one, other, _SPACE),
                      pc.binary_join_element_wise(other, one, _SPACE))


def doubt_anchors(records: pd.DataFrame) -> np.ndarray:
    """Whether each record prohibits direct marketing without a valid code (a frame without
    statements has none).

    >>> doubt_anchors(pd.DataFrame({"personal_id": [None, "x", None, None],
    ...                             "marketing_prohibited": pd.array([True, True, False, None], "boolean")}))
    array([ True, False, False, False])
    """
    if "marketing_prohibited" not in records.columns:
        return np.zeros(len(records), dtype=bool)
    prohibits = records["marketing_prohibited"].astype("boolean").fillna(False).to_numpy(bool)
    return prohibits & records["personal_id"].isna().to_numpy(bool)
