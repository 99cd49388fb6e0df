"""Retention: personal data the register no longer needs is removed on a schedule.

`purge(engine, now, quarantine_days=90)` does, in ONE transaction:

1. *Quarantine.* A quarantined record keeps its raw values (the JSON of the
   fields as they arrived) so that a steward can correct it; once it has been in
   quarantine more than `quarantine_days` days the raw values are removed
   (`raw_values` NULL) and `raw_purged_at` records when. The entry itself stays:
   its file's counts must still add up (REGISTER.md rule 1).
2. *Erased people.* No source record may remain under a customer that has been
   erased (`customer.erased_at` set, REGISTER.md rule 8). Erasure removes them
   itself; this sweeps up any that remain (a record resolved onto the customer
   after the erasure, or an erasure interrupted half-way). As erasure does, each
   deleted record leaves the blocking index (`match_key`), review entries that
   touch the record or the erased customer go, provenance loses the pointer, and
   its file counts it in `records_erased` so that accepted - resent - erased = held.

Running it twice changes nothing the second time. Counts only, never a value.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from schemas.register import (PROVENANCE_UNITS, customer, golden_provenance, intake_file, match_key, quarantine,
                              review_queue, source_record)

log = logging.getLogger(__name__)

DEFAULT_QUARANTINE_DAYS = 90

# The resolver's transaction lock (pipeline.register.resolve): the sweep must not
# delete records while a load or a steward's decision is resolving identities.
_RESOLVER_LOCK = 7301


@dataclass(frozen=True)
class PurgeSummary:
    """What one purge removed. Counts only."""

    quarantine_raw_values_purged: int = 0
    erased_source_records_deleted: int = 0
    erased_match_keys_deleted: int = 0
    reviews_deleted: int = 0
    provenance_references_removed: int = 0
    intake_files_adjusted: int = 0

    def metadata(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


def quarantine_cutoff(now: dt.datetime, quarantine_days: int) -> dt.datetime:
    """Entries quarantined before this moment have been held more than `quarantine_days` days.

    >>> quarantine_cutoff(dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc), 90).date()
    datetime.date(2026, 8, 27)
    """
    return now - dt.timedelta(days=quarantine_days)


def _erased_records() -> sa.Select:
    """Primary keys of source records held under an erased customer."""
    return (sa.select(source_record.c.source_record_pk)
            .join(customer, customer.c.customer_id == source_record.c.customer_id)
            .where(customer.c.erased_at.is_not(None)))


def purge(engine: sa.Engine, now: dt.datetime, quarantine_days: int = DEFAULT_QUARANTINE_DAYS) -> PurgeSummary:
    """Apply the retention rules once (see the module doc); returns counts."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("purge: `now` must be timezone-aware")
    if quarantine_days < 1:
        raise ValueError("purge: quarantine_days must be at least 1")
    now = now.astimezone(dt.timezone.utc)
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="IMMEDIATE")  # a writer from the start
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _RESOLVER_LOCK})
            purged = _purge_quarantine(connection, now, quarantine_days)
            swept = _sweep_erased(connection)
    summary = PurgeSummary(quarantine_raw_values_purged=purged, **swept)
    log.info("retention: %d quarantine entries' raw values purged (older than %d days); "
             "%d source records of erased customers deleted",
             summary.quarantine_raw_values_purged, quarantine_days, summary.erased_source_records_deleted)
    return summary


def _purge_quarantine(connection: sa.Connection, now: dt.datetime, quarantine_days: int) -> int:
    result = connection.execute(
        quarantine.update()
        .where(quarantine.c.raw_purged_at.is_(None),
               quarantine.c.raw_values.is_not(None),
               quarantine.c.quarantined_at < quarantine_cutoff(now, quarantine_days))
        .values(raw_values=None, raw_purged_at=now))
    return result.rowcount


def _sweep_erased(connection: sa.Connection) -> dict[str, int]:
    erased = _erased_records()
    per_file = connection.execute(
        sa.select(source_record.c.intake_file_id, sa.func.count())
        .where(source_record.c.source_record_pk.in_(erased))
        .group_by(source_record.c.intake_file_id)).all()
    erased_customers = sa.select(customer.c.customer_id).where(customer.c.erased_at.is_not(None))
    # As erasure does (pipeline.register.rights): reviews touching the person go.
    reviews = connection.execute(review_queue.delete().where(sa.or_(
        review_queue.c.left_source_record_pk.in_(erased), review_queue.c.right_source_record_pk.in_(erased),
        review_queue.c.left_customer_id.in_(erased_customers),
        review_queue.c.right_customer_id.in_(erased_customers)))).rowcount
    if not per_file:
        return {"reviews_deleted": reviews}
    provenance = 0
    for unit in PROVENANCE_UNITS:
        column = f"{unit}_record_pk"
        provenance += connection.execute(
            golden_provenance.update().where(golden_provenance.c[column].in_(erased)).values({column: None})).rowcount
    keys = connection.execute(match_key.delete().where(match_key.c.source_record_pk.in_(erased))).rowcount
    records = connection.execute(source_record.delete().where(source_record.c.source_record_pk.in_(erased))).rowcount
    for file_id, n in per_file:
        connection.execute(intake_file.update().where(intake_file.c.intake_file_id == file_id)
                           .values(records_erased=intake_file.c.records_erased + int(n)))
    if records != sum(int(n) for _, n in per_file):
        # Someone else changed the records between the count and the delete: roll back.
        raise RuntimeError("retention: the erased records changed during the sweep; nothing was deleted")
    return {"erased_source_records_deleted": records, "erased_match_keys_deleted": keys,
            "reviews_deleted": reviews, "provenance_references_removed": provenance,
            "intake_files_adjusted": len(per_file)}
