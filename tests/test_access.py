"""Who may read what (docs/register_rules.md rule 7): the analysts' views on both backends, the
PostgreSQL roles of migration 0003, TLS from the URL, and credentials kept out of
every log and repr.

The view cases insert obviously synthetic customers straight into the register.
The role cases log in as throwaway login users made members of a group role,
exactly as docs/operations.md tells a DBA to do it.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
import uuid

import pytest
import sqlalchemy as sa
from stdnum import iban as stdnum_iban

from pipeline.register.database import ENVIRONMENT_VARIABLE, database_url, make_engine, migrate
from pipeline.register.load import load_intake
from pipeline.matching.settings import MatchSettings
from pipeline.register.resolve import resolve_identities
from pipeline.orchestration.resources import register_database_from_env
from schemas.register import REGISTER_TABLES, customer, service
from test_asset_checks import database_today, migration_0003
from test_register_helpers import accepted_records, batch, file_row, personal_id

NOW = dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.timezone.utc)

CUSTOMER_MASKED_COLUMNS = (
    "customer_id", "birth_year", "postal_code", "city", "first_channel", "products", "has_email", "has_phone",
    "has_street_address", "marketing_prohibited", "identity_verified", "on_marketing_list", "created_at",
    "updated_at")
SERVICE_MASKED_COLUMNS = ("customer_id", "product", "first_seen", "last_seen")
# No analyst view shows a direct identifier: a name or a contact detail.
DIRECT_IDENTIFIERS = {"first_names", "last_name", "street_address", "phone", "email"}
MARKETING_CONTACTS_COLUMNS = (
    "customer_id", "first_names", "last_name", "street_address", "postal_code", "city", "email", "phone",
    "product")
NEVER_IN_A_VIEW = {"personal_id", "birth_date", "iban", "bic", "metering_point", "merged_into", "erased_at"}

ANALYST_VIEWS = ("customer_masked", "service_masked")
MARKETING_VIEWS = ("marketing_contacts",)
OTHER_VIEWS = ("golden_value_provenance", "marketing_doubt")
TABLE_NAMES = tuple(t.name for t in REGISTER_TABLES)
INSUFFICIENT_PRIVILEGE = "42501"


def synthetic_iban(serial: int) -> str:
    """A made-up Finnish IBAN with correct check digits (bank code 123456, test range)."""
    bban = f"123456{serial:08d}"
    return "FI" + stdnum_iban.calc_check_digits("FI00" + bban) + bban


def add_customer(connection: sa.Connection, number: int, **values) -> int:
    """Insert an obviously synthetic customer; returns its id."""
    row = {
        "personal_id": personal_id(1 + number % 28, 1 + number % 12, 1960 + number % 40, 100 + number),
        "birth_date": dt.date(1960 + number % 40, 1 + number % 12, 1 + number % 28),
        "first_names": f"Testi{number}", "last_name": "Esimerkki", "street_address": f"Testitie {number}",
        "postal_code": "00100", "city": "HELSINKI", "phone": "+358401234567",
        "email": f"testi{number}@example.fi", "iban": synthetic_iban(number), "bic": "TESTFIHH",
        "marketing_prohibited": False, "identity_verified": True, "created_at": NOW, "updated_at": NOW,
    }
    row.update(values)
    return connection.execute(customer.insert().values(**row).returning(customer.c.customer_id)).scalar_one()


def add_service(connection: sa.Connection, customer_id: int, product: str, metering_point: str | None = None):
    connection.execute(service.insert().values(customer_id=customer_id, product=product,
                                               metering_point=metering_point, first_seen=NOW, last_seen=NOW))


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def columns_of(connection: sa.Connection, view: str) -> tuple[str, ...]:
    return tuple(connection.exec_driver_sql(f"SELECT * FROM {view} WHERE 1 = 0").keys())


# --- the views, on SQLite and PostgreSQL ----------------------------------------------------

def test_views_carry_no_identity_code_bank_account_or_birth_date(register_engine):
    with register_engine.connect() as connection:
        masked = columns_of(connection, "customer_masked")
        services = columns_of(connection, "service_masked")
        contacts = columns_of(connection, "marketing_contacts")
    assert masked == CUSTOMER_MASKED_COLUMNS
    assert services == SERVICE_MASKED_COLUMNS
    assert contacts == MARKETING_CONTACTS_COLUMNS
    assert not NEVER_IN_A_VIEW & (set(masked) | set(services) | set(contacts))
    assert not DIRECT_IDENTIFIERS & (set(masked) | set(services)), "an analyst view shows a name or contact"


def test_customer_masked_shows_birth_year_and_only_live_customers(register_engine):
    with register_engine.begin() as connection:
        live = add_customer(connection, 1, birth_date=dt.date(1987, 6, 15))
        unknown_birth = add_customer(connection, 2, personal_id=None, birth_date=None)
        merged = add_customer(connection, 3, merged_into=live)
        erased = add_customer(connection, 4, erased_at=NOW)
        no_email = add_customer(connection, 5, email=None, phone=None)
        add_service(connection, live, "electricity", "643000000000000001")
        add_service(connection, live, "electricity", "643000000000000002")
        add_service(connection, live, "broadband")
        add_service(connection, merged, "tv")
        rows = connection.exec_driver_sql(
            "SELECT customer_id, birth_year, has_email, has_phone, has_street_address, products, on_marketing_list "
            "FROM customer_masked").all()
        services = connection.exec_driver_sql("SELECT customer_id, product FROM service_masked").all()
        listed = {r[0] for r in connection.exec_driver_sql("SELECT customer_id FROM marketing_contacts")}
    by_id = {r[0]: r for r in rows}
    assert set(by_id) == {live, unknown_birth, no_email}, "merged or erased customers must not be shown"
    assert by_id[live].birth_year == 1987 and isinstance(by_id[live].birth_year, int)
    assert by_id[unknown_birth].birth_year is None
    # Whether a contact detail is held, never what it is.
    assert [bool(by_id[c].has_email) for c in (live, no_email)] == [True, False]
    assert [bool(by_id[c].has_phone) for c in (live, no_email)] == [True, False]
    assert all(bool(r.has_street_address) for r in rows)
    # Products: two metering points are one product held; a merged customer's are not shown.
    assert (by_id[live].products, by_id[no_email].products) == (2, 0)
    assert sorted(services) == [(live, "broadband"), (live, "electricity"), (live, "electricity")]
    assert {c for c, r in by_id.items() if r.on_marketing_list} == listed and live in listed


def test_marketing_contacts_are_live_adults_not_prohibited_one_row_per_product(register_engine):
    today = database_today(register_engine)
    with register_engine.begin() as connection:
        adult_today = add_customer(connection, 1, birth_date=years_before(today, 18))
        minor_until_tomorrow = add_customer(
            connection, 2, birth_date=years_before(today + dt.timedelta(days=1), 18))
        unknown_birth = add_customer(connection, 3, personal_id=None, birth_date=None)
        prohibited = add_customer(connection, 4, marketing_prohibited=True)
        never_stated = add_customer(connection, 5, marketing_prohibited=None)
        erased = add_customer(connection, 6, erased_at=NOW)
        merged = add_customer(connection, 7, merged_into=never_stated)
        # Everyone left out holds a product, so none is left out for lack of one.
        for left_out in (minor_until_tomorrow, unknown_birth, prohibited, erased, merged):
            add_service(connection, left_out, "electricity")
        # Two electricity metering points are still one product held.
        add_service(connection, never_stated, "electricity", "643000000000000001")
        add_service(connection, never_stated, "electricity", "643000000000000002")
        add_service(connection, never_stated, "broadband")
        rows = connection.exec_driver_sql("SELECT customer_id, product FROM marketing_contacts").all()
    assert len(rows) == 3, "one row per customer and product held"
    assert set(rows) == {(adult_today, None), (never_stated, "electricity"), (never_stated, "broadband")}


# --- PostgreSQL roles ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def login_as(postgres_register_url):
    """`login_as("analyst")`: an engine logged in as a fresh LOGIN user that is a member
    of `register_analyst` (as a DBA grants it), on this module's PostgreSQL register."""
    admin = make_engine(postgres_register_url, isolation_level="AUTOCOMMIT")
    made: list[tuple[str, sa.Engine]] = []

    def login(group: str) -> sa.Engine:
        user = f"register_test_{group}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE ROLE {user} LOGIN IN ROLE register_{group}")
        engine = make_engine(postgres_register_url.set(username=user))
        made.append((user, engine))
        return engine

    yield login
    with admin.connect() as connection:
        for user, engine in made:
            engine.dispose()
            connection.exec_driver_sql(f"DROP OWNED BY {user}")  # e.g. a temporary table left behind
            connection.exec_driver_sql(f"DROP ROLE {user}")
    admin.dispose()


