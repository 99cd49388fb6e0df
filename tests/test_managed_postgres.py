"""The register on a managed PostgreSQL (issue 13, item 5; docs/operations.md, "Running on a
managed PostgreSQL").

Amazon RDS and Aurora, Azure Database for PostgreSQL flexible server and Google Cloud SQL
give the operator an admin role that is not a superuser: it logs in, creates databases and
roles (CREATEDB, CREATEROLE), and may not touch the server's files or its configuration.
This module makes such a role on the local server (a unique name per run; it, its
databases and the login roles it made are dropped at the end, whatever happens) and,
connected as that role and never as `postgres`:

- migrates a new database from empty to head, reusing the group roles an earlier install
  made (roles belong to the whole cluster), checks the schema, and goes down and up again;
- loads a synthetic landing zone through the domain API: COPY FROM STDIN, the register lock,
  SET LOCAL random_page_cost and identity resolution in one transaction, then ANALYZE;
- is refused ALTER SYSTEM, COPY from or to a server file, reading a server file and
  switching triggers off, so the test really runs without superuser rights;
- makes the login roles of the nightly job, a steward and an analyst, and each does its
  part and no more.

`postgres` only creates the admin role (as the provider does) and cleans up. The TLS
cases check that libpq's options in the URL reach the connection, on this server without
TLS (`SHOW ssl` is off): a real handshake is not tested here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import secrets
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import event

from conftest import POSTGRES_ADMIN_URL, _postgres_unavailable
from pipeline.cli import main
from pipeline.intake import build_batch, discover, read_all
from pipeline.matching.settings import MatchSettings
from pipeline.orchestration.resources import RegisterDatabase
from pipeline.register.access_log import log_access
from pipeline.register.database import alembic_config, check_schema, downgrade, make_engine, migrate
from pipeline.register.load import LoadSummary, load_intake
from pipeline.register.locks import REGISTER_LOCK_KEY
from pipeline.register.resolve import resolve_identities
from synth import generate
from test_access import (ANALYST_VIEWS, DIRECT_IDENTIFIERS, MARKETING_VIEWS, NEVER_IN_A_VIEW, OTHER_VIEWS,
                         TABLE_NAMES, is_refused)
from test_cli_usability import _one_line_error

pytestmark = pytest.mark.postgres

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 11, 25)
GROUP_ROLES = ("register_loader", "register_steward", "register_analyst", "register_marketing")
# What the admin role of a managed service has. The provider's own role (rds_superuser,
# azure_pg_admin, cloudsqlsuperuser) is left out: the register must do without it.
ADMIN_ATTRIBUTES = "LOGIN NOSUPERUSER CREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS"
# Predefined roles that would open the server's files or programs to a non-superuser.
SERVER_FILE_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")


# --- the managed server: an admin role that is not a superuser ------------------------------------

def _ensure_group_roles(connection: sa.Connection) -> None:
    """The group roles, made by someone else before (an earlier install, another database of
    the cluster), exactly as migrations 0003 and 0009 would make them."""
    for role in GROUP_ROLES:
        connection.exec_driver_sql(f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} NOLOGIN; END IF;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$""")


def _create_login(connection: sa.Connection, name: str, attributes: str, base: sa.URL) -> sa.URL:
    """CREATE ROLE `name` with a random password; returns `base` logged in as it.

    Only the SCRAM verifier travels in the statement, as psql's \\password sends it, so
    the password is in no statement, server log or error; it is never printed either.
    """
    password = secrets.token_urlsafe(24)
    pgconn = connection.connection.dbapi_connection.pgconn
    verifier = pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()
    connection.exec_driver_sql(f"CREATE ROLE {name} {attributes} PASSWORD '{verifier}'")
    return base.set(username=name, password=password)


