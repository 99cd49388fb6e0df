"""The workbench's domain code on SQLite and PostgreSQL (issue 11): accounts and throttled logins,
the append-only access log, unmerge (stable ids, sticks at later loads), correct-and-release and
dismissal of quarantine entries, and the access log in a subject access."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from pipeline.register import rights, steward, users
from pipeline.register.checks import unbalanced_files
from pipeline.register.access_log import accesses, log_access
from pipeline.register.release import dismiss_quarantined, release_quarantined
from pipeline.register.rights.request import RightsError
from schemas.register import access_log, quarantine
from test_register_resolve import NEAR_MISS, NOW, PERSON, _propose, batch_of, customer_of, load_batch, record, table

PASSWORD = "correct horse battery staple"


# --- accounts -------------------------------------------------------------------------------------

def test_a_user_logs_in_with_the_password_only_and_is_throttled_after_repeated_failures(register_engine):
    users.add_user(register_engine, "aino", "steward", PASSWORD, now=NOW)
    with register_engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT password_hash FROM app_user")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert users.authenticate(register_engine, "aino", PASSWORD, now=NOW).role == "steward"
    with pytest.raises(users.LoginRefused):
        users.authenticate(register_engine, "nobody", PASSWORD, now=NOW)
    for _ in range(users.MAX_FAILURES - 1):
        with pytest.raises(users.LoginRefused) as refused:
            users.authenticate(register_engine, "aino", "wrong password!!", now=NOW)
        assert refused.value.locked_until is None
    with pytest.raises(users.LoginRefused) as refused:
        users.authenticate(register_engine, "aino", "wrong password!!", now=NOW)
    assert refused.value.locked_until == NOW + dt.timedelta(seconds=users.LOCK_SECONDS)
    # Locked: even the right password is not tried until the lock ends.
    with pytest.raises(users.LoginRefused):
        users.authenticate(register_engine, "aino", PASSWORD, now=NOW + dt.timedelta(seconds=10))
    later = NOW + dt.timedelta(seconds=users.LOCK_SECONDS + 1)
    assert users.authenticate(register_engine, "aino", PASSWORD, now=later).name == "aino"
    users.disable_user(register_engine, "aino")
    with pytest.raises(users.LoginRefused):
        users.authenticate(register_engine, "aino", PASSWORD, now=later)
    with pytest.raises(users.UserError):
        users.add_user(register_engine, "short", "steward", "too short")
    with pytest.raises(users.UserError):
        users.add_user(register_engine, "eve", "root", PASSWORD)


# --- the access log --------------------------------------------------------------------------------

def test_the_access_log_is_append_only_on_postgresql_and_refuses_personal_reasons(register_engine):
    with register_engine.begin() as connection:
        log_access(connection, user="aino", action="reveal", customer_id=7, reason="ticket 4711", now=NOW)
        with pytest.raises(RightsError):
            log_access(connection, user="aino", action="reveal", customer_id=7, reason="called 0401234567", now=NOW)
    with register_engine.connect() as connection:
        assert [(r["user_name"], r["action"], r["customer_id"]) for r in accesses(connection, customer_id=7)] == \
            [("aino", "reveal", 7)]
    if register_engine.dialect.name != "postgresql":
        return
    for statement in (access_log.update().values(user_name="someone else"), access_log.delete()):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), register_engine.begin() as connection:
            connection.execute(statement)
    with register_engine.connect() as connection:
        grants = set(connection.exec_driver_sql(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE table_name = 'access_log' AND grantee = 'register_steward'").scalars())
        loader = connection.exec_driver_sql(
            "SELECT has_table_privilege('register_loader', 'access_log', 'SELECT')").scalar_one()
    assert grants == {"SELECT", "INSERT"} and loader is False


# --- unmerge ---------------------------------------------------------------------------------------

def test_an_accepted_merge_is_unmerged_with_the_old_id_back_and_stays_apart(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    before = customer_of(register_engine)
    left, right = before[("phone", "P-1")], before[("mail", "M-1")]
    assert left != right
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    steward.decide_review(register_engine, review_id, accept=True, by="aino", reason="same person", via="web")
    merged = customer_of(register_engine)
    survivor, gone = min(left, right), max(left, right)
    assert merged[("phone", "P-1")] == merged[("mail", "M-1")] == survivor
    assert table(register_engine, "SELECT COUNT(*) FROM merge_record") == [(1,)]

    done = steward.unmerge(register_engine, survivor, merged_customer_id=gone, by="aino", reason="ticket 12",
                           via="web")
    assert (done.split_customer_id, done.restored, done.records) == (gone, True, 1)
    after = customer_of(register_engine)
    assert after == before  # stable ids: each record back under the id it had
    assert table(register_engine, f"SELECT merged_into FROM customer WHERE customer_id = {gone}") == [(None,)]
    assert table(register_engine, "SELECT COUNT(*) FROM customer_merge") == [(0,)]
    assert table(register_engine, f"SELECT status FROM review_queue WHERE review_id = {review_id}") == [("rejected",)]
    assert table(register_engine, "SELECT customer_id, split_customer_id, restored FROM unmerge") == \
        [(survivor, gone, True)]
    # The golden record of the restored customer is its own record's again.
    assert table(register_engine, f"SELECT last_name FROM customer WHERE customer_id = {gone}") == \
        [(PERSON["last_name"],)]
    # A later load with a record close to both does not join them again.
    load_batch(register_engine, batch_of("d2", [record("email", "E-1", "2026-11-03T10:00", phone="+358401112222",
                                                       **PERSON)]))
    later = customer_of(register_engine)
    assert later[("phone", "P-1")] != later[("mail", "M-1")]
    with register_engine.connect() as connection:
        logged = [r["action"] for r in accesses(connection, customer_id=gone)]
    assert "unmerge" in logged and "decide_review" in logged


def test_a_wrongly_linked_record_is_split_into_a_new_customer(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    steward.decide_review(register_engine, review_id, accept=True, by="aino")
    owner = customer_of(register_engine)[("mail", "M-1")]
    pk = table(register_engine, "SELECT source_record_pk FROM source_record WHERE source_record_id = 'M-1'")[0][0]
    top = table(register_engine, "SELECT MAX(customer_id) FROM customer")[0][0]
    done = steward.unmerge(register_engine, owner, record_pks=[pk], by="aino", reason="ticket 13")
    owners = customer_of(register_engine)
    assert owners[("phone", "P-1")] == owner and owners[("mail", "M-1")] == done.split_customer_id > top
    assert not done.restored
    with pytest.raises(steward.StewardError):  # the last record cannot be split away from itself
        steward.unmerge(register_engine, owner, record_pks=[
            table(register_engine, "SELECT source_record_pk FROM source_record WHERE source_record_id = 'P-1'")[0][0]],
            by="aino", reason="ticket 14")


# --- quarantine ------------------------------------------------------------------------------------

def _quarantined(engine, raw: dict, record_id: str = "M-77") -> int:
    with engine.begin() as connection:
        file_id = connection.execute(sa.text("SELECT MIN(intake_file_id) FROM intake_file")).scalar()
        return connection.execute(quarantine.insert().returning(quarantine.c.quarantine_id).values(
            channel="mail", source_record_id=record_id, intake_file_id=file_id, record_number=9,
            reasons="invalid_timestamp", raw_values=json.dumps(raw), quarantined_at=NOW)).scalar_one()


def test_correct_and_release_runs_the_normalisers_and_the_matcher(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    raw = {"full_name": "Merkkinen Kalle Johannes", "name_order": "surname_first", "address_line": "Koekatu 7 A 2",
           "postal_code_and_city": "33100 Tampere", "phone": "040 111 2222", "observed_at": None}
    entry = _quarantined(register_engine, raw)
    with pytest.raises(steward.StewardError, match="invalid_timestamp"):
        release_quarantined(register_engine, entry, {}, by="aino", reason="ticket 15", now=NOW)
    done = release_quarantined(register_engine, entry, {"observed_at": "2026-11-02T10:00:00+02:00"}, by="aino",
                               reason="ticket 15", now=NOW)
    assert done.corrected_fields == ["observed_at"]
    owners = customer_of(register_engine)
    assert owners[("mail", "M-77")] == owners[("phone", "P-1")] == done.customer_id  # normalised, then matched
    assert table(register_engine, f"SELECT phone FROM source_record WHERE source_record_pk = {done.source_record_pk}"
                 ) == [("+358401112222",)]
    assert table(register_engine, "SELECT action, corrected_fields, decided_by FROM quarantine_decision") == \
        [("release", "observed_at", "aino")]
    with register_engine.connect() as connection:
        assert steward.count_quarantine(connection) == 0
        assert [r["action"] for r in accesses(connection, user="aino")] == ["release"]
    assert done.intake_file_id not in unbalanced_files(register_engine)  # its one-record file adds up
    with pytest.raises(steward.StewardError):
        release_quarantined(register_engine, entry, {}, by="aino", reason="again")


def test_a_dismissed_entry_leaves_the_open_quarantine(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    entry = _quarantined(register_engine, {"phone": "040 999 8877"})
    dismiss_quarantined(register_engine, entry, by="aino", reason="test file, not a customer")
    with register_engine.connect() as connection:
        assert steward.count_quarantine(connection) == 0
        assert steward.count_quarantine(connection, include_resolved=True) == 1
        assert steward.show_quarantine(connection, entry)["decision"]["action"] == "dismiss"


# --- subject access ----------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_subject_access_includes_who_looked_and_reads_in_three_languages(register_engine, lang):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    owner = customer_of(register_engine)[("phone", "P-1")]
    with register_engine.begin() as connection:
        log_access(connection, user="aino", action="view_customer", customer_id=owner, now=NOW)
    access = rights.subject_access(register_engine, customer_id=owner, by="aino", now=NOW)
    assert [(a["user_name"], a["action"]) for a in access["access_log"]] == [("aino", "view_customer")]
    report = rights.render_report(access, lang)
    heading = {"fi": "Henkilökuntamme, joka on katsonut tietojasi (1)",
               "sv": "Vår personal som har tittat på dina uppgifter (1)",
               "en": "Who in our staff looked at your data (1)"}[lang]
    assert heading in report and "view_customer" in report


# --- deferred reviews ------------------------------------------------------------------------------

def test_a_deferred_review_stays_open_shows_who_when_and_why_and_can_be_decided_later(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    later = NOW + dt.timedelta(hours=2)
    with register_engine.connect() as connection:
        assert steward.count_reviews(connection, "deferred") == 0
        assert steward.list_reviews(connection)[0]["deferred"] is None
    with pytest.raises(steward.StewardError):
        steward.defer_review(register_engine, review_id, by="aino", reason="  ")
    with pytest.raises(RightsError):  # a reason is recorded and shown: never a personal value
        steward.defer_review(register_engine, review_id, by="aino", reason="called +358401112222")
    steward.defer_review(register_engine, review_id, by="aino", reason="ticket 12: waiting for the customer", now=NOW)
    steward.defer_review(register_engine, review_id, by="eino", reason="ticket 12: still waiting", now=later)
    with register_engine.connect() as connection:
        assert steward.count_reviews(connection, "open") == steward.count_reviews(connection, "deferred") == 1
        (listed,) = steward.list_reviews(connection, "deferred")
        shown = steward.show_review(connection, review_id)
    assert listed["status"] == "open" and listed["deferred"] == {
        "by": "eino", "at": later.isoformat(), "reason": "ticket 12: still waiting"}
    assert [(d["by"], d["reason"]) for d in shown["deferrals"]] == [
        ("aino", "ticket 12: waiting for the customer"), ("eino", "ticket 12: still waiting")]
    assert shown["status"] == "open"
    logged = table(register_engine, f"SELECT user_name FROM access_log WHERE action = 'defer_review' "
                                    f"AND review_id = {review_id}")
    assert {u for (u,) in logged} == {"aino", "eino"}
    # Decided later: no longer open or deferred; the deferrals stay as its history.
    steward.decide_review(register_engine, review_id, accept=False, by="aino", now=later)
    with register_engine.connect() as connection:
        assert steward.count_reviews(connection, "deferred") == steward.count_reviews(connection, "open") == 0
        (rejected,) = steward.list_reviews(connection, "rejected")
        assert rejected["deferred"] is None
        assert len(steward.show_review(connection, review_id)["deferrals"]) == 2
    with pytest.raises(steward.StewardError, match="already decided"):
        steward.defer_review(register_engine, review_id, by="aino", reason="ticket 13")


def test_erasing_a_customer_takes_its_deferred_reviews_deferrals_with_them(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    steward.defer_review(register_engine, review_id, by="aino", reason="ticket 14", now=NOW)
    owner = customer_of(register_engine)[("phone", "P-1")]
    rights.erase(register_engine, customer_id=owner, reason="erasure 2026-3", by="aino")
    assert table(register_engine, "SELECT COUNT(*) FROM review_deferral") == [(0,)]
    assert table(register_engine, f"SELECT COUNT(*) FROM review_queue WHERE review_id = {review_id}") == [(0,)]
