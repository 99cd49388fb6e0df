"""The transactional load of one run's intake into the register.

`load_intake` writes, in ONE transaction, the run's new files (`intake_file`),
their quarantined records and whole-file quarantines (`quarantine`) and their
accepted records (`source_record`), and returns counts only (`LoadSummary`).
A failure anywhere leaves the register as it was.

The rules it keeps (docs/register_rules.md, rules 1-3):
- A file is identified by its content within its channel, (channel, checksum):
  one already in `intake_file` is skipped, and of two files of a channel with the
  same checksum in one batch only the first by file name loads. The same bytes in
  two channels (two empty exports) are two files.
- A skipped file is recorded in `intake_file_duplicate` with the earlier file it
  repeats (the batch's `duplicates`, files not read because their content was
  already loaded, and the skipped copies of `files`), once per (channel, checksum,
  name); a file under the very name of the file it repeats is that file itself,
  still in the landing zone (the job never moves files), and is not recorded.
- A record is identified by (channel, source_record_id). Seen again (held in
  `source_record`, or repeated within the batch) with the same content as a
  version already held, it is a plain *re-send*: counted (`records_resent`,
  inside `records_accepted`), not stored again. With other content it is a new
  *version* (`records_versioned`): `source_record` keeps the current version,
  `source_record_version` every other one (`pipeline.register.versions` says which
  is current, whatever the load order). A record erased on its person's request
  (a tombstone in `erased_record`) is a re-send whatever its content.
- A quarantined record already held in quarantine with the same channel, id and
  raw values is counted (`records_requarantined`, inside `records_quarantined`),
  not held twice; a quarantine entry whose record is accepted is marked resolved.
- Every file's counts add up: records_read = records_accepted + records_quarantined.

Speed: a million records must load in seconds, so rows are never built one by
one in SQLAlchemy. SQLite gets the raw DBAPI cursor's executemany inside the
transaction; PostgreSQL gets psycopg COPY of CSV written by pyarrow. Existing
record keys are looked up by joining a temporary table of the batch's keys.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.batch import (
    ACCEPTED_COLUMNS,
    DUPLICATE_COLUMNS,
    FILE_COLUMNS,
    QUARANTINED_COLUMNS,
    FileLoad,
    IntakeBatch,
    LoadSummary,
)
from pipeline.codes import Reason
from pipeline.register import pending
from pipeline.register.bulk import PSYCOPG_ERROR, BulkWriter, bulk_writer, utc_series
from pipeline.register.database import scrub_postgresql_error, temp_values
from pipeline.register.locks import register_transaction
from pipeline.register.rights.erasure import buried, delete_match_keys
from pipeline.register.versions import CONTENT_COLUMNS, PRECEDENCE_COLUMNS, content_hashes, precedence
from schemas.canonical import CHANNELS
from schemas.register import (
    SOURCE_RECORD_CANONICAL_COLUMNS,
    UTCDateTime,
    intake_file,
    intake_file_duplicate,
    quarantine,
    source_record,
    source_record_version,
)

log = logging.getLogger(__name__)

_REASON_CODES = frozenset(r.value for r in Reason)
_KEY = ["channel", "source_record_id"]


# --- the load ----------------------------------------------------------------------------------

def load_intake(engine: sa.Engine, batch: IntakeBatch, *, run_id: str, now: datetime,
                after_load: Callable[[sa.Connection], object] | None = None) -> LoadSummary:
    """Load one run's intake into the register in one transaction; see the module doc.

    `after_load(connection)`, if given, runs inside the same transaction once the
    records are loaded (identity resolution): if it fails, nothing of the run stays.
    Its result is kept as `LoadSummary.after_load`. The new records wait for it
    (`pipeline.register.pending`): identity resolution writes them with their customer;
    anything still waiting when it returns is written as loaded.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("load_intake: `now` must be timezone-aware")
    now = now.astimezone(timezone.utc)
    # files, accepted, quarantined, duplicates: the batch checked and typed (a copy of it).
    validated = list(_validated(batch))
    try:
        # A writer from the start, before reading what is held: an erasure committing
        # between that read and the writes would let an erased record back in as new.
        with register_transaction(engine) as connection:
            try:
                # With a hook (identity resolution), the new records wait for it: it writes
                # each row once, with its customer (`pipeline.register.pending`).
                summary = _load(connection, *validated, run_id=run_id, now=now,
                                defer_new_records=after_load is not None)
                # The resolution reads the records it needs from the load (the waiting rows) and the
                # register: the batch's checked copy would only add to its peak (a million rows:
                # about 360 MB).
                validated.clear()
                if after_load is not None:
                    summary = dataclasses.replace(summary, after_load=after_load(connection))
                if (waiting := pending.take(connection)) is not None:  # a hook that did not resolve
                    pending.write(connection, waiting)
            finally:
                pending.discard(connection)
    except PSYCOPG_ERROR as error:
        # Raw COPY errors bypass SQLAlchemy's handler: drop the DETAIL/CONTEXT quoting values.
        scrub_postgresql_error(error)
        raise
    log.info("register load: %d files loaded, %d quarantined whole, %d skipped (%d recorded as duplicates); "
             "%d records read, %d accepted (%d re-sent, %d new versions), %d quarantined (%d re-sent)",
             summary.total.files_loaded, summary.total.files_quarantined, summary.total.files_skipped,
             summary.total.files_duplicate,
             summary.total.read, summary.total.accepted, summary.total.resent, summary.total.versioned,
             summary.total.quarantined, summary.total.requarantined)
    return summary


