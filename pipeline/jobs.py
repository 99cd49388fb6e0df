"""The register load job and its nightly schedule."""

from __future__ import annotations

import dagster as dg

register_load = dg.define_asset_job(
    name="register_load",
    selection=dg.AssetSelection.groups("intake", "register"),
    description="Ingest every new export in the landing zone and load it into the register.",
    executor_def=dg.in_process_executor,
)

nightly_register_load = dg.ScheduleDefinition(
    name="nightly_register_load",
    job=register_load,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/Helsinki",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night at 02:00 Finnish time, after the channels' daily exports have landed.",
)
