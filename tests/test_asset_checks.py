"""Every asset check passes on a correct load and fails when its invariant is broken.

For each check of the register (counts add up; no invalid or temporary code on a
customer; no two customers share a code; the marketing view respects every
prohibition) and the check of the marketing extract, on SQLite and PostgreSQL:
the domain query on a correct load, then after breaking the invariant on purpose
(a tampered row, a wrong view, a tampered file); and the Dagster check function
itself, invoked directly with its resources. Synthetic people only; assertion
messages carry counts, never values.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import importlib.util
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from assets.checks import (
    intake_counts_add_up,
    marketing_list_respects_prohibitions,
    no_invalid_or_temporary_codes_on_customers,
    no_two_customers_share_a_code,
)
from assets.marketing import marketing_extract_respects_prohibitions
from pipeline.register.checks import (
    customers_sharing_a_code,
    customers_with_invalid_codes,
    marketing_view_violations,
    unbalanced_files,
)
from pipeline.register.load import load_intake
from pipeline.register.marketing import adult_born_on_or_before, doubt, verify_extract, write_extract
from pipeline.register.resolve import resolve_identities
from pipeline.orchestration.resources import ExtractDirectory, RegisterDatabase
from schemas.canonical import PRODUCTS
from schemas.register import customer, intake_file, quarantine
from test_register_helpers import accepted_records, batch, file_row, personal_id, quarantined_records

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)
ROOT = Path(__file__).resolve().parents[1]


# --- a correct register ----------------------------------------------------------------------------

def load_sample_register(engine: sa.Engine, *, now: dt.datetime = NOW, people: int = 40) -> None:
    """A small correct register: `people` synthetic people born 1950-2019 (so some minors),
    with every marketing answer (yes, no, unstated), products of every kind, two without a
    code or birth date, two sharing a phone (one prohibits), and two quarantined records."""
    web = file_row("web", "web_20261124.jsonl")
    records = accepted_records(web, [f"W-{i}" for i in range(people)], first=40)
    records["product"] = [PRODUCTS[i % len(PRODUCTS)] for i in range(people)]
    unknown_age = records.index[-2:]
    records.loc[unknown_age, "personal_id"] = None
    records.loc[unknown_age, "birth_date"] = pd.NaT
    # A shared landline: someone who said no and a housemate who did not, held back for it.
    said_no = records.index[records["marketing_prohibited"].eq(True).fillna(False)][0]
    housemate = records.index[records["marketing_prohibited"].eq(False).fillna(False)
                              & (records.index > said_no)][0]
    records.loc[housemate, "phone"] = records.loc[said_no, "phone"]
    quarantined = quarantined_records(web, ["malformed_record", "missing_record_id"])
    load_intake(engine, batch([web], [records], [quarantined]), run_id="test", now=now,
                after_load=lambda connection: resolve_identities(connection, now=now, run_id="test"))


def database_today(engine: sa.Engine) -> dt.date:
    """The date the view `marketing_contacts` goes by: Finland's on PostgreSQL, UTC's on SQLite."""
    query = ("SELECT CAST(CURRENT_TIMESTAMP AT TIME ZONE 'Europe/Helsinki' AS DATE)"
             if engine.dialect.name == "postgresql" else "SELECT date('now')")
    with engine.connect() as connection:
        value = connection.exec_driver_sql(query).scalar_one()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def customers(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return connection.execute(sa.select(
            customer.c.customer_id, customer.c.personal_id, customer.c.marketing_prohibited, customer.c.birth_date,
            customer.c.erased_at, customer.c.merged_into).order_by(customer.c.customer_id)).all()


def insert_customer(engine: sa.Engine, **values) -> int:
    row = {"identity_verified": False, "created_at": NOW, "updated_at": NOW, **values}
    with engine.begin() as connection:
        return connection.execute(customer.insert().values(**row).returning(customer.c.customer_id)).scalar_one()


def update_customer(engine: sa.Engine, customer_id: int, **values) -> None:
    with engine.begin() as connection:
        connection.execute(customer.update().where(customer.c.customer_id == customer_id).values(**values))


def check_context(engine: sa.Engine, extract: Path | None = None) -> dg.AssetCheckExecutionContext:
    """A context for invoking a Dagster check directly, with the resources it needs."""
    resources: dict[str, object] = {"register_db": RegisterDatabase(url=engine.url.render_as_string(hide_password=False))}
    if extract is not None:
        resources["extract_dir"] = ExtractDirectory(path=str(extract))
    return dg.build_asset_check_context(resources=resources)


def eligible_ids(engine: sa.Engine, today: dt.date) -> set[int]:
    """Who may be marketed to, decided here in Python from the customer table (not the view)."""
    cutoff = adult_born_on_or_before(today)
    # More than 115 years old is past belief (a slipped century sign): not a known adult.
    oldest = dt.date(today.year - 115, today.month, 28 if (today.month, today.day) == (2, 29) else today.day)
    rows = customers(engine)
    # An erased customer's kept prohibition holds for its identity code.
    objected = {r.personal_id for r in rows if r.erased_at is not None and r.marketing_prohibited and r.personal_id}
    with engine.connect() as connection:  # held back under doubt: from the tables, not the view
        held = doubt(connection, today).held
    return {r.customer_id for r in rows
            if not r.marketing_prohibited and r.birth_date is not None and oldest <= r.birth_date <= cutoff
            and r.erased_at is None and r.merged_into is None and r.personal_id not in objected
            and r.customer_id not in held}


# --- a wrong view, put back afterwards ------------------------------------------------------------

def _migration(file_name: str):
    path = ROOT / "schemas" / "migrations" / "versions" / file_name
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}_for_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def migration_0003():
    """Migration 0003 as a module (its view definitions and age rule)."""
    return _migration("0003_access_and_rights.py")


def migration_0006():
    """Migration 0006 as a module (the marketing view with doubt)."""
    return _migration("0006_marketing_doubt.py")


def marketing_contacts_now(dialect: str) -> str:
    """The body of `marketing_contacts` as the latest migration defines it (0018)."""
    return _migration("0018_doubt_as_anti_join.py")._marketing_contacts(
        dialect, anti_join=True).split(" AS", 1)[1]


# Same columns as the real view, but it forgets every rule: everyone is listed.
EVERYONE_VIEW = """
SELECT c.customer_id, c.first_names, c.last_name, c.street_address, c.postal_code, c.city, c.email, c.phone,
       s.product
