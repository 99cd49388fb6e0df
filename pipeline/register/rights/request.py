"""What every rights request shares: its error, its time, its steward and its record.

Access, rectification and erasure each need the steward's name, a timezone-aware
time, values made JSON-native, and one `rights_request` row per surviving
customer holding the steward, the reason and counts, never a personal value
(docs/register_rules.md rule 8). They are here once, below the verbs that use them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from pipeline.register.steward import StewardError
from schemas.register import rights_request

__all__ = ["RightsError", "json_value", "record_request", "request_time", "required"]


class RightsError(StewardError):
    """A rights request that cannot be carried out (the message holds no personal value)."""


def json_value(value: object) -> object:
    """A JSON-native value: dates and times as ISO 8601 text."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def request_time(now: dt.datetime | None) -> dt.datetime:
    """The request's time in UTC (now, unless a caller gives one); a naive time is refused."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")
    return now.astimezone(dt.timezone.utc)


def required(text: str | None, what: str) -> str:
    """`text` stripped; a RightsError naming `what` when it is missing or blank."""
    if not text or not text.strip():
        raise RightsError(f"a rights request needs {what}")
    return text.strip()


def record_request(connection: sa.Connection, customer_ids: Sequence[int], *, action: str, outcome: dict, by: str,
                   now: dt.datetime, reason: str | None = None, attribute: str | None = None) -> list[int]:
    """One rights_request row per surviving customer (one without a customer when there is none)."""
    rows = [{"customer_id": cid, "action": action, "attribute": attribute, "reason": reason, "outcome": outcome,
             "decided_by": by, "performed_at": now} for cid in (customer_ids or (None,))]
    return [connection.execute(rights_request.insert().returning(rights_request.c.request_id), row).scalar_one()
            for row in rows]