def _load(connection: sa.Connection, files: pd.DataFrame, accepted: pd.DataFrame,
          quarantined: pd.DataFrame, duplicates: pd.DataFrame, *, run_id: str, now: datetime,
          defer_new_records: bool = False) -> LoadSummary:
    writer = bulk_writer(connection)
    # A file's identity is (channel, checksum), carried below as one key, "channel/checksum".
    # In place: the frames are `_validated`'s own copies (`assign` would copy a first load's
    # million records once more).
    files["file_key"] = _file_key(files)
    accepted["file_key"] = _file_key(accepted)
    quarantined["file_key"] = _file_key(quarantined)
    held = _files_held(connection, files)

    # Which files load: not yet held, and the first by name of each content in its channel.
    files = files.sort_values(["file_key", "file_name"], kind="stable")
    skip = files["file_key"].isin(held) | files["file_key"].duplicated(keep="first")
    repeated_files = set(files.loc[files["file_key"].duplicated(), "file_key"])
    new_files = files[~skip]
    new_file_keys = set(new_files["file_key"])

    accepted = _records_of(accepted, new_file_keys, repeated_files, ["file_key", "record_number"])
    # (detail may name the file, so it differs between two copies of the same content)
    quarantined = _records_of(quarantined, new_file_keys, repeated_files,
                              ["file_key", "record_number", "source_record_id", "reasons", "raw_values"])
    unreadable = new_files["file_reason"].notna()
    if (accepted["file_key"].isin(new_files.loc[unreadable, "file_key"]).any()
            or quarantined["file_key"].isin(new_files.loc[unreadable, "file_key"]).any()):
        raise ValueError("load_intake: records given for a file marked unreadable (file_reason set)")

    # Re-sends and versions: repeated within the batch, or already held in the register.
    file_name_of = dict(zip(new_files["file_key"], new_files["file_name"]))
    plan = _plan_versions(connection, writer, accepted, file_name_of)
    resent = plan.resent
    requarantined = _requarantined(connection, quarantined, file_name_of)

    # Counts per file, then the intake_file rows with them.
    per_file_read = accepted.groupby("file_key", observed=True).size()
    per_file_resent = pd.Series(resent, index=accepted.index).groupby(accepted["file_key"], observed=True).sum()
    per_file_versioned = pd.Series(plan.versioned, index=accepted.index).groupby(
        accepted["file_key"], observed=True).sum()
    per_file_quarantined = quarantined.groupby("file_key", observed=True).size()
    per_file_requarantined = pd.Series(requarantined, index=quarantined.index).groupby(
        quarantined["file_key"], observed=True).sum()
    reasons_by_file = _reasons_by_file(quarantined)

    file_rows = []
    for row in new_files.sort_index().itertuples(index=False):  # ids in the batch's order
        n_accepted = int(per_file_read.get(row.file_key, 0))
        n_quarantined = int(per_file_quarantined.get(row.file_key, 0))
        reader_count = getattr(row, "records_read", None)
        if reader_count is not None and pd.notna(reader_count) and int(reader_count) != n_accepted + n_quarantined:
            # Rule 1: a record lost (or doubled) between the reader and the load stops the run.
            raise ValueError(f"load_intake: {row.channel} file {row.file_name}: the reader read {int(reader_count)} "
                             f"records but {n_accepted + n_quarantined} arrived (accepted + quarantined)")
        file_rows.append({
            "channel": row.channel, "file_name": row.file_name, "checksum": row.checksum,
            "size_bytes": int(row.size_bytes),
            "status": "quarantined" if pd.notna(row.file_reason) else "loaded",
            "records_read": n_accepted + n_quarantined, "records_accepted": n_accepted,
            "records_resent": int(per_file_resent.get(row.file_key, 0)),
            "records_versioned": int(per_file_versioned.get(row.file_key, 0)),
            "records_quarantined": n_quarantined,
            "records_requarantined": int(per_file_requarantined.get(row.file_key, 0)),
            "loaded_at": now, "run_id": run_id,
        })
    file_ids: dict[str, int] = {}  # file_key -> intake_file_id
    if file_rows:
        inserted = connection.execute(intake_file.insert().returning(
            intake_file.c.channel, intake_file.c.checksum, intake_file.c.intake_file_id), file_rows)
        file_ids = {f"{channel}/{checksum}": file_id for channel, checksum, file_id in inserted}
    recorded = _record_duplicates(connection, pd.concat(
        [files.loc[skip, list(DUPLICATE_COLUMNS)], duplicates[list(DUPLICATE_COLUMNS)]], ignore_index=True),
        run_id=run_id, now=now)

    # Quarantine: whole files first, then records.
    whole = new_files[unreadable].sort_index()
    parts = [part for part in (
        pd.DataFrame({
            "channel": whole["channel"], "source_record_id": pd.NA, "checksum": whole["checksum"],
            "record_number": pd.NA, "reasons": whole["file_reason"], "detail": whole["file_detail"],
            "raw_values": pd.NA, "file_key": whole["file_key"],
        }).astype({"source_record_id": "string[pyarrow]", "record_number": "Int64",
                   "raw_values": "string[pyarrow]"}),
        quarantined.loc[~requarantined, list(QUARANTINED_COLUMNS) + ["file_key"]],
    ) if len(part)]
    # An entry whose record is accepted (now, or already held) is resolved, not open.
    accepted_in = _accepting_files(connection, accepted, quarantined, file_name_of, file_ids)
    if parts:
        quarantine_rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
        quarantine_rows["intake_file_id"] = _lookup(quarantine_rows["file_key"], file_ids)
        quarantine_rows["quarantined_at"] = pd.Timestamp(now)
        resolving = pd.Series(list(zip(quarantine_rows["channel"], quarantine_rows["source_record_id"]))
                              ).map(accepted_in).astype("Int64")
        resolving = resolving.where(~_conflicting(quarantine_rows["reasons"]).to_numpy()).to_numpy()
        quarantine_rows["resolved_intake_file_id"] = resolving
        quarantine_rows["resolved_at"] = pd.Series(pd.Timestamp(now), index=quarantine_rows.index).where(
            pd.notna(resolving))
        writer.insert(quarantine, quarantine_rows, [
            "channel", "source_record_id", "intake_file_id", "record_number", "reasons", "detail",
            "raw_values", "quarantined_at", "resolved_at", "resolved_intake_file_id"])
    _resolve_open_entries(connection, accepted_in, now)

    # Source records: the accepted ones that are neither re-sends nor an older version, each
    # keyed now, so that versions first seen with it can point at it before it is written.
    # (One copy of the rows, columns added in place: a first load's are a million.)
    new_records = accepted.loc[plan.insert, list(SOURCE_RECORD_CANONICAL_COLUMNS)]
    new_records.index = pd.RangeIndex(len(new_records))  # (`reset_index` would copy the rows again)
    new_records.insert(0, "source_record_pk", writer.allocate_record_keys(len(new_records)))
    new_records["intake_file_id"] = _lookup(accepted.loc[plan.insert, "file_key"], file_ids)
    new_records["loaded_at"] = pd.Timestamp(now)
    new_records["run_id"] = run_id
    new_records["content_hash"] = plan.hashes[plan.insert]
    _replace_versions(connection, writer, accepted, plan, file_ids, run_id=run_id, now=now)
    waiting = pending.PendingRecords(
        records=new_records, columns=list(new_records.columns),
        versions=_history(accepted, plan, new_records, file_ids, run_id=run_id, now=now),
        version_columns=["source_record_pk", "intake_file_id", "record_number", *_VERSION_VALUE_COLUMNS,
                         "content_hash", "loaded_at", "run_id", "superseded_at"])
    if defer_new_records and len(waiting.records):
        pending.defer(connection, waiting)
    else:
        pending.write(connection, waiting)

    # The summary, from the same numbers the intake_file rows hold.
    loads = []
    for row in files.sort_index().itertuples(index=False):
        if row.file_key not in file_ids or file_name_of.get(row.file_key) != row.file_name:
            loads.append(FileLoad(channel=row.channel, file_name=row.file_name, status="skipped",
                                  duplicate_of=recorded.pop((row.channel, row.checksum, row.file_name), None)))
            continue
        stored = next(r for r in file_rows if (r["channel"], r["checksum"]) == (row.channel, row.checksum))
        loads.append(FileLoad(
            channel=row.channel, file_name=row.file_name, status=stored["status"],
            read=stored["records_read"], accepted=stored["records_accepted"],
            resent=stored["records_resent"], versioned=stored["records_versioned"],
            quarantined=stored["records_quarantined"], requarantined=stored["records_requarantined"],
            quarantined_by_reason=reasons_by_file.get(row.file_key, {}),
            file_reason=None if pd.isna(row.file_reason) else str(row.file_reason),
            intake_file_id=file_ids[row.file_key]))
    # Files the intake did not read (their content already loaded), now recorded.
    loads.extend(FileLoad(channel=channel, file_name=name, status="skipped", duplicate_of=earlier)
                 for (channel, _, name), earlier in sorted(recorded.items()))
    return LoadSummary.of(loads)


