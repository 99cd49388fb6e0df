"""One run's intake, and what loading it did: plain data, no database.

`pipeline.intake` builds an `IntakeBatch`; `pipeline.register.load` stores it and
answers with a `LoadSummary` (counts per file, per channel, in total). Both sides
import these from here, so the pure intake needs nothing of the register's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from schemas.canonical import CHANNELS, STORED_CANONICAL_COLUMNS

FILE_COLUMNS: tuple[str, ...] = ("channel", "file_name", "checksum", "size_bytes", "file_reason", "file_detail")
# The canonical columns a source record stores, and the checksum of the file it came in.
ACCEPTED_COLUMNS: tuple[str, ...] = STORED_CANONICAL_COLUMNS + ("checksum",)
QUARANTINED_COLUMNS: tuple[str, ...] = (
    "channel", "source_record_id", "checksum", "record_number", "reasons", "detail", "raw_values",
)
# Landed files not read because their channel already holds their bytes (a re-sent export).
DUPLICATE_COLUMNS: tuple[str, ...] = ("channel", "file_name", "checksum", "size_bytes")


@dataclass
class IntakeBatch:
    """One run's intake, ready for the register.

    files: one row per landed file: channel, file_name, checksum (sha256 hex),
        size_bytes, file_reason (a Reason code for a file that could not be read
        at all, else NA), file_detail (names file and column, no values; NA allowed).
    accepted: the canonical columns of `schemas.canonical` except reject_reason,
        plus `checksum` naming the record's file (with its `channel`).
    quarantined: channel, source_record_id (NA allowed), checksum, record_number
        (NA allowed), reasons (space-separated Reason codes), detail (no values),
        raw_values (JSON text of the raw fields, for the steward).
    duplicates: landed files left unread because their (channel, checksum) was
        already loaded, or is loaded by another file of this batch: channel,
        file_name, checksum, size_bytes. The loader records them
        (`intake_file_duplicate`); they bring no records.
    """

    files: pd.DataFrame
    accepted: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(ACCEPTED_COLUMNS)))
    quarantined: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(QUARANTINED_COLUMNS)))
    duplicates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(DUPLICATE_COLUMNS)))


@dataclass(frozen=True)
class FileLoad:
    """What happened to one file of the batch. Numbers and the file name only."""

    channel: str
    file_name: str
    status: str  # "loaded", "quarantined" (unreadable, held whole in quarantine) or "skipped" (already held)
    # For a skipped file this load recorded in `intake_file_duplicate`: the earlier file it repeats.
    duplicate_of: int | None = None
    read: int = 0
    accepted: int = 0
    resent: int = 0
    versioned: int = 0  # accepted records that were a new version of a record already known
    quarantined: int = 0
    requarantined: int = 0  # quarantined records already held in quarantine (same raw content)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    file_reason: str | None = None
    intake_file_id: int | None = None

    @property
    def inserted(self) -> int:
        """Accepted records stored as new source records."""
        return self.accepted - self.resent - self.versioned


@dataclass
class LoadCounts:
    """Counts over several files (a channel, or the whole batch)."""

    files_loaded: int = 0
    files_quarantined: int = 0
    files_skipped: int = 0
    files_duplicate: int = 0  # skipped files newly recorded as duplicates (intake_file_duplicate)
    read: int = 0
    accepted: int = 0
    resent: int = 0
    versioned: int = 0
    quarantined: int = 0
    requarantined: int = 0
    # Each code of a record's reasons counts once: a record with two reasons counts under both.
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    files_quarantined_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def inserted(self) -> int:
        return self.accepted - self.resent - self.versioned

    def add(self, file: FileLoad) -> None:
        if file.status == "skipped":
            self.files_skipped += 1
            self.files_duplicate += file.duplicate_of is not None
            return
        if file.status == "quarantined":
            self.files_quarantined += 1
            if file.file_reason:
                self.files_quarantined_by_reason[file.file_reason] = \
                    self.files_quarantined_by_reason.get(file.file_reason, 0) + 1
        else:
            self.files_loaded += 1
        self.read += file.read
        self.accepted += file.accepted
        self.resent += file.resent
        self.versioned += file.versioned
        self.quarantined += file.quarantined
        self.requarantined += file.requarantined
        for reason, n in file.quarantined_by_reason.items():
            self.quarantined_by_reason[reason] = self.quarantined_by_reason.get(reason, 0) + n

    def as_dict(self) -> dict[str, int]:
        out = {name: getattr(self, name) for name in (
            "files_loaded", "files_quarantined", "files_skipped", "files_duplicate",
            "read", "accepted", "resent", "versioned", "inserted", "quarantined", "requarantined")}
        out.update({f"quarantined.{r}": n for r, n in sorted(self.quarantined_by_reason.items())})
        out.update({f"files_quarantined.{r}": n for r, n in sorted(self.files_quarantined_by_reason.items())})
        return out


@dataclass(frozen=True)
class LoadSummary:
    """The outcome of `load_intake`: counts per file, per channel and in total."""

    files: tuple[FileLoad, ...]
    channels: dict[str, LoadCounts]
    total: LoadCounts
    after_load: object = None

    @classmethod
    def of(cls, files: list[FileLoad]) -> LoadSummary:
        channels = {c: LoadCounts() for c in CHANNELS if any(f.channel == c for f in files)}
        total = LoadCounts()
        for f in files:
            channels[f.channel].add(f)
            total.add(f)
        return cls(tuple(files), channels, total)

    def metadata(self) -> dict[str, int]:
        """Flat counts for run metadata: "total.accepted", "web.quarantined.malformed_record", ..."""
        out = {f"total.{k}": v for k, v in self.total.as_dict().items()}
        for channel, counts in self.channels.items():
            out.update({f"{channel}.{k}": v for k, v in counts.as_dict().items()})
        return out
