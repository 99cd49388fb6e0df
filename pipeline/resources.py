"""Dagster resources: the register database and the landing zone.

Both are configured from the environment (`REGISTER_DATABASE_URL`,
`REGISTER_LANDING_DIR`); credentials live only in the URL in the environment,
never in code or in `dagster.yaml`.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import PrivateAttr
from sqlalchemy.engine import Engine

from pipeline.intake import LandedFile, discover
from pipeline.register.database import DEFAULT_DATABASE_URL, make_engine, migrate
from pipeline.register.resolve import MatchSettings

# Beside the default SQLite register: <project>/data/landing.
DEFAULT_LANDING_DIR = Path(DEFAULT_DATABASE_URL.removeprefix("sqlite:///")).parent / "landing"


class RegisterDatabase(ConfigurableResource):
    """The register database, SQLite by default, PostgreSQL in production."""

    url: str

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


class LandingZone(ConfigurableResource):
    """The folder the channels drop their exports into: `<path>/<channel>/<file>`."""

    path: str

    def files(self, channel: str) -> list[LandedFile]:
        return discover(Path(self.path), channels=[channel])


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


def register_database_from_env() -> RegisterDatabase:
    if os.environ.get("REGISTER_DATABASE_URL"):
        return RegisterDatabase(url=EnvVar("REGISTER_DATABASE_URL"))
    return RegisterDatabase(url=DEFAULT_DATABASE_URL)


def landing_zone_from_env() -> LandingZone:
    if os.environ.get("REGISTER_LANDING_DIR"):
        return LandingZone(path=EnvVar("REGISTER_LANDING_DIR"))
    return LandingZone(path=str(DEFAULT_LANDING_DIR))