@dataclasses.dataclass
class ManagedServer:
    """The provider's admin role on the local server. The databases and login roles it makes
    are named after it, so the clean-up finds them by that prefix."""

    admin: str
    admin_url: sa.URL  # logged in as the admin role, on the maintenance database `postgres`
    engines: list[sa.Engine] = dataclasses.field(default_factory=list)

    @property
    def password(self) -> str:
        return self.admin_url.password

    def url(self, database: str | None = None) -> sa.URL:
        return self.admin_url.set(database=database or self.admin)

    def engine(self, database: str | None = None, **kwargs) -> sa.Engine:
        engine = make_engine(self.url(database), **kwargs)
        self.engines.append(engine)
        return engine

    def create_database(self, name: str) -> sa.URL:
        """A database the admin role creates, and so owns, as on the provider's service."""
        with self.engine("postgres", isolation_level="AUTOCOMMIT").connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def login(self, group: str, database: str | None = None) -> sa.URL:
        """A login role the admin makes a member of `register_<group>` (docs/operations.md,
        "Roles"), on the admin's register database; returns its URL."""
        with self.engine("postgres", isolation_level="AUTOCOMMIT").connect() as connection:
            url = _create_login(connection, f"{self.admin}_{group}", f"LOGIN IN ROLE register_{group}",
                                self.url(database))
        return url


@pytest.fixture(scope="module")
def server() -> ManagedServer:
    superuser = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with superuser.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as error:
        superuser.dispose()
        _postgres_unavailable(type(error.orig).__name__)
    admin = f"register_managed_{uuid.uuid4().hex[:12]}"
    managed = None
    try:
        with superuser.connect() as connection:
            _ensure_group_roles(connection)
            admin_url = _create_login(connection, admin, ADMIN_ATTRIBUTES, superuser.url.set(database="postgres"))
        managed = ManagedServer(admin, admin_url)
        yield managed
    finally:
        for engine in managed.engines if managed else ():
            engine.dispose()
        with superuser.connect() as connection:
            prefix = {"prefix": admin}
            for (database,) in connection.execute(
                    sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)"), prefix).all():
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            # The login roles the admin made first, then the admin itself.
            for (role,) in connection.execute(sa.text(
                    "SELECT rolname FROM pg_roles WHERE starts_with(rolname, :prefix) "
                    "ORDER BY length(rolname) DESC"), prefix).all():
                connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        superuser.dispose()


@pytest.fixture(scope="module")
def register_url(server) -> sa.URL:
    """The admin's register database, migrated to head by the admin."""
    url = server.create_database(server.admin)
    migrate(url)
    return url


@pytest.fixture(scope="module")
def landing_days(tmp_path_factory) -> list[list]:
    """The generator's landing zone, read and split by export day (three days)."""
    out = tmp_path_factory.mktemp("managed-zone")
    generate(out, people=250, days=3, seed=23)
    reads = read_all(discover(out / "landing"))
    days: dict[dt.date, list] = {}
    for read in reads:
        days.setdefault(read.file.export_day, []).append(read)
    assert len(days) == 3
    return [days[day] for day in sorted(days)]


def _load(engine: sa.Engine, reads: list, run_id: str,
          inside: Callable[[sa.Connection], None] | None = None) -> LoadSummary:
    def resolve(connection: sa.Connection):
        summary = resolve_identities(connection, now=NOW, run_id=run_id, settings=MatchSettings())
        if inside is not None:
            inside(connection)
        return summary

    return load_intake(engine, build_batch(reads, TODAY), run_id=run_id, now=NOW, after_load=resolve)


@dataclasses.dataclass
class LoadObserved:
    summary: LoadSummary
    copies: list[str]            # every COPY statement the load sent
    inside: dict[str, object]    # what the load's own transaction saw, after identity resolution
    after: dict[str, object]     # a new transaction on the same engine
    peak_connections: int        # connections of the load's engine checked out at once
    logged: str                  # every log line of the load, SQLAlchemy's statements included


