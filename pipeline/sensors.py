"""A sensor on the landing zone: a run when new files land, once per set of contents.

The cursor is the newest modification time already seen, so a tick only stats
files. The run key is made from the new files' checksums, so the same content
never starts a second run, whatever its file name; the job itself skips any
content the register already holds. A file copied in with an old modification
time is not noticed here, but the nightly schedule still loads it.
"""


import hashlib
import os
from pathlib import Path

import dagster as dg

from pipeline.intake import file_checksum
from pipeline.jobs import register_load
from pipeline.resources import LandingZone
from schemas.canonical import CHANNELS


def changes_since(landing_dir: Path, cursor_ns: int) -> tuple[list[Path], int]:
    """Files landed after `cursor_ns` (ns since the epoch), and the new cursor."""
    changed: list[Path] = []
    newest = cursor_ns
    for channel in CHANNELS:
        folder = Path(landing_dir) / channel
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                mtime = entry.stat().st_mtime_ns
                if mtime > cursor_ns:
                    changed.append(Path(entry.path))
                    newest = max(newest, mtime)
    return sorted(changed), newest


def run_key_for(paths: list[Path]) -> str:
    digest = hashlib.sha256("\n".join(sorted(file_checksum(p) for p in paths)).encode())
    return f"landing-{digest.hexdigest()[:24]}"


@dg.sensor(
    job=register_load,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts register_load when new exports land in the landing zone.",
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZone):
    cursor_ns = int(context.cursor) if context.cursor else 0
    changed, newest = changes_since(Path(landing_zone.path), cursor_ns)
    if not changed:
        return dg.SkipReason("No new files in the landing zone.")
    context.update_cursor(str(newest))
    return dg.RunRequest(run_key=run_key_for(changed), tags={"landing.new_files": str(len(changed))})
