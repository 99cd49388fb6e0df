"""People's rights (docs/register_rules.md rule 8) on SQLite and PostgreSQL: access, rectification, erasure.

Data: the generator's people (200 people, 3 days) loaded as the intake does, judged
against its ground truth; and a prospect built in code (synthetic values, codes
with their check character) who has two customer ids merged into one, quarantine
entries and a steward's review. Assertion messages carry counts, never values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.intake import build_batch, discover, read_all
from pipeline.normalise import iban as iban_module
from pipeline.register import rights, steward
from pipeline.register.checks import unbalanced_files
from pipeline.register.load import IntakeBatch
from pipeline.register.resolve import resolve_identities
from pipeline.register.rights.erasure import key_hash
from pipeline.register.rights.reasons import personal_shape
from schemas.register import REGISTER_TABLES, customer, source_record
from synth import GROUND_TRUTH_FILE, generate
from test_register_helpers import personal_id
from test_register_resolve import (NEAR_MISS, NOW, SETTINGS, TODAY, _propose, batch_of, customer_of, load_batch,
                                   record, table)

LATER = NOW + dt.timedelta(hours=1)
STEWARD = "steward.rights"


# --- the generated register and its ground truth -------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[IntakeBatch, pd.DataFrame]:
    """The generator's intake batch and ground truth (one row per record it wrote)."""
    out = tmp_path_factory.mktemp("rights-zone")
    generate(out, people=200, days=3, seed=31)
    batch = build_batch(read_all(discover(out / "landing")), TODAY)
    truth = pd.read_csv(out / GROUND_TRUTH_FILE, dtype=str, keep_default_na=False)
    email = truth["channel"] == "email"
    truth.loc[email, "source_record_id"] = truth.loc[email, "source_record_id"].str.strip().str.strip("<>")
    return batch, truth


def _load_generated(engine, generated) -> pd.DataFrame:
    batch, truth = generated
    load_batch(engine, batch)
    return truth


def _held_keys(engine, customer_ids) -> set[tuple[str, str]]:
    ids = ", ".join(str(int(c)) for c in customer_ids)
    return set(table(engine, f"SELECT channel, source_record_id FROM source_record WHERE customer_id IN ({ids})"))


def clean_people(engine, truth: pd.DataFrame) -> dict[str, int]:
    """person_key -> customer_id for people whose held records are exactly one customer's records."""
    owners = customer_of(engine)
    accepted = truth[truth["expected_reason"] == ""].drop_duplicates(["channel", "source_record_id"])
    person_of = {(c, r): p for c, r, p in accepted[["channel", "source_record_id", "person_key"]].itertuples(
        index=False) if (c, r) in owners}
    customers_of: dict[str, set[int]] = {}
    people_of: dict[int, set[str]] = {}
    for key, person in person_of.items():
        customers_of.setdefault(person, set()).add(owners[key])
        people_of.setdefault(owners[key], set()).add(person)
    return {p: next(iter(c)) for p, c in sorted(customers_of.items())
            if len(c) == 1 and people_of[next(iter(c))] == {p}}


def _golden(engine, customer_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(customer).where(customer.c.customer_id == customer_id)).mappings().one())


def expect(condition: bool, message: str) -> None:
    """An assertion whose failure shows the message only, never the values compared."""
    assert condition, message


def _coded_clean_people(engine, truth) -> dict[str, tuple[int, str]]:
    """Clean people whose customer holds their true code: person -> (customer_id, code)."""
    true_code = dict(truth.loc[truth["personal_id_true"] != "", ["person_key", "personal_id_true"]]
                     .drop_duplicates("person_key").itertuples(index=False))
    out = {}
    for person, customer_id in clean_people(engine, truth).items():
        code = _golden(engine, customer_id)["personal_id"]
        if code and code == true_code.get(person):
            out[person] = (customer_id, code)
    return out


def _text_columns() -> dict[str, list[str]]:
    return {t.name: [c.name for c in t.columns if isinstance(c.type, (sa.String, sa.Text, sa.JSON))]
            for t in REGISTER_TABLES}


def _rows_mentioning(engine, needle: str) -> dict[str, int]:
    """Rows per table whose text columns contain `needle` (case-insensitive)."""
    found: dict[str, int] = {}
    with engine.connect() as conn:
        for name, columns in _text_columns().items():
            if not columns:
                continue
            condition = " OR ".join(f"UPPER(CAST({c} AS TEXT)) LIKE :n" for c in columns)
            n = conn.execute(sa.text(f"SELECT COUNT(*) FROM {name} WHERE {condition}"),
                             {"n": f"%{needle.upper()}%"}).scalar_one()
            if n:
                found[name] = n
    return found


# --- subject access ------------------------------------------------------------------------------

