"""Erasure: what the law does not require keeping, removed, and kept removed.

The one home of erasure, in three layers:

- `erase`, the rights request (docs/register_rules.md rule 8): a person without a contract
  (no `service` row) is removed entirely; a customer keeps only the billing
  identity (`BILLING_IDENTITY`) and the services for the accounting period. A
  prohibition of direct marketing is kept: an objection must go on being
  honoured. Quarantine entries of the person are *purged* in place (raw values
  and record id nulled, `raw_purged_at` set), not deleted: each file's
  `records_quarantined` must keep matching its entries (rule 1), and the entry
  then holds only the file, position and reason codes.
- `erase_source_records`, the one way records of erased people are deleted, for
  `erase` and for the retention sweep (`pipeline.register.retention`), inside the
  caller's transaction (which holds the register lock, `pipeline.register.locks`):
  review entries touching the customers or their records (no decision about them
  is left to make); the records' blocking keys (`match_key`: the matcher must not
  find them); provenance pointers at the records (`golden_provenance`), set NULL;
  the records' earlier versions (`source_record_version`); per intake file,
  `records_erased` grows by the records and versions deleted, so that
  accepted - resent - erased = held still adds up (rule 1); a tombstone per
  record key; the `source_record` rows.
- Tombstones (`bury`, `buried`): erasure deletes the (channel, source_record_id)
  keys that make a re-sent record a re-send (rule 2). A channel may re-send an
  old submission in a later file; without a trace of the key it would load as
  new, undoing the erasure. So each erased key leaves the SHA-256 of the key
  (`key_hash`), never the key itself (an e-mail Message-ID may carry an
  address), and the load counts a record whose key has a tombstone as re-sent.

Counts only, never a value, in results, messages and errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.register.database import temp_values
from pipeline.register.disclosures import ERASURE_REPORT_TERMS, record_disclosure
from pipeline.register.locks import register_transaction
from pipeline.register.rights.reasons import check_reason, subject_values
from pipeline.register.rights.request import record_request, request_time, required
from pipeline.register.rights.subject import Subject, find_subject, merges_touching, quarantine_entry_ids
from schemas.register import (PROVENANCE_UNITS, customer, customer_merge, erased_record, golden_provenance,
                              intake_file, merge_record, quarantine, review_deferral, review_queue, service, source_record,
                              source_record_version)

__all__ = ["BILLING_IDENTITY", "ErasedRecords", "Erasure", "bury", "buried", "delete_match_keys", "erase",
           "erase_source_records", "key_hash"]

# What a customer with a contract keeps after erasure: who is billed, where, from which account.
BILLING_IDENTITY: tuple[str, ...] = ("personal_id", "birth_date", "first_names", "last_name", "street_address",
                                     "postal_code", "city", "iban", "bic")



@dataclass
class Erasure:
    """What `erase` did: customer ids, and counts per table, never a value."""

    customer_ids: tuple[int, ...]
    kinds: dict[int, str]  # customer id -> "prospect" (removed) or "customer" (billing identity kept)
    deleted: Counter = field(default_factory=Counter)  # rows per table
    purged: Counter = field(default_factory=Counter)   # quarantine entries emptied in place
    kept: Counter = field(default_factory=Counter)     # rows per table kept for billing
    adjusted: Counter = field(default_factory=Counter)  # intake files whose records_erased grew
    tombstones: int = 0  # record keys newly buried (erased_record): a re-send stays erased
    request_ids: list[int] = field(default_factory=list)


def _delete(connection: sa.Connection, statement) -> int:
    return int(connection.execute(statement).rowcount or 0)


def _purge_quarantine(connection: sa.Connection, entry_ids: Collection[int], now: dt.datetime) -> int:
    """Raw values and record id gone; file, position and reasons stay so the file's counts add up."""
    if not entry_ids:
        return 0
    ids = sorted(entry_ids)
    # A record-level entry is recognised by its position: its id can go (whole-file entries have neither).
    connection.execute(quarantine.update().where(quarantine.c.quarantine_id.in_(ids),
                                                 quarantine.c.record_number.is_not(None))
                       .values(source_record_id=None))
    return _delete(connection, quarantine.update().where(quarantine.c.quarantine_id.in_(ids))
                   .values(raw_values=None, raw_purged_at=sa.func.coalesce(quarantine.c.raw_purged_at, now)))