@pytest.fixture(scope="module")
def populated_postgres(postgres_register_url):
    """`populated_postgres()` empties the module's PostgreSQL register and puts two
    synthetic customers (one with a service) in it; returns the customer count."""
    def populate() -> int:
        engine = make_engine(postgres_register_url)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLE_NAMES)} RESTART IDENTITY CASCADE")
            first = add_customer(connection, 11)
            add_customer(connection, 12, marketing_prohibited=None)
            add_service(connection, first, "electricity")
        engine.dispose()
        return 2

    return populate


def is_refused(engine: sa.Engine, sql: str) -> bool:
    """True if PostgreSQL refuses `sql` for lack of privilege (nothing is kept either way)."""
    with engine.connect() as connection:
        try:
            connection.exec_driver_sql(sql)
        except sa.exc.ProgrammingError as error:
            connection.rollback()
            return getattr(error.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE
        connection.rollback()
    return False


def _first_column(table_name: str) -> str:
    return next(t for t in REGISTER_TABLES if t.name == table_name).columns[0].name


@pytest.mark.postgres
@pytest.mark.parametrize("relation", TABLE_NAMES + OTHER_VIEWS + MARKETING_VIEWS + ("alembic_version",))
def test_analyst_can_neither_read_nor_write_tables(relation, login_as, populated_postgres):
    populated_postgres()
    analyst = login_as("analyst")
    assert is_refused(analyst, f"SELECT * FROM {relation}")
    assert is_refused(analyst, f"SELECT COUNT(*) FROM {relation}")
    if relation in TABLE_NAMES:
        column = _first_column(relation)
        assert is_refused(analyst, f"SELECT {column} FROM {relation}")
        assert is_refused(analyst, f"INSERT INTO {relation} DEFAULT VALUES")
        assert is_refused(analyst, f"UPDATE {relation} SET {column} = {column}")
        assert is_refused(analyst, f"DELETE FROM {relation}")
        assert is_refused(analyst, f"TRUNCATE {relation}")
    analyst.dispose()


@pytest.mark.postgres
def test_analyst_cannot_read_identity_codes_or_bank_accounts(login_as, populated_postgres):
    assert populated_postgres() > 0
    analyst = login_as("analyst")
    for table in ("customer", "source_record"):
        for column in ("personal_id", "iban", "bic", "birth_date"):
            assert is_refused(analyst, f"SELECT {column} FROM {table}"), f"{table}.{column} is readable"
    with analyst.connect() as connection:
        readable = connection.exec_driver_sql(
            "SELECT COUNT(*) FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'customer'").scalar_one()
    assert readable == 0, "information_schema shows the analyst no column of customer"
    analyst.dispose()


@pytest.mark.postgres
def test_analyst_reads_both_views_and_writes_nothing(login_as, populated_postgres, postgres_register_url):
    populated_postgres()
    analyst = login_as("analyst")
    owner = make_engine(postgres_register_url)
    for view, columns in (("customer_masked", CUSTOMER_MASKED_COLUMNS),
                          ("service_masked", SERVICE_MASKED_COLUMNS)):
        with analyst.connect() as connection:
            seen = connection.exec_driver_sql(f"SELECT {', '.join(columns)} FROM {view}").all()
        with owner.connect() as connection:
            expected = connection.exec_driver_sql(f"SELECT {', '.join(columns)} FROM {view}").all()
        assert len(seen) == len(expected) > 0
        with owner.connect() as connection:
            may_write = connection.exec_driver_sql(
                f"SELECT has_table_privilege('register_analyst', '{view}', 'INSERT, UPDATE, DELETE, TRUNCATE')"
            ).scalar_one()
        assert may_write is False
    # customer_masked is a simple view PostgreSQL could write through to customer:
    # the refusal must be the analyst's missing privilege.
    assert is_refused(analyst, "DELETE FROM customer_masked")
    assert is_refused(analyst, "UPDATE customer_masked SET city = city")
    assert is_refused(analyst, "INSERT INTO customer_masked (customer_id) VALUES (-1)")
    # Nor can the analyst make objects of its own in the register's schema.
    assert is_refused(analyst, "CREATE TABLE analyst_copy (x integer)")
    assert is_refused(analyst, "CREATE VIEW analyst_view AS SELECT 1 AS x")
    owner.dispose()
    analyst.dispose()


@pytest.mark.postgres
def test_the_analyst_role_cannot_read_a_name_or_a_contact_detail(login_as, populated_postgres, postgres_register_url):
    populated_postgres()
    analyst = login_as("analyst")
    owner = make_engine(postgres_register_url)
    with owner.connect() as connection:
        readable = connection.exec_driver_sql(
            "SELECT c.relname, a.attname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p') AND a.attnum > 0 "
            "AND NOT a.attisdropped AND has_column_privilege('register_analyst', c.oid, a.attnum, 'SELECT')").all()
    assert readable, "the analyst reads something"
    assert {table for table, _ in readable} == set(ANALYST_VIEWS)
    assert not {column for _, column in readable} & (DIRECT_IDENTIFIERS | NEVER_IN_A_VIEW)
    for column in sorted(DIRECT_IDENTIFIERS):
        assert is_refused(analyst, f"SELECT {column} FROM marketing_contacts"), f"marketing_contacts.{column}"
        assert is_refused(analyst, f"SELECT {column} FROM customer"), f"customer.{column}"
    owner.dispose()
    analyst.dispose()


@pytest.mark.postgres
def test_the_marketing_role_reads_the_marketing_list_and_nothing_else(login_as, populated_postgres,
                                                                      postgres_register_url):
    populated_postgres()
    marketing = login_as("marketing")
    owner = make_engine(postgres_register_url)
    with marketing.connect() as connection:
        seen = connection.exec_driver_sql(f"SELECT {', '.join(MARKETING_CONTACTS_COLUMNS)} FROM marketing_contacts").all()
    with owner.connect() as connection:
        expected = connection.exec_driver_sql(
            f"SELECT {', '.join(MARKETING_CONTACTS_COLUMNS)} FROM marketing_contacts").all()
    assert sorted(seen, key=repr) == sorted(expected, key=repr) and len(seen) > 0
    for relation in TABLE_NAMES + OTHER_VIEWS + ANALYST_VIEWS:
        assert is_refused(marketing, f"SELECT COUNT(*) FROM {relation}"), relation
    with owner.connect() as connection:
        assert connection.exec_driver_sql("SELECT has_table_privilege('register_marketing', 'marketing_contacts', "
                                          "'INSERT, UPDATE, DELETE, TRUNCATE')").scalar_one() is False
    owner.dispose()
    marketing.dispose()


@pytest.mark.postgres
def test_loader_runs_a_whole_load_with_identity_resolution(login_as, postgres_register_url):
    owner = make_engine(postgres_register_url)
    with owner.begin() as connection:  # an empty register: the load itself is the test
        connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLE_NAMES)} RESTART IDENTITY CASCADE")
    loader = login_as("loader")
    migrate(loader)  # every run does this; at head it must need no more than reading
    file = file_row("web", "web_loader_test.csv")

    def resolve(connection):
        return resolve_identities(connection, now=NOW, run_id="loader-test", settings=MatchSettings())

    summary = load_intake(loader, batch([file], [accepted_records(file, [f"W-{i}" for i in range(20)])]),
                          run_id="loader-test", now=NOW, after_load=resolve)
    assert summary.total.accepted == 20
    with loader.begin() as connection:
        customers = connection.exec_driver_sql("SELECT COUNT(*) FROM customer").scalar_one()
        changed = connection.exec_driver_sql(
            "UPDATE customer SET updated_at = updated_at WHERE merged_into IS NULL").rowcount
        services = connection.exec_driver_sql("SELECT COUNT(*) FROM service").scalar_one()
    assert customers == changed == 20
    assert services > 0
    # The loader writes rows, not the schema: migrations belong to the owner.
    assert is_refused(loader, "CREATE TABLE loader_table (x integer)")
    assert is_refused(loader, "DROP TABLE customer")
    loader.dispose()
    owner.dispose()