def _record_duplicates(connection: sa.Connection, candidates: pd.DataFrame, *, run_id: str,
                       now: datetime) -> dict[tuple[str, str, str], int]:
    """Record skipped files in `intake_file_duplicate`, each with the `intake_file` row
    holding its (channel, checksum); returns {(channel, checksum, file_name): that
    row's id} for the files recorded now.

    Not recorded: a file under the name of the file it repeats (that file itself,
    still in the landing zone), a (channel, checksum, name) already recorded, and a
    file whose content no `intake_file` row holds (nothing to repeat).
    """
    candidates = candidates.drop_duplicates(["channel", "checksum", "file_name"])
    if len(candidates) == 0:
        return {}
    earlier: dict[tuple[str, str], tuple[int, str]] = {}
    seen: set[tuple[str, str, str]] = set()
    unique = sorted(set(candidates["checksum"]))
    for start in range(0, len(unique), _KEY_CHUNK):
        chunk = unique[start:start + _KEY_CHUNK]
        earlier.update(((c, s), (int(i), n)) for c, s, i, n in connection.execute(
            sa.select(intake_file.c.channel, intake_file.c.checksum, intake_file.c.intake_file_id,
                      intake_file.c.file_name).where(intake_file.c.checksum.in_(chunk))))
        seen.update((c, s, n) for c, s, n in connection.execute(
            sa.select(intake_file_duplicate.c.channel, intake_file_duplicate.c.checksum,
                      intake_file_duplicate.c.file_name).where(intake_file_duplicate.c.checksum.in_(chunk))))
    rows = []
    for channel, name, checksum, size in candidates[list(DUPLICATE_COLUMNS)].itertuples(index=False):
        held = earlier.get((channel, checksum))
        if held is None or held[1] == name or (channel, checksum, name) in seen:
            continue
        rows.append({"channel": channel, "file_name": name, "checksum": checksum, "size_bytes": int(size),
                     "duplicate_of_intake_file_id": held[0], "seen_at": now, "run_id": run_id})
    if rows:
        connection.execute(intake_file_duplicate.insert(), rows)
    return {(r["channel"], r["checksum"], r["file_name"]): r["duplicate_of_intake_file_id"] for r in rows}


