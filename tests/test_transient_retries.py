"""Transient database errors retry the step; bad data fails it at once.

`is_transient` is judged on real errors from real databases (a closed port, a
terminated session, SQLite's write lock, a constraint violated) and on a few
built ones; then Dagster runs: an unreachable register retries each step three
times and fails, a batch that does not reconcile fails once without a retry.
"""

from __future__ import annotations

import socket
import sqlite3
import uuid

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa

from assets.intake import register
from assets.marketing import marketing_extract
from pipeline.orchestration.definitions import defs
from pipeline.orchestration.io_manager import RunMemoryIOManager
from pipeline.register.database import make_engine
from pipeline.register.transient import is_transient
from pipeline.orchestration.resources import ExtractDirectory, LandingZone, MatchingConfig, RegisterDatabase, \
    worth_a_retry
from schemas.register import intake_file
from test_asset_checks import NOW
from test_register_helpers import accepted_records, batch, file_row

def _closed_port_url() -> str:
    """A PostgreSQL URL on a local port nothing listens on (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://register@127.0.0.1:{port}/register"


def _raised(action) -> BaseException:
    try:
        action()
    except Exception as error:  # noqa: BLE001 - the error is the test's subject
        return error
    raise AssertionError("no error was raised")


# --- the classifier, on real errors ----------------------------------------------------------------

def test_an_unreachable_postgresql_server_is_transient():
    engine = make_engine(_closed_port_url(), connect_args={"connect_timeout": 2})
    error = _raised(lambda: engine.connect().close())
    engine.dispose()
    assert isinstance(error, sa.exc.OperationalError)
    assert is_transient(error)
    assert is_transient(RuntimeError("while loading")) is False
    wrapped = RuntimeError("while loading")
    wrapped.__cause__ = error
    assert is_transient(wrapped), "a transient cause under a plain wrapper is still transient"


@pytest.mark.postgres
def test_a_session_terminated_by_the_server_is_transient(postgres_register_url):
    engine = make_engine(postgres_register_url)
    admin = make_engine(postgres_register_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with admin.connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
            error = _raised(lambda: connection.exec_driver_sql("SELECT 1"))
    finally:
        engine.dispose()
        admin.dispose()
    assert is_transient(error)


def test_sqlite_locked_by_another_writer_is_transient(tmp_path):
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    holder, waiter = make_engine(url), make_engine(url)
    with holder.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        connection.commit()
    try:
        with holder.connect() as writing:
            writing.execution_options(sqlite_begin="IMMEDIATE")
            with writing.begin():
                writing.exec_driver_sql("INSERT INTO t VALUES (1)")
                with waiter.connect() as blocked:
                    blocked.exec_driver_sql("PRAGMA busy_timeout = 0")  # fail now, not in 30 s
                    error = _raised(lambda: blocked.exec_driver_sql("INSERT INTO t VALUES (2)"))
    finally:
        holder.dispose()
        waiter.dispose()
    assert "locked" in str(error)
    assert is_transient(error)


def test_bad_data_and_bad_statements_are_not_transient(register_engine):
    file = file_row("web", "web_20261124.jsonl")
    row = {"channel": "web", "file_name": "web_20261124.jsonl", "checksum": file["checksum"], "size_bytes": 1,
           "status": "loaded", "records_read": 1, "records_accepted": 1, "records_resent": 0,
           "records_quarantined": 0, "loaded_at": NOW, "run_id": "test"}
    with register_engine.begin() as connection:
        connection.execute(intake_file.insert().values(**row))
    duplicate = _raised(lambda: _insert(register_engine, row))
    assert isinstance(duplicate, sa.exc.IntegrityError) and not is_transient(duplicate)
    unbalanced = _raised(lambda: _insert(register_engine, {**row, "checksum": "0" * 64, "records_read": 7}))
    assert isinstance(unbalanced, sa.exc.IntegrityError) and not is_transient(unbalanced)  # CHECK counts_add_up
    missing_table = _raised(lambda: _execute(register_engine, "SELECT * FROM no_such_table"))
    assert not is_transient(missing_table)


def _insert(engine, row):
    with engine.begin() as connection:
        connection.execute(intake_file.insert().values(**row))


def _execute(engine, sql):
    with engine.connect() as connection:
        connection.exec_driver_sql(sql)


def test_classifier_rules_on_built_errors():
    locked = sa.exc.OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked"))
    assert is_transient(locked)
    assert is_transient(sa.exc.OperationalError("SELECT", None, psycopg.errors.SerializationFailure("x")))
    assert is_transient(sa.exc.OperationalError("SELECT", None, psycopg.errors.DeadlockDetected("x")))
    assert is_transient(sa.exc.InterfaceError("SELECT", None, psycopg.InterfaceError("the connection is closed")))
    assert is_transient(sa.exc.TimeoutError("QueuePool limit reached"))
    assert not is_transient(sa.exc.InterfaceError("SELECT", None, sqlite3.InterfaceError("bad binding")))
    assert not is_transient(sa.exc.DataError("INSERT", None, psycopg.errors.InvalidDatetimeFormat("x")))
    assert not worth_a_retry(dg.Failure(description="canonical intake failed validation"))
    # Dagster's Failure is a deliberate stop to the orchestration layer, even raised while a
    # transient error was handled; the domain classifier knows no Dagster and sees the lock.
    stopped = dg.Failure(description="extract refused")
    stopped.__context__ = locked
    assert not worth_a_retry(stopped) and is_transient(stopped)
    assert worth_a_retry(locked)
    # Bad data stays bad even when a transient error happened on the way.
    refused = ValueError("the reader read 5 records but 2 arrived")
    refused.__context__ = locked
    assert not is_transient(refused)


# --- through Dagster -------------------------------------------------------------------------------

def _events(result: dg.ExecuteInProcessResult, step: str | None = None) -> list[str]:
    return [e.event_type_value for e in result.all_events if step is None or e.step_key == step]


def test_an_unreachable_register_retries_each_step_three_times_then_fails(tmp_path):
    unreachable = RegisterDatabase(url=_closed_port_url(), retry_wait_seconds=0.05)
    with dg.instance_for_test() as instance:
        result = dg.materialize([marketing_extract], instance=instance, raise_on_error=False,
                                resources={"register_db": unreachable,
                                           "extract_dir": ExtractDirectory(path=str(tmp_path / "extract"))})
    assert not result.success
    steps = _events(result, "marketing_extract")
    assert steps.count("STEP_UP_FOR_RETRY") == 3 and steps.count("STEP_RESTARTED") == 3
    assert steps.count("STEP_FAILURE") == 1
    assert not (tmp_path / "extract").exists()

    # The whole load: the first steps that reach for the register retry, fail, and nothing downstream runs.
    (tmp_path / "landing" / "web").mkdir(parents=True)
    with dg.instance_for_test() as instance:
        load = defs.resolve_job_def("register_load").execute_in_process(
            instance=instance, raise_on_error=False,
            resources={"register_db": unreachable, "landing_zone": LandingZone(path=str(tmp_path / "landing")),
                       "extract_dir": ExtractDirectory(path=str(tmp_path / "extract")),
                       "io_manager": RunMemoryIOManager(), "matching": MatchingConfig()})
    assert not load.success
    assert _events(load, "raw_web").count("STEP_UP_FOR_RETRY") == 3
    assert _events(load, "raw_web").count("STEP_FAILURE") == 1
    assert "STEP_START" not in _events(load, "register")


class _GivenInputs(dg.ConfigurableIOManager):
    """Hands the register asset a prepared batch as its inputs (no frames written anywhere)."""

    key: str

    def handle_output(self, context, obj) -> None:
        pass

    def load_input(self, context):
        return _PREPARED[self.key][context.asset_key.path[-1]]


_PREPARED: dict[str, dict[str, object]] = {}


def _materialise_register(url: str, inputs: dict[str, object], **database) -> dg.ExecuteInProcessResult:
    key = uuid.uuid4().hex
    _PREPARED[key] = inputs
    try:
        with dg.instance_for_test() as instance:
            return dg.materialize(
                [register, dg.AssetSpec("canonical_intake"), dg.AssetSpec("intake_quarantine")],
                instance=instance, raise_on_error=False,
                resources={"io_manager": _GivenInputs(key=key), "matching": MatchingConfig(),
                           "register_db": RegisterDatabase(url=url, **database)})
    finally:
        del _PREPARED[key]


def _batch(records_read: int | None = None):
    file = file_row("web", "web_20261124.jsonl")
    prepared = batch([file], [accepted_records(file, ["W-1", "W-2", "W-3"])])
    if records_read is not None:
        prepared.files["records_read"] = records_read  # what the reader said it read
    return {"canonical_intake": prepared, "intake_quarantine": prepared.quarantined}


def test_the_register_step_retries_when_the_database_is_unreachable():
    result = _materialise_register(_closed_port_url(), _batch(), retry_wait_seconds=0.05)
    assert not result.success
    assert _events(result, "register").count("STEP_UP_FOR_RETRY") == 3
    assert _events(result, "register").count("STEP_FAILURE") == 1


def test_a_batch_that_does_not_reconcile_fails_once_without_retry(register_engine):
    url = register_engine.url.render_as_string(hide_password=False)
    result = _materialise_register(url, _batch(records_read=5), retry_wait_seconds=0.05)
    assert not result.success
    steps = _events(result, "register")
    assert steps.count("STEP_FAILURE") == 1 and "STEP_UP_FOR_RETRY" not in steps
    with register_engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(intake_file)).scalar_one() == 0

    # The same batch, reconciled, loads; its run metadata is plain numbers for Dagster's plots.
    good = _materialise_register(url, _batch(), retry_wait_seconds=0.05)
    assert good.success
    metadata = good.asset_materializations_for_node("register")[0].metadata
    figures = {k: metadata[k].value for k in ("records_read", "records_accepted", "records_quarantined",
                                                "records_linked", "new_customers", "to_review",
                                                "link_rate", "quarantine_rate")}
    assert figures["records_read"] == figures["records_accepted"] == 3
    assert figures["new_customers"] + figures["records_linked"] == 3
    assert isinstance(figures["link_rate"], float) and isinstance(figures["quarantine_rate"], float)
    assert figures["quarantine_rate"] == 0.0
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in figures.values())