def test_subject_access_returns_every_record_loaded_for_a_generated_person(register_engine, generated):
    truth = _load_generated(register_engine, generated)
    coded = _coded_clean_people(register_engine, truth)
    assert len(coded) > 100, "too few people resolved cleanly to test with"
    # People with a quarantined record whose raw text keeps their code as it was written.
    quarantined = truth[(truth["expected_reason"] != "") & (truth["person_key"] != "")
                        & (truth["personal_id_noise"] == "")]
    with_entries = [p for p in coded if p in set(quarantined["person_key"])]
    assert with_entries, "the generated data has no quarantined record of a cleanly resolved person"
    people = with_entries[:3] + [p for p in coded if p not in with_entries][:3]

    for person in people:
        customer_id, code = coded[person]
        mine = truth[(truth["person_key"] == person) & (truth["expected_reason"] == "")]
        expected = set(zip(mine["channel"], mine["source_record_id"])) & set(customer_of(register_engine))
        by_code = rights.subject_access(register_engine, personal_id=code, by=STEWARD, now=NOW)
        by_id = rights.subject_access(register_engine, customer_id=customer_id, by=STEWARD, now=NOW)
        for access in (by_code, by_id):
            got = {(r["channel"], r["source_record_id"]) for r in access["source_records"]}
            expect(got == expected, f"{len(got ^ expected)} records differ from the ground truth")
            assert [c["customer_id"] for c in access["customers"]] == [customer_id]
            assert {s["customer_id"] for s in access["services"]} <= {customer_id}
            assert {p["attribute"] for p in access["provenance"]} >= {"personal_id", "last_name"}
        # The person's quarantined records (position in its file, from the ground truth).
        wanted = set(zip(quarantined.loc[quarantined["person_key"] == person, "file_name"],
                         quarantined.loc[quarantined["person_key"] == person, "record_number"].astype(int)))
        got_entries = {(q["file_name"], q["record_number"]) for q in by_code["quarantine"]}
        assert wanted <= got_entries, f"{len(wanted - got_entries)} quarantined records missing"
        expect(by_code["quarantine"] == by_id["quarantine"], "by code and by id found other quarantine entries")

    # Each access is recorded with counts only.
    logged = table(register_engine, "SELECT action, customer_id, outcome FROM rights_request")
    assert len(logged) == 2 * len(people) and {a for a, _, _ in logged} == {"access"}
    outcome = json.loads(logged[0][2]) if isinstance(logged[0][2], str) else logged[0][2]
    assert set(outcome) == set(rights.ACCESS_SECTIONS) and all(isinstance(v, int) for v in outcome.values())


def test_subject_access_by_id_holds_exactly_the_customers_records(register_engine, generated):
    _load_generated(register_engine, generated)
    ids = [c for (c,) in table(register_engine,
                               "SELECT customer_id FROM customer WHERE merged_into IS NULL ORDER BY customer_id")]
    for customer_id in ids[::9]:
        access = rights.subject_access(register_engine, customer_id=customer_id, by=STEWARD, now=NOW)
        held = {pk for (pk,) in table(register_engine, f"SELECT source_record_pk FROM source_record "
                                                       f"WHERE customer_id = {customer_id}")}
        assert {r["source_record_pk"] for r in access["source_records"]} == held
        services = {s for (s,) in table(register_engine, f"SELECT service_id FROM service "
                                                         f"WHERE customer_id = {customer_id}")}
        assert {s["service_id"] for s in access["services"]} == services
        assert access["request"]["counts"] == {k: len(access[k]) for k in rights.ACCESS_SECTIONS}
    with pytest.raises(rights.RightsError, match="no customer"):
        rights.subject_access(register_engine, customer_id=max(ids) + 1000, by=STEWARD)


def test_access_is_json_native_and_the_report_holds_no_one_elses_data(register_engine, generated):
    truth = _load_generated(register_engine, generated)
    customer_id, code = next(iter(_coded_clean_people(register_engine, truth).values()))
    access = rights.subject_access(register_engine, personal_id=code, by=STEWARD, now=NOW)
    expect(json.loads(json.dumps(access)) == access, "the access does not survive a JSON round trip")
    assert list(access) == ["request", *rights.ACCESS_SECTIONS]
    assert access["request"]["performed_at"] == NOW.isoformat()
    record_keys = {tuple(r) for r in access["source_records"]}
    assert len(record_keys) == 1, "source records do not all have the same keys"

    report = rights.render_report(access)
    own = json.dumps(access, ensure_ascii=False)
    expect(code in report and _golden(register_engine, customer_id)["last_name"] in report,
           "the report lacks the person's own code or name")
    others = table(register_engine, f"SELECT personal_id, phone, email, iban, street_address, metering_point "
                                    f"FROM source_record WHERE customer_id <> {customer_id}")
    values = {v for row in others for v in row if v and v not in own}  # a shared value is the person's own too
    assert len(values) > 500
    leaked = [v for v in values if v in report]
    assert not leaked, f"{len(leaked)} values of other people in the report"