@pytest.fixture(scope="module")
def loaded(server, register_url, landing_days) -> LoadObserved:
    """The first two export days loaded as the provider's admin, observed from within.

    The COPY statements are recorded on their way to psycopg (and still sent); the lock and
    the setting are read inside the load's own transaction, after identity resolution.
    """
    engine = server.engine()
    other = server.engine()  # another session, for the register lock
    copies: list[str] = []
    inside: dict[str, object] = {}
    checked_out = peak = 0

    def on_checkout(*_):
        nonlocal checked_out, peak
        checked_out += 1
        peak = max(peak, checked_out)

    def on_checkin(*_):
        nonlocal checked_out
        checked_out -= 1

    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)

    sent_copy = psycopg.Cursor.copy

    def recording_copy(cursor, statement, *args, **kwargs):
        copies.append(statement if isinstance(statement, str) else statement.as_string(cursor))
        return sent_copy(cursor, statement, *args, **kwargs)

    def look_inside(connection: sa.Connection) -> None:
        row = connection.exec_driver_sql(
            "SELECT current_user, current_setting('is_superuser'), current_setting('random_page_cost'), "
            "(SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
            f"AND classid = 0 AND objid = {REGISTER_LOCK_KEY:d} AND granted)").one()
        inside.update(user=row[0], is_superuser=row[1], random_page_cost=row[2], register_locks=row[3])
        with other.connect() as connection_elsewhere:
            inside["lock_free_elsewhere"] = connection_elsewhere.exec_driver_sql(
                f"SELECT pg_try_advisory_xact_lock({REGISTER_LOCK_KEY:d})").scalar_one()

    records = _LogRecords()
    root, engine_log = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    levels = root.level, engine_log.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    engine_log.setLevel(logging.INFO)  # statements (parameters hidden), not result rows
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(psycopg.Cursor, "copy", recording_copy)
            summary = _load(engine, [read for day in landing_days[:2] for read in day], "managed-admin",
                            inside=look_inside)
        with engine.connect() as connection:
            after = {"random_page_cost": connection.exec_driver_sql("SHOW random_page_cost").scalar_one()}
    finally:
        root.removeHandler(records)
        root.setLevel(levels[0])
        engine_log.setLevel(levels[1])
    return LoadObserved(summary, copies, inside, after, peak, records.text())


class _LogRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")

    def text(self) -> str:
        return "\n".join(self.lines)


def _scalar(url: sa.URL, sql: str):
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql(sql).scalar_one()
    finally:
        engine.dispose()


def refused_for_privilege(engine: sa.Engine, sql: str) -> bool:
    """True if PostgreSQL refuses `sql` for lack of privilege (42501); any other outcome,
    success or another error, is False. Nothing is kept either way."""
    with engine.connect() as connection:
        try:
            connection.exec_driver_sql(sql)
        except sa.exc.DBAPIError as error:
            connection.rollback()
            return getattr(error.orig, "sqlstate", None) == "42501"
        connection.rollback()
    return False


def _shows(secret: str, *texts: str) -> bool:
    return any(secret in text for text in texts)


# --- no superuser: what a managed service refuses -------------------------------------------------