def _records_of(records: pd.DataFrame, file_keys: set[str], repeated: set[str], identity: list[str]) -> pd.DataFrame:
    """The records of the files that load. A content landed twice in a channel in one
    batch may bring its records twice: keep one copy.

    The rows are dropped in place: `records` is the load's own checked copy (`_validated`), and
    a copy of the rows kept would hold a first load's records twice (5M records: 1.9 GB a copy).
    """
    loads = records["file_key"].isin(file_keys).to_numpy()
    twice = records["file_key"].isin(repeated).to_numpy()
    dropped = ~loads
    if (loads & twice).any():
        repeated_rows = np.flatnonzero(loads & twice)
        dropped[repeated_rows[records.iloc[repeated_rows].duplicated(subset=identity).to_numpy()]] = True
    if dropped.any():
        records.drop(index=records.index[dropped], inplace=True)
    records.index = pd.RangeIndex(len(records))  # (a new index, not a copy of the rows)
    return records


# --- re-sends and versions ----------------------------------------------------------------------

@dataclass
class _VersionPlan:
    """What becomes of each accepted record of the batch (arrays by position).

    resent: a plain re-send (identical to a version already known, or erased): counted only.
    versioned: a new version of a record already known (counted inside accepted).
    insert: stored as a new `source_record` row (a new record, or the current version of one
        first seen in this batch).
    hashes: the content hash, where it was computed (records whose key is held or repeated).
    replace: (position, source_record_pk): the batch version that becomes current of a held record.
    history: (position, source_record_pk or -1 for a record inserted by this load): versions
        that are not current, kept in `source_record_version`.
    missing_hashes: (source_record_pk, content_hash) of held records whose hash was not stored yet.
    """

    resent: np.ndarray
    versioned: np.ndarray
    insert: np.ndarray
    hashes: np.ndarray
    replace: pd.DataFrame
    history: pd.DataFrame
    missing_hashes: pd.DataFrame


def _no_rows(*columns: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})


