"""Re-sent records whose content differs, partial-then-complete files, re-sent quarantined
records (issue 9, issue 8 item 5), on SQLite and PostgreSQL.

docs/intake_formats.md: a record id seen again is a re-send of the same record; when its
content differs it is a newer version, and its changes are kept, never dropped.
docs/register_rules.md rule 3: loading days one at a time ends as loading them all at
once. Synthetic values only.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.register import rights, steward
from pipeline.register.checks import unbalanced_files
from pipeline.register.load import ACCEPTED_COLUMNS, FILE_COLUMNS, QUARANTINED_COLUMNS, IntakeBatch, load_intake
from pipeline.register.marketing import marketing_contacts
from pipeline.matching.settings import MatchSettings
from pipeline.register.resolve import resolve_identities
from test_register_helpers import checksum, clear, personal_id

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)
CODE = personal_id(3, 4, 1971, 212)
PERSON = {"first_names": "Testi Aino", "last_name": "Versiokas", "personal_id": CODE,
          "birth_date": pd.Timestamp(1971, 4, 3), "street_address": "Vanhatie 1 A 2", "postal_code": "00100",
          "city": "Helsinki", "phone": "+358401110001", "email": "aino.versiokas@example.fi",
          "product": "electricity"}


def record(channel: str, rid: str, when: str, **values) -> dict:
    base = {"channel": channel, "source_record_id": rid, "record_number": 1,
            "observed_at": pd.Timestamp(when, tz="UTC"), "first_names": None, "last_name": None,
            "personal_id": None, "birth_date": None, "street_address": None, "postal_code": None, "city": None,
            "phone": None, "email": None, "iban": None, "bic": None, "product": None, "metering_point": None,
            "marketing_prohibited": None, "identity_verified": False, "quality_flags": ""}
    base.update(values)
    return base


def quarantined(channel: str, rid: str | None, raw: dict, reasons: str = "malformed_record") -> dict:
    return {"channel": channel, "source_record_id": rid, "reasons": reasons, "detail": None,
            "raw_values": json.dumps(raw)}


def file_batch(channel: str, name: str, accepted: list[dict] = (), rejected: list[dict] = ()) -> IntakeBatch:
    """One landed file: its accepted records and its quarantined ones, numbered in that order."""
    digest = checksum(name)
    files = pd.DataFrame([{"channel": channel, "file_name": name, "checksum": digest, "size_bytes": 1,
                           "file_reason": None, "file_detail": None}], columns=list(FILE_COLUMNS))
    good = pd.DataFrame([{**r, "record_number": n, "checksum": digest} for n, r in enumerate(accepted, start=1)],
                        columns=list(ACCEPTED_COLUMNS))
    good["birth_date"] = pd.to_datetime(good["birth_date"])
    good["marketing_prohibited"] = good["marketing_prohibited"].astype("boolean")
    bad = pd.DataFrame([{**q, "record_number": len(accepted) + n, "checksum": digest}
                        for n, q in enumerate(rejected, start=1)], columns=list(QUARANTINED_COLUMNS))
    return IntakeBatch(files=files, accepted=good, quarantined=bad)


def together(*batches: IntakeBatch) -> IntakeBatch:
    def joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
        # Empty frames left out (their all-NA columns would decide no dtype in a future pandas).
        return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)

    return IntakeBatch(files=joined([b.files for b in batches]), accepted=joined([b.accepted for b in batches]),
                       quarantined=joined([b.quarantined for b in batches]))


def load(engine, batch: IntakeBatch):
    return load_intake(engine, batch, run_id="test", now=NOW, after_load=lambda connection: resolve_identities(
        connection, now=NOW, run_id="test", settings=MatchSettings()))


def rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.text(sql)).all()]


def file_counts(engine, name: str) -> tuple:
    return rows(engine, "SELECT records_read, records_accepted, records_resent, records_versioned, "
                        f"records_quarantined, records_requarantined FROM intake_file WHERE file_name = '{name}'")[0]


def golden(engine, rid: str) -> dict:
    with engine.connect() as connection:
        return dict(connection.execute(sa.text(
            "SELECT c.* FROM customer AS c JOIN source_record AS s ON s.customer_id = c.customer_id "
            "WHERE s.source_record_id = :rid"), {"rid": rid}).mappings().one())


# --- 1. a changed re-send is a new version ----------------------------------------------------------

def test_a_changed_resend_is_a_new_version_and_reaches_the_customer(register_engine):
    day1 = file_batch("web", "web_20261124.jsonl", [record("web", "W-1", "2026-11-24T10:00", **PERSON)])
    moved = {**PERSON, "email": "aino.uusi@example.fi", "street_address": "Uusikatu 9 C 30"}
    day2 = file_batch("web", "web_20261125.jsonl", [record("web", "W-1", "2026-11-25T09:00", **moved)])
    load(register_engine, day1)
    summary = load(register_engine, day2)

    assert summary.total.versioned == 1 and summary.total.resent == 0 and summary.total.inserted == 0
    assert file_counts(register_engine, "web_20261125.jsonl") == (1, 1, 0, 1, 0, 0)
    # One source record, holding the current (later) version; the earlier one kept as history.
    assert rows(register_engine, "SELECT email, street_address FROM source_record") == [
        ("aino.uusi@example.fi", "Uusikatu 9 C 30")]
    assert rows(register_engine, "SELECT email, street_address FROM source_record_version") == [
        ("aino.versiokas@example.fi", "Vanhatie 1 A 2")]
    # The change reached the golden record: the customer was resolved again.
    customer = golden(register_engine, "W-1")
    assert (customer["email"], customer["street_address"]) == ("aino.uusi@example.fi", "Uusikatu 9 C 30")
    assert summary.after_load.versions_resolved == 1
    assert rows(register_engine, "SELECT COUNT(*) FROM customer") == [(1,)]
    # Every version keeps the file it came from: the counts still add up.
    assert unbalanced_files(register_engine) == []
    assert rows(register_engine, "SELECT COUNT(*) FROM match_key m JOIN source_record s "
                                 "ON s.source_record_pk = m.source_record_pk") != [(0,)]


def test_an_identical_resend_is_counted_and_writes_nothing(register_engine):
    first = record("phone", "P-1", "2026-11-24T10:00", **PERSON)
    load(register_engine, file_batch("phone", "phone_20261124.csv", [first]))
    before = rows(register_engine, "SELECT * FROM source_record"), rows(register_engine, "SELECT * FROM customer")
    summary = load(register_engine, file_batch("phone", "phone_20261125.csv", [first]))
    assert summary.total.resent == 1 and summary.total.versioned == 0
    assert summary.after_load.records_resolved == 0
    assert (rows(register_engine, "SELECT * FROM source_record"), rows(register_engine, "SELECT * FROM customer")) \
        == before
    assert rows(register_engine, "SELECT COUNT(*) FROM source_record_version") == [(0,)]
    assert unbalanced_files(register_engine) == []


def test_an_older_version_arriving_late_stays_history_and_a_repeat_of_it_is_a_resend(register_engine):
    newer = record("mail", "M-1", "2026-11-25T10:00", **{**PERSON, "phone": "+358401110002"})
    older = record("mail", "M-1", "2026-11-20T10:00", **PERSON)
    load(register_engine, file_batch("mail", "mail_b.csv", [newer]))
    late = load(register_engine, file_batch("mail", "mail_a.csv", [older]))
    again = load(register_engine, file_batch("mail", "mail_a2.csv", [older]))
    assert late.total.versioned == 1 and late.after_load.records_resolved == 0  # the current did not change
    assert again.total.resent == 1 and again.total.versioned == 0
    assert rows(register_engine, "SELECT phone FROM source_record") == [("+358401110002",)]
    assert rows(register_engine, "SELECT phone FROM source_record_version") == [("+358401110001",)]
    assert unbalanced_files(register_engine) == []


def test_a_stated_prohibition_is_never_lost_to_a_tie(register_engine):
    # The same export read twice: once cut off before the final "x", once complete.
    cut = record("mail", "M-7", "2026-11-24T00:00", **{k: v for k, v in PERSON.items() if k != "product"})
    complete = record("mail", "M-7", "2026-11-24T00:00", **PERSON, marketing_prohibited=True)
    # Same time, more values stated, but no prohibition: still loses to the prohibition.
    fuller = record("mail", "M-7", "2026-11-24T00:00", **PERSON, iban="FI2112345600000785",
                    marketing_prohibited=False)
    for order in ([cut, complete, fuller], [fuller, complete, cut], [complete, fuller, cut]):
        clear(register_engine)
        for n, version in enumerate(order):
            load(register_engine, file_batch("mail", f"mail_{n}.csv", [version]))
        assert rows(register_engine, "SELECT marketing_prohibited, product FROM source_record") == [
            (True, "electricity")], order
        assert golden(register_engine, "M-7")["marketing_prohibited"] in (True, 1)
        with register_engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(marketing_contacts)).scalar_one() == 0
        assert rows(register_engine, "SELECT COUNT(*) FROM source_record_version") == [(2,)]
        assert unbalanced_files(register_engine) == []


def test_a_truncated_then_complete_copy_keeps_the_complete_one(register_engine):
    cut = record("phone", "P-5", "2026-11-24T12:00", **{**PERSON, "email": None, "product": None})
    complete = record("phone", "P-5", "2026-11-24T12:00", **PERSON)
    load(register_engine, file_batch("phone", "phone_20261124.csv", [cut]))
    summary = load(register_engine, file_batch("phone", "phone_20261124_complete.csv", [complete]))
    assert summary.total.versioned == 1
    assert rows(register_engine, "SELECT email, product FROM source_record") == [
        ("aino.versiokas@example.fi", "electricity")]
    assert golden(register_engine, "P-5")["email"] == "aino.versiokas@example.fi"
    assert rows(register_engine, "SELECT product FROM service") == [("electricity",)]


def test_a_corrected_identity_code_moves_the_record_to_its_person(register_engine):
    other = personal_id(9, 9, 1969, 404)
    load(register_engine, file_batch("in_person", "in_person_1.xlsx", [
        record("in_person", "I-1", "2026-11-20T10:00", **{**PERSON, "personal_id": other,
                                                          "birth_date": pd.Timestamp(1969, 9, 9),
                                                          "first_names": "Testi Ville", "email": None}),
        record("in_person", "I-2", "2026-11-21T10:00", **PERSON)]))
    assert rows(register_engine, "SELECT COUNT(DISTINCT customer_id) FROM source_record") == [(2,)]
    # I-2 was keyed with the wrong code; the desk sends the corrected record.
    load(register_engine, file_batch("in_person", "in_person_2.xlsx", [
        record("in_person", "I-2", "2026-11-22T10:00", **{**PERSON, "personal_id": other,
                                                          "birth_date": pd.Timestamp(1969, 9, 9),
                                                          "first_names": "Testi Ville"})]))
    assert rows(register_engine, "SELECT COUNT(DISTINCT customer_id) FROM source_record") == [(1,)]
    active = rows(register_engine, "SELECT personal_id, email FROM customer WHERE merged_into IS NULL "
                                   "AND customer_id IN (SELECT customer_id FROM source_record)")
    assert active == [(other, "aino.versiokas@example.fi")]
    # No customer keeps the wrong code's stale golden values as an active, listed person.
    assert rows(register_engine, f"SELECT COUNT(*) FROM customer WHERE personal_id = '{CODE}' "
                                 "AND merged_into IS NULL") == [(0,)]


# --- 2. partial then complete: the quarantine entry is resolved -------------------------------------

def test_a_record_quarantined_from_a_partial_file_is_resolved_when_loaded_complete(register_engine):
    partial = file_batch("web", "web_20261124.jsonl", [record("web", "W-1", "2026-11-24T10:00", **PERSON)],
                         [quarantined("web", "W-2", {"raw": '{"id": "W-2", "person": {"first_na'})])
    complete = file_batch("web", "web_20261124_complete.jsonl", [
        record("web", "W-1", "2026-11-24T10:00", **PERSON),
        record("web", "W-2", "2026-11-24T10:05", **{**PERSON, "phone": "+358401110009"})])
    load(register_engine, partial)
    with register_engine.connect() as connection:
        assert [e["source_record_id"] for e in steward.list_quarantine(connection)] == ["W-2"]
    summary = load(register_engine, complete)

    assert summary.total.resent == 1 and summary.total.inserted == 1
    complete_id = rows(register_engine, "SELECT intake_file_id FROM intake_file "
                                        "WHERE file_name = 'web_20261124_complete.jsonl'")[0][0]
    assert rows(register_engine, "SELECT source_record_id, resolved_intake_file_id FROM quarantine "
                                 "WHERE resolved_at IS NOT NULL") == [("W-2", complete_id)]
    with register_engine.connect() as connection:
        assert steward.list_quarantine(connection) == []  # nothing open for the steward
        listed = steward.list_quarantine(connection, include_resolved=True)
    assert [(e["source_record_id"], e["resolved_intake_file_id"]) for e in listed] == [("W-2", complete_id)]
    # The partial file's counts are what it held: its quarantined record stays counted there.
    assert file_counts(register_engine, "web_20261124.jsonl") == (2, 1, 0, 0, 1, 0)
    assert unbalanced_files(register_engine) == []


def test_a_partial_and_a_complete_copy_in_one_batch_leave_nothing_open(register_engine):
    partial = file_batch("web", "web_a.jsonl", [], [quarantined("web", "W-2", {"raw": '{"id": "W-2"'})])
    complete = file_batch("web", "web_b.jsonl", [record("web", "W-2", "2026-11-24T10:05", **PERSON)])
    load(register_engine, together(partial, complete))
    assert rows(register_engine, "SELECT COUNT(*) FROM quarantine WHERE resolved_at IS NULL") == [(0,)]
    assert rows(register_engine, "SELECT COUNT(*) FROM quarantine") == [(1,)]
    assert unbalanced_files(register_engine) == []


# --- 3. a re-sent quarantined record is quarantined once --------------------------------------------

def test_a_resent_quarantined_record_is_quarantined_once_and_counted(register_engine):
    bad_email = {"email": "testi@@example", "full_name": "Testi Virheellinen"}
    garbage = {"raw": "\x01\x02 not a record"}
    day1 = file_batch("email", "email_20261124.mbox", [],
                      [quarantined("email", "<m1@example.fi>", bad_email, "no_identity"),
                       quarantined("email", None, garbage)])
    day2 = file_batch("email", "email_20261125.mbox", [record("email", "<m2@example.fi>", "2026-11-25T08:00",
                                                              **PERSON)],
                      [quarantined("email", "<m1@example.fi>", bad_email, "no_identity"),  # the same again
                       quarantined("email", "<m3@example.fi>", bad_email, "no_identity"),  # another record
                       quarantined("email", None, garbage)])  # no id: cannot be recognised
    load(register_engine, day1)
    summary = load(register_engine, day2)

    assert summary.total.requarantined == 1 and summary.total.quarantined == 3
    assert file_counts(register_engine, "email_20261125.mbox") == (4, 1, 0, 0, 3, 1)
    assert rows(register_engine, "SELECT source_record_id, COUNT(*) FROM quarantine "
                                 "WHERE source_record_id IS NOT NULL GROUP BY source_record_id "
                                 "ORDER BY source_record_id") == [("<m1@example.fi>", 1), ("<m3@example.fi>", 1)]
    assert rows(register_engine, "SELECT COUNT(*) FROM quarantine WHERE source_record_id IS NULL") == [(2,)]
    assert unbalanced_files(register_engine) == []
    # The same file content under two names in one batch, and a re-send in the same batch.
    clear(register_engine)
    summary = load(register_engine, together(day1, day2))
    assert summary.total.requarantined == 1
    assert unbalanced_files(register_engine) == []


def test_a_corrected_resend_of_a_quarantined_record_is_a_new_entry(register_engine):
    load(register_engine, file_batch("mail", "mail_1.csv", [], [
        quarantined("mail", "L-1", {"full_name": "Testi A", "personal_id": "bad"}, "no_identity")]))
    summary = load(register_engine, file_batch("mail", "mail_2.csv", [], [
        quarantined("mail", "L-1", {"full_name": "Testi A", "personal_id": "still bad"}, "no_identity")]))
    assert summary.total.requarantined == 0
    assert rows(register_engine, "SELECT COUNT(*) FROM quarantine") == [(2,)]


# --- rule 3: days one at a time end as all at once ---------------------------------------------------

def _state(engine) -> dict:
    current = rows(engine, "SELECT channel, source_record_id, first_names, email, street_address, phone, "
                           "marketing_prohibited, product, observed_at FROM source_record ORDER BY 1, 2")
    history = rows(engine, "SELECT s.channel, s.source_record_id, v.content_hash FROM source_record_version v "
                           "JOIN source_record s ON s.source_record_pk = v.source_record_pk ORDER BY 1, 2, 3")
    groups: dict[int, set] = {}
    for channel, rid, cid in rows(engine, "SELECT channel, source_record_id, customer_id FROM source_record"):
        groups.setdefault(cid, set()).add((channel, rid))
    golden_values = {frozenset(members): rows(engine, "SELECT first_names, email, street_address, phone, "
                                                      f"marketing_prohibited FROM customer WHERE customer_id = {cid}")
                     for cid, members in groups.items()}
    quarantine_state = rows(engine, "SELECT channel, source_record_id, raw_values, resolved_at IS NOT NULL "
                                    "FROM quarantine ORDER BY 1, 2, 3")
    versions = rows(engine, "SELECT SUM(records_versioned), SUM(records_requarantined) FROM intake_file")
    return {"current": current, "history": history, "groups": set(golden_values), "golden": golden_values,
            "quarantine": quarantine_state, "versions": versions}


def test_days_one_at_a_time_end_as_all_at_once(register_engine):
    spouse = {**PERSON, "first_names": "Testi Eino", "personal_id": personal_id(7, 8, 1970, 515),
              "birth_date": pd.Timestamp(1970, 8, 7), "email": "eino.versiokas@example.fi",
              "phone": "+358401110003"}
    bad = {"raw": '{"id": "W-3", "person": {"first_names": "Tes'}
    days = [
        # Day 1: a partial web file (W-3 cut mid-line, W-2 cut before its prohibition).
        file_batch("web", "web_20261124.jsonl", [
            record("web", "W-1", "2026-11-24T10:00", **PERSON),
            record("web", "W-2", "2026-11-24T11:00", **{**spouse, "product": None})],
            [quarantined("web", "W-3", bad)]),
        # Day 1 again, complete; and the phone's record of the spouse.
        file_batch("web", "web_20261124_complete.jsonl", [
            record("web", "W-1", "2026-11-24T10:00", **PERSON),
            record("web", "W-2", "2026-11-24T11:00", **spouse, marketing_prohibited=True),
            record("web", "W-3", "2026-11-24T12:00", **{**PERSON, "phone": "+358401110004"})]),
        file_batch("phone", "phone_20261124.csv", [record("phone", "P-1", "2026-11-24T13:00", **spouse)],
                   [quarantined("phone", "P-9", {"Nimi": "Testi X"}, "no_identity")]),
        # Day 2: W-1 corrected (new e-mail and street), P-9 re-sent unchanged (still bad).
        file_batch("web", "web_20261125.jsonl", [
            record("web", "W-1", "2026-11-25T09:00", **{**PERSON, "email": "aino.uusi@example.fi",
                                                        "street_address": "Uusikatu 9 C 30"})]),
        file_batch("phone", "phone_20261125.csv", [],
                   [quarantined("phone", "P-9", {"Nimi": "Testi X"}, "no_identity")]),
    ]
    load(register_engine, together(*days))
    at_once = _state(register_engine)
    clear(register_engine)
    for day in days:
        load(register_engine, day)
    one_by_one = _state(register_engine)
    clear(register_engine)
    for day in reversed(days):
        load(register_engine, day)
    backwards = _state(register_engine)

    assert at_once == one_by_one
    assert {k: v for k, v in backwards.items() if k != "versions"} == \
        {k: v for k, v in at_once.items() if k != "versions"}
    current = {(c, r): rest for c, r, *rest in at_once["current"]}
    assert tuple(current[("web", "W-1")][1:3]) == ("aino.uusi@example.fi", "Uusikatu 9 C 30")
    assert current[("web", "W-2")][4] in (True, 1)  # the prohibition of the complete copy
    assert all(resolved for channel, rid, _, resolved in at_once["quarantine"] if rid == "W-3")
    assert [q for q in at_once["quarantine"] if q[1] == "P-9"] == [("phone", "P-9", '{"Nimi": "Testi X"}', False)]
    assert at_once["versions"] == [(2, 1)]  # W-1 corrected, W-2 complete; P-9 re-sent unchanged
    assert unbalanced_files(register_engine) == []


# --- erasure takes the versions with it ---------------------------------------------------------------

def test_erasure_removes_earlier_versions_and_counts_still_add_up(register_engine):
    load(register_engine, file_batch("web", "web_1.jsonl", [record("web", "W-1", "2026-11-24T10:00", **PERSON)]))
    load(register_engine, file_batch("web", "web_2.jsonl", [
        record("web", "W-1", "2026-11-25T10:00", **{**PERSON, "email": "aino.uusi@example.fi"})]))
    assert rows(register_engine, "SELECT COUNT(*) FROM source_record_version") == [(1,)]
    customer_id = rows(register_engine, "SELECT customer_id FROM source_record")[0][0]
    done = rights.erase(register_engine, customer_id=customer_id, reason="erasure request T-1", by="steward",
                        now=NOW)
    assert done.deleted["source_record"] == 1
    assert rows(register_engine, "SELECT COUNT(*) FROM source_record_version") == [(0,)]
    assert rows(register_engine, "SELECT file_name, records_erased FROM intake_file ORDER BY file_name") == [
        ("web_1.jsonl", 1), ("web_2.jsonl", 1)]
    assert unbalanced_files(register_engine) == []


@pytest.fixture(autouse=True)
def _no_values_in_logs(caplog):
    """Nothing this module loads may reach a log line."""
    yield
    said = "\n".join(r.getMessage() for r in caplog.records)
    for value in (CODE, PERSON["email"], PERSON["street_address"], "aino.uusi@example.fi"):
        assert value not in said


def test_subject_access_shows_earlier_versions_and_a_rectification_survives_a_resend(register_engine):
    original = record("web", "W-1", "2026-11-24T10:00", **PERSON)
    load(register_engine, file_batch("web", "web_1.jsonl", [original]))
    load(register_engine, file_batch("web", "web_2.jsonl", [
        record("web", "W-1", "2026-11-25T10:00", **{**PERSON, "phone": "+358401110005"})]))
    customer_id = rows(register_engine, "SELECT customer_id FROM source_record")[0][0]
    access = rights.subject_access(register_engine, customer_id=customer_id, by="steward", reason="SAR T-1")
    assert [v["phone"] for v in access["record_versions"]] == ["+358401110001"]
    assert "Earlier versions of those records (1)" in rights.render_report(access)

    # A steward corrects the e-mail; the channel then re-sends the current version unchanged.
    clear(register_engine)
    load(register_engine, file_batch("web", "web_1.jsonl", [original]))
    customer_id = rows(register_engine, "SELECT customer_id FROM source_record")[0][0]
    rights.rectify(register_engine, customer_id, "email", "aino.oikea@example.fi", reason="rectification T-2",
                   by="steward")
    summary = load(register_engine, file_batch("web", "web_1_again.jsonl", [original]))
    assert summary.total.resent == 1 and summary.total.versioned == 0
    assert rows(register_engine, "SELECT email FROM source_record") == [("aino.oikea@example.fi",)]


def test_a_conflicting_duplicate_in_one_file_stays_open_for_the_steward(register_engine):
    # The intake quarantines a later row of a file repeating an id with other content:
    # the first row's acceptance must not close that conflict.
    day = file_batch("mail", "mail_1.csv", [record("mail", "M-1", "2026-11-24T00:00", **PERSON)],
                     [quarantined("mail", "M-1", {"full_name": "Testi Toinen"}, "duplicate_record_id_in_file")])
    load(register_engine, day)
    load(register_engine, file_batch("mail", "mail_2.csv", [record("mail", "M-1", "2026-11-24T00:00", **PERSON)]))
    assert rows(register_engine, "SELECT COUNT(*) FROM quarantine WHERE resolved_at IS NULL") == [(1,)]


# --- through the real readers: a re-sent export with rejected records --------------------------------

@pytest.fixture(scope="module")
def generated_zone(tmp_path_factory):
    from synth import generate
    out = tmp_path_factory.mktemp("versions_zone")
    generate(out, people=600, days=3, seed=23)
    return out / "landing"


def test_a_resent_export_through_the_readers_quarantines_nothing_twice(register_engine, generated_zone, tmp_path):
    import shutil

    from pipeline.intake import build_batch, discover, read_all

    zone = tmp_path / "landing"
    shutil.copytree(generated_zone, zone)
    today = dt.date(2026, 11, 30)
    load(register_engine, build_batch(read_all(discover(zone, settle_seconds=0)), today))
    keyed = rows(register_engine, "SELECT q.channel, f.file_name, COUNT(*) FROM quarantine q "
                                  "JOIN intake_file f ON f.intake_file_id = q.intake_file_id "
                                  "WHERE q.source_record_id IS NOT NULL AND q.raw_values IS NOT NULL AND q.channel <> 'in_person' "
                                  "GROUP BY q.channel, f.file_name ORDER BY 3 DESC, 2")
    assert keyed, "the generated zone quarantined no record with an id"
    channel, name, n_keyed = keyed[0]
    # The source system exports the same records again, with one byte more: a new file.
    original = zone / channel / name
    resent = zone / channel / f"{original.stem.split('_')[0]}_{original.stem.split('_')[1]}_9{original.suffix}"
    resent.write_bytes(original.read_bytes() + b"\n")
    before = rows(register_engine, "SELECT COUNT(*) FROM quarantine")
    summary = load(register_engine, build_batch(read_all([f for f in discover(zone, settle_seconds=0) if f.path == resent]), today))

    assert summary.total.requarantined >= n_keyed
    assert rows(register_engine, "SELECT COUNT(*) FROM quarantine") == [
        (before[0][0] + summary.total.quarantined - summary.total.requarantined,)]
    assert rows(register_engine, "SELECT COUNT(*) FROM (SELECT channel, source_record_id, raw_values FROM quarantine "
                                 "WHERE source_record_id IS NOT NULL GROUP BY channel, source_record_id, raw_values "
                                 "HAVING COUNT(*) > 1) AS twice") == [(0,)]
    assert summary.total.versioned == 0  # the accepted records came back identical: plain re-sends
    assert unbalanced_files(register_engine) == []
