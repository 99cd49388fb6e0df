"""The jobs and their schedules: the register load (nightly) and retention (daily),
and the freshness the nightly load promises (`NIGHTLY_FRESHNESS`).

Both jobs write the register, so each writing step runs in the `register_write` pool,
whose limit of 1 (dagster.yaml, `concurrency.pools.default_limit`) lets one run
write at a time.
"""

import datetime as dt
from pathlib import Path

import dagster as dg

from pipeline.finland import TIME_ZONE, today_in_finland
from pipeline.register.retention import purge, purge_extracts
from pipeline.orchestration.resources import ExtractDirectory, RegisterDatabase, RetentionPolicy

REGISTER_WRITE_POOL = "register_write"

register_load = dg.define_asset_job(
    name="register_load",
    selection=dg.AssetSelection.groups("intake", "register", "marketing"),
    description="Ingest every new export in the landing zone, load it into the register, "
                "and publish the marketing extract.",
    executor_def=dg.in_process_executor,
)

nightly_register_load = dg.ScheduleDefinition(
    name="nightly_register_load",
    job=register_load,
    cron_schedule="0 2 * * *",
    execution_timezone=TIME_ZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night at 02:00 Finnish time, after the channels' daily exports have landed.",
)

# What `nightly_register_load` promises for `register` and `marketing_extract`: materialised
# within 26 hours (Dagster's current freshness API, `FreshnessPolicy.time_window`). The schedule
# runs every 24 hours, 25 around the autumn's change of clocks (02:00 Helsinki time), and a run
# takes minutes: 26 hours fails only when a night's run is missing or failed. WARN after
# 25 hours: the night's run is more than an hour late. A run the landing-zone sensor starts
# freshens them too.
NIGHTLY_FAIL_WINDOW = dt.timedelta(hours=26)
NIGHTLY_WARN_WINDOW = dt.timedelta(hours=25)
NIGHTLY_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=NIGHTLY_FAIL_WINDOW,
                                                   warn_window=NIGHTLY_WARN_WINDOW)


@dg.op(
    pool=REGISTER_WRITE_POOL,
    description="Purge quarantined raw values older than the retention period, any source record "
                "still held for an erased customer, and marketing extract folders older than their "
                "retention period, the newest always kept (pipeline.register.retention). Counts only.",
)
def purge_expired_personal_data(context: dg.OpExecutionContext, register_db: RegisterDatabase,
                                retention: RetentionPolicy, extract_dir: ExtractDirectory) -> dg.Output[None]:
    with register_db.retrying(context):
        summary = purge(register_db.ready_engine(), dt.datetime.now(dt.timezone.utc),
                        quarantine_days=retention.quarantine_days)
    # Folders are named by the Finnish date the extract was written on.
    removed = purge_extracts(Path(extract_dir.path), today_in_finland(), retention.extract_days)
    return dg.Output(None, metadata={**summary.metadata(), "quarantine_days": retention.quarantine_days,
                                     "extract_folders_removed": removed, "extract_days": retention.extract_days})


@dg.job(
    name="register_retention",
    description="Retention: raw values of old quarantine entries purged; source records of erased people "
                "removed; old marketing extracts deleted.",
    executor_def=dg.in_process_executor,
)
def register_retention():
    purge_expired_personal_data()


daily_register_retention = dg.ScheduleDefinition(
    name="daily_register_retention",
    job=register_retention,
    cron_schedule="30 3 * * *",
    execution_timezone=TIME_ZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every day at 03:30 Finnish time, after the nightly load.",
)
