"""Connecting to the register: URLs, engine settings, migrations from anywhere,
and database errors that never carry the values involved."""

from __future__ import annotations

import traceback
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

import pipeline.register.database as database
from pipeline.register.database import (
    DEFAULT_DATABASE_URL,
    check_schema,
    database_url,
    make_engine,
    migrate,
    normalise_url,
    temp_values,
)
from schemas.register import intake_file, source_record
from test_register_helpers import personal_id

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def test_default_url_is_the_projects_data_file(monkeypatch):
    assert DEFAULT_DATABASE_URL == f"sqlite:///{PROJECT_ROOT / 'data' / 'register.db'}"
    monkeypatch.delenv(database.ENVIRONMENT_VARIABLE, raising=False)
    assert database_url() == DEFAULT_DATABASE_URL
    monkeypatch.setenv(database.ENVIRONMENT_VARIABLE, "postgresql://reg@db.example/register")
    assert database_url() == "postgresql://reg@db.example/register"


def test_postgresql_urls_use_psycopg_and_keep_tls_options():
    engine = make_engine("postgresql://reg:pw@db.example:5433/register?sslmode=verify-full&sslrootcert=/ca.pem")
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.url.query == {"sslmode": "verify-full", "sslrootcert": "/ca.pem"}
    assert (engine.url.host, engine.url.port, engine.url.database) == ("db.example", 5433, "register")
    assert normalise_url("postgresql+psycopg://x/y").drivername == "postgresql+psycopg"
    engine.dispose()


def test_parameters_are_always_hidden(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}", hide_parameters=False)
    assert engine.hide_parameters is True
    engine.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'r.db'}")  # the directory is created
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == database.SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


def test_migrate_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    migrate(url)
    check_schema(url)
    engine = make_engine(url)
    assert "source_record" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_migrating_leaves_sys_path_as_it_was(tmp_path):
    """Alembic's `prepend_sys_path` (for the command line) would add the project root to
    sys.path at every migration in one process."""
    import sys

    before = list(sys.path)
    for name in ("one", "two", "three"):
        migrate(f"sqlite:///{tmp_path / f'{name}.db'}")
    assert sys.path == before, f"sys.path grew by {len(sys.path) - len(before)} entries"


def test_foreign_keys_are_enforced(register_engine):
    with pytest.raises(sa.exc.IntegrityError), register_engine.begin() as connection:
        connection.execute(source_record.insert().values(
            channel="web", source_record_id="W-1", intake_file_id=999, record_number=1, observed_at=NOW,
            identity_verified=False, quality_flags="", loaded_at=NOW, run_id="run-1"))


