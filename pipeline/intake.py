"""From landed files to one batch for the register: discover, read, normalise, split.

Pure functions over files and data frames; the Dagster assets in `assets/` wrap
them. Nothing here logs or raises a personal value.

    discover(landing)       -> LandedFile per file in <landing>/<channel>/
    read_landed(file)       -> FileRead: the channel reader's result or the file's reason
    build_batch(reads, ...) -> IntakeBatch: accepted canonical records, quarantine rows, files
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.channels import READERS
from pipeline.channels.base import ChannelRead, UnreadableFile, is_rust_panic, without_controls
from pipeline.codes import Reason
from pipeline.normalise import limits, normalise_records
from pipeline.register.load import IntakeBatch
from schemas.canonical import CANONICAL_COLUMNS, CHANNELS, STAGED_COLUMNS, STAGED_STRING_COLUMNS

# Raw fields kept in quarantine for the steward (the staged text as typed).
RAW_FIELDS: tuple[str, ...] = tuple(
    c for c in STAGED_STRING_COLUMNS if c not in ("channel", "source_record_id", "read_flags", "reject_reason")
) + ("observed_at", "marketing_prohibited", "identity_verified")

QUARANTINE_COLUMNS: tuple[str, ...] = (
    "channel", "source_record_id", "checksum", "record_number", "reasons", "detail", "raw_values",
)


@dataclass(frozen=True)
class LandedFile:
    """One file in the landing zone, identified by its content."""

    channel: str
    path: Path
    checksum: str  # sha256 of the bytes
    size_bytes: int

    @property
    def file_name(self) -> str:
        return self.path.name


@dataclass
class FileRead:
    """What reading one landed file gave: records and read errors, or the file's reason."""

    file: LandedFile
    result: ChannelRead | None = None
    reason: Reason | None = None
    detail: str | None = None

    @property
    def records_read(self) -> int:
        return self.result.count if self.result is not None else 0


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def discover(landing_dir: Path, channels: Iterable[str] = CHANNELS) -> list[LandedFile]:
    """Every landed file under `<landing>/<channel>/`, in name order.

    Hidden files (a leading dot) are uploads still in progress and are left for
    a later run. Any other file in a channel's folder is landed: the channel's
    reader decides whether it can be read.
    """
    found: list[LandedFile] = []
    for channel in channels:
        folder = Path(landing_dir) / channel
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                found.append(LandedFile(channel, path, file_checksum(path), path.stat().st_size))
    return found


def new_files(files: Iterable[LandedFile], known_checksums: set[str]) -> list[LandedFile]:
    """Files whose content has not been loaded, once per content (first by name)."""
    seen = set(known_checksums)
    fresh: list[LandedFile] = []
    for landed in sorted(files, key=lambda f: (f.channel, f.file_name)):
        if landed.checksum not in seen:
            seen.add(landed.checksum)
            fresh.append(landed)
    return fresh


def read_landed(landed: LandedFile) -> FileRead:
    """Read one file with its channel's reader; a file it cannot read keeps its reason."""
    reader = READERS[landed.channel]
    try:
        return FileRead(landed, result=reader(landed.path))
    except UnreadableFile as unreadable:
        # A masked header cell in the detail keeps its first and last character: no control character.
        return FileRead(landed, reason=unreadable.reason, detail=without_controls(unreadable.detail))
    except Exception as error:
        # A reader bug or an unforeseen format fault must not stop the other files.
        # The exception's text may quote file content, so only its type is kept.
        return FileRead(landed, reason=Reason.FILE_UNREADABLE,
                        detail=f"{landed.file_name}: {type(error).__name__} while reading")
    except BaseException as error:
        if not is_rust_panic(error):  # KeyboardInterrupt, SystemExit: not the file's fault
            raise
        return FileRead(landed, reason=Reason.FILE_UNREADABLE,
                        detail=f"{landed.file_name}: {type(error).__name__} while reading")


def _bounded_json(values: dict[str, object], limit: int) -> str:
    """Raw values as JSON, each text cut to `limit` characters; `truncated` gives the cut ones' lengths."""
    kept: dict[str, object] = {}
    truncated: dict[str, int] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, str):
            value, length = limits.bounded(value, limit)
            if length is not None:
                truncated[key] = length
        kept[key] = value
    if truncated:
        kept["truncated"] = truncated
    return json.dumps(kept, ensure_ascii=False)


def _raw_values(staged: pd.DataFrame) -> pd.Series:
    """The staged text of each record as JSON, for the steward to correct (each value bounded)."""
    raw = staged[list(RAW_FIELDS)].astype(object).where(staged[list(RAW_FIELDS)].notna(), None)
    raw["observed_at"] = staged["observed_at"].map(lambda t: None if pd.isna(t) else t.isoformat())
    records = raw.to_dict(orient="records")
    return pd.Series([_bounded_json(r, limits.RAW_VALUE_LIMIT) for r in records], index=staged.index, dtype=object)


def _quarantine_record_id(ids: pd.Series) -> pd.Series:
    """Record ids as the quarantine holds them: one over the column's limit is not kept."""
    ids = ids.astype(object)
    limit = limits.FIELD_LIMITS["source_record_id"]
    return ids.map(lambda v: v if isinstance(v, str) and len(v) <= limit else None)


