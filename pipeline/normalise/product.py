"""Product: free text in Finnish, Swedish or English mapped to one of five codes.

The codes are `electricity`, `natural_gas`, `district_heating`, `broadband`
and `tv` (schemas.canonical.PRODUCTS). Matching ignores case, spaces, hyphens
and punctuation, and folds ä ö å é ü to a o a e u; a contract word at the end
(`sopimus`, `avtal`, `paketti`, `liittymä`, ...) is dropped; a small typo
(one edit, two in long words) is forgiven; in text of several words, one word
naming exactly one product decides. Anything else is None (flag product_unknown).

>>> [to_product(t) for t in ('Sähkö', 'el', 'electricity', 'sähkösopimus', 'Maakaasu', 'naturgas')]
['electricity', 'electricity', 'electricity', 'electricity', 'natural_gas', 'natural_gas']
>>> [to_product(t) for t in ('Kaukolämpö', 'fjärrvärme', 'district heat', 'Laajakaista', 'bredband')]
['district_heating', 'district_heating', 'district_heating', 'broadband', 'broadband']
>>> [to_product(t) for t in ('broadband', 'TV', 'television', 'tv-paketti', 'sähkä', 'laajakaita')]
['broadband', 'tv', 'tv', 'tv', 'electricity', 'broadband']
>>> to_product('sähkö ja kaukolämpö') is None, to_product('vesi') is None
(True, True)
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from pipeline.normalise import _text
from pipeline.normalise.status import Status
from pipeline.normalise.errors import EmptyValue, UnknownProduct
from schemas.canonical import PRODUCTS

_WORDS: dict[str, tuple[str, ...]] = {
    "electricity": ("sähkö", "sähköenergia", "el", "elektricitet", "ström", "electricity", "electric",
                    "electrical", "power"),
    "natural_gas": ("maakaasu", "kaasu", "naturgas", "gas", "naturalgas", "biokaasu", "biogas"),
    "district_heating": ("kaukolämpö", "kaukolämmitys", "fjärrvärme", "districtheating", "districtheat"),
    "broadband": ("laajakaista", "nettiliittymä", "netti", "internet", "kuitu", "valokuitu", "bredband",
                  "broadband", "fibre", "fiber"),
    "tv": ("tv", "televisio", "television", "kaapelitv", "teevee", "tvpalvelu"),
}
# Contract and package words that may follow the product name.
_SUFFIXES = ("sopimus", "avtal", "contract", "agreement", "paketti", "paket", "package", "liittymä",
             "anslutning", "connection", "palvelu", "tjänst", "service", "subscription", "tilaus")
_FOLD = str.maketrans("äöåéüáàèâ", "aoaeuaaea")
_NOT_LETTERS = re.compile(r"[^a-z]+")


def _key(text: str) -> str:
    """Lower case, diacritics folded, letters only."""
    return _NOT_LETTERS.sub("", text.lower().translate(_FOLD))


_VOCABULARY: dict[str, str] = {_key(word): product for product, words in _WORDS.items() for word in words}
_SUFFIX_KEYS = tuple(sorted({_key(s) for s in _SUFFIXES}, key=len, reverse=True))
assert set(_VOCABULARY.values()) == set(PRODUCTS)


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (adjacent swaps count one), stopping past `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _allowed_edits(key: str) -> int:
    return 0 if len(key) < 5 else 1 if len(key) < 9 else 2


def _match_key(key: str) -> str | None:
    """The product of one letters-only key: exact, without a contract word, or one small typo away."""
    candidates = [key]
    for suffix in _SUFFIX_KEYS:
        if key.endswith(suffix) and len(key) > len(suffix):
            candidates.append(key[: -len(suffix)])
    for candidate in candidates:
        if candidate in _VOCABULARY:
            return _VOCABULARY[candidate]
    for candidate in candidates:
        limit = _allowed_edits(candidate)
        if limit == 0:
            continue
        found = {product for word, product in _VOCABULARY.items()
                 if _allowed_edits(word) > 0 and _distance(candidate, word, limit) <= limit}
        if len(found) == 1:
            return found.pop()
    return None


@functools.lru_cache(maxsize=10_000)
def to_product(value: str | None) -> str | None:
    """The product code of free text, or None."""
    if value is None:
        return None
    whole = _match_key(_key(value))
    if whole is not None:
        return whole
    words = [w for w in re.split(r"[\s,;/&+()]+|\bja\b|\boch\b|\band\b", value.lower().translate(_FOLD)) if w]
    if len(words) < 2:
        return None
    found = {_match_key(_key(word)) for word in words} - {None}
    return found.pop() if len(found) == 1 else None


def validate(value: str) -> str:
    """The product code, or a typed error."""
    if not _text.collapse_whitespace(value):
        raise EmptyValue()
    product = to_product(value)
    if product is None:
        raise UnknownProduct()
    return product




def normalise_series(values: pd.Series) -> pd.DataFrame:
    """Map a column of product text: `product` (NA if unknown or missing) and
    `status` (Status.MISSING, Status.VALID, Status.INVALID), once per distinct value."""
    text = _text.arrow_collapse_whitespace(_text.to_arrow(values))
    products = _text.map_unique_arrow(text, to_product)
    present = pc.is_valid(text).to_numpy(zero_copy_only=False)
    found = pc.is_valid(products).to_numpy(zero_copy_only=False)
    status = np.where(found, Status.VALID, np.where(present, Status.INVALID, Status.MISSING)).astype(np.int8)
    return pd.DataFrame({"product": _text.to_series(products, values.index), "status": status}, index=values.index)