def erase(engine: sa.Engine, *, customer_id: int | None = None, personal_id: str | None = None, reason: str,
          by: str, now: dt.datetime | None = None, dry_run: bool = False) -> Erasure:
    """Erase what no law requires keeping, in one transaction (rolled back when `dry_run`).

    A person without a contract (no `service` row) loses every row: source records
    with their blocking keys, provenance, reviews, merges, the customer rows (ids are
    never reused). A customer with a contract keeps the billing identity and the
    services; contact details, records, reviews and provenance go, `erased_at` is set
    and the analysts' views leave it out. A prohibition of direct marketing is kept
    (an objection must go on being honoured); a permission is removed. Quarantine
    entries of the person are purged in both cases, and each erased record's key
    leaves a tombstone (`bury`).
    """
    reason = required(reason, "a reason (--reason)")
    by = required(by, "the steward's name (--by)")
    check_reason(reason)
    now = request_time(now)
    try:
        with register_transaction(engine) as connection:
            subject = find_subject(connection, customer_id=customer_id, personal_id=personal_id, today=now.date())
            check_reason(reason, subject_values(connection, subject))
            result = _erase(connection, subject, reason=reason, by=by, now=now)
            if dry_run:
                raise _DryRun(result)  # leaves the block: the transaction rolls back
            # The erasure's report to the person is logged like any disclosure (counts only).
            record_disclosure(connection, kind="erasure_report", terms=ERASURE_REPORT_TERMS,
                              customer_ids=subject.all_customer_ids,
                              details={"deleted": dict(sorted(result.deleted.items())),
                                       "kept": dict(sorted(result.kept.items()))}, by=by, now=now)
    except _DryRun as dry:
        result = dry.result
        result.request_ids = []
    return result


class _DryRun(Exception):
    """Raised to roll an erasure back after counting it (`erase(dry_run=True)`)."""

    def __init__(self, result: Erasure):
        super().__init__("dry run")
        self.result = result


def _erase(connection: sa.Connection, subject: Subject, *, reason: str, by: str, now: dt.datetime) -> Erasure:
    result = Erasure(subject.customer_ids, {})
    # Found while the records that lead to them are still there; they belong to the whole
    # subject, so they are counted once, on the first request row.
    purged = _purge_quarantine(connection, quarantine_entry_ids(connection, subject), now)
    result.purged["quarantine"] = purged
    if not subject.customer_ids:  # a code no customer holds: its quarantine entries, if any
        outcome = {"kind": "no_customer", "deleted": {}, "kept": {}, "purged": {"quarantine": purged},
                   "adjusted": {}, "tombstones": 0}
        result.request_ids = record_request(connection, subject.customer_ids, action="erasure", outcome=outcome,
                                            by=by, now=now, reason=reason)
        return result
    for number, survivor in enumerate(subject.customer_ids):
        ids = list(subject.ids_of(survivor))  # the whole chain of merges, not one level of it
        deleted: Counter = Counter()
        kept: Counter = Counter()
        adjusted: Counter = Counter()
        services = connection.execute(sa.select(sa.func.count()).select_from(service)
                                      .where(service.c.customer_id.in_(ids))).scalar_one()
        records = erase_source_records(connection, ids, now)
        deleted.update({"source_record": records.source_records, "match_key": records.match_keys,
                        "review_queue": records.reviews, "golden_provenance_pointers": records.provenance_pointers})
        adjusted["intake_file"] += records.intake_files_adjusted
        if services:
            kind = "customer"
            # Every pointer of the kept row, not only those at the deleted records: the billing
            # identity is held for accounting, no longer as any record's value.
            connection.execute(golden_provenance.update().where(golden_provenance.c.customer_id.in_(ids)).values(
                **{c.name: None for c in golden_provenance.c if c.name != "customer_id"}))
            connection.execute(customer.update().where(customer.c.customer_id == survivor).values(
                phone=None, email=None, updated_at=now,
                # A prohibition stays: an objection to direct marketing must go on being honoured.
                marketing_prohibited=sa.case((customer.c.marketing_prohibited.is_(True), True), else_=None),
                erased_at=sa.func.coalesce(customer.c.erased_at, now)))
            kept["customer"] += 1
            kept["service"] += int(services)
            # Merged-away ids hold no values, and may stand on old invoices.
            kept["merged_customer_ids"] += len(ids) - 1
        else:
            kind = "prospect"
            deleted["golden_provenance"] += _delete(connection, golden_provenance.delete()
                                                    .where(golden_provenance.c.customer_id.in_(ids)))
            # The records each merge moved (migration 0012) go with their merges.
            moved = _delete(connection, merge_record.delete().where(merge_record.c.merge_id.in_(
                sa.select(customer_merge.c.merge_id).where(merges_touching(ids)))))
            if moved:
                deleted["merge_record"] += moved
            deleted["customer_merge"] += _delete(connection, customer_merge.delete().where(merges_touching(ids)))
            deleted["customer"] += _delete(connection, customer.delete().where(customer.c.customer_id.in_(ids)))
        result.kinds[survivor] = kind
        result.deleted.update(deleted)
        result.kept.update(kept)
        result.adjusted.update(adjusted)
        result.tombstones += records.tombstones
        outcome = {"kind": kind, "deleted": dict(sorted(deleted.items())), "kept": dict(sorted(kept.items())),
                   "purged": {"quarantine": purged if number == 0 else 0},
                   "adjusted": dict(sorted(adjusted.items())), "tombstones": records.tombstones}
        result.request_ids += record_request(connection, (survivor,), action="erasure", outcome=outcome, by=by,
                                             now=now, reason=reason)
    return result


