"""From landed files to one batch for the register: discover, read, normalise, split.

Pure functions over files and data frames; the Dagster assets in `assets/` wrap
them. Nothing here logs or raises a personal value.

    survey_landing(landing) -> LandingSurvey: files ready to read in <landing>/<channel>/,
                               files still waiting, links refused, names out of place
    discover(landing)       -> the ready LandedFiles only
    new_files(files, known) -> those whose (channel, checksum) the register does not hold
    duplicate_files(files, known) -> the others: re-sent content, recorded but not read
    read_landed(file)       -> FileRead: the channel reader's result or the file's reason
    read_all(files, today=) -> a FileRead per file, in order; many files are read (and
                               normalised for `today`) in worker processes (pipeline.intake_workers)
    build_batch(reads, ...) -> IntakeBatch: accepted canonical records, quarantine rows, files
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.batch import DUPLICATE_COLUMNS, IntakeBatch
from pipeline.channels import READERS
from pipeline.channels.base import ChannelRead, UnreadableFile, is_rust_panic, without_controls
from pipeline.codes import Reason
from pipeline.normalise import limits, normalise_records
from schemas.canonical import CANONICAL_COLUMNS, CHANNELS, STAGED_COLUMNS, STAGED_STRING_COLUMNS

# Raw fields kept in quarantine for the steward (the staged text as typed).
RAW_FIELDS: tuple[str, ...] = tuple(
    c for c in STAGED_STRING_COLUMNS if c not in ("channel", "source_record_id", "read_flags", "reject_reason")
) + ("observed_at", "marketing_prohibited", "identity_verified")

QUARANTINE_COLUMNS: tuple[str, ...] = (
    "channel", "source_record_id", "checksum", "record_number", "reasons", "detail", "raw_values",
)


# The landing protocol (docs/intake_formats.md; docs/operations.md "The landing zone").
READY_SUFFIX = ".ready"          # `<file>.ready` beside a file: its export has finished
DONE_SUFFIX = ".done"            # `<file>.done`: the file renamed by its writer once finished
DEFAULT_SETTLE_SECONDS = 60      # without a marker: ready once unchanged this long
FILE_EXTENSIONS: dict[str, str] = {"web": "jsonl", "phone": "csv", "mail": "csv", "email": "mbox",
                                   "in_person": "xlsx"}
# `<channel>_YYYYMMDD.<ext>`, and `<channel>_YYYYMMDD_<n>.<ext>` for a further export of the day.
FILE_NAME_PATTERNS: dict[str, re.Pattern[str]] = {
    channel: re.compile(rf"{re.escape(channel)}_[0-9]{{8}}(?:_[0-9]+)?\.{extension}")
    for channel, extension in FILE_EXTENSIONS.items()
}


def exported_name(name: str) -> str:
    """A landed file's name without the `.done` its writer may have renamed it to.

    >>> exported_name("mail_20261204.csv.done"), exported_name("mail_20261204.csv")
    ('mail_20261204.csv', 'mail_20261204.csv')
    """
    return name[: -len(DONE_SUFFIX)] if name.endswith(DONE_SUFFIX) else name


_EXPORT_DAY = re.compile(r"^[a-z_]+_([0-9]{8})(?:_[0-9]+)?\.")


def export_day(name: str) -> dt.date | None:
    """The export day a landed file's name gives (`<channel>_YYYYMMDD[_n].<ext>`), or None
    when its eight digits are no calendar day.

    >>> export_day("mail_20261105.csv"), export_day("web_20261105_2.jsonl.done")
    (datetime.date(2026, 11, 5), datetime.date(2026, 11, 5))
    >>> export_day("phone_20261331.csv") is None
    True
    """
    found = _EXPORT_DAY.match(exported_name(name))
    if found is None:
        return None
    try:
        return dt.datetime.strptime(found.group(1), "%Y%m%d").date()
    except ValueError:
        return None


class LandingZoneMissing(FileNotFoundError):
    """The landing directory does not exist, is not a directory, or holds none of the
    channel folders: a wrong `REGISTER_LANDING_DIR`, not a quiet night."""


@dataclass(frozen=True)
class LandedFile:
    """One file in the landing zone, identified by its content within its channel."""

    channel: str
    path: Path
    checksum: str  # sha256 of the bytes
    size_bytes: int
    # What lstat said when the checksum was taken: a reader may check the file is still that one.
    device: int = 0
    inode: int = 0
    modified_ns: int = 0

    @property
    def file_name(self) -> str:
        """The export's name as docs/intake_formats.md gives it (a `.done` rename's suffix left off)."""
        return exported_name(self.path.name)

    @property
    def identity(self) -> tuple[str, str]:
        """(channel, checksum): the same bytes in two channels are two files."""
        return (self.channel, self.checksum)

    @property
    def export_day(self) -> dt.date | None:
        return export_day(self.path.name)

    def unchanged(self) -> bool:
        """Is the path still this regular file (no link swapped in), unchanged since it was summed?"""
        try:
            now = os.lstat(self.path)
        except OSError:
            return False
        return (stat.S_ISREG(now.st_mode) and (now.st_dev, now.st_ino) == (self.device, self.inode)
                and now.st_size == self.size_bytes and now.st_mtime_ns == self.modified_ns)


@dataclass
class FileRead:
    """What reading one landed file gave: records and read errors, or the file's reason.

    `duplicate`: not read at all, because its channel already holds its bytes (or an
    earlier file of the run by name has them): the loader records it as a duplicate.

    `prepared`: the file's share of the batch, when a worker process normalised it beside
    the read (`read_all` with `today`). Its staged records then stayed in the worker:
    `result.records` has their columns but no row (`records_read` still counts them).
    """

    file: LandedFile
    result: ChannelRead | None = None
    reason: Reason | None = None
    detail: str | None = None
    duplicate: bool = False
    prepared: PreparedFile | None = None

    @property
    def records_read(self) -> int:
        if self.result is None:
            return 0
        staged = self.prepared.records if self.prepared is not None else len(self.result.records)
        return staged + len(self.result.errors)

    def with_share(self, share: PreparedFile) -> FileRead:
        """This read as a worker hands it back: its records normalised, the staged frame left behind."""
        kept = ChannelRead(records=self.result.records.iloc[:0], errors=self.result.errors)
        return FileRead(self.file, kept, self.reason, self.detail, self.duplicate, prepared=share)


@dataclass
class PreparedFile:
    """One readable file normalised alone, as `build_batch` would sort its records on `today`:
    its accepted rows, its rejected records' quarantine rows, its read errors' quarantine rows.

    Normalisation is row by row and duplicate ids are looked for within a file, so the
    batch these make, file after file, is the one `build_batch` makes from the whole
    concatenation (tests/test_intake_parallel.py holds the two equal). `accepted` and
    `rejected` keep the index of the records normalised with them (`prepare_files`).
    """

    today: dt.date
    records: int                   # the staged records it was made from
    accepted: pd.DataFrame
    rejected: pd.DataFrame | None  # QUARANTINE_COLUMNS; None: no record rejected
    errors: pd.DataFrame | None    # QUARANTINE_COLUMNS; None: no unreadable record


class LandedFileChanged(RuntimeError):
    """A file normalised in a worker for another day had to be read again, and no longer
    reads as it did. Names the file only; a later run reads it afresh."""


@dataclass
class LandingSurvey:
    """What one look at the landing zone found. Names are `<channel>/<file>` (or the entry's
    name at the top), never content.

    files: ready files, checksummed, in channel then name order.
    waiting: files still being written (no marker and changed within the settle time,
        or changed while being read): left for a later run.
    refused_links: symbolic links (files, markers or channel folders): never followed.
    unknown_entries: anything at the top that is not one of the five channel folders
        (`Web`, `inperson`, a stray file): nothing in it is read.
    unexpected_names: entries in a channel folder that are not `<channel>_YYYYMMDD[_n].<ext>`
        regular files (or their markers): left where they are, not read.
    channel_folders: the channel folders present.
    """

    files: list[LandedFile] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    refused_links: list[str] = field(default_factory=list)
    unknown_entries: list[str] = field(default_factory=list)
    unexpected_names: list[str] = field(default_factory=list)
    channel_folders: list[str] = field(default_factory=list)

    def files_of(self, channel: str) -> list[LandedFile]:
        return [f for f in self.files if f.channel == channel]

    def waiting_in(self, channel: str) -> list[str]:
        return [name for name in self.waiting if name.startswith(f"{channel}/")]

    def on_days(self, days: Iterable[dt.date]) -> LandingSurvey:
        """The part of this survey that concerns files exported on `days` (a partitioned
        run's): its ready and waiting files. Links and names out of place stay in view."""
        wanted = set(days)
        return LandingSurvey(
            files=[f for f in self.files if f.export_day in wanted],
            waiting=[name for name in self.waiting if export_day(name.rsplit("/", 1)[-1]) in wanted],
            refused_links=self.refused_links, unknown_entries=self.unknown_entries,
            unexpected_names=self.unexpected_names, channel_folders=self.channel_folders)

    @property
    def holds_files(self) -> bool:
        """Any data file at all (ready or waiting) in a channel folder."""
        return bool(self.files or self.waiting)

    def metadata(self) -> dict[str, object]:
        """Counts per channel, and the names of what needs the operator (names only)."""
        out: dict[str, object] = {
            "files_ready": len(self.files), "files_waiting": len(self.waiting),
            "links_refused": len(self.refused_links), "unknown_entries": len(self.unknown_entries),
            "unexpected_names": len(self.unexpected_names),
        }
        for channel in CHANNELS:
            out[f"{channel}.files_ready"] = len(self.files_of(channel))
            out[f"{channel}.files_waiting"] = len(self.waiting_in(channel))
        return out


@dataclass(frozen=True)
class ListedFile:
    """A correctly named regular file of a channel folder, as listed (not yet read)."""

    channel: str
    path: Path
    status: os.stat_result  # lstat
    marker: os.stat_result | None  # its `.ready` marker's lstat, if there is one
    ready: bool


def file_checksum(path: Path) -> str:
    """sha256 of the file's bytes; a symbolic link is refused (OSError), not followed."""
    return _summed(path)[0]


def _summed(path: Path) -> tuple[str, os.stat_result, os.stat_result]:
    """(checksum, status when opened, status when read to the end), by descriptor, without
    following a link (O_NOFOLLOW) and without blocking on a FIFO (O_NONBLOCK)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb") as handle:
        before = os.fstat(handle.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise OSError(f"{path.name}: not a regular file")
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        after = os.fstat(handle.fileno())
    return digest.hexdigest(), before, after


def list_landing(landing_dir: Path, channels: Iterable[str], settle_seconds: float, now: float,
                 survey: LandingSurvey) -> list[ListedFile]:
    """Sort every entry of the landing zone into `survey` (waiting, links, names out of
    place) and return the correctly named files, ready or not, without reading them."""
    landing = Path(landing_dir)
    # The configured directory itself may be a link (a mount); nothing inside it may be.
    if not landing.is_dir():
        raise LandingZoneMissing(f"landing directory {landing} does not exist or is not a directory")
    wanted = set(channels)
    folders: dict[str, Path] = {}
    with os.scandir(landing) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                survey.refused_links.append(entry.name)
            elif entry.name in CHANNELS and entry.is_dir(follow_symlinks=False):
                survey.channel_folders.append(entry.name)
                if entry.name in wanted:
                    folders[entry.name] = Path(entry.path)
            else:
                survey.unknown_entries.append(entry.name)
    if not survey.channel_folders:
        raise LandingZoneMissing(f"landing directory {landing} holds none of the channel folders "
                                 f"({', '.join(CHANNELS)})")
    listed: list[ListedFile] = []
    for channel in CHANNELS:
        if channel not in folders:
            continue
        pattern = FILE_NAME_PATTERNS[channel]
        data: dict[str, os.DirEntry] = {}
        markers: dict[str, os.DirEntry] = {}
        with os.scandir(folders[channel]) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue  # an upload in progress under a hidden name
                if entry.is_symlink():
                    survey.refused_links.append(f"{channel}/{name}")
                elif name.endswith(READY_SUFFIX) and entry.is_file(follow_symlinks=False):
                    markers[name[: -len(READY_SUFFIX)]] = entry
                elif pattern.fullmatch(exported_name(name)) and entry.is_file(follow_symlinks=False):
                    data[name] = entry
                else:
                    survey.unexpected_names.append(f"{channel}/{name}")
        for name in sorted(data):
            status = data[name].stat(follow_symlinks=False)
            marker = markers[name].stat(follow_symlinks=False) if name in markers else None
            ready = (marker is not None or name.endswith(DONE_SUFFIX)
                     or now - status.st_mtime_ns / 1e9 >= settle_seconds)
            listed.append(ListedFile(channel, Path(data[name].path), status, marker, ready))
            if not ready:
                survey.waiting.append(f"{channel}/{name}")
        # A marker whose file is misnamed or absent is not data and says nothing more.
    survey.refused_links.sort()
    survey.unexpected_names.sort()
    return listed


def survey_landing(landing_dir: Path, channels: Iterable[str] = CHANNELS, *,
                   settle_seconds: float = DEFAULT_SETTLE_SECONDS, now: float | None = None) -> LandingSurvey:
    """Look at `<landing>/<channel>/` once: which files are ready to read, which wait,
    and what does not belong (see `LandingSurvey`).

    A file is ready when its `<file>.ready` marker is beside it, when its writer has
    renamed it to `<file>.done`, or, without either, when it has not changed for
    `settle_seconds` (its modification time; `now` is seconds since the epoch, default
    the clock). It is read by descriptor without following
    links; one that changes while it is summed waits for a later run. Raises
    `LandingZoneMissing` when the directory is missing or holds no channel folder.
    """
    survey = LandingSurvey()
    now = time.time() if now is None else now
    for candidate in list_landing(Path(landing_dir), channels, settle_seconds, now, survey):
        if not candidate.ready:
            continue
        name = f"{candidate.channel}/{candidate.path.name}"
        try:
            checksum, opened, finished = _summed(candidate.path)
        except OSError:
            # Swapped for a link or removed since the listing: never followed, not read now.
            if os.path.islink(candidate.path):
                survey.refused_links.append(name)
            else:
                survey.waiting.append(name)
            continue
        listed = candidate.status
        if ((opened.st_dev, opened.st_ino) != (listed.st_dev, listed.st_ino)
                or (finished.st_size, finished.st_mtime_ns) != (listed.st_size, listed.st_mtime_ns)):
            survey.waiting.append(name)  # still being written (or replaced): a later run reads it
            continue
        survey.files.append(LandedFile(candidate.channel, candidate.path, checksum, listed.st_size,
                                       device=listed.st_dev, inode=listed.st_ino,
                                       modified_ns=listed.st_mtime_ns))
    survey.waiting.sort()
    survey.refused_links.sort()
    return survey


def discover(landing_dir: Path, channels: Iterable[str] = CHANNELS, *,
             settle_seconds: float = DEFAULT_SETTLE_SECONDS, now: float | None = None) -> list[LandedFile]:
    """Every file ready to read under `<landing>/<channel>/`, in channel then name order
    (`survey_landing`, without the report of what waits or does not belong)."""
    return survey_landing(landing_dir, channels, settle_seconds=settle_seconds, now=now).files


def new_files(files: Iterable[LandedFile], known: set[tuple[str, str]]) -> list[LandedFile]:
    """Files whose content has not been loaded in their channel, once per (channel,
    content), the first by name. `known` holds (channel, checksum) pairs
    (`pipeline.register.files.known_files`)."""
    seen = set(known)
    fresh: list[LandedFile] = []
    for landed in sorted(files, key=lambda f: (f.channel, f.file_name)):
        if landed.identity not in seen:
            seen.add(landed.identity)
            fresh.append(landed)
    return fresh


def duplicate_files(files: Iterable[LandedFile], known: set[tuple[str, str]]) -> list[LandedFile]:
    """The files `new_files` leaves out: content already loaded in their channel, or
    repeated in the channel under a later name. Not read; recorded by the loader
    (`intake_file_duplicate`) with the earlier file they repeat."""
    fresh = set(new_files(files, known))
    return [f for f in sorted(files, key=lambda f: (f.channel, f.file_name)) if f not in fresh]


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
    repeated = keyed.duplicated(["channel", "checksum", "source_record_id"], keep=False)
    if not repeated.any():
        return pd.Series(False, index=staged.index)
    candidates = keyed[repeated]
    content = [c for c in STAGED_COLUMNS if c not in ("record_number",)] + ["checksum"]
    first_of_content = ~candidates.astype(str).duplicated(content, keep="first")
    first_of_id = ~candidates.duplicated(["channel", "checksum", "source_record_id"], keep="first")
    conflicting = first_of_content & ~first_of_id
    return conflicting.reindex(staged.index, fill_value=False)


def _split_staged(staged: pd.DataFrame, today: dt.date) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Normalise staged records (with their file's `checksum`): the accepted rows, and the
    rejected ones' quarantine rows (None when none is rejected). Both keep `staged`'s index."""
    canonical = normalise_records(staged[list(STAGED_COLUMNS)], today)
    reasons = canonical["reject_reason"].astype(object)
    duplicate = _conflicting_duplicates(staged) & reasons.isna()
    reasons = reasons.where(~duplicate, Reason.DUPLICATE_RECORD_ID_IN_FILE.value)
    rejected = reasons.notna()
    quarantined = None
    if rejected.any():
        bad = staged[rejected]
        detail = pd.Series(pd.NA, index=bad.index, dtype=object)
        too_long = (reasons[rejected] == Reason.VALUE_TOO_LONG.value).to_numpy()
        if too_long.any():  # which fields, never their values
            detail[too_long] = limits.too_long_fields(bad[too_long]).to_numpy()
        quarantined = pd.DataFrame({
            "channel": bad["channel"].astype(object),
            "source_record_id": _quarantine_record_id(bad["source_record_id"]),
            "checksum": bad["checksum"],
            "record_number": bad["record_number"].astype("Int64"),
            "reasons": reasons[rejected],
            "detail": detail,
            "raw_values": _raw_values(bad),
        })
    accepted = canonical.loc[~rejected].drop(columns=["reject_reason"])
    accepted = accepted.assign(checksum=staged.loc[~rejected, "checksum"])
    return accepted, quarantined


def _error_quarantine(errors: pd.DataFrame) -> pd.DataFrame:
    """Quarantine rows for a file's unreadable records (with their file's `checksum`)."""
    return pd.DataFrame({
        "channel": errors["channel"].astype(object),
        "source_record_id": _quarantine_record_id(errors["source_record_id"]),
        "checksum": errors["checksum"],
        "record_number": errors["record_number"].astype("Int64"),
        "reasons": errors["reason"].astype(object),
        "detail": pd.Series(pd.NA, index=errors.index, dtype=object),
        "raw_values": errors["raw"].map(lambda t: _bounded_json({"raw": t}, limits.RAW_RECORD_LIMIT)
                                        if isinstance(t, str) else None),
    })


def prepare_files(reads: list[FileRead], today: dt.date) -> list[PreparedFile]:
    """The readable files' shares of the batch (see `PreparedFile`), one per readable read in
    order: their records normalised together, then cut back into files. Together, because
    the normalisers work once per distinct value: 30 files one by one cost ~1.8x as much."""
    readable = [r for r in reads if r.result is not None]
    if not readable:
        return []
    staged = pd.concat([r.result.records.assign(checksum=r.file.checksum) for r in readable], ignore_index=True)
    accepted, rejected = _split_staged(staged, today)
    # Both frames keep `staged`'s index, in order: file j's rows are those in [bounds[j], bounds[j + 1]).
    bounds = np.concatenate([[0], np.cumsum([len(r.result.records) for r in readable])])
    accepted_cuts = accepted.index.searchsorted(bounds)
    rejected_cuts = rejected.index.searchsorted(bounds) if rejected is not None else None
    prepared = []
    for j, r in enumerate(readable):
        own_rejected = None
        if rejected_cuts is not None and rejected_cuts[j + 1] > rejected_cuts[j]:
            own_rejected = rejected.iloc[rejected_cuts[j]:rejected_cuts[j + 1]]
        errors = r.result.errors
        prepared.append(PreparedFile(
            today, records=len(r.result.records), accepted=accepted.iloc[accepted_cuts[j]:accepted_cuts[j + 1]],
            rejected=own_rejected,
            errors=_error_quarantine(errors.assign(checksum=r.file.checksum)) if len(errors) else None))
    return prepared


def _read_again(read: FileRead) -> FileRead:
    """A read whose staged records stayed in a worker, read again in this process: the same
    file (not replaced, not changed) must give the same counts, or the batch is not built."""
    again = read_landed(read.file)
    if (not read.file.unchanged() or again.result is None or again.records_read != read.records_read
            or len(again.result.errors) != len(read.result.errors)):
        raise LandedFileChanged(f"{read.file.channel}/{read.file.file_name} changed after it was read; "
                                "a later run reads it again")
    return again


def build_batch(reads: list[FileRead], today: dt.date) -> IntakeBatch:
    """Normalise every readable record and sort each into accepted or quarantined;
    files marked `duplicate` (not read) go to `duplicates`.

    Reads that a worker process already normalised for `today` (`read_all` with `today`)
    are put together file by file, the others normalised here: the same batch either way.
    """
    skipped = [r for r in reads if r.duplicate]
    reads = [r for r in reads if not r.duplicate]
    duplicates = pd.DataFrame({
        "channel": [r.file.channel for r in skipped],
        "file_name": [r.file.file_name for r in skipped],
        "checksum": [r.file.checksum for r in skipped],
        "size_bytes": pd.Series([r.file.size_bytes for r in skipped], dtype="int64"),
    }, columns=list(DUPLICATE_COLUMNS))
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
    # The same content twice in a channel (a file re-sent under a new name) is one file:
    # its records are taken once, from the first by name; the loader records the copy as
    # skipped. The same bytes in two channels are two files.
    first_of_content: dict[tuple[str, str], FileRead] = {}
    for r in sorted(reads, key=lambda r: (r.file.channel, r.file.file_name)):
        first_of_content.setdefault(r.file.identity, r)
    readable = [r for r in reads if r.result is not None and first_of_content[r.file.identity] is r]

    accepted = pd.DataFrame(columns=[c for c in CANONICAL_COLUMNS if c != "reject_reason"] + ["checksum"])
    rejected_parts: list[pd.DataFrame] = []
    error_parts: list[pd.DataFrame] = []
    # Normalised in a worker for another day (the run passed midnight between reading and
    # building): its staged records stayed in the worker, so it is read again here.
    readable = [_read_again(r) if r.prepared is not None and r.prepared.today != today else r for r in readable]
    if any(r.prepared is not None for r in readable):
        # Normalised in worker processes: the files' shares one after another. A file a
        # worker did not normalise is normalised here.
        unprepared = [r for r in readable if r.prepared is None]
        done_here = dict(zip(map(id, unprepared), prepare_files(unprepared, today)))
        prepared = [done_here.get(id(r), r.prepared) for r in readable]
        accepted = pd.concat([p.accepted for p in prepared], ignore_index=True)
        rejected_parts = [p.rejected for p in prepared if p.rejected is not None]
        error_parts = [p.errors for p in prepared if p.errors is not None]
    elif readable:
        staged = pd.concat([r.result.records.assign(checksum=r.file.checksum) for r in readable],
                           ignore_index=True)
        accepted, rejected = _split_staged(staged, today)
        rejected_parts = [rejected] if rejected is not None else []
        error_parts = [_error_quarantine(r.result.errors.assign(checksum=r.file.checksum))
                       for r in readable if len(r.result.errors)]
    # Rejected records first, in file order, then every file's unreadable records.
    quarantine_parts = rejected_parts + error_parts
    quarantined = (pd.concat(quarantine_parts, ignore_index=True) if quarantine_parts
                   else pd.DataFrame(columns=list(QUARANTINE_COLUMNS)))
    accepted = accepted.reset_index(drop=True)
    # A file's checksum on each of its records: as categories, not a million 64-character
    # strings (115 MB at 1M records, held through the whole load).
    accepted["checksum"] = accepted["checksum"].astype("category")
    return IntakeBatch(files=files, accepted=accepted, quarantined=quarantined, duplicates=duplicates)


def read_all(files: list[LandedFile], *, today: dt.date | None = None, workers: int | None = None) -> list[FileRead]:
    """`read_landed` for every file, in the order given.

    Many files (`pipeline.intake_workers.worth_a_pool`) are read by `workers` processes
    (default: the `REGISTER_INTAKE_WORKERS` setting); with `today`, each worker also
    normalises its files for `build_batch` (`FileRead.prepared`). One worker, or a small
    batch, reads here in this process, one file after another.
    """
    from pipeline.intake_workers import read_in_workers, worth_a_pool, workers_setting  # it imports this module

    workers = workers_setting() if workers is None else workers
    if workers > 1 and worth_a_pool(files):
        return read_in_workers(files, today=today, workers=workers)
    return [read_landed(f) for f in files]


@dataclass
class ChannelCounts:
    """Counts for run metadata: numbers only, never a value."""

    files: int = 0
    unreadable_files: int = 0
    records_read: int = 0
    read_errors: int = 0


def channel_counts(reads: list[FileRead]) -> ChannelCounts:
    reads = [r for r in reads if not r.duplicate]  # not read: no file, no record to count
    readable = [r for r in reads if r.result is not None]
    return ChannelCounts(files=len(reads), unreadable_files=len(reads) - len(readable),
                         records_read=sum(r.records_read for r in readable),
                         read_errors=sum(len(r.result.errors) for r in readable))