# --- rectification -------------------------------------------------------------------------------

NEW_PHONE = "+358400000017"
NEW_IBAN = "FI2112345600000785"  # the standard example account


def test_rectification_changes_the_golden_value_and_survives_re_resolution(register_engine, generated):
    truth = _load_generated(register_engine, generated)
    coded = _coded_clean_people(register_engine, truth)
    customer_id, code = next((c, k) for c, k in coded.values() if _golden(register_engine, c)["phone"])
    before = _golden(register_engine, customer_id)
    phone_pk = table(register_engine, f"SELECT source_record_pk FROM golden_value_provenance "
                                      f"WHERE customer_id = {customer_id} AND attribute = 'phone'")[0][0]

    done = rights.rectify(register_engine, customer_id, "phone", "040 000 0017", reason="customer reported a typo",
                          by=STEWARD, now=LATER)
    assert (done.source_records_updated, done.match_keys_replaced > 0) == (1, True)
    rights.rectify(register_engine, customer_id, "iban", "fi21 1234 5600 0007 85", reason="new account",
                   by=STEWARD, now=LATER)
    after = _golden(register_engine, customer_id)
    expect((after["phone"], after["iban"]) == (NEW_PHONE, NEW_IBAN), "the golden values were not rectified")
    expect(after["bic"] == iban_module.bic(NEW_IBAN) and after["bic"] is not None, "the BIC was not recomputed")
    expect(after["last_name"] == before["last_name"], "another attribute changed")
    assert after["updated_at"] == LATER
    expect(table(register_engine, f"SELECT phone FROM source_record WHERE source_record_pk = {phone_pk}")
           == [(NEW_PHONE,)], "the provenance record was not rectified")

    # Re-resolved as a steward's decision would, then touched by a later record of the same person.
    pks = [pk for (pk,) in table(register_engine, f"SELECT source_record_pk FROM source_record "
                                                  f"WHERE customer_id = {customer_id}")]
    with register_engine.begin() as conn:
        assert resolve_identities(conn, now=LATER, run_id="test", settings=SETTINGS, seeds=pks).affected_records
    load_batch(register_engine, batch_of("rectified-later", [
        record("web", "W-RECT-1", "2026-11-20T10:00", personal_id=code, first_names=before["first_names"],
               last_name=before["last_name"])]))
    assert customer_of(register_engine)[("web", "W-RECT-1")] == customer_id
    again = _golden(register_engine, customer_id)
    expect((again["phone"], again["iban"], again["bic"]) == (NEW_PHONE, NEW_IBAN, after["bic"]),
           "re-resolution lost the rectified values")

    # The log holds the attribute and the reason, never a value.
    logged = table(register_engine, "SELECT action, attribute, reason, outcome FROM rights_request")
    assert [(a, t) for a, t, _, _ in logged] == [("rectification", "phone"), ("rectification", "iban")]
    text = json.dumps([list(map(str, row)) for row in logged])
    leaked = [v for v in (NEW_PHONE, NEW_IBAN, before["phone"], before["iban"], "000 0017") if v and v in text]
    assert len(leaked) == 0, f"{len(leaked)} values in the rights log"
    assert unbalanced_files(register_engine) == []


def test_rectification_refusals_name_no_value(register_engine, generated):
    truth = _load_generated(register_engine, generated)
    customer_id, code = next(iter(_coded_clean_people(register_engine, truth).values()))
    cases = [("personal_id", code, "identity"), ("birth_date", "1970-01-01", "identity code"),
             ("phone", "12ab345", "not valid"), ("iban", "FI2112345600000786", "not valid"),
             ("postal_code", "1234", "not valid"), ("shoe_size", "44", "not an attribute"),
             ("marketing_prohibited", "perhaps", "yes or no")]
    for attribute, value, expected in cases:
        with pytest.raises(rights.RightsError) as refused:
            rights.rectify(register_engine, customer_id, attribute, value, reason="checked", by=STEWARD)
        expect(expected in str(refused.value) and value not in str(refused.value), f"{attribute}: wrong message")
    with pytest.raises(rights.RightsError, match="reason must not contain"):
        rights.rectify(register_engine, customer_id, "phone", "040 000 0017", reason="now 040 000 0017",
                       by=STEWARD)
    assert table(register_engine, "SELECT COUNT(*) FROM rights_request") == [(0,)]


# --- erasure: a prospect -------------------------------------------------------------------------

