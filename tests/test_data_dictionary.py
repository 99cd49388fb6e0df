"""docs/data_dictionary.md is complete and true.

Every table, view and column of the migrated register is documented (and nothing
that is not there); on PostgreSQL every documented type is the column's type and
every documented reader is exactly the roles that hold SELECT on it; and every
example analyst query runs, as `register_analyst` on PostgreSQL, against a
register loaded from the generator's synthetic people, returning rows that agree
with counts taken straight from the tables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.intake import build_batch, discover, read_all
from pipeline.register.database import make_engine, migrate
from pipeline.register.description import DICTIONARY, EXAMPLES_HEADING, documented
from pipeline.register.load import load_intake
from pipeline.register.marketing import doubt
from pipeline.matching.settings import MatchSettings
from pipeline.register.resolve import resolve_identities
from synth import generate
from schemas.register import ANALYST_VIEWS, REGISTER_TABLES
from test_access import years_before
from test_asset_checks import database_today

ROLES = ("analyst", "loader", "marketing", "steward")
NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)


# --- reading the document ------------------------------------------------------------------------
# The tables are parsed by the production parser (`register describe` reads the meanings with it).

def example_queries() -> dict[str, str]:
    """{heading: sql} of the fenced sql blocks under "Example analyst queries"."""
    text = DICTIONARY.read_text(encoding="utf-8").split(EXAMPLES_HEADING, 1)[1]
    queries = {}
    for part in re.split(r"^### ", text, flags=re.M)[1:]:
        heading, body = part.split("\n", 1)
        blocks = re.findall(r"```sql\n(.*?)```", body, flags=re.S)
        assert len(blocks) == 1, f"one sql block under each example heading: {heading}"
        queries[heading.strip()] = blocks[0].strip()
    return queries


def test_the_document_parses_into_every_section():
    doc = documented()
    assert len(doc["tables"]) >= len(REGISTER_TABLES) and len(doc["views"]) >= 3
    every_column = [c for section in doc.values() for columns in section.values() for c in columns.values()]
    assert all(c.readers <= set(ROLES) and c.readers for c in every_column), "readers are role names"
    assert 4 <= len(example_queries()) <= 6


# --- (a) every table, view and column ---------------------------------------------------------------

def _missing_and_stale(documented_names, actual_names) -> tuple[list[str], list[str]]:
    return sorted(set(actual_names) - set(documented_names)), sorted(set(documented_names) - set(actual_names))


def test_every_table_of_the_models_and_its_columns_is_documented():
    tables = documented()["tables"]
    missing, _ = _missing_and_stale(tables, [t.name for t in REGISTER_TABLES])
    assert not missing, f"tables missing from docs/data_dictionary.md: {missing}"
    for table in REGISTER_TABLES:
        missing, stale = _missing_and_stale(tables[table.name], table.columns.keys())
        assert not missing, f"columns of {table.name} missing from the dictionary: {missing}"
        assert not stale, f"columns of {table.name} documented but not in the model: {stale}"


def _actual_columns(connection: sa.Connection, relation: str) -> list[str]:
    return list(connection.exec_driver_sql(f"SELECT * FROM {relation} WHERE 1 = 0").keys())


def test_every_table_view_and_column_of_the_database_is_documented(loaded_register):
    doc = documented()
    inspector = sa.inspect(loaded_register)
    actual = {"tables": inspector.get_table_names(), "views": inspector.get_view_names()}
    with loaded_register.connect() as connection:
        for section in ("tables", "views"):
            missing, stale = _missing_and_stale(doc[section], actual[section])
            assert not missing, f"{section} missing from docs/data_dictionary.md: {missing}"
            assert not stale, f"{section} documented but not in the database: {stale}"
            for name in actual[section]:
                missing, stale = _missing_and_stale(doc[section][name], _actual_columns(connection, name))
                assert not missing, f"columns of {name} missing from the dictionary: {missing}"
                assert not stale, f"columns of {name} documented but not in the database: {stale}"


def test_what_the_analyst_sees_of_customer_is_documented(loaded_register):
    """A customer column an analyst view shows must say so; one that says so must
    name analyst views only. (Identity code and bank account: no view, no claim.)"""
    customer_doc = documented()["tables"]["customer"]
    with loaded_register.connect() as connection:
        shown_by = {view: set(_actual_columns(connection, view)) for view in ANALYST_VIEWS}
    for column, doc in customer_doc.items():
        actually = {view for view, columns in shown_by.items() if column in columns}
        assert actually <= doc.through, f"customer.{column}: the dictionary omits an analyst view showing it"
        assert doc.through <= set(ANALYST_VIEWS), f"customer.{column}: 'through' names a non-analyst view"
    for secret in ("personal_id", "iban", "bic"):
        assert not customer_doc[secret].through


@pytest.mark.postgres
def test_documented_types_and_readers_are_postgresqls(postgres_register_url):
    engine = make_engine(postgres_register_url)
    doc = documented()
    wrong_types, wrong_readers = [], []
    with engine.connect() as connection:
        for section in doc.values():
            for relation, columns in section.items():
                for column, documented_column in columns.items():
                    actual_type = connection.exec_driver_sql(
                        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = CAST(%(relation)s AS regclass) AND attname = %(column)s",
                        {"relation": relation, "column": column}).scalar()
                    if actual_type is None:
                        continue  # no such column: the completeness tests name it
                    if actual_type != documented_column.type:
                        wrong_types.append(f"{relation}.{column} is {actual_type}")
                    readers = {role for role in ROLES if connection.exec_driver_sql(
                        "SELECT has_column_privilege(%(role)s, %(relation)s, %(column)s, 'SELECT')",
                        {"role": f"register_{role}", "relation": relation, "column": column}).scalar_one()}
                    if readers != documented_column.readers:
                        wrong_readers.append(f"{relation}.{column} is read by {sorted(readers)}")
    engine.dispose()
    assert not wrong_types + wrong_readers, f"the dictionary differs: {wrong_types + wrong_readers}"


# --- (b) the example queries, against generated data ------------------------------------------------

@pytest.fixture(scope="module")
def generated_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dictionary-zone")
    generate(out, people=300, days=3, seed=43)
    return out / "landing"


def _load(engine: sa.Engine, landing: Path) -> None:
    def resolve(connection):
        return resolve_identities(connection, now=NOW, run_id="dictionary", settings=MatchSettings())

    batch = build_batch(read_all(discover(landing)), NOW.date())
    load_intake(engine, batch, run_id="dictionary", now=NOW, after_load=resolve)


@pytest.fixture(scope="module", params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
])
def loaded_register(request, tmp_path_factory, generated_landing):
    """A register loaded with the generated people: SQLite, or this module's PostgreSQL database."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('dictionary-db') / 'register.db'}")
    else:
        engine = make_engine(request.getfixturevalue("postgres_register_url"))
    migrate(engine)
    _load(engine, generated_landing)
    yield engine
    engine.dispose()


