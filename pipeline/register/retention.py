"""Retention: personal data the register no longer needs is removed on a schedule.

`purge(engine, now, quarantine_days=90)` does, in ONE transaction under the
register lock (`pipeline.register.locks`):

1. *Quarantine.* A quarantined record keeps its raw values (the JSON of the
   fields as they arrived) so that a steward can correct it; once it has been in
   quarantine more than `quarantine_days` days the raw values are removed
   (`raw_values` NULL) and `raw_purged_at` records when. The entry itself stays:
   its file's counts must still add up (docs/register_rules.md rule 1).
2. *Erased people.* No source record may remain under a customer that has been
   erased (`customer.erased_at` set, docs/register_rules.md rule 8). Erasure removes them
   itself; this sweeps up any that remain (a record resolved onto the customer
   after the erasure, or an erasure interrupted half-way), exactly as erasure
   does (`pipeline.register.rights.erasure`): review entries, blocking keys and
   provenance pointers go, each file counts its records in `records_erased`, and
   each record key leaves a tombstone so that a re-send does not load it again.

`purge_extracts(extract_dir, today, keep_days)` removes old marketing extracts
(`<extract dir>/<YYYY-MM-DD>/`, pipeline.register.marketing): a copy of the
disclosure list on disk would otherwise keep people who have since been erased
or have prohibited direct marketing.

Running either twice changes nothing the second time. Counts only, never a value.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from pipeline.register.locks import register_transaction
from pipeline.register.marketing import FOLDER_NAME
from pipeline.register.rights.erasure import erase_source_records
from schemas.register import customer, quarantine

log = logging.getLogger(__name__)

DEFAULT_QUARANTINE_DAYS = 90
DEFAULT_EXTRACT_DAYS = 7


@dataclass(frozen=True)
class PurgeSummary:
    """What one purge removed. Counts only."""

    quarantine_raw_values_purged: int = 0
    erased_source_records_deleted: int = 0
    erased_match_keys_deleted: int = 0
    reviews_deleted: int = 0
    provenance_references_removed: int = 0
    intake_files_adjusted: int = 0
    tombstones_written: int = 0

    def metadata(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


def quarantine_cutoff(now: dt.datetime, quarantine_days: int) -> dt.datetime:
    """Entries quarantined before this moment have been held more than `quarantine_days` days.

    >>> quarantine_cutoff(dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc), 90).date()
    datetime.date(2026, 8, 27)
    """
    return now - dt.timedelta(days=quarantine_days)


def purge(engine: sa.Engine, now: dt.datetime, quarantine_days: int = DEFAULT_QUARANTINE_DAYS) -> PurgeSummary:
    """Apply the retention rules to the register once (see the module doc); returns counts."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("purge: `now` must be timezone-aware")
    if quarantine_days < 1:
        raise ValueError("purge: quarantine_days must be at least 1")
    now = now.astimezone(dt.timezone.utc)
    # The register lock first: the sweep deletes records and reviews that loads and stewards' decisions touch.
    with register_transaction(engine) as connection:
        purged = _purge_quarantine(connection, now, quarantine_days)
        erased_ids = connection.execute(sa.select(customer.c.customer_id)
                                        .where(customer.c.erased_at.is_not(None))).scalars().all()
        swept = erase_source_records(connection, erased_ids, now)
    summary = PurgeSummary(quarantine_raw_values_purged=purged,
                           erased_source_records_deleted=swept.source_records,
                           erased_match_keys_deleted=swept.match_keys,
                           reviews_deleted=swept.reviews,
                           provenance_references_removed=swept.provenance_pointers,
                           intake_files_adjusted=swept.intake_files_adjusted,
                           tombstones_written=swept.tombstones)
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


# --- old marketing extracts ------------------------------------------------------------------------

def _extract_date(folder: Path) -> dt.date | None:
    """The date an extract folder is named after; None for anything else (files, links, other names)."""
    if not FOLDER_NAME.fullmatch(folder.name) or folder.is_symlink() or not folder.is_dir():
        return None
    try:
        return dt.date.fromisoformat(folder.name)
    except ValueError:  # shaped like a date but none (2026-13-40): not the extract's
        return None


def purge_extracts(extract_dir: Path, today: dt.date, keep_days: int = DEFAULT_EXTRACT_DAYS) -> int:
    """Delete the dated extract folders older than `keep_days` days; returns how many.

    Only folders named YYYY-MM-DD directly in `extract_dir` are considered, and the
    newest of them always stays (the partner's current list, even when the nightly
    extract has not run for a while). A folder of `today - keep_days` is kept.

    >>> purge_extracts(Path("/nonexistent-extract-dir"), dt.date(2026, 11, 25), 7)
    0
    """
    if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 1:
        raise ValueError("purge_extracts: keep_days must be a whole number of days, at least 1")
    root = Path(extract_dir)
    if not root.is_dir():
        return 0
    dated = sorted((day, folder) for folder in root.iterdir() if (day := _extract_date(folder)) is not None)
    cutoff = today - dt.timedelta(days=keep_days)
    removed = 0
    for day, folder in dated[:-1]:  # the newest stays
        if day < cutoff:
            shutil.rmtree(folder)
            removed += 1
    if removed:
        log.info("retention: %d marketing extract folders older than %d days removed", removed, keep_days)
    return removed
