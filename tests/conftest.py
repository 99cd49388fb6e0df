"""Shared fixtures: a migrated, empty register on SQLite and on PostgreSQL.

`register_engine` runs each test twice: on a SQLite file in the test's tmp
directory, and on a PostgreSQL database created for the test module on
postgresql://postgres@127.0.0.1:5432 (override with REGISTER_TEST_POSTGRES_URL)
and dropped after it. The PostgreSQL case carries the `postgres` marker
(`pytest -m "not postgres"` leaves it out). When the server cannot be reached the
case is skipped locally, but fails when CI is "true": CI never silently skips it.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from pipeline.register.database import make_engine, migrate

POSTGRES_ADMIN_URL = os.environ.get("REGISTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_unavailable(reason: str):
    message = f"PostgreSQL test server unavailable ({reason})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI must run the PostgreSQL cases", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def postgres_register_url():
    """URL of a fresh, migrated PostgreSQL database for this test module."""
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as error:
        admin.dispose()
        _postgres_unavailable(type(error.orig).__name__)
    name = f"register_test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin.url.set(database=name)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _empty_postgres_register(engine: sa.Engine) -> None:
    migrate(engine)  # an earlier test may have downgraded the schema; put it back first
    with engine.begin() as connection:
        quoted = [f'"{n}"' for n in sa.inspect(connection).get_table_names() if n != "alembic_version"]
        if quoted:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(quoted)} RESTART IDENTITY CASCADE")


@pytest.fixture(params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
])
def register_engine(request, tmp_path):
    """An engine on a migrated, empty register (SQLite file or PostgreSQL database)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'register.db'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    url = request.getfixturevalue("postgres_register_url")
    engine = make_engine(url)
    _empty_postgres_register(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def second_register_engine(register_engine, request, tmp_path):
    """Another migrated, empty register on the same backend as `register_engine`: two ways of
    loading the same exports, compared side by side."""
    if register_engine.dialect.name == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'second.db'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"register_second_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(admin.url.set(database=name))
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
