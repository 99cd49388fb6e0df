"""Typing noise: the small ways people and clerks get values wrong.

Each function takes a value and one or two uniform random numbers in [0, 1)
(drawn in bulk by the caller, so a run stays deterministic and fast) and returns
the value as typed. A function that finds nothing to change returns its input;
`Noiser.apply` tags only values that really changed.

>>> swap_adjacent('Mäkinen', 0.0)
'äMkinen'
>>> wrong_digit('120385-1232', 0.0, 0.0)
'220385-1232'
>>> letter_o_for_zero('120385-1232', 0.0)
'12O385-1232'
>>> ascii_fold('Mäkinen-Öhman')
'Makinen-Ohman'
>>> first_name_only('Aino Maria')
'Aino'
"""

from __future__ import annotations

import unicodedata

import numpy as np

# Neighbouring keys on a Finnish keyboard, for wrong-letter typos.
_KEY_ROWS = ("qwertyuiopå", "asdfghjklöä", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _row in _KEY_ROWS:
    for _i, _ch in enumerate(_row):
        _NEIGHBOURS[_ch] = _row[max(0, _i - 1):_i] + _row[_i + 1:_i + 2]

_FOLD = str.maketrans({"ä": "a", "Ä": "A", "ö": "o", "Ö": "O", "å": "a", "Å": "A",
                       "é": "e", "É": "E", "ü": "u", "Ü": "U"})


def _pick(positions: list[int], u: float) -> int:
    return positions[min(int(u * len(positions)), len(positions) - 1)]


def swap_adjacent(value: str, u: float, digits_only: bool = False) -> str:
    """Swap two neighbouring, different letters (or digits)."""
    ok = str.isdigit if digits_only else str.isalpha
    positions = [i for i in range(len(value) - 1)
                 if ok(value[i]) and ok(value[i + 1]) and value[i] != value[i + 1]]
    if not positions:
        return value
    i = _pick(positions, u)
    return value[:i] + value[i + 1] + value[i] + value[i + 2:]


def swap_adjacent_digits(value: str, u: float, _v: float = 0.0) -> str:
    """`swap_adjacent` over digits only.

    >>> swap_adjacent_digits('120385-1232', 0.0)
    '210385-1232'
    """
    return swap_adjacent(value, u, digits_only=True)


def swap_adjacent_letters(value: str, u: float, _v: float = 0.0) -> str:
    return swap_adjacent(value, u)


def wrong_digit(value: str, u: float, v: float) -> str:
    """Replace one digit by a different digit."""
    positions = [i for i, ch in enumerate(value) if ch.isdigit()]
    if not positions:
        return value
    i = _pick(positions, u)
    new = (int(value[i]) + 1 + int(v * 9)) % 10
    return value[:i] + str(new) + value[i + 1:]


def wrong_letter(value: str, u: float, v: float) -> str:
    """Replace one letter by a neighbouring key, keeping its case.

    >>> wrong_letter('Aino', 0.3, 0.0)
    'Auno'
    """
    positions = [i for i, ch in enumerate(value) if ch.lower() in _NEIGHBOURS]
    if not positions:
        return value
    i = _pick(positions, u)
    options = _NEIGHBOURS[value[i].lower()]
    new = options[min(int(v * len(options)), len(options) - 1)]
    return value[:i] + (new.upper() if value[i].isupper() else new) + value[i + 1:]


def letter_o_for_zero(value: str, u: float, _v: float = 0.0) -> str:
    """Type the letter O for one zero."""
    positions = [i for i, ch in enumerate(value) if ch == "0"]
    if not positions:
        return value
    i = _pick(positions, u)
    return value[:i] + "O" + value[i + 1:]


def surrounding_spaces(value: str, u: float, _v: float = 0.0) -> str:
    """Leading, trailing or both.

    >>> surrounding_spaces('Aino', 0.9)
    ' Aino  '
    """
    return (" " + value, value + " ", " " + value + "  ")[min(int(u * 3), 2)]


def doubled_space(value: str, u: float, v: float = 0.0) -> str:
    """Double one inner space; a value without one gets surrounding spaces.

    >>> doubled_space('Aino Maria', 0.0)
    'Aino  Maria'
    """
    positions = [i for i, ch in enumerate(value) if ch == " "]
    if not positions:
        return surrounding_spaces(value, v)
    i = _pick(positions, u)
    return value[:i] + " " + value[i:]


def ascii_fold(value: str, _u: float = 0.0, _v: float = 0.0) -> str:
    """Drop the dots and rings, as on a foreign keyboard."""
    folded = value.translate(_FOLD)
    if folded.isascii():
        return folded
    return unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode("ascii")


def upper(value: str, _u: float = 0.0, _v: float = 0.0) -> str:
    return value.upper()


def lower(value: str, _u: float = 0.0, _v: float = 0.0) -> str:
    return value.lower()


def first_name_only(value: str, _u: float = 0.0, _v: float = 0.0) -> str:
    """Only the first of several first names."""
    return value.split(" ", 1)[0]


def drop_a_middle_name(value: str, u: float, _v: float = 0.0) -> str:
    """Of three or more given names, one after the first left out.

    >>> drop_a_middle_name('Aino Maria Sofia', 0.0), drop_a_middle_name('Aino Maria Sofia', 0.9)
    ('Aino Sofia', 'Aino Maria')
    """
    parts = value.split(" ")
    if len(parts) < 3:
        return value
    drop = 1 + min(int(u * (len(parts) - 1)), len(parts) - 2)
    return " ".join(parts[:drop] + parts[drop + 1:])


class Noiser:
    """Applies noise functions to chosen elements of a column, scaled by a level.

    Columns are numpy object arrays of str ('' is a missing value); `tags` is a
    parallel object array collecting what was done ("field:operation" tokens).
    """

    def __init__(self, rng: np.random.Generator, level: float):
        self.rng = rng
        self.level = level

    def rate(self, base: float) -> float:
        return float(min(1.0, max(0.0, base * self.level)))

    def choose(self, n: int, base: float, where: np.ndarray | None = None) -> np.ndarray:
        """A random mask with P(True) = base scaled by the level (only inside `where`)."""
        mask = self.rng.random(n) < self.rate(base)
        return mask if where is None else mask & where

    def apply(self, values: np.ndarray, mask: np.ndarray, function, tags: np.ndarray | None, tag: str) -> np.ndarray:
        """Apply `function(value, u, v)` where mask is set and the value is present.

        Returns the boolean mask of the values that actually changed.
        """
        index = np.flatnonzero(mask & (values != ""))
        randoms = self.rng.random((len(index), 2))
        changed = np.zeros(len(values), dtype=bool)
        for j, i in enumerate(index.tolist()):
            old = values[i]
            new = function(old, randoms[j, 0], randoms[j, 1])
            if new != old:
                values[i] = new
                changed[i] = True
                if tags is not None:
                    tags[i] = tags[i] + " " + tag if tags[i] else tag
        return changed

    def blank(self, values: np.ndarray, mask: np.ndarray, tags: np.ndarray | None, tag: str) -> np.ndarray:
        """Drop values (a missing field); returns the mask of values dropped."""
        dropped = mask & (values != "")
        values[dropped] = ""
        if tags is not None:
            add_tag(tags, dropped, tag)
        return dropped


def add_tag(tags: np.ndarray, mask: np.ndarray, tag: str) -> None:
    """Append a tag token to every element of `tags` under `mask`."""
    for i in np.flatnonzero(mask).tolist():
        tags[i] = tags[i] + " " + tag if tags[i] else tag
