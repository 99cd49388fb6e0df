"""The register's schema: created by the migration, no drift from the models,
reversible, and keeping its rules (UTC times, never-reused customer ids, code checks)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipeline.register.database import check_schema, downgrade, migrate
from schemas.canonical import CANONICAL_COLUMNS
from schemas.register import customer, intake_file, intake_file_duplicate, metadata, source_record

EXPECTED_TABLES = {"intake_file", "source_record", "quarantine", "customer", "customer_merge",
                   "review_queue", "service", "golden_provenance", "match_key", "rights_request", "erased_record",
                   "source_record_version", "disclosure", "intake_file_duplicate",
                   "app_user", "access_log", "merge_record", "unmerge", "quarantine_decision", "review_deferral"}
# Migration 0012 (the stewards' workbench, issue 11).
WORKBENCH_TABLES = {"app_user", "access_log", "merge_record", "unmerge", "quarantine_decision"}
# Migration 0013 (deferred reviews).
DEFERRAL_TABLES = {"review_deferral"}
EXPECTED_VIEWS = {"golden_value_provenance", "customer_masked", "service_masked", "marketing_contacts",
                  "marketing_doubt"}
HELSINKI_SUMMER = timezone(timedelta(hours=3))


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_migration_creates_every_table(register_engine):
    assert _tables(register_engine) == EXPECTED_TABLES
    columns = {c["name"] for c in sa.inspect(register_engine).get_columns("source_record")}
    assert set(CANONICAL_COLUMNS) - {"reject_reason"} <= columns
    assert "reject_reason" not in columns
    assert {"source_record_pk", "intake_file_id", "customer_id", "match_method", "match_probability",
            "loaded_at", "run_id"} <= columns


def test_indexes_and_unique_keys(register_engine):
    inspector = sa.inspect(register_engine)

    def unique_sets(table):
        found = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        return found | {tuple(i["column_names"]) for i in inspector.get_indexes(table) if i["unique"]}

    def indexed(table):
        return {tuple(i["column_names"]) for i in inspector.get_indexes(table)}

    assert ("channel", "checksum") in unique_sets("intake_file")
    assert ("channel", "source_record_id") in unique_sets("source_record")
    assert {("customer_id",), ("personal_id",)} <= indexed("source_record")
    assert ("personal_id",) in indexed("customer")
    # the identity-code and customer indexes leave out the nulls (cheaper bulk loads)
    for table, name in (("source_record", "ix_source_record_personal_id"),
                        ("source_record", "ix_source_record_customer_id"),
                        ("customer", "ix_customer_personal_id")):
        options = next(i for i in inspector.get_indexes(table) if i["name"] == name).get("dialect_options", {})
        where = options.get(f"{register_engine.dialect.name}_where")
        assert where is not None and "IS NOT NULL" in str(where).upper(), name
    assert ("channel", "source_record_id") in indexed("quarantine")


def test_models_and_migration_do_not_drift(register_engine):
    check_schema(register_engine)  # `alembic check`: raises on any difference


def test_check_constraints_match_the_models(register_engine):
    """Alembic does not compare CHECK constraints; compare their names here."""
    inspector = sa.inspect(register_engine)
    for table in metadata.sorted_tables:
        expected = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        found = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert found == expected, table.name


def test_drift_would_be_detected(register_engine):
    """The comparison behind check_schema notices a missing index and a changed type."""
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    tampered = changed.tables["source_record"]
    tampered.indexes.discard(next(i for i in tampered.indexes if i.name == "ix_source_record_personal_id"))
    changed.tables["intake_file"].c.size_bytes.type = sa.String(20)
    with register_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, changed)
    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in diff}
    assert "add_index" in kinds or "remove_index" in kinds
    assert "modify_type" in kinds


def test_downgrade_and_upgrade_round_trip(register_engine):
    downgrade(register_engine, "base")
    assert _tables(register_engine) == set()
    migrate(register_engine)
    assert _tables(register_engine) == EXPECTED_TABLES
    assert set(sa.inspect(register_engine).get_view_names()) == EXPECTED_VIEWS
    check_schema(register_engine)


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from pipeline.register.database import alembic_config
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrate_twice_changes_nothing(register_engine):
    migrate(register_engine)
    with register_engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [_head_revision()]
    assert _tables(register_engine) == EXPECTED_TABLES


def _new_customer(connection, now):
    return connection.execute(customer.insert().values(
        identity_verified=False, created_at=now, updated_at=now)).inserted_primary_key[0]


def test_customer_ids_are_never_reused(register_engine):
    now = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    with register_engine.begin() as connection:
        first = _new_customer(connection, now)
        second = _new_customer(connection, now)
        connection.execute(customer.delete().where(customer.c.customer_id == second))
        third = _new_customer(connection, now)
    assert second > first
    assert third > second  # the deleted highest id is not handed out again


def test_times_are_stored_and_read_as_utc(register_engine):
    local = datetime(2026, 7, 1, 18, 30, 15, 123456, tzinfo=HELSINKI_SUMMER)
    with register_engine.begin() as connection:
        connection.execute(intake_file.insert().values(
            channel="web", file_name="web_20260701.jsonl", checksum="0" * 64, size_bytes=1, status="loaded",
            records_read=0, records_accepted=0, records_resent=0, records_quarantined=0,
            loaded_at=local, run_id="run-1"))
    with register_engine.connect() as connection:
        stored = connection.scalar(sa.select(intake_file.c.loaded_at))
        later = connection.scalar(sa.select(sa.func.count()).select_from(intake_file).where(
            intake_file.c.loaded_at > datetime(2026, 7, 1, 15, 30, 15, tzinfo=timezone.utc)))
    assert stored.utcoffset() == timedelta(0)
    assert stored == local
    assert stored.hour == 15
    assert later == 1  # comparisons in SQL see the UTC instant


def test_naive_times_are_refused(register_engine):
    with pytest.raises(sa.exc.StatementError), register_engine.begin() as connection:
        connection.execute(intake_file.insert().values(
            channel="web", file_name="x", checksum="1" * 64, size_bytes=1, status="loaded",
            records_read=0, records_accepted=0, records_resent=0, records_quarantined=0,
            loaded_at=datetime(2026, 7, 1, 18, 30), run_id="run-1"))


@pytest.mark.parametrize("column, value", [
    ("channel", "fax"), ("match_method", "guess"), ("product", "water"), ("match_probability", 1.5)])
def test_code_columns_are_checked(register_engine, column, value):
    now = datetime(2026, 11, 24, tzinfo=timezone.utc)
    with register_engine.begin() as connection:
        file_id = connection.execute(intake_file.insert().values(
            channel="web", file_name="x", checksum="2" * 64, size_bytes=1, status="loaded",
            records_read=1, records_accepted=1, records_resent=0, records_quarantined=0,
            loaded_at=now, run_id="run-1")).inserted_primary_key[0]
    row = dict(channel="web", source_record_id="W-1", intake_file_id=file_id, record_number=1,
               observed_at=now, identity_verified=False, quality_flags="", loaded_at=now, run_id="run-1")
    row[column] = value
    with pytest.raises(sa.exc.IntegrityError), register_engine.begin() as connection:
        connection.execute(source_record.insert().values(**row))


def test_intake_file_counts_must_add_up(register_engine):
    with pytest.raises(sa.exc.IntegrityError), register_engine.begin() as connection:
        connection.execute(intake_file.insert().values(
            channel="web", file_name="x", checksum="3" * 64, size_bytes=1, status="loaded",
            records_read=5, records_accepted=3, records_resent=0, records_quarantined=1,
            loaded_at=datetime(2026, 11, 24, tzinfo=timezone.utc), run_id="run-1"))


def test_migration_0011_records_duplicates_and_reverts_cleanly(register_engine):
    """0011 adds `intake_file_duplicate` alone: down to 0010 drops it, keeping the files loaded;
    up again restores it as the models have it. One name of a content is recorded once, and
    each row names a file `intake_file` holds."""
    now = datetime(2026, 11, 24, tzinfo=timezone.utc)
    with register_engine.begin() as connection:
        file_id = connection.execute(intake_file.insert().values(
            channel="mail", file_name="mail_20261124.csv", checksum="4" * 64, size_bytes=10, status="loaded",
            records_read=0, records_accepted=0, records_resent=0, records_quarantined=0,
            loaded_at=now, run_id="run-1")).inserted_primary_key[0]
    copy = dict(channel="mail", file_name="mail_20261125.csv", checksum="4" * 64, size_bytes=10,
                duplicate_of_intake_file_id=file_id, seen_at=now, run_id="run-2")
    with register_engine.begin() as connection:
        connection.execute(intake_file_duplicate.insert().values(**copy))
    with pytest.raises(sa.exc.IntegrityError), register_engine.begin() as connection:
        connection.execute(intake_file_duplicate.insert().values(**copy))  # the same name twice
    if register_engine.dialect.name == "postgresql":  # SQLite enforces foreign keys only when asked
        with pytest.raises(sa.exc.IntegrityError), register_engine.begin() as connection:
            connection.execute(intake_file_duplicate.insert().values(
                **{**copy, "file_name": "mail_20261126.csv", "duplicate_of_intake_file_id": file_id + 1000}))

    downgrade(register_engine, "0010")
    assert _tables(register_engine) == EXPECTED_TABLES - {"intake_file_duplicate"} - WORKBENCH_TABLES - DEFERRAL_TABLES
    with register_engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(intake_file)).scalar_one() == 1
    migrate(register_engine)
    assert _tables(register_engine) == EXPECTED_TABLES
    check_schema(register_engine)
    inspector = sa.inspect(register_engine)
    assert ("channel", "checksum", "file_name") in {
        tuple(u["column_names"]) for u in inspector.get_unique_constraints("intake_file_duplicate")}
    assert [fk["referred_table"] for fk in inspector.get_foreign_keys("intake_file_duplicate")] == ["intake_file"]


def test_migration_0012_adds_the_workbench_and_reverts_cleanly(register_engine):
    """0012 adds the accounts, the access log, merge records, unmerges and quarantine decisions;
    down to 0011 drops them (and, on PostgreSQL, the append-only trigger), up again restores them."""
    downgrade(register_engine, "0011")
    assert _tables(register_engine) == EXPECTED_TABLES - WORKBENCH_TABLES - DEFERRAL_TABLES
    migrate(register_engine)
    assert _tables(register_engine) == EXPECTED_TABLES
    check_schema(register_engine)


def _log_row(engine: sa.Engine, action: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO access_log (at, user_name, via, action) VALUES "
                                   "(:at, 'aino', 'web', :action)"),
                           {"at": datetime(2026, 12, 8, tzinfo=timezone.utc), "action": action})


def test_migration_0013_adds_review_deferrals_and_reverts_cleanly(register_engine):
    """0013 adds `review_deferral` and the access log's `find_by_code` action (self-contained: it
    can be renumbered); down to 0012 drops the table and refuses the action again, keeping the
    log's rows, indexes and (PostgreSQL) append-only trigger; up again restores both, without drift."""
    _log_row(register_engine, "view_customer")
    downgrade(register_engine, "0012")
    assert _tables(register_engine) == EXPECTED_TABLES - DEFERRAL_TABLES
    with pytest.raises(sa.exc.IntegrityError):
        _log_row(register_engine, "find_by_code")
    migrate(register_engine)
    assert _tables(register_engine) == EXPECTED_TABLES
    _log_row(register_engine, "find_by_code")
    with pytest.raises(sa.exc.IntegrityError):
        _log_row(register_engine, "look_around")
    assert table_count(register_engine, "access_log") == 2
    if register_engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), register_engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM access_log"))
    inspector = sa.inspect(register_engine)
    assert [fk["referred_table"] for fk in inspector.get_foreign_keys("review_deferral")] == ["review_queue"]
    assert ("review_id", "deferred_at") in {tuple(i["column_names"]) for i in inspector.get_indexes("review_deferral")}
    check_schema(register_engine)


