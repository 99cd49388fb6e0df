"""A steward's way out of the quarantine: correct and release an entry, or dismiss it.

*Release.* The entry's raw values (as the channel's reader staged them), with the
steward's corrections, go through the same normalisers as a nightly load
(`pipeline.normalise.normalise_records`): a record they still refuse is not
released (the reason code says why). An accepted record is loaded by the same
loader (`pipeline.register.load.load_intake`) as a one-record intake file of its
own, `steward-release-<quarantine id>` (so every file's counts still add up), and
resolved by the same matcher (`resolve_identities`) in the same transaction. The
correction is recorded in `quarantine_decision` (which fields were corrected, never
their values, with the steward, the time and the reason) and in the access log.

*Dismiss.* The entry leaves the open quarantine, with the steward's reason; its raw
values go at the retention sweep as every entry's do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from pipeline.batch import IntakeBatch
from pipeline.intake import RAW_FIELDS
from pipeline.matching.settings import MatchSettings
from pipeline.normalise import normalise_records
from pipeline.register.access_log import log_access
from pipeline.register.load import load_intake
from pipeline.register.resolve import resolve_identities
from pipeline.register.steward import StewardError
from schemas.canonical import STAGED_COLUMNS, STAGED_STRING_COLUMNS
from schemas.register import intake_file, quarantine, quarantine_decision, source_record

__all__ = ["EDITABLE_FIELDS", "Release", "dismiss_quarantined", "release_quarantined"]

# What a steward may correct: the staged fields kept as raw values, and the record's id.
EDITABLE_FIELDS: tuple[str, ...] = ("source_record_id",) + RAW_FIELDS
_TRUE = {"true", "yes", "1", "kyllä", "ja", "x"}
_FALSE = {"false", "no", "0", "ei", "nej"}


@dataclass
class Release:
    quarantine_id: int
    source_record_pk: int
    customer_id: int | None
    corrected_fields: list[str]
    intake_file_id: int


def _entry(connection: sa.Connection, quarantine_id: int) -> dict:
    row = connection.execute(sa.select(quarantine).where(quarantine.c.quarantine_id == quarantine_id)) \
        .mappings().first()
    if row is None:
        raise StewardError(f"no quarantine entry {quarantine_id}")
    if connection.execute(sa.select(quarantine_decision.c.action)
                          .where(quarantine_decision.c.quarantine_id == quarantine_id)).first():
        raise StewardError(f"quarantine entry {quarantine_id} was already decided")
    if row["resolved_at"] is not None:
        raise StewardError(f"quarantine entry {quarantine_id} was resolved: its record was accepted later")
    return dict(row)


def _flag(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise StewardError("a yes/no field holds something else than yes or no")


def staged_record(entry: dict, corrections: dict[str, object]) -> tuple[pd.DataFrame, list[str]]:
    """The entry as a one-row staged frame (`schemas.canonical.STAGED_COLUMNS`) with the corrections made;
    and the names of the fields the steward changed."""
    raw = json.loads(entry["raw_values"]) if entry["raw_values"] else {}
    values: dict[str, object] = {f: raw.get(f) for f in RAW_FIELDS}
    values["source_record_id"] = entry["source_record_id"]
    changed = []
    for name, value in corrections.items():
        if name not in EDITABLE_FIELDS:
            raise StewardError(f"{name} is not a field a steward corrects")
        value = None if value is None or (isinstance(value, str) and not value.strip()) else value
        if isinstance(value, str):
            value = value.strip()
        before = values.get(name)
        if (None if before in ("", None) else str(before)) != (None if value is None else str(value)):
            changed.append(name)
            values[name] = value
    row: dict[str, object] = {c: None for c in STAGED_COLUMNS}
    for name in STAGED_STRING_COLUMNS:
        if name in values and values[name] is not None:
            row[name] = str(values[name])
    row["channel"] = entry["channel"]
    row["read_flags"] = ""
    row["record_number"] = 1
    try:
        row["observed_at"] = pd.to_datetime(values.get("observed_at"), utc=True) if values.get("observed_at") \
            else pd.NaT
    except (ValueError, TypeError):
        raise StewardError("observed_at cannot be read as a time (give it as 2026-11-24T10:00:00+02:00)") from None
    row["marketing_prohibited"] = _flag(values.get("marketing_prohibited"))
    row["identity_verified"] = bool(_flag(values.get("identity_verified")))
    frame = pd.DataFrame([row], columns=list(STAGED_COLUMNS))
    for name in STAGED_STRING_COLUMNS:
        frame[name] = frame[name].astype("string")
    frame["record_number"] = frame["record_number"].astype("int64")
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True)
    frame["marketing_prohibited"] = frame["marketing_prohibited"].astype("boolean")
    frame["identity_verified"] = frame["identity_verified"].astype(bool)
    return frame, changed


def release_quarantined(engine: sa.Engine, quarantine_id: int, corrections: dict[str, object], *, by: str,
                        reason: str, now: dt.datetime | None = None, via: str = "web",
                        settings: MatchSettings = MatchSettings()) -> Release:
    """Correct an entry's raw values and release it into the register (see the module doc)."""
    from pipeline.register.rights.reasons import check_reason

    if not by:
        raise StewardError("a release needs the steward's name")
    if not reason or not reason.strip():
        raise StewardError("a release needs a reason")
    check_reason(reason)
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    with engine.connect() as connection:
        entry = _entry(connection, quarantine_id)
    if entry["raw_purged_at"] is not None:
        raise StewardError(f"the raw values of quarantine entry {quarantine_id} were purged: nothing to release")
    staged, changed = staged_record(entry, corrections)
    canonical = normalise_records(staged, now.date())
    refused = canonical["reject_reason"].iloc[0]
    if not pd.isna(refused):
        raise StewardError(f"the corrected record is still refused ({refused}): correct it further or dismiss it")
    checksum = hashlib.sha256(f"steward-release:{quarantine_id}:{now.isoformat()}".encode()).hexdigest()
    accepted = canonical.drop(columns=["reject_reason"]).assign(checksum=checksum)
    files = pd.DataFrame({"channel": [entry["channel"]], "file_name": [f"steward-release-{quarantine_id}"],
                          "checksum": [checksum], "size_bytes": [0], "records_read": [1],
                          "file_reason": pd.Series([pd.NA], dtype="string"),
                          "file_detail": pd.Series([pd.NA], dtype="string")})
    channel, record_id = entry["channel"], str(accepted["source_record_id"].iloc[0])
    run_id = f"steward:{by}"[:64]
    done: dict[str, int] = {}

    def after_load(connection: sa.Connection):
        summary = resolve_identities(connection, now=now, run_id=run_id, settings=settings)
        held = connection.execute(sa.select(source_record.c.source_record_pk, source_record.c.customer_id).where(
            source_record.c.channel == channel, source_record.c.source_record_id == record_id)).first()
        if held is None:  # a tombstone: the record was erased on its person's request
            raise StewardError("this record was erased on its person's request: it is not loaded again")
        file_id = connection.execute(sa.select(intake_file.c.intake_file_id)
                                     .where(intake_file.c.channel == channel, intake_file.c.checksum == checksum)
                                     ).scalar_one()
        connection.execute(quarantine.update().where(quarantine.c.quarantine_id == quarantine_id,
                                                     quarantine.c.resolved_at.is_(None))
                           .values(resolved_at=now, resolved_intake_file_id=file_id))
        connection.execute(quarantine_decision.insert().values(
            quarantine_id=quarantine_id, action="release", corrected_fields=" ".join(sorted(changed)),
            intake_file_id=file_id, reason=reason.strip(), decided_by=by, decided_at=now))
        log_access(connection, user=by, via=via, action="release", customer_id=held[1],
                   source_record_pk=int(held[0]), quarantine_id=quarantine_id, reason=reason, now=now)
        done.update(pk=int(held[0]), customer=int(held[1]) if held[1] is not None else None, file=int(file_id))
        return summary

    load_intake(engine, IntakeBatch(files=files, accepted=accepted.reset_index(drop=True)), run_id=run_id, now=now,
                after_load=after_load)
    return Release(quarantine_id, done["pk"], done["customer"], sorted(changed), done["file"])


def dismiss_quarantined(engine: sa.Engine, quarantine_id: int, *, by: str, reason: str, via: str = "web",
                        now: dt.datetime | None = None) -> None:
    """Take an entry out of the open quarantine without loading it, with the steward's reason."""
    from pipeline.register.rights.reasons import check_reason

    if not by or not reason or not reason.strip():
        raise StewardError("a dismissal needs the steward's name and a reason")
    check_reason(reason)
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    with engine.begin() as connection:
        _entry(connection, quarantine_id)
        connection.execute(quarantine_decision.insert().values(
            quarantine_id=quarantine_id, action="dismiss", corrected_fields="", intake_file_id=None,
            reason=reason.strip(), decided_by=by, decided_at=now))
        log_access(connection, user=by, via=via, action="dismiss", quarantine_id=quarantine_id, reason=reason,
                   now=now)
