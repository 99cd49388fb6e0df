"""Deleting the source records of erased people: the one way, for erasure and retention.

`erase_source_records(connection, customer_ids, now)` removes every source record
held under these customers, and everything that points at them, inside the
caller's transaction (which holds the register lock, `pipeline.register.locks`):

- review entries touching the customers or their records (the matcher proposed
  the person; no decision about them is left to make);
- the records' blocking keys (`match_key`): the matcher must not find them;
- provenance pointers at the records (`golden_provenance`), set NULL;
- the records' earlier versions (`source_record_version`);
- per intake file, `records_erased` grows by the records and versions deleted, so
  that accepted - resent - erased = held (records and versions) still adds up
  (docs/register_rules.md rule 1);
- a tombstone per (channel, source_record_id) (`pipeline.register.tombstones`):
  a channel re-sending an old submission must not bring the person back;
- the `source_record` rows.

Used by `pipeline.register.rights.erase` and by the retention sweep
(`pipeline.register.retention`). Counts only, never a value.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from pipeline.register.database import temp_values
from pipeline.register.tombstones import bury
from schemas.register import (PROVENANCE_UNITS, golden_provenance, intake_file, review_queue, source_record,
                              source_record_version)

__all__ = ["ErasedRecords", "erase_source_records", "delete_match_keys"]


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
    reviews = connection.execute(review_queue.delete().where(sa.or_(
        review_queue.c.left_customer_id.in_(customers), review_queue.c.right_customer_id.in_(customers),
        review_queue.c.left_source_record_pk.in_(records), review_queue.c.right_source_record_pk.in_(records),
    ))).rowcount
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
    return ErasedRecords(source_records=int(deleted), versions=len(versions), match_keys=int(keys), reviews=int(reviews or 0),
                         provenance_pointers=int(pointers), intake_files_adjusted=len(per_file),
                         tombstones=int(tombstones))
