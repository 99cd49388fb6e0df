"""Which database errors are worth a retry: the transient ones, never bad data.

A run that fails because the database was briefly unreachable (restarting,
failing over, a dropped connection, SQLite's write lock held a little too long)
succeeds if it simply runs again a moment later; a run that fails on bad data
(a constraint violated, a value the column refuses, the load's reconciliation
refusing a batch) fails again in exactly the same way, so retrying it only
delays the alarm. `is_transient` tells the two apart from the exception alone.

The rules, in order:
- A bad-data error is never transient, whatever caused it: `ValueError`,
  `TypeError`, SQLAlchemy's `IntegrityError`, `DataError`, `ProgrammingError`,
  `NotSupportedError`, and the caller's own deliberate stops (`deliberate`; the
  orchestration layer names Dagster's `Failure`: `pipeline.orchestration.resources`).
- SQLAlchemy saying the connection was invalidated (a disconnect it recognised),
  or that its pool timed out, is transient.
- PostgreSQL: SQLSTATE class 08 (connection exception), 57P01-57P03 (the server
  shutting down or starting up), 53300 (too many connections), 40001 and 40P01
  (serialization failure, deadlock: the transaction may simply be run again);
  a psycopg `OperationalError` without a SQLSTATE is libpq failing to connect or
  losing the server, and a psycopg `InterfaceError` is a closed connection.
- SQLite: "database is locked" / "database is busy" (another writer).

>>> import sqlite3, sqlalchemy as sa
>>> is_transient(sa.exc.OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked")))
True
>>> is_transient(sa.exc.OperationalError("SELECT", None, sqlite3.OperationalError("no such table: customer")))
False
>>> is_transient(sa.exc.IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE constraint failed")))
False
>>> is_transient(ValueError("the reader read 3 records but 2 arrived"))
False
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

try:  # psycopg is a dependency, but SQLite-only use must not need it importable
    import psycopg
    _PSYCOPG_OPERATIONAL: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
    _PSYCOPG_INTERFACE: tuple[type[BaseException], ...] = (psycopg.InterfaceError,)
except ImportError:  # pragma: no cover
    _PSYCOPG_OPERATIONAL = ()
    _PSYCOPG_INTERFACE = ()

# Errors about the data or the statement: the same input fails the same way again.
BAD_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, TypeError, KeyError,
    sa.exc.IntegrityError, sa.exc.DataError, sa.exc.ProgrammingError, sa.exc.NotSupportedError,
)

TRANSIENT_SQLSTATES: frozenset[str] = frozenset({
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, in recovery)
    "53300",  # too_many_connections
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
})
TRANSIENT_SQLSTATE_CLASSES: frozenset[str] = frozenset({"08"})  # connection_exception and its kin

SQLITE_BUSY_MESSAGES: tuple[str, ...] = ("database is locked", "database is busy", "database table is locked")

# How far down a chain of causes to look (a wrapped error wraps only a few times).
_MAX_CHAIN = 8


def _causes(error: BaseException):
    """The error, then what caused it (`raise ... from`, or raised while handling)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _driver_error_is_transient(error: BaseException) -> bool:
    if isinstance(error, _PSYCOPG_OPERATIONAL + _PSYCOPG_INTERFACE):
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate is None:
            # No server answer at all: libpq could not connect or lost the server.
            return True
        return sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(busy in message for busy in SQLITE_BUSY_MESSAGES)
    return False


def _one_is_transient(error: BaseException) -> bool:
    if isinstance(error, (sa.exc.TimeoutError, sa.exc.DisconnectionError)):
        return True  # the pool timed out waiting for a connection; a disconnect recognised
    if isinstance(error, sa.exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return error.orig is not None and _driver_error_is_transient(error.orig)
    if isinstance(error, ConnectionError):
        return True
    return _driver_error_is_transient(error)


def is_transient(error: BaseException, *, deliberate: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether running the same work again later may well succeed (see the module doc).

    `deliberate`: the caller's own errors raised on purpose to stop (an orchestrator's
    failure), never retried, like bad data, whatever happened on the way.
    """
    for link in _causes(error):
        if isinstance(link, BAD_DATA_ERRORS + deliberate):
            return False  # bad data stays bad, whatever happened on the way
        if _one_is_transient(link):
            return True
    return False