@pytest.mark.postgres
def test_steward_reads_every_table_and_view(login_as, populated_postgres):
    customers = populated_postgres()
    steward = login_as("steward")
    with steward.connect() as connection:
        for relation in TABLE_NAMES + OTHER_VIEWS + ANALYST_VIEWS + MARKETING_VIEWS:
            connection.exec_driver_sql(f"SELECT * FROM {relation} LIMIT 1").all()
        codes = connection.exec_driver_sql(
            "SELECT COUNT(personal_id), COUNT(iban) FROM customer").one()
    assert tuple(codes) == (customers, customers)
    with steward.begin() as connection:  # rectification
        assert connection.exec_driver_sql("UPDATE customer SET city = city").rowcount == customers
    steward.dispose()


@pytest.mark.postgres
def test_set_role_within_a_transaction_is_enough_to_act_as_an_analyst(postgres_register_url, populated_postgres):
    """How the example queries of docs/data_dictionary.md are tested, and how a DBA can
    try a role out from a superuser session."""
    populated_postgres()
    owner = make_engine(postgres_register_url)
    with owner.connect() as connection:
        with connection.begin():
            connection.exec_driver_sql("SET LOCAL ROLE register_analyst")
            assert connection.exec_driver_sql("SELECT COUNT(*) FROM customer_masked").scalar_one() > 0
        with pytest.raises(sa.exc.ProgrammingError), connection.begin():
            connection.exec_driver_sql("SET LOCAL ROLE register_analyst")
            connection.exec_driver_sql("SELECT personal_id FROM customer")
        # SET LOCAL ends with the transaction: the session is the owner again.
        assert connection.exec_driver_sql("SELECT current_user").scalar_one() != "register_analyst"
    owner.dispose()