PROSPECT_CODE = personal_id(14, 2, 1983, 417)
PROSPECT = dict(first_names="Taru Ilmatar", last_name="Kokeilija-Poistettava")
PROSPECT_PHONE, PROSPECT_EMAIL = "+358400000093", "taru.kokeilija@example.fi"


def _with_quarantine(batch: IntakeBatch, channel: str, entries: list[dict]) -> IntakeBatch:
    """The batch with record-level quarantine entries in its `channel` file."""
    file_checksum = batch.files.loc[batch.files["channel"] == channel, "checksum"].iloc[0]
    first = int(batch.accepted.loc[batch.accepted["channel"] == channel, "record_number"].max()) + 1
    rows = pd.DataFrame([{"channel": channel, "checksum": file_checksum, "record_number": first + n,
                          "detail": None, **entry} for n, entry in enumerate(entries)])
    return dataclasses.replace(batch, quarantined=rows)


def _load_prospect(engine) -> dict:
    """A person without a contract: two ids merged, two quarantine entries, a decided review."""
    load_batch(engine, batch_of("prospect-d1", [
        record("phone", "P-PR-1", "2026-11-05T10:00", phone=PROSPECT_PHONE, street_address="Koetie 1",
               postal_code="00100", city="Helsinki", **PROSPECT),
        record("email", "E-PR-1", "2026-11-05T11:00", email=PROSPECT_EMAIL, street_address="Uusikatu 9",
               postal_code="33100", city="Tampere", **PROSPECT),
    ]))
    web = batch_of("prospect-d2", [
        record("web", "W-PR-1", "2026-11-06T10:00", personal_id=PROSPECT_CODE, phone=PROSPECT_PHONE,
               email=PROSPECT_EMAIL, identity_verified=True, street_address="Uusikatu 9", postal_code="33100",
               city="Tampere", **PROSPECT)])
    load_batch(engine, _with_quarantine(web, "web", [
        {"source_record_id": "W-PR-1", "reasons": "duplicate_record_id_in_file",
         "raw_values": json.dumps({"last_name": PROSPECT["last_name"], "phone": "040 000 0093"})},
        {"source_record_id": None, "reasons": "missing_record_id",
         "raw_values": json.dumps({"personal_id": PROSPECT_CODE.lower(), "email": PROSPECT_EMAIL})},
    ]))
    owners = customer_of(engine)
    ids = {owners[k] for k in (("phone", "P-PR-1"), ("email", "E-PR-1"), ("web", "W-PR-1"))}
    assert len(ids) == 1, "the prospect's records did not resolve to one customer"
    other = next(k for k, c in owners.items() if c not in ids)
    review_id = _propose(engine, ("phone", "P-PR-1"), other)
    steward.decide_review(engine, review_id, accept=False, by="steward.one", now=NOW)
    merged = table(engine, "SELECT merged_customer_id FROM customer_merge")
    return {"customer_id": ids.pop(), "merged": [m for (m,) in merged], "review_id": review_id}


def test_access_finds_merged_ids_quarantine_and_reviews_of_a_prospect(register_engine, generated):
    _load_generated(register_engine, generated)
    prospect = _load_prospect(register_engine)
    access = rights.subject_access(register_engine, personal_id=PROSPECT_CODE, by=STEWARD, now=NOW)
    assert access["request"]["customer_ids"] == [prospect["customer_id"]]
    assert access["request"]["merged_customer_ids"] == prospect["merged"] and prospect["merged"]
    assert {r["source_record_id"] for r in access["source_records"]} == {"P-PR-1", "E-PR-1", "W-PR-1"}
    assert len(access["quarantine"]) == 2 and len(access["merges"]) == 1 and access["services"] == []
    [review] = access["reviews"]
    assert (review["review_id"], review["status"], review["decided_by"]) == (prospect["review_id"], "rejected",
                                                                             "steward.one")
    # The other side of the review is another person's: neither its ids nor the comparisons are shown.
    assert review["left"]["own"] != review["right"]["own"] and review["comparisons"] is None
    other_side = review["right"] if review["left"]["own"] else review["left"]
    assert other_side["customer_id"] is None and other_side["source_record_pk"] is None
    statuses = {c["customer_id"]: c["status"] for c in access["customers"]}
    assert statuses == {prospect["customer_id"]: "active", **{m: "merged" for m in prospect["merged"]}}
    # By a merged-away id: the same person.
    by_old_id = rights.subject_access(register_engine, customer_id=prospect["merged"][0], by=STEWARD, now=NOW)
    assert by_old_id["source_records"] == access["source_records"]