def table_count(engine: sa.Engine, name: str) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT COUNT(*) FROM {name}")).scalar_one()


def _review(engine: sa.Engine, status: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO review_queue (probability, evidence, status, created_at) "
            "VALUES (0.9, '{}', :status, :at)"), {"status": status, "at": datetime(2026, 12, 6, tzinfo=timezone.utc)})


def test_migration_0015_adds_the_withdrawn_status_and_reverts_cleanly(register_engine):
    """0015 lets a review be `withdrawn` (the matcher stopped proposing it). Down to 0014 reopens
    withdrawn entries, as the resolver before it would have left them, and refuses the status again;
    the queue's indexes and the views reading it survive both ways (SQLite copies the table)."""
    _review(register_engine, "withdrawn")
    downgrade(register_engine, "0014")
    with register_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT status FROM review_queue")).scalars().all() == ["open"]
    with pytest.raises(sa.exc.IntegrityError):
        _review(register_engine, "withdrawn")
    migrate(register_engine)
    _review(register_engine, "withdrawn")
    with pytest.raises(sa.exc.IntegrityError):
        _review(register_engine, "forgotten")
    with register_engine.connect() as connection:
        # The doubt view still reads the queue (on SQLite it names the copied table).
        connection.execute(sa.text("SELECT COUNT(*) FROM marketing_doubt")).scalar_one()
    indexed = {tuple(i["column_names"]) for i in sa.inspect(register_engine).get_indexes("review_queue")}
    assert {("status",), ("left_customer_id",), ("right_customer_id",)} <= indexed
    check_schema(register_engine)


