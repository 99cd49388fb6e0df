"""Daily partitions by export day: the day in an export's file name (`<channel>_YYYYMMDD...`).

`register` is partitioned by export day, so one day can be loaded, re-run or
inspected, and a backfill loads a range of days, one run per day.

A run names its days, or none:
- A run of one partition (or a range, as a single-run backfill gives) reads only
  the new files exported on those days. The intake assets are not partitioned
  themselves (their frames live in the run's memory only), but they read the run's
  days from its tags.
- A run without a partition (the nightly schedule, the landing-zone sensor, the
  README's headless `dagster job execute ... -j register_load`) reads every new
  file, whatever its day, and marks each export day it loaded as materialised, so
  the partition view shows the days a whole load covered.

Either way the register holds the same: identity resolution does not depend on
the order or grouping in which days arrive (docs/register_rules.md, rule 3), and
a file already held is never read twice.

The first day is `REGISTER_FIRST_EXPORT_DAY` (YYYY-MM-DD, default 2024-01-01);
the last is today in Finland. A file exported before the first day, or named
with eight digits that are no calendar day, is loaded by a whole load only.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict

import dagster as dg

from pipeline.batch import LoadCounts, LoadSummary
from pipeline.finland import TIME_ZONE
from pipeline.intake import export_day

FIRST_EXPORT_DAY_VARIABLE = "REGISTER_FIRST_EXPORT_DAY"
DEFAULT_FIRST_EXPORT_DAY = "2024-01-01"


def first_export_day_from_env() -> str:
    """`REGISTER_FIRST_EXPORT_DAY` as an ISO date, or the default; anything else is a clear error."""
    value = os.environ.get(FIRST_EXPORT_DAY_VARIABLE, "").strip() or DEFAULT_FIRST_EXPORT_DAY
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{FIRST_EXPORT_DAY_VARIABLE} must be a date as YYYY-MM-DD") from None


# end_offset=1: today's partition exists, for an export written today and loaded at once.
EXPORT_DAYS = dg.DailyPartitionsDefinition(start_date=first_export_day_from_env(), timezone=TIME_ZONE,
                                           end_offset=1)


def run_export_days(context: dg.AssetExecutionContext) -> list[dt.date] | None:
    """The export days this run loads, or None for a whole load (a run without a partition)."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def counts_by_export_day(summary: LoadSummary) -> dict[str, LoadCounts]:
    """Each export day's counts in a load, for the days a file of it was loaded or quarantined
    (a file skipped as already held changes nothing). Files named without a calendar day are
    left out: they belong to no partition."""
    days: dict[str, LoadCounts] = defaultdict(LoadCounts)
    for file in summary.files:
        day = export_day(file.file_name)
        if day is not None and file.status != "skipped":
            days[day.isoformat()].add(file)
    return dict(sorted(days.items()))


def export_day_materialisations(asset_key: dg.AssetKey, summary: LoadSummary) -> list[dg.AssetMaterialization]:
    """What a whole load reports for each export day it covered: that day's counts."""
    valid = set(EXPORT_DAYS.get_partition_keys())
    return [
        dg.AssetMaterialization(
            asset_key=asset_key, partition=day,
            description="Loaded by a whole load (a run without a partition).",
            metadata={"files_loaded": counts.files_loaded, "files_quarantined": counts.files_quarantined,
                      "records_read": counts.read, "records_accepted": counts.accepted,
                      "records_quarantined": counts.quarantined})
        for day, counts in counts_by_export_day(summary).items() if day in valid]