def _conflicting_duplicates(staged: pd.DataFrame) -> pd.Series:
    """Later rows of a file that repeat an earlier row's id with different content.

    An identical repeat is a re-send and is left for the loader to count as one;
    a repeat with other content cannot be told apart from the first, so it is
    quarantined for the steward rather than silently dropped.
    """
    has_id = staged["source_record_id"].notna()
    keyed = staged[has_id]
    repeated = keyed.duplicated(["checksum", "source_record_id"], keep=False)
    if not repeated.any():
        return pd.Series(False, index=staged.index)
    candidates = keyed[repeated]
    content = [c for c in STAGED_COLUMNS if c not in ("record_number",)] + ["checksum"]
    first_of_content = ~candidates.astype(str).duplicated(content, keep="first")
    first_of_id = ~candidates.duplicated(["checksum", "source_record_id"], keep="first")
    conflicting = first_of_content & ~first_of_id
    return conflicting.reindex(staged.index, fill_value=False)


def build_batch(reads: list[FileRead], today: dt.date) -> IntakeBatch:
    """Normalise every readable record and sort each into accepted or quarantined."""
    files = pd.DataFrame(
        {
            "channel": [r.file.channel for r in reads],
            "file_name": [r.file.file_name for r in reads],
            "checksum": [r.file.checksum for r in reads],
            "size_bytes": [r.file.size_bytes for r in reads],
            # what the reader counted: the loader checks every record arrived (rule 1)
            "records_read": [r.records_read for r in reads],
            "file_reason": pd.Series([r.reason.value if r.reason else pd.NA for r in reads], dtype="string"),
            "file_detail": pd.Series([r.detail if r.reason else pd.NA for r in reads], dtype="string"),
        }
    )
    # The same content twice (a file re-sent under a new name) is one file: its records
    # are taken once, from the first by name; the loader records the copy as skipped.
    first_of_content: dict[str, FileRead] = {}
    for r in sorted(reads, key=lambda r: (r.file.channel, r.file.file_name)):
        first_of_content.setdefault(r.file.checksum, r)
    readable = [r for r in reads if r.result is not None and first_of_content[r.file.checksum] is r]
    staged_parts, error_parts = [], []
    for r in readable:
        staged_parts.append(r.result.records.assign(checksum=r.file.checksum))
        if len(r.result.errors):
            error_parts.append(r.result.errors.assign(checksum=r.file.checksum))

    quarantine_parts: list[pd.DataFrame] = []
    accepted = pd.DataFrame(columns=[c for c in CANONICAL_COLUMNS if c != "reject_reason"] + ["checksum"])
    if staged_parts:
        staged = pd.concat(staged_parts, ignore_index=True)
        canonical = normalise_records(staged[list(STAGED_COLUMNS)], today)
        reasons = canonical["reject_reason"].astype(object)
        duplicate = _conflicting_duplicates(staged) & reasons.isna()
        reasons = reasons.where(~duplicate, Reason.DUPLICATE_RECORD_ID_IN_FILE.value)
        rejected = reasons.notna()
        if rejected.any():
            bad = staged[rejected]
            detail = pd.Series(pd.NA, index=bad.index, dtype=object)
            too_long = (reasons[rejected] == Reason.VALUE_TOO_LONG.value).to_numpy()
            if too_long.any():  # which fields, never their values
                detail[too_long] = limits.too_long_fields(bad[too_long]).to_numpy()
            quarantine_parts.append(pd.DataFrame({
                "channel": bad["channel"].astype(object),
                "source_record_id": _quarantine_record_id(bad["source_record_id"]),
                "checksum": bad["checksum"],
                "record_number": bad["record_number"].astype("Int64"),
                "reasons": reasons[rejected],
                "detail": detail,
                "raw_values": _raw_values(bad),
            }))
        accepted = canonical.loc[~rejected].drop(columns=["reject_reason"])
        accepted = accepted.assign(checksum=staged.loc[~rejected, "checksum"])
    for errors in error_parts:
        quarantine_parts.append(pd.DataFrame({
            "channel": errors["channel"].astype(object),
            "source_record_id": _quarantine_record_id(errors["source_record_id"]),
            "checksum": errors["checksum"],
            "record_number": errors["record_number"].astype("Int64"),
            "reasons": errors["reason"].astype(object),
            "detail": pd.Series(pd.NA, index=errors.index, dtype=object),
            "raw_values": errors["raw"].map(lambda t: _bounded_json({"raw": t}, limits.RAW_RECORD_LIMIT)
                                            if isinstance(t, str) else None),
        }))
    quarantined = (pd.concat(quarantine_parts, ignore_index=True) if quarantine_parts
                   else pd.DataFrame(columns=list(QUARANTINE_COLUMNS)))
    return IntakeBatch(files=files, accepted=accepted.reset_index(drop=True), quarantined=quarantined)


def read_all(files: list[LandedFile]) -> list[FileRead]:
    return [read_landed(f) for f in files]


@dataclass
class ChannelCounts:
    """Counts for run metadata: numbers only, never a value."""

    files: int = 0
    unreadable_files: int = 0
    records_read: int = 0
    read_errors: int = 0


def channel_counts(reads: list[FileRead]) -> ChannelCounts:
    readable = [r for r in reads if r.result is not None]
    return ChannelCounts(files=len(reads), unreadable_files=len(reads) - len(readable),
                         records_read=sum(r.records_read for r in readable),
                         read_errors=sum(len(r.result.errors) for r in readable))