def test_migration_0016_moves_the_names_index_and_reverts_cleanly(register_engine):
    """0016 replaces the (last name, postal code) index on `customer` by (last name, first names,
    postal code), which serves the doubt view's names at a postal code and its full names anywhere;
    down to 0015 and up again, without drift, the view readable both ways."""
    def indexes() -> set[str]:
        return {i["name"] for i in sa.inspect(register_engine).get_indexes("customer")}

    assert "ix_customer_full_name" in indexes() and "ix_customer_last_name_postal_code" not in indexes()
    assert "'% %'" in view_sql(register_engine, "marketing_doubt")  # the full-names arms
    downgrade(register_engine, "0015")
    assert "ix_customer_last_name_postal_code" in indexes() and "ix_customer_full_name" not in indexes()
    assert "'% %'" not in view_sql(register_engine, "marketing_doubt")  # 0007's view again
    with register_engine.connect() as connection:
        connection.execute(sa.text("SELECT COUNT(*) FROM marketing_contacts")).scalar_one()
    migrate(register_engine)
    assert "ix_customer_full_name" in indexes()
    assert "'% %'" in view_sql(register_engine, "marketing_doubt")  # the full-names arms
    with register_engine.connect() as connection:
        connection.execute(sa.text("SELECT COUNT(*) FROM marketing_contacts")).scalar_one()
    check_schema(register_engine)