def _plan_versions(connection: sa.Connection, writer: BulkWriter, accepted: pd.DataFrame,
                   file_name_of: dict[str, str]) -> _VersionPlan:
    """Sort the batch's accepted records into new records, versions and plain re-sends.

    A record erased on its person's request (a tombstone) stays a re-send whatever
    its content. Otherwise a key seen before (held, or repeated in the batch) is
    compared by content hash with every version already known: the same content is
    a re-send; new content is a version, and the version with the highest
    `pipeline.register.versions.precedence` is current, whatever the load order.
    """
    n = len(accepted)
    keys = accepted[_KEY]
    erased = buried(connection, keys) if n else np.zeros(0, dtype=bool)
    held_pk = writer.held_records(keys)
    candidate = (accepted.duplicated(_KEY, keep=False).to_numpy() | (held_pk >= 0)) & ~erased
    plan = _VersionPlan(resent=erased.copy(), versioned=np.zeros(n, dtype=bool), insert=~erased & ~candidate,
                        hashes=np.full(n, None, dtype=object), replace=_no_rows("position", "held_pk"),
                        history=_no_rows("position", "held_pk"),
                        missing_hashes=pd.DataFrame({"source_record_pk": pd.Series(dtype="int64"),
                                                     "content_hash": pd.Series(dtype=object)}))
    if not candidate.any():
        return plan

    positions = np.flatnonzero(candidate)
    rows = accepted.iloc[positions]
    hashes = content_hashes(rows)
    plan.hashes[positions] = hashes
    seen = pd.concat([pd.DataFrame({
        "position": positions, "channel": rows["channel"].to_numpy(),
        "source_record_id": rows["source_record_id"].to_numpy(), "held_pk": held_pk[positions],
        "observed_at": rows["observed_at"].to_numpy(), "file_name": _lookup(rows["file_key"], file_name_of),
        "record_number": rows["record_number"].to_numpy()}),
        precedence(rows, hashes).reset_index(drop=True)], axis=1)
    # In order of arrival: the first of several copies is the one counted as new.
    seen = seen.sort_values(_KEY + ["observed_at", "file_name", "record_number"], kind="stable") \
        .reset_index(drop=True)

    current, known = _known_versions(connection, sorted(set(seen.loc[seen["held_pk"] >= 0, "held_pk"].tolist())))
    is_known = np.array([pk >= 0 and (pk, h) in known for pk, h in zip(seen["held_pk"], seen["content_hash"])],
                        dtype=bool)
    plain = is_known | seen.duplicated(_KEY + ["content_hash"], keep="first").to_numpy()
    plan.resent[seen.loc[plain, "position"].to_numpy()] = True
    fresh = seen[~plain]
    first_copy = ~fresh.duplicated(_KEY, keep="first").to_numpy() & (fresh["held_pk"] < 0).to_numpy()
    plan.versioned[fresh.loc[~first_copy, "position"].to_numpy()] = True

    # The current version of each key: the held one or one of the batch's.
    held_contenders = current[current["source_record_pk"].isin(fresh["held_pk"])]
    contenders = fresh[["position", "held_pk", *_KEY, *PRECEDENCE_COLUMNS]]
    if len(held_contenders):
        contenders = pd.concat([contenders, pd.DataFrame({
            "position": -1, "held_pk": held_contenders["source_record_pk"].to_numpy(),
            **{c: held_contenders[c].to_numpy() for c in (*_KEY, *PRECEDENCE_COLUMNS)}})], ignore_index=True)
    winners = contenders.sort_values([*_KEY, *PRECEDENCE_COLUMNS], kind="stable").drop_duplicates(_KEY, keep="last")
    from_batch = winners[winners["position"] >= 0]
    plan.insert[from_batch.loc[from_batch["held_pk"] < 0, "position"].to_numpy()] = True
    plan.replace = from_batch.loc[from_batch["held_pk"] >= 0, ["position", "held_pk"]].astype("int64") \
        .reset_index(drop=True)
    plan.history = fresh.loc[~fresh["position"].isin(from_batch["position"]), ["position", "held_pk"]] \
        .astype("int64").reset_index(drop=True)
    plan.missing_hashes = current.loc[current["hash_missing"] & current["source_record_pk"].isin(
        plan.replace["held_pk"]), ["source_record_pk", "content_hash"]]
    return plan


_HELD_COLUMNS: tuple[str, ...] = ("source_record_pk", "channel", "source_record_id", "content_hash",
                                  *CONTENT_COLUMNS)


def _known_versions(connection: sa.Connection, pks: list[int]) -> tuple[pd.DataFrame, set[tuple[int, str]]]:
    """The held records' current versions (key, precedence, hash), and every (pk, hash)
    known for them: current and earlier versions."""
    columns = [*(c for c in _HELD_COLUMNS if c != "content_hash"), "hash_missing", *PRECEDENCE_COLUMNS]
    if not pks:
        return pd.DataFrame(columns=columns), set()
    table = temp_values(connection, "load_held", pks)
    rows = connection.exec_driver_sql(
        f"SELECT {', '.join(_HELD_COLUMNS)} FROM source_record "
        f"WHERE source_record_pk IN (SELECT value FROM {table})").all()
    held = pd.DataFrame([tuple(r) for r in rows], columns=list(_HELD_COLUMNS))
    held["observed_at"] = pd.to_datetime(held["observed_at"], utc=True, format="mixed")
    held["birth_date"] = pd.to_datetime(held["birth_date"], errors="coerce")
    for name in ("marketing_prohibited", "identity_verified"):
        held[name] = held[name].astype("boolean")
    # Records loaded before their hash was kept: hash the values held (the same function).
    held["hash_missing"] = held["content_hash"].isna()
    if held["hash_missing"].any():
        held.loc[held["hash_missing"], "content_hash"] = content_hashes(held[held["hash_missing"]])
    held = pd.concat([held.drop(columns=["content_hash"]), precedence(held, held["content_hash"].to_numpy())], axis=1)
    known = set(zip(held["source_record_pk"].astype(int), held["content_hash"]))
    if connection.execute(sa.select(sa.exists().select_from(source_record_version))).scalar_one():
        known |= {(int(pk), h) for pk, h in connection.exec_driver_sql(
            f"SELECT source_record_pk, content_hash FROM source_record_version "
            f"WHERE source_record_pk IN (SELECT value FROM {table})").all()}
    return held[columns], known