def test_erasing_a_prospect_leaves_nothing_of_them(register_engine, generated):
    _load_generated(register_engine, generated)
    prospect = _load_prospect(register_engine)
    ids = [prospect["customer_id"], *prospect["merged"]]
    pks = [pk for (pk,) in table(register_engine, "SELECT source_record_pk FROM source_record WHERE customer_id IN "
                                                  f"({', '.join(map(str, ids))})")]
    records_before = table(register_engine, "SELECT COUNT(*) FROM source_record")[0][0]
    rights.subject_access(register_engine, customer_id=prospect["customer_id"], by=STEWARD, now=NOW)

    done = rights.erase(register_engine, personal_id=PROSPECT_CODE, reason="the person asked, ticket 4711",
                        by=STEWARD, now=LATER)
    assert done.kinds == {prospect["customer_id"]: "prospect"}
    assert (done.deleted["source_record"], done.deleted["customer"], done.deleted["customer_merge"],
            done.deleted["review_queue"], done.purged["quarantine"]) == (3, 2, 1, 1, 2)

    # No row anywhere names the person's customer ids or records ...
    id_list, pk_list = ", ".join(map(str, ids)), ", ".join(map(str, pks))
    for sql in (f"SELECT COUNT(*) FROM customer WHERE customer_id IN ({id_list}) OR merged_into IN ({id_list})",
                f"SELECT COUNT(*) FROM source_record WHERE customer_id IN ({id_list}) OR source_record_pk IN ({pk_list})",
                f"SELECT COUNT(*) FROM customer_merge WHERE merged_customer_id IN ({id_list}) "
                f"OR surviving_customer_id IN ({id_list})",
                f"SELECT COUNT(*) FROM review_queue WHERE left_customer_id IN ({id_list}) OR right_customer_id IN "
                f"({id_list}) OR left_source_record_pk IN ({pk_list}) OR right_source_record_pk IN ({pk_list})",
                f"SELECT COUNT(*) FROM service WHERE customer_id IN ({id_list})",
                f"SELECT COUNT(*) FROM golden_provenance WHERE customer_id IN ({id_list}) OR "
                + " OR ".join(f"{c.name} IN ({pk_list})" for c in
                              sa.Table("golden_provenance", sa.MetaData(), autoload_with=register_engine).c
                              if c.name.endswith("_record_pk")),
                f"SELECT COUNT(*) FROM match_key WHERE source_record_pk IN ({pk_list})"):
        assert table(register_engine, sql) == [(0,)], sql.split(" WHERE")[0]
    # ... except the log of the requests themselves, which holds ids and counts only.
    assert {a for (a,) in table(register_engine, f"SELECT action FROM rights_request WHERE customer_id IN ({id_list})")
            } == {"access", "erasure"}
    # No text anywhere holds the code, the name or the contacts (in any letter case).
    for value in (PROSPECT_CODE, PROSPECT["last_name"], PROSPECT_PHONE, "000 0093", PROSPECT_EMAIL):
        assert _rows_mentioning(register_engine, value) == {}
    assert table(register_engine, "SELECT COUNT(*) FROM source_record")[0][0] == records_before - 3
    assert table(register_engine, "SELECT COUNT(*) FROM quarantine WHERE raw_purged_at IS NOT NULL") == [(2,)]
    assert unbalanced_files(register_engine) == []


def test_an_erased_prospect_is_not_resurrected_by_later_loads(register_engine, generated):
    _load_generated(register_engine, generated)
    prospect = _load_prospect(register_engine)
    rights.erase(register_engine, customer_id=prospect["merged"][0], reason="asked", by=STEWARD, now=LATER)
    top_id = table(register_engine, "SELECT MAX(customer_id) FROM customer")[0][0]
    before = _rows_mentioning(register_engine, PROSPECT["last_name"])
    # The same files landing again are known by their checksums and skipped.
    load_batch(register_engine, batch_of("prospect-d1", [
        record("phone", "P-PR-1", "2026-11-05T10:00", phone=PROSPECT_PHONE, **PROSPECT)]))
    assert _rows_mentioning(register_engine, PROSPECT["last_name"]) == before == {}
    # A new notification from the person starts afresh: a new id, only what it says.
    load_batch(register_engine, batch_of("prospect-d9", [
        record("web", "W-PR-9", "2026-11-21T10:00", personal_id=PROSPECT_CODE, **PROSPECT)]))
    [(customer_id, phone, email, street)] = table(
        register_engine, "SELECT customer_id, phone, email, street_address FROM customer "
                         f"WHERE personal_id = '{PROSPECT_CODE}'")
    assert customer_id > max(top_id or 0, prospect["customer_id"], *prospect["merged"])
    expect(phone is None and email is None and street is None, "old values came back")
    assert table(register_engine, f"SELECT source_record_id FROM source_record WHERE customer_id = {customer_id}"
                 ) == [("W-PR-9",)]
    assert unbalanced_files(register_engine) == []