# --- TLS from the URL --------------------------------------------------------------------------

def _encrypted(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        return connection.exec_driver_sql(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar_one()


@pytest.mark.postgres
def test_sslmode_in_the_url_reaches_libpq(postgres_register_url):
    owner = make_engine(postgres_register_url)
    with owner.connect() as connection:
        server_has_ssl = connection.exec_driver_sql("SHOW ssl").scalar_one() == "on"
    owner.dispose()

    plain = make_engine(postgres_register_url.update_query_dict({"sslmode": "disable"}))
    assert _encrypted(plain) is False
    plain.dispose()

    required = make_engine(postgres_register_url.update_query_dict({"sslmode": "require"}))
    if server_has_ssl:
        assert _encrypted(required) is True
    else:
        # No SSL on this server: libpq itself refuses, which it only does if it got sslmode.
        with pytest.raises(sa.exc.OperationalError) as refused:
            required.connect()
        assert "SSL" in str(refused.value)
    required.dispose()


# --- credentials ---------------------------------------------------------------------------------

SYNTHETIC_PASSWORD = "synthetic-Pw-7c1e"


def _everything_said(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


@pytest.mark.postgres
def test_a_password_in_the_url_never_reaches_a_repr_or_a_log(postgres_register_url, monkeypatch, caplog):
    # Trust authentication on the test server ignores the password; the point is where it shows.
    url = postgres_register_url.set(password=SYNTHETIC_PASSWORD).render_as_string(hide_password=False)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, url)
    assert database_url() == url, "the URL comes from the environment as given"
    caplog.set_level(logging.DEBUG)
    engine = make_engine(echo="debug")
    migrate(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
    shown = [repr(engine), str(engine.url), repr(engine.url), repr(engine.pool), caplog.text,
             repr(register_database_from_env())]
    assert "***" in repr(engine.url)
    assert not [text for text in shown if SYNTHETIC_PASSWORD in text], "the password was shown"
    engine.dispose()

    # Nor does a failed connection's error, with the password in the URL.
    missing = make_engine(postgres_register_url.set(password=SYNTHETIC_PASSWORD, database="no_such_register_db"))
    with pytest.raises(sa.exc.OperationalError) as failed:
        missing.connect()
    assert SYNTHETIC_PASSWORD not in _everything_said(failed.value)
    missing.dispose()


def test_an_engine_never_shows_its_password():
    # Before it ever connects: the repr a Dagster resource or a log line would print.
    engine = make_engine(f"postgresql://loader:{SYNTHETIC_PASSWORD}@db.example/register?sslmode=require")
    assert SYNTHETIC_PASSWORD not in repr(engine) + str(engine.url) + repr(engine.url)
    assert engine.url.password == SYNTHETIC_PASSWORD, "the password is kept, only never shown"
    engine.dispose()


@pytest.mark.parametrize("today, birth_date, adult", [
    ("2028-02-29", "2010-02-28", True),    # turned 18 yesterday
    ("2028-02-29", "2010-03-01", False),   # turns 18 tomorrow (date('now','-18 years') would say 1 March)
    ("2026-02-28", "2008-02-29", False),   # born on a leap day: 18 on 1 March in a common year
    ("2026-03-01", "2008-02-29", True),
    ("2026-11-25", "2008-11-25", True),    # the birthday itself
    ("2026-11-25", "2008-11-26", False),
])
def test_sqlite_age_rule_counts_birthdays_and_leap_days(today, birth_date, adult):
    """The SQLite view's age rule, evaluated on fixed days instead of 'now'."""
    rule = migration_0003()._adult("sqlite").replace("'now'", f"'{today}'")
    with sa.create_engine("sqlite://").connect() as connection:
        got = connection.exec_driver_sql(f"SELECT {rule} FROM (SELECT '{birth_date}' AS birth_date) AS c").scalar_one()
    assert bool(got) is adult
