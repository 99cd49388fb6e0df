"""New source records a load has keyed but not yet written: resolution writes each row once.

A load writes its new records, then identity resolution gives each its customer. Written
first without one and updated after, every new row is written twice and read back once:
a first load of a million records spent 7 s (SQLite) to 24 s (PostgreSQL: the update
rewrites each wide row and checks its foreign key) on the update alone, and 10 s reading
back what it had just written. So a load that resolves in the same transaction hands its
new records over instead:

- `load_intake` gives each new record its `source_record_pk` (`BulkWriter.allocate_record_keys`)
  and `defer`s the rows, with the versions that point at them, on the transaction's
  connection;
- `resolve_identities` `take`s them, reads them as it reads held records
  (`pipeline.register.resolve.take_pending_values`: the very values a round trip
  through the database gives, moved out of the waiting rows rather than held twice)
  and `write`s them with their customer, before anything that refers to them;
- whatever is still waiting when the load's hook returns is written as loaded (no customer
  yet), and `discard` clears the connection whatever happened: nothing is lost or carried
  into the pooled connection's next transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.register.bulk import bulk_writer, indexes_and_keys_built_after
from schemas.register import source_record, source_record_version

_INFO_KEY = "register.pending_records"
RESOLUTION_COLUMNS: tuple[str, ...] = ("customer_id", "match_method", "match_probability")


@dataclass(repr=False)
class PendingRecords:
    """`records`: new `source_record` rows (with `source_record_pk`), `columns` to insert;
    `versions`: `source_record_version` rows, some of them versions of these records."""

    records: pd.DataFrame
    columns: list[str]
    versions: pd.DataFrame
    version_columns: list[str]
    written: np.ndarray | None = None  # which records are written (`write_part`)
    key_index: pd.Index | None = None  # the records' keys, to find a part's rows

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:  # counts only: the rows are personal data
        return f"PendingRecords({len(self.records)} records, {len(self.versions)} versions)"


def defer(connection: sa.Connection, pending: PendingRecords) -> None:
    """Keep the rows on the connection until `take`n or `discard`ed (within one transaction)."""
    if _INFO_KEY in connection.info:
        raise RuntimeError("pending records: a load's records are already waiting on this connection")
    connection.info[_INFO_KEY] = pending


def take(connection: sa.Connection) -> PendingRecords | None:
    """The waiting rows, if any; they are the taker's to `write` now."""
    return connection.info.pop(_INFO_KEY, None)


def discard(connection: sa.Connection) -> None:
    """Forget anything still waiting (the transaction is ending: committed or not)."""
    connection.info.pop(_INFO_KEY, None)


def positions(pending: PendingRecords, keys: np.ndarray) -> np.ndarray:
    """Each key's row among the waiting records, -1 for a key not waiting. The index of their
    keys is built once: a first load's resolution looks up a million keys for each of its parts."""
    if pending.key_index is None:
        pending.key_index = pd.Index(pending.records["source_record_pk"].to_numpy(np.int64))
    return pending.key_index.get_indexer(keys)


def write(connection: sa.Connection, pending: PendingRecords, resolved: pd.DataFrame | None = None) -> None:
    """Insert the records, with their customer when `resolved` gives it, then their versions.

    `resolved`: `source_record_pk`, `RESOLUTION_COLUMNS` and the record's own values the
    resolver took out of the waiting rows, one row per pending record.
    """
    if resolved is not None:
        keys = pending.records["source_record_pk"].to_numpy()
        given = resolved["source_record_pk"].to_numpy()
        if len(given) != len(keys) or not np.array_equal(np.sort(given), np.sort(keys)):
            raise RuntimeError("pending records: the resolution does not cover each waiting record once")
    write_part(connection, pending, resolved)
    write_versions(connection, pending)


def write_part(connection: sa.Connection, pending: PendingRecords, resolved: pd.DataFrame | None = None) -> None:
    """Insert some of the records with their customer: those `resolved` names (all of them
    when it is None, without a customer). Each record may be written once; the resolver writes
    a big load's records a part at a time (`write_versions` after the last part)."""
    records, columns = pending.records, list(pending.columns)
    if pending.written is None:
        pending.written = np.zeros(len(records), dtype=bool)
    if resolved is None:
        part = np.arange(len(records))
    else:
        part = positions(pending, resolved["source_record_pk"].to_numpy())
        if (part < 0).any() or len(np.unique(part)) != len(part):
            raise RuntimeError("pending records: the resolution names records that are not waiting, or twice")
    if pending.written[part].any():
        raise RuntimeError("pending records: a waiting record would be written twice")
    pending.written[part] = True
    if resolved is not None:
        whole = len(part) == len(records) and np.array_equal(part, np.arange(len(records)))
        if not whole:
            records = records.iloc[part]
        taken = [c for c in resolved.columns if c != "source_record_pk" and c not in records.columns]
        # Side by side without copying a million rows: the writer converts them chunk by chunk.
        records = pd.DataFrame({**{c: records[c].array for c in records.columns},
                                **{c: resolved[c].array for c in taken}}, copy=False)
        columns += list(RESOLUTION_COLUMNS)
    if len(records):
        with indexes_and_keys_built_after(connection, source_record):
            bulk_writer(connection).insert(source_record, records, columns)


def write_versions(connection: sa.Connection, pending: PendingRecords) -> None:
    """Insert the versions, once every waiting record is written (some versions point at them)."""
    if pending.written is None or not pending.written.all():
        missing = len(pending.records) if pending.written is None else int((~pending.written).sum())
        raise RuntimeError(f"pending records: {missing} waiting records were not written")
    if len(pending.versions):
        bulk_writer(connection).insert(source_record_version, pending.versions, pending.version_columns)