def _everything_said(error: BaseException) -> str:
    """The message, repr and full traceback with every chained exception."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


def _file(checksum: str) -> dict:
    return dict(channel="web", file_name="web_20261124.jsonl", checksum=checksum, size_bytes=1,
                status="loaded", records_read=1, records_accepted=1, records_resent=0,
                records_quarantined=0, loaded_at=NOW, run_id="run-1")


def test_integrity_errors_do_not_carry_values(register_engine):
    secret_checksum = "feedc0de" * 8
    with register_engine.begin() as connection:
        connection.execute(intake_file.insert().values(**_file(secret_checksum)))
    with pytest.raises(sa.exc.IntegrityError) as raised, register_engine.begin() as connection:
        connection.execute(intake_file.insert().values(**_file(secret_checksum)))
    said = _everything_said(raised.value)
    assert secret_checksum not in said
    assert "checksum" in said  # the column (or its constraint) is still named


def test_check_violations_do_not_carry_the_row(register_engine):
    code = personal_id(13, 10, 1952, 308)
    with register_engine.begin() as connection:
        file_id = connection.execute(intake_file.insert().values(**_file("1" * 64))).inserted_primary_key[0]
    with pytest.raises(sa.exc.IntegrityError) as raised, register_engine.begin() as connection:
        connection.execute(source_record.insert().values(
            channel="web", source_record_id="W-1", intake_file_id=file_id, record_number=1, observed_at=NOW,
            personal_id=code, last_name="Esimerkki", match_method="not-a-method",
            identity_verified=False, quality_flags="", loaded_at=NOW, run_id="run-1"))
    said = _everything_said(raised.value)
    assert code not in said and "Esimerkki" not in said
    assert "match_method" in said


def test_data_errors_do_not_carry_the_value(register_engine):
    """A value of the wrong type: PostgreSQL quotes it in its primary message; SQLite
    stores it as is (no error, nothing to leak)."""
    code = personal_id(13, 10, 1952, 308)
    try:
        with register_engine.connect() as connection:
            result = connection.execute(sa.text("SELECT CAST(:value AS INTEGER)"), {"value": code}).scalar()
    except sa.exc.DataError as error:
        said = _everything_said(error)
        assert code not in said
        assert "(value hidden)" in said
        assert register_engine.dialect.name == "postgresql"
    else:
        assert register_engine.dialect.name == "sqlite"
        assert result == 131052  # SQLite's CAST reads the leading digits


def test_an_unreachable_postgresql_fails_in_ci_and_skips_locally(monkeypatch):
    from conftest import _postgres_unavailable

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        _postgres_unavailable("OperationalError")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        _postgres_unavailable("OperationalError")


def test_a_sqlite_transaction_can_take_the_write_lock_up_front(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    migrate(url)
    engine = make_engine(url)

    def other_writer_succeeds() -> bool:
        with engine.connect() as second:
            second.exec_driver_sql("PRAGMA busy_timeout = 0")
            second.commit()
            try:
                with second.begin():
                    second.execute(intake_file.delete())
                return True
            except sa.exc.OperationalError as error:
                assert "locked" in str(error)
                return False

    outcomes = {}
    for mode in ("DEFERRED", "IMMEDIATE"):
        with engine.connect() as connection:
            connection.execution_options(sqlite_begin=mode)
            with connection.begin():
                connection.execute(sa.select(intake_file.c.checksum)).all()  # only a read so far
                outcomes[mode] = other_writer_succeeds()
    assert outcomes == {"DEFERRED": True, "IMMEDIATE": False}
    engine.dispose()


def test_switching_a_new_file_to_wal_waits_out_a_concurrent_opener():
    """Concurrent first runs on a new SQLite file: changing the journal mode is refused
    with "database is locked" at once (no busy handler), so it is retried; any other
    error is not."""
    import sqlite3

    class Cursor:
        def __init__(self, refusals: int, error: str = "database is locked"):
            self.refusals, self.error, self.calls = refusals, error, 0

        def execute(self, sql: str) -> None:
            self.calls += 1
            assert sql == "PRAGMA journal_mode = WAL"
            if self.calls <= self.refusals:
                raise sqlite3.OperationalError(self.error)

    busy = Cursor(refusals=3)
    database._use_wal(busy)
    assert busy.calls == 4
    broken = Cursor(refusals=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        database._use_wal(broken)
    assert broken.calls == 1


@pytest.mark.postgres
def test_sequence_values_are_drawn_in_one_statement_and_never_repeat(postgres_register_url):
    """A load's new keys and customer ids come from the columns' own sequences: as a range when
    the values come out consecutive, else one by one (here a sequence that steps by two)."""
    from pipeline.register.bulk import sequence_values

    engine = sa.create_engine(postgres_register_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TEMP TABLE keyed (key bigserial PRIMARY KEY)")
            first = sequence_values(connection, "keyed", "key", 1000)
            second = sequence_values(connection, "keyed", "key", 3)
            assert first.tolist() == list(range(1, 1001)) and second.tolist() == [1001, 1002, 1003]
            assert sequence_values(connection, "keyed", "key", 0).tolist() == []
            connection.exec_driver_sql("ALTER SEQUENCE keyed_key_seq INCREMENT BY 2")
            stepped = sequence_values(connection, "keyed", "key", 4)
            # The first draw (1005..1011) was not consecutive: those values are spent, the next four used.
            assert stepped.tolist() == [1013, 1015, 1017, 1019]
    finally:
        engine.dispose()


def test_temporary_value_tables_hold_each_value_once_as_given(register_engine):
    # `temp_values` fills its table in bulk (SQLite: one JSON array; PostgreSQL: COPY): every
    # value comes back once, as it was, whatever it holds.
    keys = [-(2 ** 63), -1, 0, 7, 7, 2 ** 63 - 1, 123_456_789_012]
    texts = ["key-1", "tab\there", "back\\slash", "line\nbreak", "quote'\"", "Äänekoski", "key-1"]
    with register_engine.begin() as connection:
        table = temp_values(connection, "test_keys", keys)
        held = sorted(int(row[0]) for row in connection.exec_driver_sql(f"SELECT value FROM {table}").all())
        assert held == sorted(set(keys))
        table = temp_values(connection, "test_texts", texts, "TEXT")
        held = sorted(row[0] for row in connection.exec_driver_sql(f"SELECT value FROM {table}").all())
        assert held == sorted(set(texts))
        assert temp_values(connection, "test_none", []) == "test_none"
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM test_none").scalar() == 0
