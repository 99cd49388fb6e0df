"""Personal names: casing as Finns write them, and splitting a full name.

Each part of a name (between spaces, hyphens and apostrophes) gets a capital
first letter and the rest in lower case, whatever the letters (å ä ö é ü stay
as they are). A part already written with a capital inside, after lower-case
letters (`McDonald`, `DeLorean`), is kept as the person wrote it. Nobility
and foreign particles (`af`, `von`, `de`, ...) are written in lower case inside
a surname (`von Hallen`, `af Forselles`), but not when they are the whole
surname. After a one-letter part an apostrophe is followed by a capital
(`O'Brien`, `D'Angelo`).

>>> normalise_surname('MÄKINEN')
'Mäkinen'
>>> normalise_given_names('anna-liisa'), normalise_given_names('aino   maria')
('Anna-Liisa', 'Aino Maria')
>>> normalise_surname('VON HALLEN'), normalise_surname("o'brien"), normalise_surname('McDonald')
('von Hallen', "O'Brien", 'McDonald')
>>> split_full_name('Mäkinen Aino Maria', SURNAME_FIRST)
('Aino Maria', 'Mäkinen')
>>> split_full_name('AINO MARIA MÄKINEN', GIVEN_FIRST)
('Aino Maria', 'Mäkinen')
>>> split_full_name('Aino Maria von Hallen', GIVEN_FIRST)
('Aino Maria', 'von Hallen')
>>> split_full_name('Mäkinen', GIVEN_FIRST)
(None, 'Mäkinen')
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.normalise import _text
from schemas.canonical import GIVEN_FIRST, SURNAME_FIRST

__all__ = ["GIVEN_FIRST", "SURNAME_FIRST", "PARTICLES", "case_name", "normalise_given_names",
           "normalise_surname", "split_full_name", "normalise_names"]

# Lower-case particles of surnames (Swedish, German, Dutch, French, Italian,
# Spanish, Portuguese). Compared in ASCII lower case.
PARTICLES: frozenset[str] = frozenset({
    "af", "av", "von", "van", "der", "den", "de", "del", "della", "di", "da", "das", "dos", "du",
    "la", "le", "zu", "ter", "ten",
})
_APOSTROPHES = "'\u2019"
_APOSTROPHE_SPLIT = re.compile(f"([{_APOSTROPHES}])")
_SPACED_HYPHEN = re.compile(" ?- ?")
_SPACED_HYPHEN_ARROW = " ?- ?"


def _keeps_own_capitals(part: str) -> bool:
    """`McDonald`: capital first, and every other capital between lower-case letters."""
    if len(part) < 4 or not part[0].isupper() or not part.isalpha():
        return False
    inner = [i for i in range(1, len(part)) if part[i].isupper()]
    return bool(inner) and all(part[i - 1].islower() and i + 1 < len(part) and part[i + 1].islower()
                               for i in inner)


def _capitalise(part: str) -> str:
    if _keeps_own_capitals(part):
        return part
    first = part[:1].upper()
    if len(first) != len(part[:1]):  # 'ß' would become 'SS': leave such a letter be
        first = part[:1]
    return first + part[1:].lower()


def _one_letter(text: str) -> bool:
    """O, D or L before an apostrophe (a combining mark may follow the letter, as in 'i̇')."""
    return text[:1].isalpha() and all(unicodedata.combining(c) for c in text[1:])


def _case_hyphen_part(part: str) -> str:
    pieces = _APOSTROPHE_SPLIT.split(part)
    out = [_capitalise(pieces[0])]
    for i in range(2, len(pieces), 2):
        before = pieces[i - 2]
        out.append(pieces[i - 1])
        out.append(_capitalise(pieces[i]) if _one_letter(before) else pieces[i].lower())
    return "".join(out)


def _clean(value: str) -> str:
    """Whitespace collapsed and spaces around hyphens dropped (`Anna - Liisa`)."""
    return _SPACED_HYPHEN.sub("-", _text.collapse_whitespace(value))


def _case_token(token: str) -> str:
    """One space-free token: each hyphenated part cased."""
    return "-".join(_case_hyphen_part(part) for part in token.split("-"))


def case_name(value: str, *, surname: bool = False) -> str:
    """Casing of a name as Finns write it (see the module docstring)."""
    tokens = _clean(value).split(" ")
    cased = []
    for i, token in enumerate(tokens):
        if surname and i < len(tokens) - 1 and _is_particle(token):
            cased.append(_text.ascii_lower(token))  # a particle is ASCII letters only
        else:
            cased.append(_case_token(token))
    return " ".join(cased)


def normalise_given_names(value: str | None) -> str | None:
    """First names cased; None when blank."""
    if value is None or not _clean(value):
        return None
    return case_name(value)


def normalise_surname(value: str | None) -> str | None:
    """Last name cased, particles in lower case; None when blank."""
    if value is None or not _clean(value):
        return None
    return case_name(value, surname=True)


def _is_particle(token: str) -> bool:
    return _text.ascii_lower(token) in PARTICLES


def split_tokens(full: str, order: str) -> tuple[str | None, str | None]:
    """(first names, last name) of a full name as written (whitespace cleaned, not cased)."""
    text = _clean(full)
    if not text:
        return None, None
    if "," in text:
        surname, _, given = text.partition(",")
        return _clean(given.replace(",", " ")) or None, _clean(surname) or None
    tokens = text.split(" ")
    if len(tokens) == 1:
        return None, text
    if order == SURNAME_FIRST:
        end = 0
        while end < len(tokens) - 1 and _is_particle(tokens[end]):
            end += 1
        surname_tokens, given_tokens = tokens[:end + 1], tokens[end + 1:]
    elif order == GIVEN_FIRST:
        start = len(tokens) - 1
        while start > 0 and _is_particle(tokens[start - 1]):
            start -= 1
        surname_tokens, given_tokens = tokens[start:], tokens[:start]
    else:
        raise ValueError("order must be surname_first or given_first")
    return " ".join(given_tokens) or None, " ".join(surname_tokens)


def split_full_name(full: str | None, order: str) -> tuple[str | None, str | None]:
    """(first names, last name) of a full name, cased.

    `order` is SURNAME_FIRST (phone channel: `Mäkinen Aino Maria`) or
    GIVEN_FIRST (mail and e-mail: `Aino Maria Mäkinen`); a comma always marks
    `surname, first names`. Particles go with the surname. One token is a last
    name only. Only single-word surnames (hyphenated counts as one) can be told
    apart without a comma.
    """
    if full is None:
        return None, None
    given, surname = split_tokens(full, order)
    return normalise_given_names(given), normalise_surname(surname)


# --- column-wise ----------------------------------------------------------------------------

# A full name needing the scalar split: a comma, or a particle word (RE2's
# case folding matches a superset of ASCII lower case, so nothing is missed).
_NEEDS_SCALAR_SPLIT = "(?i:,|(?:^| )(?:" + "|".join(sorted(PARTICLES)) + ")(?: |$))"
_SPLIT_PATTERNS = {
    SURNAME_FIRST: r"^(?P<last>[^ ]+)(?: (?P<first>.+))?$",
    GIVEN_FIRST: r"^(?:(?P<first>.+) )?(?P<last>[^ ]+)$",
}
_PARTICLE_ARRAY = pa.array(sorted(PARTICLES), pa.large_string())


def _clean_arrow(data: pa.Array) -> pa.Array:
    collapsed = _text.arrow_collapse_whitespace(data)
    return _text.null_if_empty(pc.replace_substring_regex(collapsed, _SPACED_HYPHEN_ARROW, "-"))


def _case_arrow(names: pa.Array, *, surname: bool) -> pa.Array:
    """Column version of `case_name` on cleaned names: tokens cased once per distinct token."""
    tokens = pc.split_pattern(names, " ")
    flat = pc.list_flatten(tokens)
    cased = _text.map_unique_arrow(flat, _case_token)
    if surname and len(flat):
        offsets = tokens.offsets.to_numpy()
        parent = pc.list_parent_indices(tokens).to_numpy()
        last = np.arange(len(flat)) == offsets[parent + 1] - 1
        lowered = pc.ascii_lower(flat)
        particle = pc.is_in(lowered, _PARTICLE_ARRAY).to_numpy(zero_copy_only=False) & ~last
        cased = pc.if_else(pa.array(particle), lowered, cased)
    rebuilt = pa.ListArray.from_arrays(tokens.offsets, cased, mask=pc.is_null(names))
    return pc.binary_join(rebuilt, pa.scalar(" ", pa.large_string()))


def normalise_names(first_names: pd.Series, last_name: pd.Series, full_name: pd.Series,
                    name_order: pd.Series) -> pd.DataFrame:
    """Cased `first_names` and `last_name` per row, NA where missing.

    When a row gives neither first nor last name separately, its `full_name`
    is split by its `name_order` (given names first when the order is missing).
    """
    index = first_names.index
    n = len(index)
    first = _clean_arrow(_text.to_arrow(first_names))
    last = _clean_arrow(_text.to_arrow(last_name))
    full = _clean_arrow(_text.to_arrow(full_name))
    order = pc.fill_null(_text.to_arrow(name_order), GIVEN_FIRST)
    use_full = (pc.is_null(first).to_numpy(zero_copy_only=False) & pc.is_null(last).to_numpy(zero_copy_only=False)
                & pc.is_valid(full).to_numpy(zero_copy_only=False))

    if use_full.any():
        split_first = [pa.nulls(n, pa.large_string())]
        split_last = [pa.nulls(n, pa.large_string())]
        needs_scalar = use_full & (_text.fullmatch(full, f".*{_NEEDS_SCALAR_SPLIT}.*")
                                   | ~_text.fullmatch(order, f"{SURNAME_FIRST}|{GIVEN_FIRST}"))
        for name, pattern in _SPLIT_PATTERNS.items():
            rows = use_full & ~needs_scalar & _text.fullmatch(order, name)
            if rows.any():
                parts = pc.extract_regex(full.filter(pa.array(rows)), pattern)
                split_first.append(_text.scatter(rows, _text.null_if_empty(pc.struct_field(parts, "first"))))
                split_last.append(_text.scatter(rows, pc.struct_field(parts, "last")))
        if needs_scalar.any():
            texts = full.filter(pa.array(needs_scalar)).to_pylist()
            orders = order.filter(pa.array(needs_scalar)).to_pylist()
            pairs = [split_tokens(text, o if o in _SPLIT_PATTERNS else GIVEN_FIRST) for text, o in zip(texts, orders)]
            split_first.append(_text.scatter(needs_scalar, pa.array([p[0] for p in pairs], pa.large_string())))
            split_last.append(_text.scatter(needs_scalar, pa.array([p[1] for p in pairs], pa.large_string())))
        first = pc.if_else(pa.array(use_full), pc.coalesce(*split_first), first)
        last = pc.if_else(pa.array(use_full), pc.coalesce(*split_last), last)

    return pd.DataFrame({
        "first_names": _text.to_series(_case_arrow(first, surname=False), index),
        "last_name": _text.to_series(_case_arrow(last, surname=True), index),
    }, index=index)
