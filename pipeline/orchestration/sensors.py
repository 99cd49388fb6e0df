"""Two sensors: the landing zone's (a run when new files are ready) and the run-failure alert.

`run_failure_alert` (at the end) tells the operator, by e-mail and/or webhook
(`pipeline.alerts`), that a run of this code location failed.

The landing-zone sensor starts a run when new files are ready, once per set of contents.

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


import datetime as dt
import hashlib
import time
from pathlib import Path

import dagster as dg

from pipeline.alerts import RunFailure, error_class_of, notify
from pipeline.intake import DEFAULT_SETTLE_SECONDS, LandingSurvey, LandingZoneMissing, file_checksum, list_landing
from pipeline.orchestration.jobs import register_load
from pipeline.orchestration.resources import AlertChannels, LandingZone
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


# --- the run-failure alert -------------------------------------------------------------------------

def _error_chain(error) -> list[str]:
    """Class names of a SerializableErrorInfo and its causes, outermost first (never messages)."""
    names: list[str] = []
    while error is not None and len(names) < 10:
        names.append(error.cls_name or "")
        error = error.cause
    return [name for name in names if name]


def run_failure_of(context: dg.RunFailureSensorContext) -> RunFailure:
    """The failed run as `pipeline.alerts` describes it: names, keys and class names only.

    Dagster's messages (the run failure's, each step failure's) and the run's tags and
    metadata are never read into it: they may quote the data that broke the step.
    """
    run = context.dagster_run
    steps: list[str] = []
    classes: list[str] = []
    for event in context.get_step_failure_events():
        if event.step_key and event.step_key not in steps:
            steps.append(event.step_key)
            data = event.event_specific_data
            classes.append(error_class_of(_error_chain(getattr(data, "error", None))) or "unknown")
    failure_data = context.failure_event.event_specific_data
    if not classes and getattr(failure_data, "error", None) is not None:
        classes.append(error_class_of(_error_chain(failure_data.error)))
    reason = getattr(failure_data, "failure_reason", None)
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record is not None and record.end_time else time.time()
    return RunFailure(job_name=run.job_name, run_id=run.run_id,
                      failed_at=dt.datetime.fromtimestamp(ended, dt.timezone.utc),
                      failed_steps=tuple(steps), error_classes=tuple(c for c in classes if c),
                      failure_reason=reason.value if reason is not None else "")


@dg.run_failure_sensor(
    name="run_failure_alert",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a run of this code location fails (register_load, register_retention, a materialisation "
                "started by hand), sends one notice by e-mail and/or webhook (REGISTER_ALERT_*): the job, the "
                "run id, the time, the failed steps and their error classes; never an error's text. With no "
                "channel configured it only says so in its tick log.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertChannels) -> None:
    # Returns None: Dagster then moves the cursor past this run (one notice per failed run, no
    # retry) and goes on to the next failed run in the same tick.
    failure = run_failure_of(context)
    settings = alerts.settings()
    for problem in settings.problems:
        context.log.warning(f"run failure alert: {problem}")
    if not settings.configured:
        context.log.info(f"run {failure.run_id} of {failure.job_name} failed; no alert channel is configured "
                         "(REGISTER_ALERT_SMTP_HOST, REGISTER_ALERT_WEBHOOK_URL): nothing sent")
        return
    for outcome in notify(failure, settings):
        if outcome.sent:
            context.log.info(f"run {failure.run_id} of {failure.job_name} failed: alert {outcome.describe()}")
        else:
            context.log.warning(f"run {failure.run_id} of {failure.job_name} failed: alert {outcome.describe()}; "
                                "see docs/operations.md, 'Alerts when a run fails'")
