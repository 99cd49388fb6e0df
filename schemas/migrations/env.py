"""Alembic environment of the register.

Called with a connection in `config.attributes["connection"]` (from
`pipeline.register.database.migrate`), it migrates on that connection inside the
caller's transaction. From the `alembic` command line it connects to
`REGISTER_DATABASE_URL` (or the default SQLite file) itself.
"""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from pipeline.register.database import database_url, make_engine
from schemas.register import UTCDateTime, metadata

config = context.config
target_metadata = metadata


def render_item(type_: str, obj, autogen_context):
    """Render our UTCDateTime as the plain type it is stored as: migrations must not
    import the models, which change after the migration is written."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies and swaps the table.
        render_as_batch=connection.dialect.name == "sqlite",
        # make_engine's SQLite connections emit BEGIN themselves, so DDL is transactional
        # there too: a failed migration leaves no half-made schema.
        transactional_ddl=True,
        compare_type=True,
        compare_server_default=True,
        render_item=render_item,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = make_engine(config.get_main_option("sqlalchemy.url") or database_url())
    try:
        with engine.connect() as connection:
            configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported: run them against a database.")
run_migrations_online()