# --- the source records of erased people --------------------------------------------------------

@dataclass(frozen=True)
class ErasedRecords:
    """What `erase_source_records` changed. Counts only."""

    source_records: int = 0
    versions: int = 0  # earlier versions of the records (source_record_version)
    match_keys: int = 0
    reviews: int = 0
    provenance_pointers: int = 0  # (customer, unit) pointers set NULL
    intake_files_adjusted: int = 0
    tombstones: int = 0  # new tombstones (a key erased before is not buried twice)

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


def _values(connection: sa.Connection, name: str, values: Collection[int]) -> sa.Select:
    """`SELECT value FROM <temporary table of the values>`: an IN list of any length."""
    table = sa.table(temp_values(connection, name, values), sa.column("value"))
    return sa.select(table.c.value)


def delete_match_keys(connection: sa.Connection, pks: Collection[int]) -> int:
    """Delete the blocking keys of these records; returns how many.

    `match_key` has no index by record, so this scans it once against a temporary
    table of the keys (not an IN list per record).
    """
    if not pks:
        return 0
    table = temp_values(connection, "erasure_match_records", pks)
    return int(connection.exec_driver_sql(
        f"DELETE FROM match_key WHERE source_record_pk IN (SELECT value FROM {table})").rowcount or 0)


def erase_source_records(connection: sa.Connection, customer_ids: Collection[int],
                         now: dt.datetime) -> ErasedRecords:
    """Delete the source records held under `customer_ids` (see the module doc); returns counts.

    Review entries naming one of the customers go even when it holds no record any more.
    """
    if not customer_ids:
        return ErasedRecords()
    customers = _values(connection, "erasure_customers", customer_ids)
    held = connection.execute(sa.select(source_record.c.source_record_pk, source_record.c.channel,
                                        source_record.c.source_record_id, source_record.c.intake_file_id)
                              .where(source_record.c.customer_id.in_(customers))).all()
    pks = [int(row.source_record_pk) for row in held]
    records = _values(connection, "erasure_records", pks)
    naming = sa.or_(
        review_queue.c.left_customer_id.in_(customers), review_queue.c.right_customer_id.in_(customers),
        review_queue.c.left_source_record_pk.in_(records), review_queue.c.right_source_record_pk.in_(records))
    # A deferral goes with its review (ids, a steward and a reason; the access log keeps the deferral too).
    connection.execute(review_deferral.delete().where(
        review_deferral.c.review_id.in_(sa.select(review_queue.c.review_id).where(naming))))
    reviews = connection.execute(review_queue.delete().where(naming)).rowcount
    if not pks:
        return ErasedRecords(reviews=int(reviews or 0))

    keys = delete_match_keys(connection, pks)
    pointers = 0
    for unit in PROVENANCE_UNITS:
        column = golden_provenance.c[f"{unit}_record_pk"]
        pointers += connection.execute(golden_provenance.update().where(column.in_(records))
                                       .values({column.name: None})).rowcount or 0
    versions = connection.execute(sa.select(source_record_version.c.version_pk, source_record_version.c.intake_file_id)
                                  .where(source_record_version.c.source_record_pk.in_(records))).all()
    per_file = Counter(int(row.intake_file_id) for row in held)
    per_file.update(int(row.intake_file_id) for row in versions)
    for file_id, n in sorted(per_file.items()):
        connection.execute(intake_file.update().where(intake_file.c.intake_file_id == file_id)
                           .values(records_erased=intake_file.c.records_erased + n))
    # Before the rows go: the keys are read from them above, and buried in this same transaction.
    tombstones = bury(connection, [(row.channel, row.source_record_id) for row in held], now)
    if versions:
        connection.execute(source_record_version.delete().where(source_record_version.c.source_record_pk.in_(records)))
    deleted = connection.execute(source_record.delete().where(source_record.c.source_record_pk.in_(records))
                                 ).rowcount
    if deleted != len(pks):
        # The records changed between the read and the delete (a writer without the register lock):
        # the files' counts would no longer add up, so the caller's transaction must roll back.
        raise RuntimeError(f"erasure: {len(pks)} records read but {deleted} deleted; roll back")
    return ErasedRecords(source_records=int(deleted), versions=len(versions), match_keys=int(keys),
                         reviews=int(reviews or 0), provenance_pointers=int(pointers),
                         intake_files_adjusted=len(per_file), tombstones=int(tombstones))