def _replace_versions(connection: sa.Connection, writer: BulkWriter, accepted: pd.DataFrame, plan: _VersionPlan,
                      file_ids: dict[str, int], *, run_id: str, now: datetime) -> None:
    """Write the plan's replacements: a held record replaced by a batch version keeps its
    `source_record_pk` (its customer, reviews and provenance point at it) and takes the
    new values; its old values go to `source_record_version`. A replaced record awaits
    identity resolution again (match_method NULL) and loses its blocking keys until then."""
    if not len(plan.replace):
        return
    pks = plan.replace["held_pk"].tolist()
    if len(plan.missing_hashes):
        _update_rows(connection, writer, source_record, "source_record_pk", plan.missing_hashes, ["content_hash"])
    demoted = sa.table(temp_values(connection, "load_demoted", pks), sa.column("value"))
    copied = ["source_record_pk", "intake_file_id", "record_number", *_VERSION_VALUE_COLUMNS,
              "content_hash", "loaded_at", "run_id"]
    connection.execute(source_record_version.insert().from_select(
        [*copied, "superseded_at"],
        sa.select(*[source_record.c[c] for c in copied], sa.literal(now, UTCDateTime))
        .where(source_record.c.source_record_pk.in_(sa.select(demoted.c.value)))))
    positions = plan.replace["position"].to_numpy()
    replacing = accepted.iloc[positions].assign(
        source_record_pk=plan.replace["held_pk"].to_numpy(),
        intake_file_id=_lookup(accepted["file_key"].iloc[positions], file_ids),
        content_hash=plan.hashes[positions], loaded_at=pd.Timestamp(now), run_id=run_id,
        match_method=None, match_probability=np.nan)
    _update_rows(connection, writer, source_record, "source_record_pk", replacing, [
        "record_number", *_VERSION_VALUE_COLUMNS, "intake_file_id", "content_hash", "loaded_at", "run_id",
        "match_method", "match_probability"])
    delete_match_keys(connection, pks)


def _history(accepted: pd.DataFrame, plan: _VersionPlan, new_records: pd.DataFrame, file_ids: dict[str, int], *,
             run_id: str, now: datetime) -> pd.DataFrame:
    """The `source_record_version` rows of the batch's versions that are not current: of a
    held record, or of one this load inserts (`new_records`, keyed already)."""
    if not len(plan.history):
        return pd.DataFrame(columns=["source_record_pk"])
    positions = plan.history["position"].to_numpy()
    target = plan.history["held_pk"].to_numpy().copy()
    new_ones = target < 0
    if new_ones.any():
        key_of = pd.Series(new_records["source_record_pk"].to_numpy(),
                           index=pd.MultiIndex.from_frame(new_records[_KEY].astype(object)))
        wanted = pd.MultiIndex.from_frame(accepted[_KEY].iloc[positions[new_ones]].astype(object))
        found = key_of.reindex(wanted)
        if found.isna().any():
            raise RuntimeError("load_intake: a version of a record new in this load has no current version")
        target[new_ones] = found.to_numpy(dtype=np.int64)
    return accepted.iloc[positions].assign(
        source_record_pk=target, intake_file_id=_lookup(accepted["file_key"].iloc[positions], file_ids),
        content_hash=plan.hashes[positions], loaded_at=pd.Timestamp(now), run_id=run_id,
        superseded_at=pd.Timestamp(now))


_VERSION_VALUE_COLUMNS: tuple[str, ...] = tuple(
    c for c in SOURCE_RECORD_CANONICAL_COLUMNS if c not in ("channel", "source_record_id", "record_number"))


def _update_rows(connection: sa.Connection, writer: BulkWriter, table: sa.Table, key: str, frame: pd.DataFrame,
                 columns: list[str]) -> None:
    """UPDATE table SET columns FROM frame by key, through a temporary staging table."""
    stage = f"load_stage_{table.name}"
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {stage}")
    staging = sa.Table(stage, sa.MetaData(), *[sa.Column(c, table.c[c].type) for c in [key, *columns]],
                       prefixes=["TEMPORARY"])
    staging.create(connection)
    writer.insert(staging, frame, [key, *columns])
    assignments = ", ".join(f"{c} = {stage}.{c}" for c in columns)
    connection.exec_driver_sql(
        f"UPDATE {table.name} SET {assignments} FROM {stage} WHERE {table.name}.{key} = {stage}.{key}")
    connection.exec_driver_sql(f"DROP TABLE {stage}")


# --- quarantine: re-sent entries and resolved ones -------------------------------------------------

_KEY_CHUNK = 500


def _requarantined(connection: sa.Connection, quarantined: pd.DataFrame, file_name_of: dict[str, str]) -> np.ndarray:
    """True for a quarantined record already held in quarantine, or earlier in the batch
    (first file name, then record number), with the same channel, id and raw values: a
    re-send of a rejected record, counted (records_requarantined) but not held twice.

    A record without an id (a line that could not be read at all) or without raw values
    cannot be recognised: it is always its own entry.
    """
    out = np.zeros(len(quarantined), dtype=bool)
    keyed = quarantined["source_record_id"].notna() & quarantined["raw_values"].notna()
    if not keyed.any():
        return out
    entries = quarantined.loc[keyed, ["channel", "source_record_id", "raw_values", "record_number"]].assign(
        file_name=_lookup(quarantined.loc[keyed, "file_key"], file_name_of))
    entries = entries.sort_values(["file_name", "record_number"], kind="stable")
    again = entries.duplicated(["channel", "source_record_id", "raw_values"], keep="first").to_numpy()
    out[entries.index[again]] = True
    first = entries[~again]
    held = _quarantined_raw(connection, first[["channel", "source_record_id"]].drop_duplicates())
    if held:
        found = [(c, i, r) in held for c, i, r in zip(first["channel"], first["source_record_id"], first["raw_values"])]
        out[first.index[np.asarray(found, dtype=bool)]] = True
    return out