def run_as_analyst(engine: sa.Engine, sql: str) -> list[sa.Row]:
    """The query's rows, read as `register_analyst` on PostgreSQL (SET LOCAL ROLE ends
    with the transaction)."""
    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL ROLE register_analyst")
        return connection.exec_driver_sql(sql).all()


@pytest.mark.parametrize("heading", sorted(example_queries()))
def test_every_example_query_runs_as_an_analyst_and_returns_rows(heading, loaded_register):
    rows = run_as_analyst(loaded_register, example_queries()[heading])
    assert len(rows) >= 1, f"example query returned nothing: {heading}"


def _live_customers(connection: sa.Connection) -> list[sa.Row]:
    return connection.exec_driver_sql(
        "SELECT customer_id, birth_date, email, marketing_prohibited FROM customer "
        "WHERE merged_into IS NULL AND erased_at IS NULL").all()


def _as_date(value) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def test_marketing_reach_per_product_agrees_with_the_tables(loaded_register):
    rows = run_as_analyst(loaded_register, example_queries()["Marketing reach per product"])
    with loaded_register.connect() as connection:
        today = database_today(loaded_register)
        adult_on = years_before(today, 18)
        in_doubt = doubt(connection, today).held  # computed in Python from the tables, not the view
        contactable = {
            customer_id: email for customer_id, birth_date, email, prohibited in _live_customers(connection)
            if not prohibited and birth_date is not None and _as_date(birth_date) <= adult_on
            and customer_id not in in_doubt}
        held = set(connection.exec_driver_sql("SELECT customer_id, product FROM service").all())
    assert in_doubt, "the generated register should hold someone back under doubt"
    reachable = Counter(product for customer_id, product in held if customer_id in contactable)
    by_email = Counter(product for customer_id, product in held if contactable.get(customer_id) is not None)
    assert len(rows) >= 2
    assert {r.product: r.reachable for r in rows} == dict(reachable)
    assert {r.product: r.by_email for r in rows} == {p: by_email.get(p, 0) for p in reachable}


def test_birth_years_by_decade_agree_with_the_tables(loaded_register):
    rows = run_as_analyst(loaded_register, example_queries()["Birth years by decade"])
    with loaded_register.connect() as connection:
        decades = Counter(_as_date(birth_date).year // 10 * 10
                          for _, birth_date, _, _ in _live_customers(connection) if birth_date is not None)
    assert len(rows) >= 3
    assert {r.decade: r.customers for r in rows} == dict(decades)


def test_share_with_email_agrees_with_the_tables(loaded_register):
    (row,) = run_as_analyst(loaded_register, example_queries()["Share of customers with an e-mail address"])
    with loaded_register.connect() as connection:
        live = _live_customers(connection)
    with_email = sum(1 for _, _, email, _ in live if email is not None)
    assert (row.customers, row.with_email) == (len(live), with_email)
    assert 0 < with_email < len(live)
    assert float(row.percent_with_email) == pytest.approx(round(100 * with_email / len(live), 1))