# --- tombstones ---------------------------------------------------------------------------------

_LOOKUP_CHUNK = 10_000


def key_hash(channel: str, source_record_id: str) -> str:
    """The tombstone of one record key: hex SHA-256 of channel, a unit separator, and id.

    >>> key_hash("web", "W-20261124-000123") == key_hash("web", "W-20261124-000123")
    True
    >>> key_hash("web", "W-1") != key_hash("phone", "W-1")
    True
    >>> len(key_hash("email", "<a@b>"))
    64
    """
    return hashlib.sha256(f"{channel}\x1f{source_record_id}".encode("utf-8")).hexdigest()


def bury(connection: sa.Connection, keys: Iterable[tuple[str, str]], now: dt.datetime) -> int:
    """Leave a tombstone for each (channel, source_record_id); returns how many are new."""
    hashes = sorted({key_hash(channel, record_id) for channel, record_id in keys})
    if not hashes:
        return 0
    known = _existing(connection, hashes)
    fresh = [h for h in hashes if h not in known]
    if fresh:
        connection.execute(erased_record.insert(), [{"key_hash": h, "erased_at": now} for h in fresh])
    return len(fresh)


def buried(connection: sa.Connection, keys: pd.DataFrame) -> np.ndarray:
    """For each row of `keys` (columns channel, source_record_id): does it have a tombstone?"""
    found = np.zeros(len(keys), dtype=bool)
    if len(keys) == 0 or connection.execute(sa.select(sa.exists().select_from(erased_record))).scalar_one() is False:
        return found
    hashes = [key_hash(c, r) for c, r in zip(keys["channel"].tolist(), keys["source_record_id"].tolist())]
    known = _existing(connection, sorted(set(hashes)))
    found[:] = [h in known for h in hashes]
    return found


def _existing(connection: sa.Connection, hashes: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(hashes), _LOOKUP_CHUNK):
        chunk = hashes[start:start + _LOOKUP_CHUNK]
        known.update(connection.execute(sa.select(erased_record.c.key_hash)
                                        .where(erased_record.c.key_hash.in_(chunk))).scalars())
    return known