def _by_channel(keys: pd.DataFrame):
    """(channel, chunk of ids) pairs: lookups that use the (channel, source_record_id) indexes."""
    for channel, ids in keys.groupby("channel", observed=True)["source_record_id"]:
        unique = sorted(set(ids.tolist()))
        for start in range(0, len(unique), _KEY_CHUNK):
            yield str(channel), unique[start:start + _KEY_CHUNK]


def _quarantined_raw(connection: sa.Connection, keys: pd.DataFrame) -> set[tuple[str, str, str]]:
    held: set[tuple[str, str, str]] = set()
    if len(keys) == 0 or not connection.execute(sa.select(sa.exists().select_from(quarantine))).scalar_one():
        return held
    for channel, ids in _by_channel(keys):
        held.update((c, i, r) for c, i, r in connection.execute(
            sa.select(quarantine.c.channel, quarantine.c.source_record_id, quarantine.c.raw_values)
            .where(quarantine.c.channel == channel, quarantine.c.source_record_id.in_(ids),
                   quarantine.c.raw_values.is_not(None))))
    return held


def _accepting_files(connection: sa.Connection, accepted: pd.DataFrame, quarantined: pd.DataFrame,
                     file_name_of: dict[str, str], file_ids: dict[str, int]) -> dict[tuple[str, str], int]:
    """For each key with a quarantine entry (open in the register, or new in this batch)
    that has an accepted record: the intake file holding that record (the first copy of
    this batch, else the held record's file)."""
    open_keys = pd.DataFrame(
        connection.execute(sa.select(quarantine.c.channel, quarantine.c.source_record_id).distinct().where(
            quarantine.c.resolved_at.is_(None), quarantine.c.source_record_id.is_not(None))).all(),
        columns=_KEY)
    batch_keys = quarantined.loc[quarantined["source_record_id"].notna(), _KEY]
    wanted = pd.concat([open_keys, batch_keys.astype(object)], ignore_index=True).drop_duplicates()
    found: dict[tuple[str, str], int] = {}
    if len(wanted) == 0:
        return found
    if len(accepted):
        copies = accepted[_KEY + ["observed_at", "record_number", "file_key"]].astype({
            "channel": object, "source_record_id": object}).merge(wanted, on=_KEY)
        if len(copies):
            copies = copies.assign(file_name=_lookup(copies["file_key"], file_name_of)).sort_values(
                _KEY + ["observed_at", "file_name", "record_number"], kind="stable").drop_duplicates(_KEY)
            found.update(zip(zip(copies["channel"], copies["source_record_id"]),
                             (int(file_ids[c]) for c in copies["file_key"])))
    rest = batch_keys.drop_duplicates()
    rest = rest[np.array([(c, i) not in found for c, i in zip(rest["channel"], rest["source_record_id"])],
                         dtype=bool)]
    for channel, ids in _by_channel(rest):
        found.update(((c, i), int(f)) for c, i, f in connection.execute(
            sa.select(source_record.c.channel, source_record.c.source_record_id, source_record.c.intake_file_id)
            .where(source_record.c.channel == channel, source_record.c.source_record_id.in_(ids))))
    return found


# A later row of one file repeating an id with other content is a conflict for the
# steward to decide: its id being accepted (the first row) does not resolve it.
_UNRESOLVABLE = Reason.DUPLICATE_RECORD_ID_IN_FILE.value


def _conflicting(reasons: pd.Series) -> pd.Series:
    return reasons.astype("string").str.split().map(lambda codes: _UNRESOLVABLE in codes).astype(bool)


def _resolve_open_entries(connection: sa.Connection, accepted_in: dict[tuple[str, str], int], now: datetime) -> None:
    """Mark the open quarantine entries of records now accepted as resolved."""
    if not accepted_in:
        return
    connection.execute(
        quarantine.update().where(quarantine.c.channel == sa.bindparam("key_channel"),
                                  quarantine.c.source_record_id == sa.bindparam("key_id"),
                                  quarantine.c.resolved_at.is_(None),
                                  ~quarantine.c.reasons.contains(_UNRESOLVABLE))
        .values(resolved_at=now, resolved_intake_file_id=sa.bindparam("file_id")),
        [{"key_channel": c, "key_id": i, "file_id": f} for (c, i), f in sorted(accepted_in.items())])


def _lookup(keys: pd.Series, mapping: dict) -> np.ndarray:
    """`keys.map(mapping)` for many rows and few distinct keys (files): one dict
    lookup per distinct key instead of per row."""
    codes, uniques = pd.factorize(keys)
    return np.array([mapping[k] for k in uniques])[codes] if len(uniques) else np.array([], dtype=object)


def _reasons_by_file(quarantined: pd.DataFrame) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for file_key, reasons in zip(quarantined["file_key"], quarantined["reasons"]):
        counter = out.setdefault(file_key, Counter())
        counter.update(reasons.split())
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _file_key(frame: pd.DataFrame) -> pd.Series:
    """A file's identity, (channel, checksum), as one string "channel/checksum"."""
    return (frame["channel"].astype("string[pyarrow]") + "/" + frame["checksum"].astype("string[pyarrow]"))


