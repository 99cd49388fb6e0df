"""Varied spellings: the same values written the many ways real exports write them.

`generate(..., spellings="varied")` (`register-synth --spellings varied`) rewrites a
share of each channel's typed values after the noise profile has done its work.
Each rewrite keeps what the value means (the same number, address, name, account,
code or e-mail address); only the spelling changes, so the ground truth stays as it
is. What it is for: the normalisers' fast paths must hold when one number is
written ten ways (issue 13), not only in the handful of formats the default
generator uses. Its own random stream: the other streams, and so every other
byte of the landing zone, are those of the same seed without it.

Rates are per value present (default 0.6): each rewritten value takes one
spelling drawn uniformly from its field's list.

phone         (040) 123 4567 · 040/123 4567 · 040.123.4567 · +358 (0)40 123 4567 ·
              +358-40-123 4567 · 040 12 34 567 · 0401 234 567 · 358 40 1234567 ·
              +358 040 123 4567 · puh. 040 123 4567 · 040–1234567 (en dash) ·
              +358 40 1234 567
names         UPPER · lower · doubled inner spaces · a no-break space · padding
street        UPPER · lower · "5 b12" · "5 B12" · "5, B 12" · doubled spaces · padding
              (never "5b 12": a letter joined to the house number is the house's own)
postal code   padding · a no-break space inside the padding
city          UPPER · lower · padding
e-mail        Upper.Case@Domain.FI · padding
account       lower case · groups of four · no spaces · hyphens between groups
identity code lower case · padding
"""

from __future__ import annotations

import re

import numpy as np

from synth.typed import Typed, _split_number

SPELLINGS = ("default", "varied")
DEFAULT_RATE = 0.6
NBSP = "\u00a0"


def _digits(phone: str) -> str | None:
    """The national significant number of a Finnish phone as typed (None: not one)."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("00358"):
        digits = digits[5:]
    elif digits.startswith("358") and (phone.lstrip().startswith("+") or len(digits) > 10):
        digits = digits[3:]
    elif digits.startswith("0"):
        digits = digits[1:]
    else:
        return None
    return digits if 5 <= len(digits) <= 12 and digits[0] != "0" else None


def phone_spelling(phone: str, style: int) -> str:
    """One of twelve ways of writing the same Finnish number.

    >>> [phone_spelling('040 123 4567', s) for s in range(12)]  # doctest: +NORMALIZE_WHITESPACE
    ['(040) 123 4567', '040/123 4567', '040.123.4567', '+358 (0)40 123 4567', '+358-40-123 4567',
     '040 12 34 567', '0401 234 567', '358 40 1234567', '+358 040 123 4567', 'puh. 040 123 4567',
     '040–1234567', '+358 40 1234 567']
    """
    national = _digits(phone)
    if national is None:
        return phone
    area, rest = _split_number("+358" + national)
    head, tail = rest[:3], rest[3:]
    return [
        f"(0{area}) {head} {tail}",
        f"0{area}/{head} {tail}",
        f"0{area}.{head}.{tail}",
        f"+358 (0){area} {head} {tail}",
        f"+358-{area}-{head} {tail}",
        f"0{area} {rest[:2]} {rest[2:4]} {rest[4:]}",
        f"0{area}{rest[:1]} {rest[1:4]} {rest[4:]}",
        f"358 {area} {rest}",
        f"+358 0{area} {head} {tail}",
        f"puh. 0{area} {head} {tail}",
        f"0{area}\u2013{rest}",
        f"+358 {area} {rest[:4]} {rest[4:]}",
    ][style]


def _name_spelling(name: str, style: int) -> str:
    return [name.upper(), name.lower(), name.replace(" ", "  "), name.replace(" ", NBSP, 1),
            f" {name} "][style]


_STAIRCASE = re.compile(r"^(.*\d)\s+([A-Za-z])\s+(\d+)$")


def _street_spelling(street: str, style: int) -> str:
    flat = _STAIRCASE.match(street)
    if style == 0:
        return street.upper()
    if style == 1:
        return street.lower()
    if style == 2 and flat:
        return f"{flat.group(1)} {flat.group(2)}{flat.group(3)}"
    if style == 3 and flat:
        return f"{flat.group(1)} {flat.group(2).lower()}{flat.group(3)}"
    if style == 4 and flat:
        return f"{flat.group(1)}, {flat.group(2)} {flat.group(3)}"
    if style == 5:
        return street.replace(" ", "  ")
    return f" {street} "


def _account_spelling(account: str, style: int) -> str:
    compact = account.replace(" ", "")
    if not compact.upper().startswith("FI"):
        return account  # the old domestic form keeps its own spelling
    groups = [compact[i:i + 4] for i in range(0, len(compact), 4)]
    return [compact.lower(), " ".join(groups), compact, "-".join(groups)][style]


def _each(rng: np.random.Generator, values: np.ndarray, rate: float, styles: int, spell) -> None:
    present = np.array([isinstance(v, str) and v.strip() != "" for v in values], dtype=bool)
    chosen = np.flatnonzero(present & (rng.random(len(values)) < rate))
    picks = rng.integers(0, styles, len(chosen))
    for row, style in zip(chosen.tolist(), picks.tolist()):
        values[row] = spell(values[row], style)


def respell(typed: Typed, rng: np.random.Generator, channel: str, rate: float = DEFAULT_RATE) -> Typed:
    """Rewrite a share `rate` of each field's values in another spelling, in place.

    The letters' one-line address separates street, postal code and city by commas,
    so a comma inside their street (`5, B 12`) would change what it says: not there.
    The service desk's workbook keeps a postal code as a number cell: not respelled."""
    _each(rng, typed.phone, rate, 12, phone_spelling)
    _each(rng, typed.first_names, rate, 5, _name_spelling)
    _each(rng, typed.last_name, rate, 5, _name_spelling)
    _each(rng, typed.street, rate, 7,
          (lambda v, s: _street_spelling(v, 5 if s == 4 else s)) if channel == "mail" else _street_spelling)
    if channel != "in_person":  # the service desk's workbook stores a postal code as a number
        _each(rng, typed.postal_code, rate, 2, lambda v, s: [f" {v} ", f"{NBSP}{v}"][s])
    _each(rng, typed.city, rate, 3, lambda v, s: [v.upper(), v.lower(), f" {v} "][s])
    _each(rng, typed.email, rate, 2, lambda v, s: [v.title(), f" {v} "][s])
    _each(rng, typed.account, rate, 4, _account_spelling)
    _each(rng, typed.personal_id, rate, 2, lambda v, s: [v.lower(), f" {v} "][s])
    return typed
