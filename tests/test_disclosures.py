"""The disclosure log: every marketing extract, subject access and erasure report is
recorded with its recipient, purpose, legal basis, time, counts and checksums, and a
subject access answers "to whom was my data given". On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.register.disclosures import (
    DEFAULT_MARKETING_TERMS,
    decode_ids,
    disclosure_detail,
    disclosures_of,
    encode_ids,
    list_disclosures,
)
from pipeline.register.marketing import file_name, write_extract
from pipeline.register.rights import erase, render_report, subject_access
from schemas.register import customer, disclosure, source_record
from test_asset_checks import NOW, database_today, load_sample_register


def _log(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return connection.execute(sa.select(disclosure).order_by(disclosure.c.disclosure_id)).all()


def _ids_in_files(folder, products) -> set[int]:
    ids: set[int] = set()
    for product in products:
        with (folder / file_name(product)).open(encoding="utf-8", newline="") as handle:
            ids |= {int(row["customer_id"]) for row in csv.DictReader(handle)}
    return ids


def test_a_published_extract_is_logged_with_its_terms_counts_and_checksums(register_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTER_MARKETING_RECIPIENT", "Testikumppani Oy (synthetic)")
    load_sample_register(register_engine)
    today = database_today(register_engine)
    summary = write_extract(register_engine, tmp_path, today=today, by="run-1", now=NOW)

    (entry,) = _log(register_engine)
    named = _ids_in_files(summary.folder, summary.rows)
    assert entry.kind == "marketing_extract" and entry.disclosed_by == "run-1"
    assert entry.recipient == "Testikumppani Oy (synthetic)"  # from the environment
    assert (entry.purpose, entry.legal_basis) == (DEFAULT_MARKETING_TERMS.purpose, DEFAULT_MARKETING_TERMS.legal_basis)
    assert entry.customer_count == len(named) > 0 and decode_ids(entry.customer_ids) == sorted(named)
    details = entry.details if isinstance(entry.details, dict) else json.loads(entry.details)
    assert details["rows"] == summary.rows and details["products"] == sorted(summary.rows)
    assert details["files_sha256"] == {
        file_name(p): hashlib.sha256((summary.folder / file_name(p)).read_bytes()).hexdigest() for p in summary.rows}

    # The command line's view of the log: newest first, N of M, and one in detail.
    page, total = list_disclosures(register_engine.connect(), limit=10)
    assert total == 1 and [d["disclosure_id"] for d in page] == [entry.disclosure_id]
    with register_engine.connect() as connection:
        shown = disclosure_detail(connection, entry.disclosure_id)
        assert disclosure_detail(connection, entry.disclosure_id + 1) is None
    assert shown["details"]["rows"] == summary.rows and "customer_ids" not in shown


def test_subject_access_says_to_whom_the_data_was_given_and_is_itself_logged(register_engine, tmp_path):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    summary = write_extract(register_engine, tmp_path, today=today, now=NOW)
    named = _ids_in_files(summary.folder, summary.rows)
    with register_engine.connect() as connection:
        everyone = {r[0] for r in connection.execute(sa.select(customer.c.customer_id))}
    listed, unlisted = min(named), min(everyone - named)

    access = subject_access(register_engine, customer_id=listed, by="steward.one", now=NOW)
    (given_to,) = access["disclosures"]
    assert given_to["kind"] == "marketing_extract" and given_to["recipient"] == DEFAULT_MARKETING_TERMS.recipient
    assert access["request"]["counts"]["disclosures"] == 1
    report = render_report(access)
    assert "Your data was disclosed to (1)" in report and DEFAULT_MARKETING_TERMS.recipient in report
    # Nobody else's extract: a customer it did not name was disclosed to no one.
    assert subject_access(register_engine, customer_id=unlisted, by="steward.one", now=NOW)["disclosures"] == []

    # The answer itself went to the person: logged, and the next access names it.
    again = subject_access(register_engine, customer_id=listed, by="steward.two", now=NOW + dt.timedelta(days=1))
    assert [d["kind"] for d in again["disclosures"]] == ["marketing_extract", "subject_access"]
    assert again["disclosures"][1]["recipient"] == "the data subject"
    kinds = [row.kind for row in _log(register_engine)]
    assert kinds == ["marketing_extract", "subject_access", "subject_access", "subject_access"]


def test_an_erasure_report_is_logged_but_not_its_dry_run(register_engine):
    load_sample_register(register_engine)
    with register_engine.connect() as connection:
        subject = connection.execute(sa.select(sa.func.min(customer.c.customer_id))).scalar_one()
    erase(register_engine, customer_id=subject, reason="ticket 1", by="steward.one", now=NOW, dry_run=True)
    assert _log(register_engine) == []
    erase(register_engine, customer_id=subject, reason="ticket 1", by="steward.one", now=NOW)
    (entry,) = _log(register_engine)
    assert (entry.kind, entry.recipient, entry.customer_count) == ("erasure_report", "the data subject", 1)
    assert decode_ids(entry.customer_ids) == [subject]
    details = entry.details if isinstance(entry.details, dict) else json.loads(entry.details)
    assert details["deleted"]["source_record"] >= 1


def test_the_log_holds_no_personal_value(register_engine, tmp_path):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    summary = write_extract(register_engine, tmp_path, today=today, now=NOW)
    subject_access(register_engine, customer_id=min(_ids_in_files(summary.folder, summary.rows)), by="s", now=NOW)
    with register_engine.connect() as connection:
        values = {str(v) for row in connection.execute(sa.select(
            source_record.c.personal_id, source_record.c.first_names, source_record.c.last_name,
            source_record.c.street_address, source_record.c.phone, source_record.c.email)) for v in row if v}
        logged = " ".join(f"{r.recipient} {r.purpose} {r.legal_basis} {r.disclosed_by} {json.dumps(r.details)}"
                          if isinstance(r.details, dict) else f"{r.recipient} {r.details}" for r in _log(register_engine))
    assert values and len(_log(register_engine)) == 2
    leaked = [v for v in values if v in logged]
    assert not leaked, f"{len(leaked)} personal values in the disclosure log"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=2**40), max_size=300))
def test_the_id_list_round_trips(ids):
    assert decode_ids(encode_ids(ids)) == sorted(set(ids))


def test_disclosures_of_finds_a_customer_among_many(register_engine):
    many = range(1, 400_001, 3)
    with register_engine.begin() as connection:
        connection.execute(disclosure.insert().values(
            kind="marketing_extract", recipient="r", purpose="p", legal_basis="b", disclosed_at=NOW,
            disclosed_by="t", customer_count=len(many), customer_ids=encode_ids(many), details={}))
    with register_engine.connect() as connection:
        assert len(disclosures_of(connection, [7])) == 1      # 7 = 1 + 2 * 3
        assert disclosures_of(connection, [8, 9]) == []
        assert len(disclosures_of(connection, [8, 399_997])) == 1
    assert len(encode_ids(many)) < 40_000, "a nightly list stays small"


def test_the_command_line_lists_and_shows_the_log(register_engine, tmp_path, capsys):
    from pipeline.cli import main

    url = register_engine.url.render_as_string(hide_password=False)
    load_sample_register(register_engine)
    summary = write_extract(register_engine, tmp_path, today=database_today(register_engine), by="run-7", now=NOW)
    subject_access(register_engine, customer_id=min(_ids_in_files(summary.folder, summary.rows)), by="s", now=NOW)
    capsys.readouterr()
    assert main(["--database-url", url, "disclosures", "list"]) == 0
    listed = capsys.readouterr().out
    assert "showing 1-2 of 2 disclosures" in listed
    assert listed.index("subject_access") < listed.index("marketing_extract") or "2026" in listed
    assert main(["--database-url", url, "disclosures", "list", "--json", "--limit", "1"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert (page["total"], len(page["items"])) == (2, 1)
    extract_id = min(d.disclosure_id for d in _log(register_engine) if d.kind == "marketing_extract")
    assert main(["--database-url", url, "disclosures", "show", str(extract_id)]) == 0
    shown = capsys.readouterr().out
    assert DEFAULT_MARKETING_TERMS.legal_basis in shown and "run-7" in shown
    assert all(f"marketing_{p}.csv" in shown for p in summary.rows)
    assert main(["--database-url", url, "disclosures", "show", "999999"]) != 0
