"""The access log: who looked at whom, and what they did (migration 0012, issue 11).

Every view of a person, every reveal of masked values, every decision and every
export in the workbench writes a row, and so does the command line's `--unmask`
(the OS user, or `--as NAME`). A row holds the user, the time, the action, the ids
concerned (customer, source record, review, quarantine entry) and the reason asked
for; never a value. The table is append-only (a PostgreSQL trigger refuses UPDATE
and DELETE). `accesses` answers "who has looked at this person?" for
`register access-log`, the admin page and a subject access.
"""

from __future__ import annotations

import datetime as dt
import getpass

import sqlalchemy as sa

from schemas.register import ACCESS_ACTIONS, access_log, customer

__all__ = ["accesses", "count_accesses", "log_access", "os_user"]


def os_user(acting_as: str | None = None) -> str:
    """The command line's user: `--as NAME`, else the login name."""
    return (acting_as or "").strip() or getpass.getuser()


def log_access(connection: sa.Connection, *, user: str, action: str, via: str = "web",
               customer_id: int | None = None, source_record_pk: int | None = None, review_id: int | None = None,
               quarantine_id: int | None = None, reason: str | None = None,
               now: dt.datetime | None = None) -> int:
    """Append one row; returns its id. A reason shaped like a personal value is refused (RightsError)."""
    if action not in ACCESS_ACTIONS:
        raise ValueError(f"unknown access action {action!r}")
    from pipeline.register.rights.reasons import check_reason  # here: rights' access imports this module

    reason = reason.strip() if reason and reason.strip() else None
    check_reason(reason)
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return int(connection.execute(access_log.insert().returning(access_log.c.access_id).values(
        at=now, user_name=user, via=via, action=action, customer_id=customer_id,
        source_record_pk=source_record_pk, review_id=review_id, quarantine_id=quarantine_id,
        reason=reason)).scalar_one())


def _customer_ids(connection: sa.Connection, customer_id: int) -> list[int]:
    """The customer and every id merged into it (their rows are about the same person)."""
    merged = connection.execute(sa.select(customer.c.customer_id)
                                .where(customer.c.merged_into == customer_id)).scalars().all()
    return sorted({int(customer_id), *(int(m) for m in merged)})


def _where(connection: sa.Connection, customer_id: int | None, user: str | None,
           customer_ids: list[int] | None = None) -> list:
    conditions = []
    if customer_id is not None:
        conditions.append(access_log.c.customer_id.in_(_customer_ids(connection, customer_id)))
    if customer_ids is not None:
        conditions.append(access_log.c.customer_id.in_(sorted(customer_ids)))
    if user:
        conditions.append(access_log.c.user_name == user)
    return conditions


def count_accesses(connection: sa.Connection, *, customer_id: int | None = None, user: str | None = None) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(access_log)
                                  .where(*_where(connection, customer_id, user))).scalar_one())


def accesses(connection: sa.Connection, *, customer_id: int | None = None, user: str | None = None,
             customer_ids: list[int] | None = None, limit: int | None = 50, offset: int = 0,
             newest_first: bool = True) -> list[dict]:
    """Rows of the log, newest first: about this customer (and the ids merged into it), by this user."""
    order = (access_log.c.access_id.desc(),) if newest_first else (access_log.c.access_id,)
    query = sa.select(access_log).where(*_where(connection, customer_id, user, customer_ids)).order_by(*order)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items()}
            for r in connection.execute(query).mappings().all()]
