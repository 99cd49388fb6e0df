"""The Dagster code location: assets, checks, jobs, schedule, sensor, resources.

    dagster dev                                             # the asset graph, from the project root
    dagster job execute -m pipeline.definitions -j register_load   # one whole load, headless
"""

from __future__ import annotations

import dagster as dg

from assets.checks import register_checks
from assets.intake import canonical_intake, intake_quarantine, raw_intake_assets, register
from pipeline.io import RunMemoryIOManager
from pipeline.resources import MatchingConfig, landing_zone_from_env, register_database_from_env
from pipeline.sensors import landing_zone_sensor
from pipeline.jobs import register_load, nightly_register_load

defs = dg.Definitions(
    assets=[*raw_intake_assets, canonical_intake, intake_quarantine, register],
    asset_checks=register_checks,
    jobs=[register_load],
    schedules=[nightly_register_load],
    sensors=[landing_zone_sensor],
    resources={
        "register_db": register_database_from_env(),
        "landing_zone": landing_zone_from_env(),
        "io_manager": RunMemoryIOManager(),
        "matching": MatchingConfig(),
    },
    # Frames stay in one process's memory (see pipeline/io.py).
    executor=dg.in_process_executor,
)