def _files_held(connection: sa.Connection, files: pd.DataFrame) -> set[str]:
    """The file keys of `files` whose (channel, checksum) `intake_file` already holds."""
    held: set[str] = set()
    unique = sorted(set(files["checksum"]))
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        held.update(f"{channel}/{checksum}" for channel, checksum in connection.execute(
            sa.select(intake_file.c.channel, intake_file.c.checksum).where(intake_file.c.checksum.in_(chunk))))
    return held


# --- validation of the batch ------------------------------------------------------------------

def _with_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing and len(frame) == 0:
        frame = frame.reindex(columns=list(dict.fromkeys(list(frame.columns) + list(columns))))
    elif missing:
        raise ValueError(f"load_intake: {name} lacks columns {', '.join(missing)}")
    return frame.reset_index(drop=True)


def _string(series: pd.Series) -> pd.Series:
    return series.astype("string[pyarrow]")


def _validated(batch: IntakeBatch) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Check the batch's shape and types; messages name frames and columns, never values."""
    files = _with_columns(batch.files, FILE_COLUMNS, "files")
    accepted = _with_columns(batch.accepted, ACCEPTED_COLUMNS, "accepted")
    quarantined = _with_columns(batch.quarantined, QUARANTINED_COLUMNS, "quarantined")

    for name in ("channel", "file_name", "checksum", "file_reason", "file_detail"):
        files[name] = _string(files[name])
    for name in ("channel", "file_name", "checksum", "size_bytes"):
        if files[name].isna().any():
            raise ValueError(f"load_intake: files.{name} has missing values")
    files["size_bytes"] = files["size_bytes"].astype("int64")
    _check_channels(files["channel"], "files.channel")
    if not files["file_reason"].dropna().isin(_REASON_CODES).all():
        raise ValueError("load_intake: files.file_reason holds a code that is not a pipeline.codes.Reason")
    if files.duplicated(["channel", "checksum", "file_name"]).any():
        raise ValueError("load_intake: files lists the same file (channel, checksum and name) twice")

    for name in ACCEPTED_COLUMNS:
        if name in ("record_number", "observed_at", "birth_date", "marketing_prohibited", "identity_verified"):
            continue
        accepted[name] = _string(accepted[name])
    accepted["record_number"] = accepted["record_number"].astype("int64")
    accepted["observed_at"] = utc_series(accepted["observed_at"], "accepted.observed_at")
    birth_date = accepted["birth_date"]
    if not pd.api.types.is_datetime64_dtype(birth_date.dtype):  # tz-aware or not datetime at all
        birth_date = pd.to_datetime(birth_date)
        if isinstance(birth_date.dtype, pd.DatetimeTZDtype):
            birth_date = birth_date.dt.tz_localize(None)
    accepted["birth_date"] = birth_date
    accepted["marketing_prohibited"] = accepted["marketing_prohibited"].astype("boolean")
    accepted["identity_verified"] = accepted["identity_verified"].astype("boolean")
    accepted["quality_flags"] = accepted["quality_flags"].fillna("")
    for name in ("channel", "source_record_id", "checksum", "observed_at", "identity_verified"):
        if accepted[name].isna().any():
            raise ValueError(f"load_intake: accepted.{name} has missing values")
    accepted["identity_verified"] = accepted["identity_verified"].astype(bool)
    _check_channels(accepted["channel"], "accepted.channel")

    for name in ("channel", "source_record_id", "checksum", "reasons", "detail", "raw_values"):
        quarantined[name] = _string(quarantined[name])
    quarantined["record_number"] = quarantined["record_number"].astype("Int64")
    for name in ("channel", "checksum", "reasons"):
        if quarantined[name].isna().any():
            raise ValueError(f"load_intake: quarantined.{name} has missing values")
    _check_channels(quarantined["channel"], "quarantined.channel")
    codes = quarantined["reasons"].str.split().explode()
    if codes.isna().any() or not codes.isin(_REASON_CODES).all():
        raise ValueError("load_intake: quarantined.reasons holds an empty list or a code "
                         "that is not a pipeline.codes.Reason")

    known = set(files["checksum"])
    for name, frame in (("accepted", accepted), ("quarantined", quarantined)):
        if not frame["checksum"].isin(known).all():
            raise ValueError(f"load_intake: {name}.checksum names a file that is not in files")
    # A record names its file by (channel, checksum): the checksum alone may be two channels' files.
    file_keys = set(_file_key(files))
    for name, frame in (("accepted", accepted), ("quarantined", quarantined)):
        if len(frame) and not _file_key(frame).isin(file_keys).all():
            raise ValueError(f"load_intake: {name}.channel differs from its file's channel")

    duplicates = _with_columns(batch.duplicates, DUPLICATE_COLUMNS, "duplicates")
    for name in ("channel", "file_name", "checksum"):
        duplicates[name] = _string(duplicates[name])
    for name in DUPLICATE_COLUMNS:
        if duplicates[name].isna().any():
            raise ValueError(f"load_intake: duplicates.{name} has missing values")
    duplicates["size_bytes"] = duplicates["size_bytes"].astype("int64")
    _check_channels(duplicates["channel"], "duplicates.channel")
    return files, accepted, quarantined, duplicates


def _check_channels(series: pd.Series, name: str) -> None:
    if not series.dropna().isin(CHANNELS).all():
        raise ValueError(f"load_intake: {name} holds an unknown channel")