# --- erasure: a customer with a contract ---------------------------------------------------------

def test_erasing_a_customer_keeps_only_the_billing_identity_and_services(register_engine, generated):
    truth = _load_generated(register_engine, generated)
    coded = _coded_clean_people(register_engine, truth)
    quarantined = set(truth.loc[(truth["expected_reason"] != "") & (truth["personal_id_noise"] == ""), "person_key"])
    person = next(p for p in coded if p in quarantined)
    customer_id, code = coded[person]
    before = _golden(register_engine, customer_id)
    services_before = table(register_engine, f"SELECT * FROM service WHERE customer_id = {customer_id} "
                                             "ORDER BY service_id")
    assert services_before, "a generated customer without a contract"
    pks = [pk for (pk,) in table(register_engine, f"SELECT source_record_pk FROM source_record "
                                                  f"WHERE customer_id = {customer_id}")]
    phone, email = before["phone"], before["email"]
    access = rights.subject_access(register_engine, customer_id=customer_id, by=STEWARD, now=NOW)
    assert access["quarantine"], "the chosen customer has no quarantine entry to purge"

    done = rights.erase(register_engine, customer_id=customer_id, reason="the person asked", by=STEWARD, now=LATER)
    assert done.kinds == {customer_id: "customer"}
    assert done.deleted["source_record"] == len(pks) and done.kept["service"] == len(services_before)
    after = _golden(register_engine, customer_id)
    changed = [c for c in rights.BILLING_IDENTITY if after[c] != before[c]]
    assert changed == [], "billing identity columns changed"
    expect(after["phone"] is None and after["email"] is None, "contact details were kept")
    assert after["erased_at"] == LATER
    assert after["marketing_prohibited"] in (None, True) and (after["marketing_prohibited"] is None) == (
        before["marketing_prohibited"] is not True)
    expect(table(register_engine, f"SELECT * FROM service WHERE customer_id = {customer_id} "
                                  "ORDER BY service_id") == services_before, "the services changed")
    pk_list = ", ".join(map(str, pks))
    assert table(register_engine, f"SELECT COUNT(*) FROM source_record WHERE customer_id = {customer_id}") == [(0,)]
    assert table(register_engine, f"SELECT COUNT(*) FROM match_key WHERE source_record_pk IN ({pk_list})") == [(0,)]
    assert table(register_engine, f"SELECT COUNT(*) FROM golden_value_provenance "
                                  f"WHERE customer_id = {customer_id}") == [(0,)]
    # The code is left only on the customer row; the contacts nowhere.
    assert _rows_mentioning(register_engine, code) == {"customer": 1}
    for value in (phone, email):
        if value:
            assert _rows_mentioning(register_engine, value) == {}
    # Analysts no longer see the customer.
    for view in ("customer_masked", "marketing_contacts"):
        assert table(register_engine, f"SELECT COUNT(*) FROM {view} WHERE customer_id = {customer_id}") == [(0,)]
    assert unbalanced_files(register_engine) == []

    # What is left is still the person's to see, and the billing identity can be corrected.
    left = rights.subject_access(register_engine, personal_id=code, by=STEWARD, now=LATER)
    assert [c["status"] for c in left["customers"]] == ["erased"] and left["source_records"] == []
    assert len(left["services"]) == len(services_before) and left["quarantine"] == []
    rights.rectify(register_engine, customer_id, "street_address", "Laskutuskuja 5", reason="moved", by=STEWARD)
    expect(_golden(register_engine, customer_id)["street_address"] == "Laskutuskuja 5", "not rectified")
    with pytest.raises(rights.RightsError, match="erased"):
        rights.rectify(register_engine, customer_id, "phone", "040 000 0017", reason="asked", by=STEWARD)


def test_a_dry_run_erases_nothing_and_records_nothing(register_engine, generated):
    _load_generated(register_engine, generated)
    prospect = _load_prospect(register_engine)
    counts = "SELECT (SELECT COUNT(*) FROM customer), (SELECT COUNT(*) FROM source_record), " \
             "(SELECT COUNT(*) FROM match_key), (SELECT COUNT(*) FROM rights_request), " \
             "(SELECT COUNT(*) FROM quarantine WHERE raw_values IS NOT NULL)"
    before = table(register_engine, counts)
    done = rights.erase(register_engine, customer_id=prospect["customer_id"], reason="asked", by=STEWARD,
                        dry_run=True)
    assert done.deleted["source_record"] == 3 and done.request_ids == []
    assert table(register_engine, counts) == before