FROM customer c
LEFT JOIN (SELECT DISTINCT customer_id, product FROM service) s ON s.customer_id = c.customer_id
"""


def _create_view(connection: sa.Connection, body: str) -> None:
    if connection.dialect.name == "postgresql":  # keeps the analyst role's grant on the view
        # psycopg reads % as a placeholder even without parameters (the view has LIKE '%...%').
        connection.exec_driver_sql(f"CREATE OR REPLACE VIEW marketing_contacts AS {body}".replace("%", "%%"))
    else:
        connection.exec_driver_sql("DROP VIEW marketing_contacts")
        connection.exec_driver_sql(f"CREATE VIEW marketing_contacts AS {body}")


@contextlib.contextmanager
def wrong_marketing_view(engine: sa.Engine):
    """The view `marketing_contacts` replaced by one that lists everyone, for the block; then the real one."""
    with engine.begin() as connection:
        _create_view(connection, EVERYONE_VIEW)
    try:
        yield
    finally:
        with engine.begin() as connection:
            _create_view(connection, marketing_contacts_now(engine.dialect.name))


# --- intake_counts_add_up --------------------------------------------------------------------------

def test_counts_add_up_on_a_correct_load(register_engine):
    load_sample_register(register_engine)
    assert unbalanced_files(register_engine) == []
    assert intake_counts_add_up(check_context(register_engine)).passed


def test_counts_check_fails_when_a_files_counts_do_not_add_up(register_engine):
    load_sample_register(register_engine)
    with register_engine.begin() as connection:
        file_id = connection.execute(sa.select(intake_file.c.intake_file_id)).scalar_one()
        # One more record counted as erased than was removed: accepted - resent - erased <> held.
        connection.execute(intake_file.update().values(records_erased=intake_file.c.records_erased + 1))
    assert unbalanced_files(register_engine) == [file_id]
    result = intake_counts_add_up(check_context(register_engine))
    assert not result.passed
    assert result.metadata["unbalanced_files"].value == 1


def _files_by_name(engine: sa.Engine) -> dict[str, sa.Row]:
    with engine.connect() as connection:
        return {r.file_name: r for r in connection.execute(sa.select(intake_file))}


def test_counts_add_up_only_when_quarantined_records_are_counted(register_engine):
    """Files whose counts balance only with their quarantine: a mixed file, a file of nothing but
    rejected records, a file whose rejected records were re-sent (re-quarantined, held once) and a
    file quarantined whole (its entry is no record). Each count of quarantined records must match
    the quarantine entries held: one entry missing, or one more counted, is caught."""
    web = file_row("web", "web_20261124.jsonl")
    rejected = quarantined_records(web, ["malformed_record", "no_identity", "missing_record_id", "no_identity"])
    mail = file_row("mail", "mail_20261124.csv")
    unreadable = file_row("phone", "phone_20261124.csv", reason="file_unreadable", detail="phone_20261124.csv")
    load_intake(register_engine, batch([web, mail, unreadable],
                                       [accepted_records(web, ["W-1", "W-2", "W-3"])],
                                       [rejected, quarantined_records(mail, ["no_identity", "invalid_timestamp"])]),
                run_id="test", now=NOW)
    # The next day the web channel sends the same rejected records again (same ids, same raw values).
    resend = file_row("web", "web_20261125.jsonl")
    again = rejected.assign(checksum=resend["checksum"])
    load_intake(register_engine, batch([resend], [accepted_records(resend, ["W-4"], first=10)], [again]),
                run_id="test", now=NOW)

    files = _files_by_name(register_engine)
    counts = {name: (f.records_read, f.records_accepted, f.records_quarantined, f.records_requarantined)
              for name, f in files.items()}
    assert counts["web_20261124.jsonl"] == (7, 3, 4, 0)
    assert counts["mail_20261124.csv"] == (2, 0, 2, 0)
    assert counts["web_20261125.jsonl"][2:] == (4, 2), "the re-sent rejected records with an id are re-quarantined"
    assert files["phone_20261124.csv"].status == "quarantined"
    with register_engine.connect() as connection:
        entries = dict(connection.execute(sa.text(
            "SELECT f.file_name, COUNT(q.quarantine_id) FROM intake_file f "
            "LEFT JOIN quarantine q ON q.intake_file_id = f.intake_file_id GROUP BY f.file_name")).all())
    assert entries == {"web_20261124.jsonl": 4, "mail_20261124.csv": 2, "web_20261125.jsonl": 2,
                       "phone_20261124.csv": 1}, entries
    assert unbalanced_files(register_engine) == []
    assert intake_counts_add_up(check_context(register_engine)).passed

    def caught(tamper: str, parameters: dict, file_name: str) -> None:
        """The tampered register fails the check on that file alone; then the tamper is undone."""
        with register_engine.connect() as connection:
            before = [tuple(r) for r in connection.execute(sa.select(quarantine).order_by(quarantine.c.quarantine_id))]
        with register_engine.begin() as connection:
            connection.execute(sa.text(tamper), parameters)
        try:
            assert unbalanced_files(register_engine) == [files[file_name].intake_file_id], \
                f"{file_name} tampered ({tamper.split()[0]}), not caught"
            result = intake_counts_add_up(check_context(register_engine))
            assert not result.passed and result.metadata["unbalanced_files"].value == 1
        finally:
            with register_engine.begin() as connection:
                connection.execute(quarantine.delete())
                connection.execute(quarantine.insert(), [dict(zip(quarantine.c.keys(), row)) for row in before])
                connection.execute(intake_file.update().where(intake_file.c.file_name == file_name).values(
                    records_read=files[file_name].records_read,
                    records_quarantined=files[file_name].records_quarantined,
                    records_requarantined=files[file_name].records_requarantined))
        assert unbalanced_files(register_engine) == []

    first_web = files["web_20261124.jsonl"].intake_file_id
    # One quarantine entry lost: the file still reads 7 = 3 + 4, but holds only three entries.
    caught("DELETE FROM quarantine WHERE quarantine_id = (SELECT MIN(quarantine_id) FROM quarantine "
           "WHERE intake_file_id = :f)", {"f": first_web}, "web_20261124.jsonl")
    # One more record read and quarantined than the quarantine holds (read = accepted + quarantined still).
    caught("UPDATE intake_file SET records_read = records_read + 1, records_quarantined = records_quarantined + 1 "
           "WHERE file_name = :n", {"n": "mail_20261124.csv"}, "mail_20261124.csv")
    # The re-sends counted as new entries: two more quarantined than held.
    caught("UPDATE intake_file SET records_requarantined = 0 WHERE file_name = :n", {"n": "web_20261125.jsonl"},
           "web_20261125.jsonl")


# --- no_invalid_or_temporary_codes_on_customers -----------------------------------------------------

def test_no_invalid_codes_on_a_correct_load(register_engine):
    load_sample_register(register_engine)
    assert sum(1 for r in customers(register_engine) if r.personal_id) >= 30, "the sample holds too few codes"
    assert customers_with_invalid_codes(register_engine, NOW.date()) == []
    assert no_invalid_or_temporary_codes_on_customers(check_context(register_engine)).passed


def test_invalid_code_check_fails_on_a_temporary_or_bad_code(register_engine):
    load_sample_register(register_engine)
    temporary = personal_id(3, 4, 1985, 905)           # individual number 900-999: a temporary code
    valid = personal_id(3, 4, 1985, 205)
    wrong_check = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    # Not the canonical form the pipeline stores (a check letter in lower case).
    lower_case = next(code for code in (personal_id(5, 6, 1977, n) for n in range(223, 260))
                      if code[-1].isalpha()).lower()
    bad = {insert_customer(register_engine, personal_id=code) for code in (temporary, wrong_check, lower_case)}
    insert_customer(register_engine, personal_id=personal_id(7, 8, 1966, 321))  # a valid one stays fine
    found = customers_with_invalid_codes(register_engine, NOW.date())
    assert set(found) == bad, f"{len(found)} customers found with a bad code, {len(bad)} expected"
    result = no_invalid_or_temporary_codes_on_customers(check_context(register_engine))
    assert not result.passed
    assert result.metadata["customers_with_invalid_code"].value == 3
    assert result.metadata["customer_ids"].value == sorted(bad)  # which customers, ids only


# --- no_two_customers_share_a_code ----------------------------------------------------------------

def test_no_shared_codes_on_a_correct_load(register_engine):
    load_sample_register(register_engine)
    assert customers_sharing_a_code(register_engine) == []
    assert no_two_customers_share_a_code(check_context(register_engine)).passed


def test_shared_code_check_fails_when_two_active_customers_hold_one_code(register_engine):
    load_sample_register(register_engine)
    holder = next(r for r in customers(register_engine) if r.personal_id)
    # A merged-away customer holding the code is history, not a second person.
    merged = insert_customer(register_engine, personal_id=holder.personal_id, merged_into=holder.customer_id)
    assert customers_sharing_a_code(register_engine) == [], "a merged customer counted as sharing"
    second = insert_customer(register_engine, personal_id=holder.personal_id)
    assert customers_sharing_a_code(register_engine) == [(holder.customer_id, second)]
    assert merged not in customers_sharing_a_code(register_engine)[0]
    result = no_two_customers_share_a_code(check_context(register_engine))
    assert not result.passed
    assert result.metadata["codes_shared"].value == 1
    assert result.metadata["customers_sharing"].value == 2
    assert result.metadata["customer_ids"].value == [[holder.customer_id, second]]


# --- marketing_list_respects_prohibitions -----------------------------------------------------------

def _break_some_rules(engine: sa.Engine, today: dt.date) -> None:
    """One otherwise eligible customer erased, one merged into another: the real view drops both."""
    first, second, *_ = sorted(eligible_ids(engine, today))
    update_customer(engine, first, erased_at=NOW)
    update_customer(engine, second, merged_into=first)


def test_marketing_view_respects_prohibitions_on_a_correct_load(register_engine):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    _break_some_rules(register_engine, today)
    everyone = customers(register_engine)
    assert any(r.marketing_prohibited for r in everyone) and any(
        r.birth_date is not None and r.birth_date > adult_born_on_or_before(today) for r in everyone), \
        "the sample must hold prohibited people and minors for this test to mean anything"
    assert marketing_view_violations(register_engine, today).ok
    assert marketing_list_respects_prohibitions(check_context(register_engine)).passed


def test_marketing_view_check_fails_on_a_view_that_forgets_the_rules(register_engine):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    _break_some_rules(register_engine, today)
    cutoff = adult_born_on_or_before(today)
    everyone = customers(register_engine)
    expected = {
        "prohibited": sum(1 for r in everyone if r.marketing_prohibited),
        "minor_or_unknown_age": sum(1 for r in everyone if r.birth_date is None or r.birth_date > cutoff),
        "erased": sum(1 for r in everyone if r.erased_at is not None),
        "merged": sum(1 for r in everyone if r.merged_into is not None),
        "unknown_customer": 0,
    }
    with register_engine.connect() as connection:
        expected["held_under_doubt"] = len(doubt(connection, today).held)
    expected["ineligible_customers"] = len(everyone) - len(eligible_ids(register_engine, today))
    assert min(expected.values()) == 0 and sorted(expected.values())[1] >= 1
    with wrong_marketing_view(register_engine):
        violations = marketing_view_violations(register_engine, today)
        assert violations.counts() == expected
        result = marketing_list_respects_prohibitions(check_context(register_engine))
        assert not result.passed
        assert result.metadata["prohibited"].value == expected["prohibited"]
        assert result.metadata["customer_ids"].value == sorted(violations.customer_ids)
        assert len(violations.customer_ids) == expected["ineligible_customers"]
    # The real view is back, and passes again.
    assert marketing_view_violations(register_engine, today).ok


# --- marketing_extract_respects_prohibitions --------------------------------------------------------

def _extract_file_rows(folder: Path, product: str) -> list[dict]:
    with (folder / f"marketing_{product}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _append_row(path: Path, customer_id: str) -> None:
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow([customer_id, "Testi", "Esimerkki", "Testitie 1", "00100", "HELSINKI",
                                     "testi@example.fi", "+358401234567"])


def test_extract_check_passes_on_a_fresh_extract(register_engine, tmp_path):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    summary = write_extract(register_engine, tmp_path, today=today)
    assert sum(summary.rows.values()) >= 5, "the sample extract is too small to test anything"
    verification = verify_extract(register_engine, tmp_path, today=today)
    assert verification.ok and verification.rows == {f"marketing_{p}.csv": summary.rows[p] for p in PRODUCTS}
    assert marketing_extract_respects_prohibitions(check_context(register_engine, tmp_path)).passed


@pytest.mark.parametrize("tamper", ["prohibited_row", "minor_row", "unknown_id", "unreadable_id", "no_extract"])
def test_extract_check_fails_on_a_tampered_file(register_engine, tmp_path, tamper):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    extract = tmp_path / "extract"
    write_extract(register_engine, extract, today=today)
    folder = extract / today.isoformat()
    everyone = customers(register_engine)
    target = folder / "marketing_tv.csv"
    if tamper == "prohibited_row":
        _append_row(target, str(next(r.customer_id for r in everyone if r.marketing_prohibited)))
    elif tamper == "minor_row":
        cutoff = adult_born_on_or_before(today)
        _append_row(target, str(next(r.customer_id for r in everyone
                                     if r.birth_date is not None and r.birth_date > cutoff)))
    elif tamper == "unknown_id":
        _append_row(target, str(max(r.customer_id for r in everyone) + 1000))
    elif tamper == "unreadable_id":
        _append_row(target, "not-an-id")
    else:
        extract = tmp_path / "nothing-here"
    verification = verify_extract(register_engine, extract, today=today)
    assert not verification.ok
    counts = verification.metadata()
    expected_key = {"prohibited_row": "prohibited", "minor_row": "minor_or_unknown_age",
                    "unknown_id": "unknown_customer", "unreadable_id": "unreadable_rows",
                    "no_extract": "files"}[tamper]
    assert counts[expected_key] == (0 if tamper == "no_extract" else 1)
    result = marketing_extract_respects_prohibitions(check_context(register_engine, extract))
    assert not result.passed
