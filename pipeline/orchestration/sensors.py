"""A sensor on the landing zone: a run when new files are ready, once per set of contents.

It follows the landing protocol of the job (`pipeline.intake.list_landing`): a
file counts once it is ready (its `.ready` marker, or unchanged for the settle
time), never through a symbolic link, and only in a channel folder under its
channel's file name. The cursor is the newest change already seen (the file's
modification time, or its marker's when later), so a tick only stats files; it
never moves past a file still being written, which is noticed once it is ready.
The run key is made from the new files' checksums, so the same content never
starts a second run, whatever its file name; the job itself skips any content
the register already holds. A file copied in with an old modification time and
no marker is not noticed here, but the nightly schedule still loads it.
"""


import hashlib
import time
from pathlib import Path

import dagster as dg

from pipeline.intake import DEFAULT_SETTLE_SECONDS, LandingSurvey, LandingZoneMissing, file_checksum, list_landing
from pipeline.orchestration.jobs import register_load
from pipeline.orchestration.resources import LandingZone
from schemas.canonical import CHANNELS


def changes_since(landing_dir: Path, cursor_ns: int, *, settle_seconds: float = DEFAULT_SETTLE_SECONDS,
                  now: float | None = None) -> tuple[list[Path], int]:
    """Files ready since `cursor_ns` (ns since the epoch), and the new cursor.

    Raises `pipeline.intake.LandingZoneMissing` when there is no landing zone.
    """
    now = time.time() if now is None else now
    listed = list_landing(Path(landing_dir), CHANNELS, settle_seconds, now, LandingSurvey())
    changed: list[Path] = []
    newest = cursor_ns
    for file in listed:
        if not file.ready:
            continue
        changed_ns = max(file.status.st_mtime_ns, file.marker.st_mtime_ns if file.marker else 0)
        if changed_ns > cursor_ns:
            changed.append(file.path)
            newest = max(newest, changed_ns)
    waiting = [file.status.st_mtime_ns for file in listed if not file.ready]
    if waiting:
        # Stay below every file still being written: it is noticed when ready. A file seen
        # again meanwhile asks for the same run key, which Dagster does not run twice.
        newest = max(cursor_ns, min(newest, min(waiting) - 1))
    return sorted(changed), newest


def run_key_for(paths: list[Path]) -> str:
    digest = hashlib.sha256("\n".join(sorted(file_checksum(p) for p in paths)).encode())
    return f"landing-{digest.hexdigest()[:24]}"


@dg.sensor(
    job=register_load,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts register_load when new exports are ready in the landing zone.",
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZone):
    cursor_ns = int(context.cursor) if context.cursor else 0
    try:
        changed, newest = changes_since(Path(landing_zone.path), cursor_ns,
                                        settle_seconds=landing_zone.settle_seconds)
    except LandingZoneMissing as missing:
        return dg.SkipReason(f"No landing zone: {missing}")
    if not changed:
        context.update_cursor(str(newest))
        return dg.SkipReason("No new files ready in the landing zone.")
    try:
        run_key = run_key_for(changed)
    except OSError:
        # Replaced by a link or removed since the listing: the next tick looks again.
        return dg.SkipReason("A landed file changed while the sensor read it.")
    context.update_cursor(str(newest))
    return dg.RunRequest(run_key=run_key, tags={"landing.new_files": str(len(changed))})
