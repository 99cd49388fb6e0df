"""Dagster resources: the register database, the landing zone, the marketing
extract's folder, matching thresholds and the retention period.

All are configured from the environment (`REGISTER_DATABASE_URL`,
`REGISTER_LANDING_DIR`, `REGISTER_LANDING_SETTLE_SECONDS`, `REGISTER_EXTRACT_DIR`,
`REGISTER_QUARANTINE_RETENTION_DAYS`, `REGISTER_EXTRACT_RETENTION_DAYS`), and the run-failure
alerts' channels (`REGISTER_ALERT_*`, `pipeline.alerts`); credentials (the database URL,
the SMTP password, the webhook URL) live only in the environment, never in code or in
`dagster.yaml`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, DagsterInstance, DagsterRunStatus, EnvVar, Failure, InitResourceContext, \
    RetryRequested, RunsFilter
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from pipeline.alerts import ALERT_VARIABLES, AlertSettings
from pipeline.intake import DEFAULT_SETTLE_SECONDS, LandedFile, LandingSurvey, survey_landing
from pipeline.register.database import DEFAULT_DATABASE_URL, database_url, make_engine, migrate
from pipeline.matching.settings import MatchSettings
from pipeline.register.retention import DEFAULT_EXTRACT_DAYS, DEFAULT_QUARANTINE_DAYS
from pipeline.register.transient import is_transient

# Beside the default SQLite register: <project>/data/landing and <project>/data/extract.
_DATA_DIR = Path(DEFAULT_DATABASE_URL.removeprefix("sqlite:///")).parent
DEFAULT_LANDING_DIR = _DATA_DIR / "landing"
DEFAULT_EXTRACT_DIR = _DATA_DIR / "extract"

# Dagster's `Failure` is a step stopped on purpose: never retried, whatever happened on the way.
DELIBERATE_STOPS: tuple[type[BaseException], ...] = (Failure,)


def worth_a_retry(error: BaseException) -> bool:
    """Whether a step that raised `error` should run again: a transient database error
    (`pipeline.register.transient.is_transient`), and never a deliberate stop."""
    return is_transient(error, deliberate=DELIBERATE_STOPS)


class RegisterDatabase(ConfigurableResource):
    """The register database, SQLite by default, PostgreSQL in production."""

    url: str
    # A transient database error (unreachable, restarting, locked) retries the step
    # this many times, waiting retry_wait_seconds, then twice that, and so on.
    transient_retries: int = 3
    retry_wait_seconds: float = 15.0

    _engine: Engine | None = PrivateAttr(default=None)
    _migrated: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Resources start before any step of the run waits for the `register_write` pool:
        # the moment to free what a killed run still holds (`release_dead_runs`).
        instance, run = context.instance, context.run
        if instance is None or run is None:
            return
        try:
            instance.add_run_tags(run.run_id, {WORKER_TAG: worker_identity()})
            release_dead_runs(instance, current_run_id=run.run_id, log=context.log)
        except Exception as error:  # recovery is a courtesy: it must never stop the run itself
            if context.log is not None:
                context.log.warning(f"could not check for dead runs ({type(error).__name__}); "
                                    "see docs/operations.md, 'After a kill -9'")

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def ready_engine(self) -> Engine:
        """The engine, with the schema brought to the latest migration once per process."""
        engine = self.engine()
        if not self._migrated:
            migrate(engine)
            self._migrated = True
        return engine

    @contextmanager
    def retrying(self, context) -> Iterator[None]:
        """Inside it, a transient database error becomes a Dagster retry of the step
        (`worth_a_retry`); bad data and a deliberate `Failure` fail at once.

        `context` is the step's (asset, asset check or op) context: its retry
        number sets the back-off. The log line names the error's type only.
        """
        try:
            yield
        except Exception as error:
            if not worth_a_retry(error):
                raise
            attempt = context.retry_number
            wait = self.retry_wait_seconds * 2 ** attempt
            if attempt < self.transient_retries:
                context.log.warning(f"register database unavailable ({type(error).__name__}): "
                                    f"retry {attempt + 1} of {self.transient_retries} in {wait:g} s")
            raise RetryRequested(max_retries=self.transient_retries, seconds_to_wait=wait) from error


class LandingZone(ConfigurableResource):
    """The folder the channels drop their exports into: `<path>/<channel>/<file>`.

    A file is ready to read when its `<file>.ready` marker is beside it, or, from a
    system that writes none, once it has not changed for `settle_seconds`
    (`pipeline.intake.survey_landing`; docs/operations.md, "The landing zone").
    """

    path: str
    settle_seconds: int = DEFAULT_SETTLE_SECONDS

    def survey(self) -> LandingSurvey:
        return survey_landing(Path(self.path), settle_seconds=self.settle_seconds)

    def files(self, channel: str) -> list[LandedFile]:
        return survey_landing(Path(self.path), channels=[channel], settle_seconds=self.settle_seconds).files


class MatchingConfig(ConfigurableResource):
    """Thresholds of the three outcomes of probabilistic matching (docs/register_rules.md rule 5).

    At or above `link_threshold` two records are linked; between the two thresholds
    the record becomes its own customer and the pair goes to the review queue; below
    `review_threshold` nothing is proposed, unless the pair scores at least
    `doubt_threshold` and one of its records prohibits direct marketing: then it goes to
    review too, and the doubt keeps the other customer off the marketing list until a
    steward decides. `ambiguity_margin` (match weight, log2) is how clearly one person
    must beat another candidate before a code-less record is linked to either.
    """

    link_threshold: float = MatchSettings.link_threshold
    review_threshold: float = MatchSettings.review_threshold
    doubt_threshold: float = MatchSettings.doubt_threshold
    ambiguity_margin: float = MatchSettings.ambiguity_margin
    # How many scored pairs are read from DuckDB at once: a load's scoring memory is set by it
    # (docs/operations.md); the pairs, and so the customers, are the same whatever it is.
    score_batch_rows: int = MatchSettings.score_batch_rows
    # How many resolved records have their golden records, provenance and services made and
    # written at once: a big load's memory after scoring is set by it; the customers are the same.
    resolve_part_records: int = MatchSettings.resolve_part_records

    def settings(self) -> MatchSettings:
        return MatchSettings(link_threshold=self.link_threshold, review_threshold=self.review_threshold,
                             doubt_threshold=self.doubt_threshold, ambiguity_margin=self.ambiguity_margin,
                             score_batch_rows=self.score_batch_rows, resolve_part_records=self.resolve_part_records)


class ExtractDirectory(ConfigurableResource):
    """Where the marketing extract is written: `<path>/<YYYY-MM-DD>/marketing_<product>.csv`.

    Personal data: the folder should be readable by the pipeline's account only
    (the extract makes its own folders 0700 and files 0600).
    """

    path: str


class RetentionPolicy(ConfigurableResource):
    """Retention periods, in days.

    `quarantine_days`: how long quarantined records keep their raw values, for the
    stewards to correct them. `extract_days`: how long a day's marketing extract
    folder is kept (the newest always is).
    """

    # At least 1 (`purge` and `purge_extracts` refuse less); no pydantic bound here,
    # as EnvVar values resolve later.
    quarantine_days: int = DEFAULT_QUARANTINE_DAYS
    extract_days: int = DEFAULT_EXTRACT_DAYS


def database_kind() -> str:
    """The register's backend as a Dagster kind ("postgres" or "sqlite"), from the
    environment as the resource reads it: the catalogue shows the backend in use."""
    return "postgres" if database_url().startswith("postgresql") else "sqlite"


class AlertChannels(ConfigurableResource):
    """Where the run-failure sensor sends its notice: an SMTP server and/or a webhook.

    Each field is its `REGISTER_ALERT_*` variable (`pipeline.alerts`), held as an `EnvVar`
    when set, so the resource (and Dagster's UI) carries the variable's name, never the
    password's or the webhook URL's value. Every field empty: no alerts.
    """

    smtp_host: str = ""
    smtp_port: str = ""
    smtp_starttls: str = ""
    smtp_user: str = ""
    smtp_password: str = ""
    email_from: str = ""
    email_to: str = ""
    webhook_url: str = ""

    def settings(self) -> AlertSettings:
        values = (self.smtp_host, self.smtp_port, self.smtp_starttls, self.smtp_user, self.smtp_password,
                  self.email_from, self.email_to, self.webhook_url)
        return AlertSettings.from_environ(dict(zip(ALERT_VARIABLES, values, strict=True)))


# AlertChannels' fields, in the order of pipeline.alerts.ALERT_VARIABLES.
_ALERT_FIELDS = ("smtp_host", "smtp_port", "smtp_starttls", "smtp_user", "smtp_password", "email_from", "email_to",
                 "webhook_url")


def alert_channels_from_env() -> AlertChannels:
    return AlertChannels(**{name: EnvVar(variable) for name, variable in zip(_ALERT_FIELDS, ALERT_VARIABLES, strict=True)
                            if os.environ.get(variable)})


def register_database_from_env() -> RegisterDatabase:
    if os.environ.get("REGISTER_DATABASE_URL"):
        return RegisterDatabase(url=EnvVar("REGISTER_DATABASE_URL"))
    return RegisterDatabase(url=DEFAULT_DATABASE_URL)


def landing_zone_from_env() -> LandingZone:
    settings = {}
    if os.environ.get("REGISTER_LANDING_SETTLE_SECONDS"):
        settings["settle_seconds"] = EnvVar.int("REGISTER_LANDING_SETTLE_SECONDS")
    if os.environ.get("REGISTER_LANDING_DIR"):
        return LandingZone(path=EnvVar("REGISTER_LANDING_DIR"), **settings)
    return LandingZone(path=str(DEFAULT_LANDING_DIR), **settings)


def extract_directory_from_env() -> ExtractDirectory:
    if os.environ.get("REGISTER_EXTRACT_DIR"):
        return ExtractDirectory(path=EnvVar("REGISTER_EXTRACT_DIR"))
    return ExtractDirectory(path=str(DEFAULT_EXTRACT_DIR))


def retention_policy_from_env() -> RetentionPolicy:
    periods = {}
    if os.environ.get("REGISTER_QUARANTINE_RETENTION_DAYS"):
        periods["quarantine_days"] = EnvVar.int("REGISTER_QUARANTINE_RETENTION_DAYS")
    if os.environ.get("REGISTER_EXTRACT_RETENTION_DAYS"):
        periods["extract_days"] = EnvVar.int("REGISTER_EXTRACT_RETENTION_DAYS")
    return RetentionPolicy(**periods)


# --- crash recovery: pool slots held by runs whose process is gone --------------------------------

# Tag on every run that uses the register: where its worker runs ("host|pid|process start").
WORKER_TAG = "register/worker"
_UNFINISHED = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
FINISHED_STATUSES = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def _process_start(pid: int) -> tuple[str, str]:
    """(state, start time in clock ticks since boot) of a process from /proc, or ("", "")."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return "", ""
    return fields[0], fields[19]  # fields 3 (state) and 22 (starttime) of proc(5)


def worker_identity() -> str:
    """This process as a run worker: "host|pid|start", the start telling a reused pid apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{_process_start(pid)[1]}"


def worker_is_gone(identity: str) -> bool | None:
    """True if the worker process is certainly gone, False if it runs, None if this
    host cannot tell (another host, or an identity it does not understand)."""
    try:
        host, pid_text, start = identity.split("|")
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname() or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, another user's
    state, started = _process_start(pid)
    if state in ("Z", "X"):
        return True  # killed, not yet reaped by its parent
    return bool(start and started and started != start)  # the pid now belongs to another process


def release_dead_runs(instance: DagsterInstance, *, current_run_id: str | None = None, log=None) -> dict[str, int]:
    """Free the concurrency slots (held or waited for) of runs that can no longer free them.

    A run killed with SIGKILL keeps its `register_write` slot, and every later run
    waits for it for ever. Here a run's slots are freed when the run is finished
    (Dagster's daemon would, after `free_slots_after_run_end_seconds`, but runs
    started with `dagster job execute` have no daemon), deleted, or unfinished with
    its worker process gone from this host (`WORKER_TAG`); such a run is first
    marked failed. A slot held by a run on another host is left alone and named in
    a warning (run monitoring, or `dagster run delete`, frees it: docs/operations.md).
    Logs run ids and counts only. Returns counts.
    """
    counts = {"runs_marked_failed": 0, "runs_freed": 0, "runs_left_holding": 0}
    storage = instance.event_log_storage
    holders = set(storage.get_concurrency_run_ids()) if storage.supports_global_concurrency_limits else set()
    unfinished = {run.run_id for run in instance.get_runs(filters=RunsFilter(statuses=_UNFINISHED), limit=500)
                  if WORKER_TAG in run.tags}
    for run_id in sorted((holders | unfinished) - {current_run_id}):
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status not in FINISHED_STATUSES:
            gone = worker_is_gone(run.tags.get(WORKER_TAG, ""))
            if not gone:
                if run_id in holders and gone is None:
                    counts["runs_left_holding"] += 1
                    if log is not None:
                        log.warning(f"run {run_id} holds a concurrency slot and its worker cannot be checked "
                                    "from here: if it is gone, mark it failed or delete it (docs/operations.md)")
                continue
            instance.report_run_failed(run, message=f"The run's worker process is gone (killed?): marked failed "
                                                    f"by run {current_run_id}, which frees its pool slots.")
            counts["runs_marked_failed"] += 1
            if log is not None:
                log.warning(f"run {run_id}: its worker process is gone; marked failed")
        if run_id in holders:
            storage.free_concurrency_slots_for_run(run_id)
            counts["runs_freed"] += 1
            if log is not None:
                log.warning(f"run {run_id} held a concurrency slot it can no longer free: freed")
    return counts
