"""The register database: where it is, how to connect, how to migrate it.

The URL comes from the environment (`REGISTER_DATABASE_URL`), never from a file:
credentials stay out of the repository. Without it the register is a SQLite file
in `data/register.db` of the project.

Every engine is made by `make_engine`, which hides statement parameters and the
key values PostgreSQL reports, so a database error never carries a person's data
into a log or a failed run's event record.

>>> str(normalise_url("postgresql://reg@db.example/register?sslmode=require"))
'postgresql+psycopg://reg@db.example/register?sslmode=require'
>>> str(normalise_url("postgres://db.example/register"))
'postgresql+psycopg://db.example/register'
>>> str(normalise_url("sqlite:///x.db"))
'sqlite:///x.db'
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Collection
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

import schemas
from pipeline.register.locks import lock_migrations

ENVIRONMENT_VARIABLE = "REGISTER_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536  # 64 MiB page cache per connection: bulk loads touch many index pages


def _project_root() -> Path | None:
    """The checkout holding pyproject.toml, or None when installed as a package."""
    candidate = Path(__file__).resolve().parents[2]
    return candidate if (candidate / "pyproject.toml").is_file() else None


def _default_database_path() -> Path:
    return (_project_root() or Path.cwd()) / "data" / "register.db"


DEFAULT_DATABASE_URL = f"sqlite:///{_default_database_path()}"

MIGRATIONS_DIRECTORY = Path(schemas.__file__).resolve().parent / "migrations"


def database_url() -> str:
    """The register's URL: `REGISTER_DATABASE_URL`, else the default SQLite file."""
    return os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_DATABASE_URL


def normalise_url(url: str | URL) -> URL:
    """Use psycopg 3 for PostgreSQL whatever the URL's scheme says; query options
    (sslmode, sslrootcert, ...) pass through to libpq unchanged."""
    url = make_url(url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def make_engine(url: str | URL | None = None, **kwargs) -> Engine:
    """An engine on the register; `url` defaults to `database_url()`.

    Extra keyword arguments go to `sqlalchemy.create_engine`, except that
    `hide_parameters` is always True.
    """
    url = normalise_url(url if url is not None else database_url())
    kwargs["hide_parameters"] = True
    backend = url.get_backend_name()
    if backend == "sqlite":
        _ensure_sqlite_directory(url)
        engine = sa.create_engine(url, **kwargs)
        _configure_sqlite(engine, in_memory=_sqlite_in_memory(url))
    elif backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "handle_error", _scrub_postgresql_error)
    else:
        engine = sa.create_engine(url, **kwargs)
    return engine


