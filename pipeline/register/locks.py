"""The register lock: one writer of customers at a time.

Every transaction that resolves identities or deletes a person's records (a load's
resolution, a steward's review decision, a rights request, the retention sweep)
takes it *first*, before it locks or changes any row. Taken in the middle instead,
two writers can each hold what the other waits for: a review decision that has
locked its review row and waits for the lock, against an erasure that holds the
lock and waits to delete that review row (PostgreSQL's DeadlockDetected, 40P01).

On PostgreSQL it is a transaction-level advisory lock, released at commit or
rollback; taking it again in the same transaction is a no-op. On SQLite there is
nothing to take: those writers open their transaction with BEGIN IMMEDIATE
(`connection.execution_options(sqlite_begin="IMMEDIATE")`), which already admits
one writer at a time from the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

__all__ = ["MIGRATION_LOCK_KEY", "REGISTER_LOCK_KEY", "lock_migrations", "lock_register", "register_transaction"]

# The advisory lock key (any bigint agreed by every writer of the register).
REGISTER_LOCK_KEY = 7301
# The migrations' own key: two first runs on a new database must not both create the tables.
MIGRATION_LOCK_KEY = 7302


def lock_register(connection: sa.Connection) -> None:
    """Wait for and take the register lock until the end of the current transaction.

    Call it as the transaction's first statement. A no-op on SQLite (see the module doc).
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({REGISTER_LOCK_KEY:d})")


@contextmanager
def register_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A writer's transaction on the register, committed when the block ends without error.

    A writer from its first statement: BEGIN IMMEDIATE on SQLite, the register lock
    on PostgreSQL. Every writer that resolves identities or deletes a person's
    records opens its transaction here (loads, review decisions, rights requests,
    the retention sweep).
    """
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            lock_register(connection)
            yield connection


def lock_migrations(connection: sa.Connection) -> None:
    """Wait for and take the migration lock until the end of the current transaction.

    Two processes starting on a new database both find no schema and both would
    create it; PostgreSQL then refuses one (a duplicate `pg_type` key). With the lock
    the second waits, then finds the schema at the newest revision and does nothing.
    On PostgreSQL it is a transaction-level advisory lock; on SQLite the migration's
    transaction opens with BEGIN IMMEDIATE instead (`pipeline.register.database.migrate`).
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY:d})")
