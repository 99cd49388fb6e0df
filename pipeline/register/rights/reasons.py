"""The check that a rights request's reason holds no personal value.

The reason a steward gives is recorded in `rights_request` and shown in later
subject access reports, so it must hold no personal data (docs/register_rules.md rule 7):
neither one of the subject's own values (codes, names, phone, e-mail, IBAN,
street address) nor anything shaped like an identity code, an IBAN, an e-mail
address or a phone number, whoever's it is. A refusal names the kind of data,
never the text. Access, rectification and erasure all check their reason here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa

from pipeline.register.rights.request import RightsError, json_value
from pipeline.register.rights.subject import Subject
from schemas.canonical import PERSONAL_ID_SHAPE
from schemas.register import customer, source_record

__all__ = ["PERSONAL_SHAPES", "check_reason", "personal_shape", "subject_values"]


# Shapes of personal data a recorded reason must never hold, whoever's it is. Shapes, not
# valid values: a mistyped code or number is personal data all the same. Dates (2026-11-25)
# and ticket numbers (4711, INC-20261125-0042) are not phone numbers: a national number
# starts with 0, an international one with + or 00.
_BOUNDED = r"(?<![0-9A-Za-z]){}(?![0-9A-Za-z])"
PERSONAL_SHAPES: dict[str, re.Pattern[str]] = {
    "an identity code": re.compile(_BOUNDED.format(PERSONAL_ID_SHAPE), re.IGNORECASE),
    "an IBAN": re.compile(_BOUNDED.format(r"[A-Z]{2}\d{2} ?(?:[A-Z0-9]{4} ?){2,7}[A-Z0-9]{1,4}"), re.IGNORECASE),
    "an e-mail address": re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+"),
    "a phone number": re.compile(r"(?<![\w+])(?:(?:\+|00)\d(?:[ -]?\d){6,14}|0\d(?:[ -]?\d){5,11})(?!\w)"),
}
_PERSON_COLUMNS = ("personal_id", "first_names", "last_name", "street_address", "phone", "email", "iban")


def personal_shape(text: str) -> str | None:
    """What kind of personal data `text` holds by its shape, or None.

    >>> [personal_shape(t) for t in ("ticket 4711 of 2026-11-25", "call 040 123 4567", "mail a.b@example.fi",
    ...                              "account FI21 1234 5600 0007 85", "code 010101-123N", "moved house")]
    [None, 'a phone number', 'an e-mail address', 'an IBAN', 'an identity code', None]
    """
    return next((kind for kind, shape in PERSONAL_SHAPES.items() if shape.search(text)), None)


def _mentions(text: str, values: Iterable[object]) -> bool:
    """Whether `text` quotes one of the values (booleans and very short values aside).

    >>> _mentions("customer called: new number +358401234567", ["+358401234567"]), _mentions("moved", [True])
    (True, False)
    """
    folded = text.casefold()
    return any(len(str(v).strip()) > 3 and str(json_value(v)).casefold().strip() in folded
               for v in values if v is not None and not isinstance(v, bool))


def subject_values(connection: sa.Connection, subject: Subject) -> set[object]:
    """The subject's codes, names (each name too), phones, e-mails, IBANs and street addresses."""
    values: set[object] = set(subject.personal_ids)
    ids = subject.all_customer_ids
    if ids:
        for table in (customer, source_record):
            ours = table.c.customer_id.in_(ids)
            for row in connection.execute(sa.select(*[table.c[c] for c in _PERSON_COLUMNS]).where(ours)):
                values.update(v for v in row if v)
    names = [v for v in values if isinstance(v, str)]
    values.update(part for v in names for part in re.split(r"[\s-]+", v) if part)
    return values


def check_reason(reason: str | None, values: Iterable[object] = ()) -> None:
    """Refuse a reason holding personal data: one of `values`, or a code, IBAN, e-mail or phone by shape.

    The reason is recorded and shown in later subject access reports; the refusal
    names the kind of data, never the text.
    """
    if not reason:
        return
    kind = personal_shape(reason) or ("a value of the person" if _mentions(reason, values) else None)
    if kind:
        raise RightsError(f"the reason must not contain personal data (it holds {kind}): it is recorded; "
                          "give a ticket number or a plain description")