def test_an_invalid_code_is_refused_without_echoing_it(register_engine):
    wrong = PROSPECT_CODE[:-1] + ("A" if PROSPECT_CODE[-1] != "A" else "B")
    for attempt in (lambda: rights.subject_access(register_engine, personal_id=wrong, by=STEWARD),
                    lambda: rights.erase(register_engine, personal_id=wrong, reason="asked", by=STEWARD)):
        with pytest.raises(rights.RightsError) as refused:
            attempt()
        expect("not valid" in str(refused.value) and wrong not in str(refused.value), "wrong message")
    # A valid code no one holds: an empty answer, recorded.
    empty = rights.subject_access(register_engine, personal_id=PROSPECT_CODE, by=STEWARD, now=NOW)
    assert empty["request"]["counts"] == {k: 0 for k in rights.ACCESS_SECTIONS}
    assert table(register_engine, "SELECT action, customer_id FROM rights_request") == [("access", None)]


def test_a_code_finds_an_erased_customer_and_a_later_one_of_the_same_person(register_engine, generated):
    """After erasure the person may come back: a new customer; by code, both are theirs to see or erase."""
    truth = _load_generated(register_engine, generated)
    customer_id, code = next(iter(_coded_clean_people(register_engine, truth).values()))
    rights.erase(register_engine, customer_id=customer_id, reason="asked", by=STEWARD, now=NOW)
    load_batch(register_engine, batch_of("returned", [
        record("web", "W-BACK-1", "2026-11-22T10:00", personal_id=code, first_names="Palaava", last_name="Asiakas")]))
    returned = customer_of(register_engine)[("web", "W-BACK-1")]
    assert returned != customer_id

    access = rights.subject_access(register_engine, personal_id=code, by=STEWARD, now=LATER)
    assert {c["customer_id"]: c["status"] for c in access["customers"]} == {customer_id: "erased",
                                                                             returned: "active"}
    assert [r["source_record_id"] for r in access["source_records"]] == ["W-BACK-1"]
    done = rights.erase(register_engine, personal_id=code, reason="asked again", by=STEWARD, now=LATER)
    assert done.kinds == {customer_id: "customer", returned: "prospect"}
    assert table(register_engine, f"SELECT customer_id FROM customer WHERE customer_id IN ({customer_id}, "
                                  f"{returned})") == [(customer_id,)]
    assert len(done.request_ids) == 2 and unbalanced_files(register_engine) == []


# --- tombstones: a re-sent submission stays erased -------------------------------------------------

PROSPECT_KEYS = {("phone", "P-PR-1"), ("email", "E-PR-1"), ("web", "W-PR-1")}


def _outcomes(engine, action: str) -> list[dict]:
    rows = table(engine, f"SELECT outcome FROM rights_request WHERE action = '{action}' ORDER BY request_id")
    return [json.loads(o) if isinstance(o, str) else o for (o,) in rows]


def test_erasure_leaves_a_tombstone_per_record_and_a_re_send_stays_erased(register_engine, generated):
    _load_generated(register_engine, generated)
    _load_prospect(register_engine)
    done = rights.erase(register_engine, personal_id=PROSPECT_CODE, reason="asked", by=STEWARD, now=LATER)
    assert done.tombstones == 3 and [o["tombstones"] for o in _outcomes(register_engine, "erasure")] == [3]
    # Hashes of the keys only: the keys themselves (an e-mail Message-ID may hold an address) are gone.
    assert {h for (h,) in table(register_engine, "SELECT key_hash FROM erased_record")} == {
        key_hash(c, r) for c, r in PROSPECT_KEYS}
    for _, record_id in PROSPECT_KEYS:
        assert _rows_mentioning(register_engine, record_id) == {}

    # The channel re-sends the old submission in a new file: a re-send, not a new person.
    load_batch(register_engine, batch_of("prospect-resent", [
        record("phone", "P-PR-1", "2026-11-05T10:00", phone=PROSPECT_PHONE, **PROSPECT)]))
    assert table(register_engine, "SELECT records_accepted, records_resent FROM intake_file "
                                  "WHERE file_name = 'phone_prospect-resent'") == [(1, 1)]
    assert _rows_mentioning(register_engine, PROSPECT["last_name"]) == {}
    assert unbalanced_files(register_engine) == []