def _sqlite_in_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _ensure_sqlite_directory(url: URL) -> None:
    if _sqlite_in_memory(url) or (url.database or "").startswith("file:"):
        return
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _use_wal(cursor) -> None:
    """Switch the file to write-ahead logging (kept in the file: later connections find it).

    Changing the journal mode needs the file to itself, and while another connection
    is opening it (concurrent first runs on a new register) SQLite answers "database is
    locked" at once, without waiting for its busy handler: retry within the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" emit BEGIN itself: pysqlite's own implicit
        # transactions do not cover every statement (the SQLAlchemy-documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not in_memory:
            _use_wal(cursor)
        # WAL + NORMAL: a commit survives an application crash; only an OS crash or
        # power cut may lose the last transactions, never corrupt the file.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # `connection.execution_options(sqlite_begin="IMMEDIATE")` takes the write lock
        # up front (waiting up to the busy timeout) instead of failing on the first
        # write if another writer committed since this transaction's first read.
        mode = connection.get_execution_options().get("sqlite_begin", "")
        if mode not in ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError("sqlite_begin must be DEFERRED, IMMEDIATE or EXCLUSIVE")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


# --- keeping values out of error messages ---------------------------------------------

_QUOTED = re.compile(r'"[^"]*"')


def scrub_postgresql_error(error: BaseException) -> BaseException:
    """Reduce a psycopg error's message to its primary line, in place.

    PostgreSQL's DETAIL (`Key (personal_id)=(...) already exists`, `Failing row
    contains (...)`) and CONTEXT (`COPY source_record, line 5: "..."`) quote the
    values themselves; data-exception messages (SQLSTATE class 22, e.g. `invalid
    input syntax for type date: "..."`) quote the value in the primary line. The
    structured `error.diag` fields stay available to code that needs them.
    """
    diag = getattr(error, "diag", None)
    if diag is None:
        return error
    primary = diag.message_primary
    if primary is None:
        return error
    sqlstate = diag.sqlstate or ""
    if sqlstate.startswith("22"):
        primary = _QUOTED.sub('"(value hidden)"', primary)
    where = f" (table {diag.table_name})" if diag.table_name else ""
    error.args = (f"{primary}{where} [SQLSTATE {sqlstate}]",)
    return error


def _scrub_postgresql_error(context) -> None:
    original = context.original_exception
    scrub_postgresql_error(original)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and getattr(wrapped, "orig", None) is original:
        # DBAPIError composed its message from the unscrubbed error at construction.
        wrapped.args = (f"({type(original).__module__}.{type(original).__name__}) {original}",)


# --- lookups by many values --------------------------------------------------------------

def temp_values(connection: sa.Connection, name: str, values: Collection, sql_type: str = "BIGINT") -> str:
    """A temporary one-column table `name(value)` of distinct values; returns its name.

    Query it as `column IN (SELECT value FROM name)`, not as a join: without
    statistics SQLite's planner scans the big table in a join and probes the small
    one (3.4 s instead of 0.2 s for 60k blocking keys against 12M `match_key` rows).
    """
    dialect = connection.dialect.name
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    suffix = " ON COMMIT DROP" if dialect == "postgresql" else ""
    connection.exec_driver_sql(f"CREATE TEMP TABLE {name} (value {sql_type} PRIMARY KEY){suffix}")
    distinct = sorted({int(v) for v in values} if sql_type == "BIGINT" else set(values))
    if distinct and dialect == "postgresql":
        # COPY: ten times faster than an INSERT per value for the 60k keys of a nightly batch.
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {name} (value) FROM STDIN") as copy:
                for value in distinct:
                    copy.write_row((value,))
    elif distinct:
        # One statement with the values as one JSON array: a third of the time of an INSERT per value.
        connection.exec_driver_sql(f"INSERT INTO {name} (value) SELECT value FROM json_each(?)",
                                   (json.dumps(distinct),))
    if dialect == "postgresql":
        # Temporary tables get no statistics from autovacuum: without them the planner
        # guesses their size and may scan a big table instead of probing its index.
        connection.exec_driver_sql(f"ANALYZE {name}")
    return name



# --- migrations ---------------------------------------------------------------------------

def alembic_config() -> Config:
    """The Alembic configuration, independent of the working directory."""
    config = Config(str(MIGRATIONS_DIRECTORY / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
    # The ini file puts the project root on sys.path for the command line. From code the
    # project is importable already (this module was imported), and Alembic would prepend
    # it again at every migration: hundreds of copies in one process.
    config.set_main_option("prepend_sys_path", "")
    return config


def _run_alembic(engine_or_url: Engine | str | URL | None, action, *, exclusive: bool = False) -> None:
    """Run an Alembic command in one transaction; `exclusive` takes the migration lock
    first (`pipeline.register.locks.lock_migrations`; BEGIN IMMEDIATE on SQLite), so
    concurrent callers change the schema one after the other."""
    owned = not isinstance(engine_or_url, Engine)
    engine = make_engine(engine_or_url) if owned else engine_or_url
    try:
        with engine.connect() as connection:
            rebuilds_tables = exclusive and connection.dialect.name == "sqlite"
            if exclusive:
                connection.execution_options(sqlite_begin="IMMEDIATE")
            if rebuilds_tables:
                _sqlite_foreign_keys(connection, on=False)
            try:
                with connection.begin():
                    if exclusive:
                        lock_migrations(connection)
                    config = alembic_config()
                    config.attributes["connection"] = connection
                    action(config)
                    if rebuilds_tables:
                        _check_sqlite_foreign_keys(connection)
            finally:
                if rebuilds_tables:
                    _sqlite_foreign_keys(connection, on=True)
    finally:
        if owned:
            engine.dispose()


def _sqlite_foreign_keys(connection: sa.Connection, *, on: bool) -> None:
    """Switch SQLite's foreign-key enforcement on this connection, outside any transaction
    (inside one the PRAGMA does nothing).

    SQLite changes a table's constraints by rebuilding it (copy, drop, rename), and the
    drop fails while other tables' rows point at it. SQLite's own recipe for such a
    change (https://www.sqlite.org/lang_altertable.html, "other kinds of table schema
    changes") turns enforcement off around the transaction and checks the keys
    before committing (`_check_sqlite_foreign_keys`).
    """
    connection.connection.dbapi_connection.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _check_sqlite_foreign_keys(connection: sa.Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise RuntimeError(f"migration left {len(broken)} broken foreign keys in {', '.join(tables)}")


def migrate(engine_or_url: Engine | str | URL | None = None, revision: str = "head") -> None:
    """Upgrade the register's schema to `revision` (default: the newest), in one transaction.

    Safe to call from concurrent first runs on a new database: the migration lock
    makes the later caller wait, then find the schema already there.
    """
    _run_alembic(engine_or_url, lambda config: command.upgrade(config, revision), exclusive=True)


def downgrade(engine_or_url: Engine | str | URL | None, revision: str) -> None:
    """Downgrade the register's schema to `revision` ("base" drops every table)."""
    _run_alembic(engine_or_url, lambda config: command.downgrade(config, revision), exclusive=True)


def check_schema(engine_or_url: Engine | str | URL | None = None) -> None:
    """Raise `alembic.util.exc.AutogenerateDiffsDetected` if the database and the
    table definitions in `schemas.register` differ (`alembic check`)."""
    _run_alembic(engine_or_url, command.check)
