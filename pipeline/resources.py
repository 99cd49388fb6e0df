"""Dagster resources: the register database, the landing zone, the marketing
extract's folder, matching thresholds and the retention period.

All are configured from the environment (`REGISTER_DATABASE_URL`,
`REGISTER_LANDING_DIR`, `REGISTER_LANDING_SETTLE_SECONDS`, `REGISTER_EXTRACT_DIR`,
`REGISTER_QUARANTINE_RETENTION_DAYS`, `REGISTER_EXTRACT_RETENTION_DAYS`); credentials live only in the URL in the
environment, never in code or in `dagster.yaml`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, EnvVar, RetryRequested
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from pipeline.intake import DEFAULT_SETTLE_SECONDS, LandedFile, LandingSurvey, survey_landing
from pipeline.register.database import DEFAULT_DATABASE_URL, make_engine, migrate
from pipeline.register.resolve import MatchSettings
from pipeline.register.retention import DEFAULT_EXTRACT_DAYS, DEFAULT_QUARANTINE_DAYS
from pipeline.register.transient import is_transient

# Beside the default SQLite register: <project>/data/landing and <project>/data/extract.
_DATA_DIR = Path(DEFAULT_DATABASE_URL.removeprefix("sqlite:///")).parent
DEFAULT_LANDING_DIR = _DATA_DIR / "landing"
DEFAULT_EXTRACT_DIR = _DATA_DIR / "extract"


class RegisterDatabase(ConfigurableResource):
    """The register database, SQLite by default, PostgreSQL in production."""

    url: str
    # A transient database error (unreachable, restarting, locked) retries the step
    # this many times, waiting retry_wait_seconds, then twice that, and so on.
    transient_retries: int = 3
    retry_wait_seconds: float = 15.0

    _engine: Engine | None = PrivateAttr(default=None)
    _migrated: bool = PrivateAttr(default=False)

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
        (`pipeline.register.transient.is_transient`); bad data fails at once.

        `context` is the step's (asset, asset check or op) context: its retry
        number sets the back-off. The log line names the error's type only.
        """
        try:
            yield
        except Exception as error:
            if not is_transient(error):
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
    """Thresholds of the three outcomes of probabilistic matching (REGISTER.md rule 5).

    At or above `link_threshold` two records are linked; between the two thresholds
    the record becomes its own customer and the pair goes to the review queue; below
    `review_threshold` nothing is proposed. `ambiguity_margin` (match weight, log2)
    is how clearly one person must beat another candidate before a code-less record
    is linked to either.
    """

    link_threshold: float = MatchSettings.link_threshold
    review_threshold: float = MatchSettings.review_threshold
    ambiguity_margin: float = MatchSettings.ambiguity_margin

    def settings(self) -> MatchSettings:
        return MatchSettings(link_threshold=self.link_threshold, review_threshold=self.review_threshold,
                             ambiguity_margin=self.ambiguity_margin)


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