def test_the_admin_role_is_no_superuser_and_is_refused_what_a_provider_refuses(server, register_url):
    engine = server.engine()
    autocommit = server.engine(isolation_level="AUTOCOMMIT")  # ALTER SYSTEM runs outside a transaction only
    # Each statement is harmless if a superuser ever ran it (an invalid value, a file that is
    # not there, a file only read): only a refusal for lack of privilege (42501) passes.
    assert refused_for_privilege(autocommit, "ALTER SYSTEM SET random_page_cost = -1"), "ALTER SYSTEM was not refused"
    assert refused_for_privilege(engine, "COPY access_log FROM 'PG_VERSION'"), "COPY from a server file was not refused"
    assert refused_for_privilege(engine, "COPY (SELECT 1) TO '/nonexistent-directory/register.csv'"), \
        "COPY to a server file was not refused"
    assert refused_for_privilege(engine, "SELECT pg_read_file('PG_VERSION')"), "reading a server file was not refused"
    # Nor may the admin switch triggers off for its session (the access log's, among others).
    assert refused_for_privilege(engine, "SET session_replication_role = replica"), "triggers could be switched off"
    # Because it is what a provider's admin is: no superuser, CREATEDB and CREATEROLE, no server files.
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT current_user").scalar_one() == server.admin
        assert connection.exec_driver_sql("SHOW is_superuser").scalar_one() == "off"
        attributes = connection.exec_driver_sql(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user").one()
        assert tuple(attributes) == (False, True, True)
        for role in SERVER_FILE_ROLES:
            assert connection.exec_driver_sql(f"SELECT pg_has_role('{role}', 'MEMBER')").scalar_one() is False
    # What the pipeline does need: a user-level setting for one transaction, and COPY FROM STDIN.
    with engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
        assert connection.exec_driver_sql("SHOW random_page_cost").scalar_one() == "1.1"
        connection.exec_driver_sql("CREATE TEMP TABLE copied (value bigint) ON COMMIT DROP")
        with connection.connection.dbapi_connection.cursor() as cursor:
            with cursor.copy("COPY copied (value) FROM STDIN") as copy:
                for value in (1, 2, 3):
                    copy.write_row((value,))
        assert connection.exec_driver_sql("SELECT SUM(value) FROM copied").scalar_one() == 6


PIPELINE_SOURCES = [path for folder in ("pipeline", "schemas", "assets")
                    for path in sorted((Path(__file__).resolve().parents[1] / folder).rglob("*.py"))]
NEEDS_A_SUPERUSER = {
    "ALTER SYSTEM": re.compile(r"\bALTER\s+SYSTEM\b", re.IGNORECASE),
    "COPY from or to a file or program": re.compile(r"\b(?:FROM|TO)\s+(?:PROGRAM\b|')"),
    "server file functions": re.compile(r"\b(?:pg_read_file|pg_read_binary_file|pg_ls_dir|pg_stat_file|"
                                        r"lo_import|lo_export)\s*\("),
    "CREATE EXTENSION": re.compile(r"\bCREATE\s+EXTENSION\b", re.IGNORECASE),
    "session_replication_role": re.compile(r"session_replication_role", re.IGNORECASE),
}


def test_nothing_in_the_pipeline_needs_a_superuser():
    """The load test shows what a load sends; this covers the rest of the code (the workbench,
    the command line, retention, the migrations)."""
    assert len(PIPELINE_SOURCES) > 50
    copies = 0
    found = []
    for path in PIPELINE_SOURCES:
        text = path.read_text(encoding="utf-8")
        for what, pattern in NEEDS_A_SUPERUSER.items():
            if what.startswith("COPY"):
                # Every COPY statement of the code reads standard input.
                for statement in re.finditer(r'"COPY (?:\w+|\{[^}]*\}) \([^"]*"(?:\s*"[^"]*")*', text):
                    copies += 1
                    if "FROM STDIN" not in statement.group(0) or pattern.search(statement.group(0)):
                        found.append(f"{path.name}: {what}")
            elif pattern.search(text):
                found.append(f"{path.name}: {what}")
    assert copies >= 3, "the COPY statements were not found: the scan is broken"
    assert found == []


# --- migrations as the admin ----------------------------------------------------------------------

def test_migrations_run_from_empty_to_head_as_the_admin_and_reuse_the_group_roles(server):
    url = server.create_database(f"{server.admin}_fresh")
    engine = server.engine(url.database)
    roles_query = (f"SELECT rolname, oid, rolcanlogin FROM pg_roles "
                   f"WHERE rolname IN ({', '.join(repr(r) for r in GROUP_ROLES)}) ORDER BY rolname")
    with engine.connect() as connection:
        roles_before = connection.exec_driver_sql(roles_query).all()
    assert len(roles_before) == len(GROUP_ROLES), "the fixture made the group roles beforehand"

    migrate(url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == head
        owners = set(connection.exec_driver_sql(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'").scalars())
        assert owners == {server.admin}, "the admin owns the schema it migrated"
        # The roles someone else made are reused as they were, not made again.
        assert connection.exec_driver_sql(roles_query).all() == roles_before
        granted = {check: connection.exec_driver_sql(f"SELECT {check}").scalar_one() for check in (
            "has_table_privilege('register_loader', 'source_record', 'INSERT')",
            "has_table_privilege('register_loader', 'review_deferral', 'INSERT')",  # default privileges, 0013
            "has_table_privilege('register_steward', 'access_log', 'INSERT')",
            "has_table_privilege('register_steward', 'access_log', 'UPDATE')",
            "has_table_privilege('register_analyst', 'customer_masked', 'SELECT')",
            "has_table_privilege('register_analyst', 'customer', 'SELECT')",
            "has_table_privilege('register_marketing', 'marketing_contacts', 'SELECT')",
            "has_table_privilege('register_marketing', 'customer_masked', 'SELECT')",
        )}
        assert [name for name, value in granted.items() if value] == [
            "has_table_privilege('register_loader', 'source_record', 'INSERT')",
            "has_table_privilege('register_loader', 'review_deferral', 'INSERT')",
            "has_table_privilege('register_steward', 'access_log', 'INSERT')",
            "has_table_privilege('register_analyst', 'customer_masked', 'SELECT')",
            "has_table_privilege('register_marketing', 'marketing_contacts', 'SELECT')",
        ]
        assert connection.exec_driver_sql(
            "SELECT COUNT(*) FROM pg_trigger WHERE tgname = 'access_log_append_only' AND NOT tgisinternal"
        ).scalar_one() == 1
    check_schema(url)  # the tables are the models' (alembic check), as the admin sees them

    downgrade(url, "base")
    with engine.connect() as connection:
        assert set(connection.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").scalars()) == {"alembic_version"}
    migrate(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == head
        assert connection.exec_driver_sql(roles_query).all() == roles_before


# --- a load as the admin --------------------------------------------------------------------------

def test_a_load_runs_as_the_admin_with_copy_the_register_lock_and_set_local(server, loaded):
    total = loaded.summary.total
    assert total.files_loaded >= 8 and total.accepted > 200 and total.quarantined > 0
    assert loaded.summary.after_load.records_resolved == total.accepted
    # Records, quarantine and keys went by COPY, and only ever from standard input.
    targets = {re.match(r"COPY (\w+) ", statement).group(1) for statement in loaded.copies}
    assert {"source_record", "quarantine"} <= targets
    assert all(" FROM STDIN" in statement for statement in loaded.copies)
    # Inside the load's transaction: the admin, no superuser, the register lock held (and
    # refused to another session), the planner's setting changed for this transaction only.
    assert loaded.inside == {"user": server.admin, "is_superuser": "off", "random_page_cost": "1.1",
                             "register_locks": 1, "lock_free_elsewhere": False}
    assert loaded.after == {"random_page_cost": "4"}
    # One connection for the whole load (load and resolution share its transaction).
    assert loaded.peak_connections == 1
    # The URL carries a password; no log line shows it (SQLAlchemy's statements included).
    assert "pg_advisory_xact_lock" in loaded.logged, "the statements were not logged"
    leaked = _shows(server.password, loaded.logged)
    assert not leaked, "the password is in the load's log"


def test_analyze_after_the_first_load_is_the_admins_to_run(server, loaded):
    engine = server.engine(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        for table in ("customer", "source_record", "match_key"):
            rows = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
            estimate = connection.exec_driver_sql(
                f"SELECT reltuples FROM pg_class WHERE oid = '{table}'::regclass").scalar_one()
            assert rows > 0 and estimate == rows, f"{table} has no fresh statistics"


# --- the login roles the admin makes ------------------------------------------------------------

def test_the_nightly_jobs_login_migrates_at_head_and_loads_the_next_day(server, loaded, landing_days):
    loader = make_engine(server.login("loader"))
    try:
        with loader.connect() as connection:
            assert connection.exec_driver_sql("SHOW is_superuser").scalar_one() == "off"
            before = connection.exec_driver_sql("SELECT COUNT(*) FROM source_record").scalar_one()
        migrate(loader)  # every run does; at head it only reads alembic_version
        summary = _load(loader, landing_days[2], "managed-loader")
        assert summary.total.accepted > 0
        with loader.connect() as connection:
            after = connection.exec_driver_sql("SELECT COUNT(*) FROM source_record").scalar_one()
        assert after > before
        assert is_refused(loader, "CREATE TABLE loader_table (x integer)")
        assert is_refused(loader, "ALTER TABLE customer ADD COLUMN x integer")
    finally:
        loader.dispose()


def test_an_analyst_login_reads_the_views_and_nothing_personal(server, loaded):
    analyst = make_engine(server.login("analyst"))
    admin = server.engine()
    try:
        for view in ANALYST_VIEWS:
            with analyst.connect() as connection:
                seen = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {view}").scalar_one()
            with admin.connect() as connection:
                held = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {view}").scalar_one()
            assert seen == held > 0, view
        for relation in TABLE_NAMES + OTHER_VIEWS + MARKETING_VIEWS + ("alembic_version",):
            assert is_refused(analyst, f"SELECT COUNT(*) FROM {relation}"), relation
        with admin.connect() as connection:
            readable = connection.exec_driver_sql(
                "SELECT c.relname, a.attname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p') AND a.attnum > 0 "
                "AND NOT a.attisdropped AND has_column_privilege('register_analyst', c.oid, a.attnum, 'SELECT')"
            ).all()
        assert {table for table, _ in readable} == set(ANALYST_VIEWS)
        assert not {column for _, column in readable} & (DIRECT_IDENTIFIERS | NEVER_IN_A_VIEW)
        assert is_refused(analyst, "CREATE TABLE analyst_copy (x integer)")
    finally:
        analyst.dispose()


def test_a_marketing_login_reads_the_marketing_list_and_nothing_else(server, loaded):
    marketing = make_engine(server.login("marketing"))
    admin = server.engine()
    try:
        with marketing.connect() as connection:
            seen = connection.exec_driver_sql("SELECT COUNT(*) FROM marketing_contacts").scalar_one()
        with admin.connect() as connection:
            held = connection.exec_driver_sql("SELECT COUNT(*) FROM marketing_contacts").scalar_one()
        assert seen == held > 0
        for relation in TABLE_NAMES + OTHER_VIEWS + ANALYST_VIEWS:
            assert is_refused(marketing, f"SELECT COUNT(*) FROM {relation}"), relation
    finally:
        marketing.dispose()


def test_the_access_log_stays_append_only_for_the_steward_and_the_admin(server, loaded):
    steward = make_engine(server.login("steward"))
    admin = server.engine()
    try:
        with steward.begin() as connection:
            access_id = log_access(connection, user="managed-test", action="view_customer", via="cli",
                                   customer_id=1, reason="managed PostgreSQL test", now=NOW)
        assert is_refused(steward, f"UPDATE access_log SET reason = 'x' WHERE access_id = {access_id}")
        assert is_refused(steward, f"DELETE FROM access_log WHERE access_id = {access_id}")
        # The admin owns the table; the trigger refuses it all the same.
        for sql in (f"UPDATE access_log SET reason = 'x' WHERE access_id = {access_id}",
                    f"DELETE FROM access_log WHERE access_id = {access_id}"):
            with admin.connect() as connection, pytest.raises(sa.exc.DBAPIError) as refused:
                connection.exec_driver_sql(sql)
            assert "access_log is append-only" in str(refused.value)
        with admin.connect() as connection:
            assert connection.exec_driver_sql(
                f"SELECT reason FROM access_log WHERE access_id = {access_id}").scalar_one() == "managed PostgreSQL test"
    finally:
        steward.dispose()


# --- connections ----------------------------------------------------------------------------------

def test_each_process_holds_at_most_fifteen_connections(register_url):
    """docs/operations.md quotes these: SQLAlchemy's default pool, which make_engine keeps."""
    engine = make_engine(register_url)
    try:
        assert engine.pool.size() == 5
        assert engine.pool._max_overflow == 10  # noqa: SLF001 (no public accessor)
        assert engine.pool._pre_ping is True  # noqa: SLF001 a connection the server closed is replaced
    finally:
        engine.dispose()


# --- TLS options in the URL -----------------------------------------------------------------------

def _server_has_ssl(url: sa.URL) -> bool:
    return _scalar(url, "SHOW ssl") == "on"


def test_libpq_tls_options_in_the_url_reach_the_connection(register_url, tmp_path):
    files = {"sslrootcert": tmp_path / "provider-ca.pem", "sslcert": tmp_path / "client.crt",
             "sslkey": tmp_path / "client.key"}  # never read: no TLS is negotiated with these modes
    for mode in ("disable", "allow", "prefer"):
        url = register_url.update_query_dict({"sslmode": mode, **{k: str(v) for k, v in files.items()}})
        # The engine the Dagster resource makes from REGISTER_DATABASE_URL, and make_engine's own.
        for engine in (RegisterDatabase(url=url.render_as_string(hide_password=False)).engine(), make_engine(url)):
            try:
                with engine.connect() as connection:
                    parameters = connection.connection.dbapi_connection.info.get_parameters()
                    encrypted = connection.exec_driver_sql(
                        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar_one()
            finally:
                engine.dispose()
            # libpq leaves out parameters at their default (sslmode=prefer).
            assert parameters.get("sslmode", "prefer") == mode
            assert {k: parameters.get(k) for k in files} == {k: str(v) for k, v in files.items()}
            if mode == "disable" or not _server_has_ssl(register_url):
                assert encrypted is False


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_tls_required_of_a_server_without_it_is_one_line_without_the_password(
        server, register_url, mode, tmp_path, capsys, caplog):
    if _server_has_ssl(register_url):  # the next step (docs/operations.md): a server with TLS
        url = register_url.update_query_dict({"sslmode": "require"})
        assert _scalar(url, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        return
    url = register_url.update_query_dict({"sslmode": mode, "sslrootcert": str(tmp_path / "provider-ca.pem")})
    given = url.render_as_string(hide_password=False)
    caplog.set_level(logging.DEBUG)
    # The command line: one line, exit status 3, no traceback, the password hidden.
    assert main(["--database-url", given, "summary"]) == 3
    err = _one_line_error(capsys)
    assert "cannot connect to the database" in err and "SSL was required" in err, err
    assert ":***@" in err
    assert main(["--database-url", given, "migrate"]) == 3
    migrate_err = _one_line_error(capsys)
    assert "database error at" in migrate_err and "SSL was required" in migrate_err, migrate_err
    # The engine itself: the error and its traceback.
    engine = make_engine(url)
    with pytest.raises(sa.exc.OperationalError) as failed:
        engine.connect()
    engine.dispose()
    said = "\n".join([str(failed.value), repr(failed.value), *traceback.format_exception(failed.value)])
    assert "SSL was required" in said
    leaked = _shows(server.password, err, migrate_err, said, caplog.text)
    assert not leaked, "the password was shown"


def test_sslmode_disable_and_prefer_connect_from_the_command_line(register_url, capsys):
    for mode in ("disable", "prefer"):
        given = register_url.update_query_dict({"sslmode": mode}).render_as_string(hide_password=False)
        assert main(["--database-url", given, "summary"]) == 0, mode
        out, err = capsys.readouterr()
        assert err == "" and out.strip()