def view_sql(engine: sa.Engine, name: str) -> str:
    """The view's definition as the database holds it, spaces squeezed."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            text = connection.execute(sa.text("SELECT pg_get_viewdef(CAST(:name AS regclass), true)"),
                                      {"name": name}).scalar_one()
        else:
            text = connection.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = :name"),
                                      {"name": name}).scalar_one()
    return " ".join(text.split())


def test_migration_0017_leaves_out_ages_from_failed_codes_and_reverts_cleanly(register_engine):
    """0017 adds one condition to `marketing_contacts`; down to 0016 takes it away again."""
    assert "personal_id_invalid" in view_sql(register_engine, "marketing_contacts")
    downgrade(register_engine, "0016")
    assert "personal_id_invalid" not in view_sql(register_engine, "marketing_contacts")
    migrate(register_engine)
    assert "personal_id_invalid" in view_sql(register_engine, "marketing_contacts")
    check_schema(register_engine)


def test_migration_0018_reads_the_doubt_as_an_anti_join_on_postgresql_and_reverts_cleanly(register_engine):
    """0018: PostgreSQL reads `marketing_doubt` through NOT EXISTS (a hash anti-join; NOT IN
    scanned the doubt once per customer: 133 s at 1M); SQLite keeps NOT IN (its NOT EXISTS
    over the view runs once per customer). Down to 0017 and up again."""
    def spelled() -> tuple[bool, bool]:  # (anti-join, NOT IN), as each database prints its views
        text = view_sql(register_engine, "marketing_contacts").lower().replace("( ", "(")
        anti_join = "from marketing_doubt d where d.customer_id = c.customer_id" in text
        not_in = ("not in (select customer_id from marketing_doubt)" in text
                  or "in (select marketing_doubt.customer_id from marketing_doubt)" in text)
        return anti_join, not_in
    postgresql = register_engine.dialect.name == "postgresql"
    assert spelled() == ((True, False) if postgresql else (False, True))
    downgrade(register_engine, "0017")
    assert spelled() == (False, True)
    migrate(register_engine)
    assert spelled() == ((True, False) if postgresql else (False, True))
    check_schema(register_engine)