def test_erasure_follows_a_chain_of_merges_to_the_end(register_engine, generated):
    """A merged into B, then B into C: A names B, not C. Erasing C must reach A too."""
    _load_generated(register_engine, generated)
    prospect = _load_prospect(register_engine)
    with register_engine.begin() as conn:
        older = conn.execute(customer.insert().values(identity_verified=False, created_at=NOW, updated_at=NOW,
                                                      merged_into=prospect["merged"][0])
                             .returning(customer.c.customer_id)).scalar_one()
        conn.execute(source_record.update().where(source_record.c.channel == "phone",
                                                  source_record.c.source_record_id == "P-PR-1")
                     .values(customer_id=older))
    done = rights.erase(register_engine, customer_id=prospect["customer_id"], reason="asked", by=STEWARD, now=LATER)
    assert (done.deleted["customer"], done.deleted["source_record"], done.tombstones) == (3, 3, 3)
    assert table(register_engine, f"SELECT COUNT(*) FROM customer WHERE customer_id = {older}") == [(0,)]
    assert table(register_engine, f"SELECT COUNT(*) FROM source_record WHERE customer_id = {older}") == [(0,)]
    assert _rows_mentioning(register_engine, PROSPECT["last_name"]) == {}
    assert unbalanced_files(register_engine) == []


# --- reasons hold no personal data ----------------------------------------------------------------

OTHER_CODE = personal_id(21, 8, 1966, 305)  # nobody's in these tests: refused by its shape alone
# What the reason says -> (the reason, its personal part, which the refusal must not echo).
REFUSED_REASONS = {
    "the subject's last name": (f"{PROSPECT['last_name']} called", PROSPECT["last_name"]),
    "one of the subject's given names": ("Ilmatar called the service desk", "Ilmatar"),
    "the subject's street address": ("moved away from Uusikatu 9", "Uusikatu"),
    "the subject's code": (f"asked in person, code {PROSPECT_CODE.lower()}", PROSPECT_CODE),
    "the subject's e-mail": (f"by e-mail from {PROSPECT_EMAIL.upper()}", PROSPECT_EMAIL),
    "the subject's phone, written nationally": ("called from 040 000 0093", "0093"),
    "someone's identity code": (f"on behalf of {OTHER_CODE}", OTHER_CODE),
    "an IBAN": ("refund to FI21 1234 5600 0007 85", "0007"),
    "an e-mail address": ("copy to someone.else@example.org", "someone.else"),
    "a phone number": ("call back on +46 70 123 45 67", "45 67"),
    "a national phone number": ("call back 0401234567", "0401234567"),
}
ACCEPTED_REASONS = ("the person asked, ticket 4711", "letter of 2026-11-25, INC-20261125-0042", "moved house")


def _rights_command(engine, command: str, customer_id: int):
    """The request `command` about the prospect, given a reason (an erasure as a dry run)."""
    if command == "access":
        return lambda reason: rights.subject_access(engine, customer_id=customer_id, by=STEWARD, reason=reason,
                                                    now=NOW)
    if command == "rectify":
        return lambda reason: rights.rectify(engine, customer_id, "city", "Espoo", reason=reason, by=STEWARD,
                                             now=NOW)
    return lambda reason: rights.erase(engine, personal_id=PROSPECT_CODE, reason=reason, by=STEWARD, now=NOW,
                                       dry_run=True)


@pytest.mark.parametrize("command", ["access", "rectify", "erase"])
def test_a_reason_holding_personal_data_is_refused_without_echoing_it(register_engine, command):
    load_batch(register_engine, batch_of("others", NEAR_MISS))
    run = _rights_command(register_engine, command, _load_prospect(register_engine)["customer_id"])
    held = "SELECT (SELECT COUNT(*) FROM rights_request), (SELECT COUNT(*) FROM source_record), " \
           "(SELECT COUNT(*) FROM customer WHERE UPPER(city) = 'ESPOO')"
    before = table(register_engine, held)
    for what, (reason, personal) in REFUSED_REASONS.items():
        with pytest.raises(rights.RightsError) as refused:
            run(reason)
        message = str(refused.value).casefold()
        expect("personal data" in message, f"{command}, {what}: not refused for personal data")
        expect(personal.casefold() not in message, f"{command}, {what}: the refusal echoes the reason")
    assert table(register_engine, held) == before, "a refused request changed or recorded something"
    for reason in ACCEPTED_REASONS:
        run(reason)
    recorded = 0 if command == "erase" else len(ACCEPTED_REASONS)  # a dry run records nothing
    assert table(register_engine, "SELECT COUNT(*) FROM rights_request")[0][0] == before[0][0] + recorded


def test_reason_shapes_leave_ordinary_references_alone():
    for reason in (*ACCEPTED_REASONS, "phoned on 25.11.2026 at 10:15", "case 2026/11/0815", "form v2.3"):
        assert personal_shape(reason) is None, "an ordinary reason was taken for personal data"
    for reason in ("+358 40 000 0093", "0400000093", "tel. 09-123 4567", "ab.cd@example.fi", "FI2112345600000785",
                   PROSPECT_CODE, OTHER_CODE.replace("-", "A")):
        assert personal_shape(reason) is not None, "personal data not recognised by its shape"
