"""Invariants of the register, as queries that return counts or ids (never values).

Each is the domain half of a Dagster asset check (`assets/checks.py`): an empty
answer means the invariant holds.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import Engine

from pipeline.normalise import hetu
from pipeline.normalise.status import Status
from pipeline.register.marketing import Ineligible, held_back_eligible, ineligible_in_view
from schemas.register import customer

# Rule 1 of docs/register_rules.md for every loaded file:
#   read = accepted + quarantined,
#   accepted - resent - erased = versions held from the file: source records (the current
#     versions) plus earlier versions (source_record_version); a version keeps its file,
#     current or not,
#   quarantined - requarantined = record-level quarantine entries of the file.
_UNBALANCED_FILES = text(
    """
    SELECT f.intake_file_id
    FROM intake_file f
    LEFT JOIN (SELECT intake_file_id, COUNT(*) AS n FROM source_record GROUP BY intake_file_id) s
           ON s.intake_file_id = f.intake_file_id
    LEFT JOIN (SELECT intake_file_id, COUNT(*) AS n FROM source_record_version GROUP BY intake_file_id) v
           ON v.intake_file_id = f.intake_file_id
    LEFT JOIN (SELECT intake_file_id, COUNT(*) AS n FROM quarantine
               WHERE source_record_id IS NOT NULL OR record_number IS NOT NULL
               GROUP BY intake_file_id) q
           ON q.intake_file_id = f.intake_file_id
    WHERE f.records_read <> f.records_accepted + f.records_quarantined
       OR f.records_accepted - f.records_resent - f.records_erased <> COALESCE(s.n, 0) + COALESCE(v.n, 0)
       OR f.records_quarantined - f.records_requarantined <> COALESCE(q.n, 0)
    """
)


def live_customers(engine: Engine) -> int:
    """Customers neither merged away nor erased: the register's rows that are people."""
    with engine.connect() as connection:
        return int(connection.execute(
            sa.select(sa.func.count()).select_from(customer)
            .where(customer.c.merged_into.is_(None), customer.c.erased_at.is_(None))).scalar_one())


def unbalanced_files(engine: Engine) -> list[int]:
    """Ids of intake files whose counts do not add up (empty when all is well)."""
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(_UNBALANCED_FILES)]


# Rule 4: an invalid or temporary code is never stored as a customer's code.
_READ_CHUNK = 100_000


def customers_with_invalid_codes(engine: Engine, today: dt.date) -> list[int]:
    """Ids of customers whose personal_id is not a valid permanent identity code,
    exactly as `pipeline.normalise.hetu` writes one (canonical form, checked column-wise)."""
    bad: list[int] = []
    with engine.connect() as conn:
        result = conn.execute(sa.select(customer.c.customer_id, customer.c.personal_id)
                              .where(customer.c.personal_id.is_not(None)))
        while chunk := result.fetchmany(_READ_CHUNK):
            ids = pd.Series([row[0] for row in chunk], dtype="int64")
            codes = pd.Series([row[1] for row in chunk], dtype="string[pyarrow]")
            judged = hetu.normalise_series(codes, today)
            canonical = judged["personal_id"].fillna("").astype(str).to_numpy() == codes.astype(str).to_numpy()
            valid = (judged["status"].to_numpy() == Status.VALID) & ~judged["repaired"].to_numpy() & canonical
            bad.extend(int(i) for i in ids[~valid])
    return sorted(bad)


def customers_sharing_a_code(engine: Engine) -> list[tuple[int, ...]]:
    """Groups of active customers (not merged away) holding the same personal_id:
    each group's customer ids, never the code itself (empty when all is well).

    An erased customer is not active: it keeps its code only as the billing identity
    of a past contract, and the same person coming back later is a new customer.
    """
    active = sa.and_(customer.c.merged_into.is_(None), customer.c.erased_at.is_(None),
                     customer.c.personal_id.is_not(None))
    shared = (sa.select(customer.c.personal_id).where(active)
              .group_by(customer.c.personal_id).having(sa.func.count() > 1)).subquery()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(shared.c.personal_id, customer.c.customer_id)
                            .join(shared, shared.c.personal_id == customer.c.personal_id)
                            .where(active).order_by(customer.c.customer_id)).all()
    groups: dict[str, list[int]] = {}
    for code, customer_id in rows:
        groups.setdefault(code, []).append(int(customer_id))
    return sorted(tuple(ids) for ids in groups.values())


def marketing_view_violations(engine: Engine, today: dt.date) -> Ineligible:
    """Customers the `marketing_contacts` view lists although the customer table says it must not:
    prohibited, under 18 or of unknown age, erased, merged away, or not a customer at all."""
    with engine.connect() as conn:
        return ineligible_in_view(conn, today)


def held_under_doubt(engine: Engine, today: dt.date) -> dict[str, int]:
    """How many customers who would otherwise be on the marketing list an open review holds back
    (tied to someone who prohibited direct marketing, or to a possible minor), by reason."""
    with engine.connect() as conn:
        return held_back_eligible(conn, today)
