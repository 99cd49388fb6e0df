"""The Dagster code location: assets, checks, jobs, schedules, sensors, resources.

    dagster dev                                             # the asset graph, from the project root
    dagster job execute -m pipeline.orchestration.definitions -j register_load       # one whole load, headless
    dagster job execute -m pipeline.orchestration.definitions -j register_retention  # the retention sweep
"""

from __future__ import annotations

import logging

import dagster as dg

from assets.checks import register_checks
from assets.intake import canonical_intake, intake_quarantine, landed_files, raw_intake_assets, register
from assets.marketing import marketing_assets, marketing_checks
from pipeline.orchestration.io_manager import RunMemoryIOManager
from pipeline.orchestration.jobs import (
    daily_register_retention,
    nightly_register_load,
    register_load,
    register_retention,
)
from pipeline.orchestration.resources import (
    MatchingConfig,
    alert_channels_from_env,
    extract_directory_from_env,
    landing_zone_from_env,
    register_database_from_env,
    retention_policy_from_env,
)
from pipeline.orchestration.sensors import landing_zone_sensor, run_failure_alert

# The domain's summary lines are INFO; dagster.yaml's `python_logs` hands the `pipeline`
# loggers to the run log, which then keeps them.
logging.getLogger("pipeline").setLevel(logging.INFO)

defs = dg.Definitions(
    assets=[landed_files, *raw_intake_assets, canonical_intake, intake_quarantine, register, *marketing_assets],
    asset_checks=[*register_checks, *marketing_checks],
    jobs=[register_load, register_retention],
    schedules=[nightly_register_load, daily_register_retention],
    sensors=[landing_zone_sensor, run_failure_alert],
    resources={
        "register_db": register_database_from_env(),
        "landing_zone": landing_zone_from_env(),
        "extract_dir": extract_directory_from_env(),
        "retention": retention_policy_from_env(),
        "io_manager": RunMemoryIOManager(),
        "matching": MatchingConfig(),
        "alerts": alert_channels_from_env(),
    },
    # Frames stay in one process's memory (see io_manager.py).
    executor=dg.in_process_executor,
)
