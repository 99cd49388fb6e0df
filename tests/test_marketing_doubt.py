"""Doubt protects the person: a customer an open review ties to someone who prohibited
direct marketing, or to a possible minor, stays off the marketing list until a steward
decides; then accepting (one person) or rejecting (two people) settles it.

On SQLite and PostgreSQL, through the real load and resolver where the matcher makes
the review, and with reviews put in by hand for the junior-trap chain. The view
`marketing_doubt` and the Python `doubt` (independent of it) must agree; the extract
refuses to publish anyone held back, and the informative check counts them.
Synthetic people only; assertion messages carry counts or ids.
"""

from __future__ import annotations

import contextlib

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from assets.checks import marketing_held_under_doubt, marketing_list_respects_prohibitions
from assets.marketing import marketing_extract_respects_prohibitions
from pipeline.intake import build_batch, discover, read_all
from pipeline.matching.retrain import register_records
from pipeline.matching.score import score_pairs
from pipeline.register import steward
from pipeline.register.checks import held_under_doubt
from pipeline.register.marketing import ExtractRefused, doubt, verify_extract, write_extract
from pipeline.matching.settings import MatchSettings
from synth import generate
from schemas.register import review_queue
from test_asset_checks import (
    NOW,
    _create_view,
    check_context,
    database_today,
    insert_customer,
    marketing_contacts_now,
    migration_0003,
)
from test_register_helpers import personal_id
from test_register_resolve import TODAY, batch_of, customer_of, load_batch, record, table

KALLE = dict(first_names="Kalle Johannes", last_name="Merkkinen", street_address="Koekatu 7 A 2",
             postal_code="33100", city="Tampere")
# A coded adult who allows direct marketing and holds a product.
ADULT = record("web", "W-A", "2026-11-01T10:00", personal_id=personal_id(3, 4, 1970, 123), phone="+358401112222",
               email="kalle.merkkinen@example.fi", product="electricity", marketing_prohibited=False, **KALLE)
# A later phone call, no code: "no marketing". Close enough to review, not to link.
PROHIBITING_CALL = record("phone", "P-X", "2026-11-02T10:00", marketing_prohibited=True, first_names="Kalle",
                          last_name="Merkkinen", street_address="Koekatu 9", postal_code="33100", city="Tampere")
# A later call, no code, "no marketing": the same names, but at another street of the postal
# code and from another phone. About 0.64: no review were it not a prohibition.
WEAK_PROHIBITING_CALL = record("phone", "P-W", "2026-11-02T10:00", marketing_prohibited=True, first_names="Kalle",
                               last_name="Merkkinen", phone="+358409998888", street_address="Ojakatu 3",
                               postal_code="33100", city="Tampere")
# A web form, no code, born 2010: a minor with the same names and e-mail.
MINOR_FORM = record("email", "E-Z", "2026-11-02T10:00", birth_date="2010-05-05", email="kalle.merkkinen@example.fi",
                    **KALLE)


def listed(engine: sa.Engine) -> set[int]:
    return {r[0] for r in table(engine, "SELECT DISTINCT customer_id FROM marketing_contacts")}


def view_ties(engine: sa.Engine) -> set[tuple]:
    return set(table(engine, "SELECT customer_id, tied_customer_id, review_id, reason FROM marketing_doubt"))


def python_ties(engine: sa.Engine) -> set[tuple]:
    with engine.connect() as connection:
        whole = set(doubt(connection, database_today(engine)).ties)
        reviews = set(doubt(connection, database_today(engine), reviews_only=True).ties)
        customers = [c for (c,) in connection.execute(sa.text("SELECT customer_id FROM customer ORDER BY 1"))]
        # Restricted to some customers (one at a time, pairs, all): the whole register's ties holding them.
        groups = [[c] for c in customers] + [customers[i:i + 2] for i in range(len(customers))] + [customers, []]
        for among in groups:
            assert set(doubt(connection, database_today(engine), among=among).ties) == {
                t for t in whole if t[0] in among}, among
            assert set(doubt(connection, database_today(engine), reviews_only=True, among=among).ties) == {
                t for t in reviews if t[0] in among}, among
        # The review queue's "holds back from marketing" is the whole register's answer for each review.
        held_by_review: dict[int, list[str]] = {}
        for _, _, review_id, reason in reviews:
            held_by_review.setdefault(review_id, set()).add(reason)
        for size in (1, 50):
            for page in range(0, steward.count_reviews(connection) // size + 1):
                for item in steward.list_reviews(connection, limit=size, offset=page * size):
                    assert item["holds_back_from_marketing"] == sorted(held_by_review.get(item["review_id"], ()))
        return whole


def open_review(engine: sa.Engine) -> int:
    rows = table(engine, "SELECT review_id FROM review_queue WHERE status = 'open'")
    assert len(rows) == 1, f"{len(rows)} open reviews; the case expects the matcher to raise exactly one"
    return rows[0][0]


def _load(engine: sa.Engine, *records: dict) -> dict:
    load_batch(engine, batch_of("d1", list(records)))
    owners = customer_of(engine)
    assert len(set(owners.values())) == len(records), "the case needs the records left apart (a review, not a link)"
    return owners


# --- (a) tied to someone who prohibited direct marketing ---------------------------------------------

def test_a_prohibiting_record_left_in_review_holds_its_pair_off_the_list(register_engine, tmp_path):
    owners = _load(register_engine, ADULT, PROHIBITING_CALL)
    adult, caller = owners[("web", "W-A")], owners[("phone", "P-X")]
    review_id = open_review(register_engine)

    assert adult not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {(adult, caller, review_id, "prohibited")}
    summary = write_extract(register_engine, tmp_path, today=database_today(register_engine))
    assert summary.rows["electricity"] == 0
    counts = held_under_doubt(register_engine, database_today(register_engine))
    assert counts == {"held_under_doubt": 1, "held_for.prohibited": 1, "held_for.possible_minor": 0,
                      "held_for.prohibited_contact": 0, "held_for.prohibition_not_withdrawn": 0}
    warned = marketing_held_under_doubt(check_context(register_engine))
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.metadata["held_under_doubt"].value == 1
    assert marketing_list_respects_prohibitions(check_context(register_engine)).passed

    with register_engine.connect() as connection:
        queue = steward.list_reviews(connection)
    assert [(r["review_id"], r["holds_back_from_marketing"]) for r in queue] == [(review_id, ["prohibited"])]

    # The steward: two people. The adult returns to the list; the check is quiet.
    steward.decide_review(register_engine, review_id, accept=False, by="steward.one", now=NOW)
    assert adult in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == set()
    assert marketing_held_under_doubt(check_context(register_engine)).passed
    summary = write_extract(register_engine, tmp_path, today=database_today(register_engine))
    assert summary.rows["electricity"] == 1
    assert verify_extract(register_engine, tmp_path, today=database_today(register_engine)).ok


def test_a_deferred_review_still_holds_its_pair_off_the_list_until_decided(register_engine):
    """Deferring is not deciding: the review stays open, shows as deferred, and the adult stays
    off the marketing list (view and Python alike) until a steward rejects it."""
    owners = _load(register_engine, ADULT, PROHIBITING_CALL)
    adult, caller = owners[("web", "W-A")], owners[("phone", "P-X")]
    review_id = open_review(register_engine)
    steward.defer_review(register_engine, review_id, by="steward.one", reason="ticket 77: ask the caller",
                         now=NOW)
    assert adult not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {(adult, caller, review_id, "prohibited")}
    with register_engine.connect() as connection:
        queue = steward.list_reviews(connection, "deferred")
    assert [(r["review_id"], r["deferred"]["by"], r["holds_back_from_marketing"]) for r in queue] == [
        (review_id, "steward.one", ["prohibited"])]
    steward.decide_review(register_engine, review_id, accept=False, by="steward.two", now=NOW)
    assert adult in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == set()


def test_accepting_the_review_merges_and_the_latest_statement_keeps_the_person_off(register_engine):
    owners = _load(register_engine, ADULT, PROHIBITING_CALL)
    review_id = open_review(register_engine)
    steward.decide_review(register_engine, review_id, accept=True, by="steward.two", now=NOW)
    merged = customer_of(register_engine)
    survivor = merged[("web", "W-A")]
    assert merged[("phone", "P-X")] == survivor == min(owners.values())
    assert table(register_engine, f"SELECT marketing_prohibited FROM customer WHERE customer_id = {survivor}") \
        in ([(True,)], [(1,)])
    assert survivor not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == set()  # no doubt left: a decision


def _load_in_order(engine: sa.Engine, order: str, call: dict) -> dict:
    """The adult and a call in one load ("together"), or a day apart, the call or the adult first."""
    if order == "together":
        load_batch(engine, batch_of("d1", [ADULT, call]))
    else:
        first, second = (call, ADULT) if order == "call first" else (ADULT, call)
        load_batch(engine, batch_of("d1", [first]))
        load_batch(engine, batch_of("d2", [second]))
    return customer_of(engine)


def _queue(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [(r["reason"], r["probability"], r["holds_back_from_marketing"])
                for r in steward.list_reviews(connection)]


@pytest.mark.parametrize("order", ["call first", "together"])
def test_a_no_too_weak_to_link_or_review_still_holds_its_match_off_the_list(register_engine, order):
    """Rule 5: a weaker pair (down to the doubt threshold) goes to review when one record of it
    says "no marketing", so the person is not marketed to through their other customer until a
    steward decides; the same in any load order."""
    owners = _load_in_order(register_engine, order, WEAK_PROHIBITING_CALL)
    adult, caller = owners[("web", "W-A")], owners[("phone", "P-W")]
    assert adult != caller
    review_id = open_review(register_engine)
    [(reason, probability, holds)] = _queue(register_engine)
    settings = MatchSettings()
    assert reason == "marketing_doubt" and holds == ["prohibited"]
    assert settings.doubt_threshold <= probability < settings.review_threshold
    assert adult not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {(adult, caller, review_id, "prohibited")}

    steward.decide_review(register_engine, review_id, accept=False, by="steward.one", now=NOW)
    assert adult in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == set()


def test_the_same_weak_match_without_a_prohibition_is_no_review(register_engine):
    allowing = {**WEAK_PROHIBITING_CALL, "marketing_prohibited": False}
    owners = _load(register_engine, ADULT, allowing)
    assert _queue(register_engine) == []
    assert owners[("web", "W-A")] in listed(register_engine)


# A call with no code and no address: "no marketing", the first given name and surname only. No
# blocking rule pairs it with the adult (no contact point, no postal code, one given name);
# the doubt-only rule does (the names, either way round): about 0.42, a doubt, never a link.
NAMES_ONLY_CALL = record("phone", "P-N", "2026-11-02T10:00", marketing_prohibited=True, first_names="Kalle",
                         last_name="Merkkinen")


@pytest.mark.parametrize("order", ["call first", "adult first", "together"])
@pytest.mark.parametrize("names", ["as written", "fields swapped"])
def test_a_no_that_shares_only_the_names_holds_its_namesake_off_the_list_in_any_load_order(
        register_engine, order, names):
    """Rule 5 with the doubt-only blocking rule: a code-less record prohibiting direct marketing
    meets every record of its first given name and surname, wherever it lives and in whichever
    load it came; a pair at or above the doubt threshold is a review, which holds the namesake
    off the list until a steward decides. Neither the pair nor the review links anything."""
    call = NAMES_ONLY_CALL if names == "as written" else {**NAMES_ONLY_CALL, "first_names": "Merkkinen",
                                                           "last_name": "Kalle"}
    owners = _load_in_order(register_engine, order, call)
    adult, caller = owners[("web", "W-A")], owners[("phone", "P-N")]
    assert adult != caller
    review_id = open_review(register_engine)
    [(reason, probability, holds)] = _queue(register_engine)
    assert reason == "marketing_doubt" and holds == ["prohibited"]
    assert MatchSettings().doubt_threshold <= probability < MatchSettings().review_threshold
    assert adult not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {(adult, caller, review_id, "prohibited")}

    steward.decide_review(register_engine, review_id, accept=False, by="steward.one", now=NOW)
    assert adult in listed(register_engine)


def test_names_alone_pair_nobody_without_a_no(register_engine):
    """The doubt-only rule pairs namesakes only when one of them says "no marketing" (without a
    code: `features.doubt_anchors`): the same call allowing marketing is not compared at all."""
    owners = _load(register_engine, ADULT, {**NAMES_ONLY_CALL, "marketing_prohibited": False})
    assert _queue(register_engine) == []
    assert owners[("web", "W-A")] in listed(register_engine)


# --- (b) tied to a possible minor ------------------------------------------------------------------------

def test_a_customer_tied_to_a_minor_is_held_until_the_steward_decides(register_engine):
    owners = _load(register_engine, ADULT, MINOR_FORM)
    adult, minor = owners[("web", "W-A")], owners[("email", "E-Z")]
    review_id = open_review(register_engine)
    assert adult not in listed(register_engine) and minor not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {(adult, minor, review_id, "possible_minor")}
    assert held_under_doubt(register_engine, database_today(register_engine))["held_for.possible_minor"] == 1
    steward.decide_review(register_engine, review_id, accept=False, by="steward.one", now=NOW)
    assert listed(register_engine) == {adult}


def _tie(engine: sa.Engine, left: int, right: int, reason: str = "ambiguous") -> int:
    with engine.begin() as connection:
        return connection.execute(review_queue.insert().values(
            left_customer_id=left, right_customer_id=right, probability=0.99, evidence={"reason": reason},
            status="open", created_at=NOW).returning(review_queue.c.review_id)).scalar_one()


def test_unknown_age_tied_to_a_minor_holds_back_who_could_be_that_minor(register_engine):
    """The junior trap: a code-less record of unknown age fits a father and his under-age son."""
    today = database_today(register_engine)
    adult_birth = today.replace(year=today.year - 50)
    father = insert_customer(register_engine, personal_id=personal_id(3, 4, 1970, 123), birth_date=adult_birth)
    son = insert_customer(register_engine, personal_id=personal_id(5, 6, 2012, 125),
                          birth_date=today.replace(year=today.year - 14))
    unknown = insert_customer(register_engine)  # no code, no birth date
    codeless_adult = insert_customer(register_engine, birth_date=adult_birth)  # could be the son, mistyped
    to_father, to_son = _tie(register_engine, unknown, father), _tie(register_engine, unknown, son)
    to_codeless = _tie(register_engine, codeless_adult, unknown, "uncertain")
    expected = {
        (unknown, son, to_son, "possible_minor"),                      # tied to a minor
        (codeless_adult, unknown, to_codeless, "possible_minor"),      # unknown age, tied to a minor it could be
    }  # not the father: his code and the son's differ, he cannot be the son
    assert view_ties(register_engine) == python_ties(register_engine) == expected
    assert listed(register_engine) == {father}
    assert held_under_doubt(register_engine, today) == {
        "held_under_doubt": 1, "held_for.prohibited": 0, "held_for.possible_minor": 1,
        "held_for.prohibited_contact": 0, "held_for.prohibition_not_withdrawn": 0}
    del to_father


# --- (c) a prohibition reaches the contact point it came from ----------------------------------------

# Another person (another valid code: never one customer, never a review) who prohibited
# direct marketing, sharing one contact point with the adult.
_OTHER_CODE = personal_id(9, 9, 1972, 246)
SHARED_POINTS = {
    "email": dict(first_names="Liisa", last_name="Merkkinen", email=ADULT["email"]),
    "phone": dict(first_names="Liisa", last_name="Merkkinen", phone=ADULT["phone"]),
    "names": dict(first_names="Kalle Johannes", last_name="Merkkinen", street_address="Testitie 1",
                  postal_code="33100", city="Tampere"),  # a namesake in the same postal code
    "names_swapped": dict(first_names="Merkkinen", last_name="Kalle Johannes", postal_code="33100"),
}


@pytest.mark.parametrize("point", sorted(SHARED_POINTS))
def test_a_prohibition_holds_back_whoever_else_is_reached_at_its_contact_point(register_engine, tmp_path, point):
    other = record("mail", "M-O", "2026-11-03T10:00", personal_id=_OTHER_CODE, marketing_prohibited=True,
                   **SHARED_POINTS[point])
    owners = _load(register_engine, ADULT, other)
    adult, prohibiting = owners[("web", "W-A")], owners[("mail", "M-O")]
    assert table(register_engine, "SELECT COUNT(*) FROM review_queue") == [(0,)], "two codes: never a review"

    assert adult not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {
        (adult, prohibiting, None, "prohibited_contact")}
    today = database_today(register_engine)
    assert held_under_doubt(register_engine, today)["held_for.prohibited_contact"] == 1
    assert write_extract(register_engine, tmp_path, today=today).rows["electricity"] == 0
    with view_without_doubt(register_engine):
        with pytest.raises(ExtractRefused) as refused:
            write_extract(register_engine, tmp_path, today=today)
        assert refused.value.counts["held_under_doubt"] == 1


def test_a_prohibition_elsewhere_with_no_contact_point_in_common_holds_nobody_back(register_engine):
    other = record("mail", "M-O", "2026-11-03T10:00", personal_id=_OTHER_CODE, marketing_prohibited=True,
                   first_names="Kalle Johannes", last_name="Merkkinen", street_address="Koekatu 7 A 2",
                   postal_code="00100", city="Helsinki", email="toinen@example.fi", phone="+358409998877")
    owners = _load(register_engine, ADULT, other)
    assert listed(register_engine) == {owners[("web", "W-A")]}
    assert view_ties(register_engine) == python_ties(register_engine) == set()


# A call with no code after a move: "no marketing", the adult's full names, another town, another phone.
MOVED = dict(street_address="Muuttotie 3", postal_code="00100", city="Helsinki", phone="+358409998877")
FULL_NAMES_ELSEWHERE = {
    "full names": dict(first_names="Kalle Johannes", last_name="Merkkinen"),
    "full names, fields swapped": dict(first_names="Merkkinen", last_name="Kalle Johannes"),
}


@pytest.mark.parametrize("names", sorted(FULL_NAMES_ELSEWHERE))
def test_a_prohibition_under_full_names_reaches_them_after_a_move(register_engine, names):
    """Two or more given names and the surname, either way round, anywhere: the person who said no
    may have moved. Nothing tells the two apart (the call has no code and no birth date)."""
    call = record("phone", "P-M", "2026-11-03T10:00", marketing_prohibited=True,
                  **FULL_NAMES_ELSEWHERE[names], **MOVED)
    owners = _load(register_engine, ADULT, call)
    adult, prohibiting = owners[("web", "W-A")], owners[("phone", "P-M")]
    assert table(register_engine, "SELECT COUNT(*) FROM review_queue WHERE status = 'open'") == [(0,)]
    assert adult not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {
        (adult, prohibiting, None, "prohibited_contact")}


FULL_NAMES_BUT = {
    # One given name is a namesake's too often to hold anyone back on it elsewhere.
    "one given name": (dict(first_names="Kalle", last_name="Merkkinen"), {}),
    # Both birth dates known, and they differ: two people.
    "another birth date": (dict(first_names="Kalle Johannes", last_name="Merkkinen"),
                           dict(birth_date=pd.Timestamp(1971, 8, 9))),
}


@pytest.mark.parametrize("case", sorted(FULL_NAMES_BUT))
def test_full_names_elsewhere_hold_nobody_back_when_they_cannot_be_the_person(register_engine, case):
    names, more = FULL_NAMES_BUT[case]
    call = record("phone", "P-M", "2026-11-03T10:00", marketing_prohibited=True, **names, **MOVED, **more)
    owners = _load(register_engine, ADULT, call)
    assert listed(register_engine) == {owners[("web", "W-A")]}
    assert view_ties(register_engine) == python_ties(register_engine) == set()


# --- (d) a prohibition stands until the same code withdraws it -------------------------------------------

# No code, the adult's names, address, phone and e-mail, a week earlier: "no marketing".
EARLIER_PROHIBITION = record("phone", "P-E", "2026-10-25T10:00", marketing_prohibited=True,
                             phone=ADULT["phone"], email=ADULT["email"], **KALLE)
# No code and no statement: linked by probability.
LATER_CALL = record("phone", "P-L", "2026-11-05T10:00", phone=ADULT["phone"], email=ADULT["email"], **KALLE)


def _one_customer(engine: sa.Engine) -> int:
    owners = set(customer_of(engine).values())
    assert len(owners) == 1, f"{len(owners)} customers; the case needs the records linked"
    return owners.pop()


def test_a_prohibition_linked_by_probability_is_not_withdrawn_by_a_later_consent_without_its_code(register_engine):
    load_batch(register_engine, batch_of("d1", [EARLIER_PROHIBITION, ADULT]))
    linked = _one_customer(register_engine)
    assert ("probabilistic",) in table(register_engine, "SELECT match_method FROM source_record")
    # The golden record keeps the latest statement, the adult's "yes" (rule 6) ...
    assert table(register_engine, f"SELECT marketing_prohibited FROM customer WHERE customer_id = {linked}") \
        in ([(False,)], [(0,)])
    # ... but the "no" may be someone else's: held back.
    assert linked not in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {
        (linked, linked, None, "prohibition_not_withdrawn")}
    assert held_under_doubt(register_engine, database_today(register_engine))[
        "held_for.prohibition_not_withdrawn"] == 1


def test_a_later_statement_under_the_same_code_withdraws_a_prohibition(register_engine):
    coded_prohibition = {**EARLIER_PROHIBITION, "personal_id": ADULT["personal_id"],
                         "birth_date": ADULT["birth_date"]}
    load_batch(register_engine, batch_of("d1", [coded_prohibition, ADULT, LATER_CALL]))
    linked = _one_customer(register_engine)
    assert ("probabilistic",) in table(register_engine, "SELECT match_method FROM source_record")
    assert listed(register_engine) == {linked}
    assert view_ties(register_engine) == python_ties(register_engine) == set()
    # Withdrawn before it was made does not count: the prohibition made again under the code stands,
    # though a later consent without the code is now the golden record's latest statement.
    again = {**coded_prohibition, "source_record_id": "P-E2", "observed_at": ADULT["observed_at"] + pd.Timedelta(days=9)}
    consent = {**LATER_CALL, "source_record_id": "P-L2", "marketing_prohibited": False,
               "observed_at": ADULT["observed_at"] + pd.Timedelta(days=12)}
    load_batch(register_engine, batch_of("d2", [again, consent]))
    assert _one_customer(register_engine) == linked
    assert table(register_engine, f"SELECT marketing_prohibited FROM customer WHERE customer_id = {linked}") \
        in ([(False,)], [(0,)])
    assert listed(register_engine) == set()
    assert view_ties(register_engine) == python_ties(register_engine) == {
        (linked, linked, None, "prohibition_not_withdrawn")}


def test_a_stewards_merge_lets_the_latest_statement_decide(register_engine):
    earlier_call = {**PROHIBITING_CALL, "observed_at": ADULT["observed_at"] - pd.Timedelta(days=3)}
    owners = _load(register_engine, ADULT, earlier_call)
    review_id = open_review(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == {
        (owners[("web", "W-A")], owners[("phone", "P-X")], review_id, "prohibited")}
    steward.decide_review(register_engine, review_id, accept=True, by="steward.two", now=NOW)
    survivor = _one_customer(register_engine)
    # One person by a steward's decision: the adult's later "yes" is theirs, nothing is in doubt.
    assert listed(register_engine) == {survivor}
    assert view_ties(register_engine) == python_ties(register_engine) == set()


# --- the extract refuses, the checks see it ------------------------------------------------------------

@contextlib.contextmanager
def view_without_doubt(engine: sa.Engine):
    """`marketing_contacts` as migration 0003 defined it (every rule but doubt), for the block."""
    with engine.begin() as connection:
        _create_view(connection, migration_0003()._marketing_contacts(engine.dialect.name).split(" AS", 1)[1])
    try:
        yield
    finally:
        with engine.begin() as connection:
            _create_view(connection, marketing_contacts_now(engine.dialect.name))


def test_the_extract_refuses_to_publish_a_customer_held_under_doubt(register_engine, tmp_path):
    owners = _load(register_engine, ADULT, PROHIBITING_CALL)
    today = database_today(register_engine)
    with view_without_doubt(register_engine):
        assert owners[("web", "W-A")] in listed(register_engine)
        with pytest.raises(ExtractRefused) as refused:
            write_extract(register_engine, tmp_path, today=today)
        assert refused.value.counts["held_under_doubt"] == 1
        assert refused.value.counts["prohibited"] == 0
        assert not (tmp_path / today.isoformat()).exists(), "a refused extract must leave nothing on disk"
        result = marketing_list_respects_prohibitions(check_context(register_engine))
        assert not result.passed and result.metadata["held_under_doubt"].value == 1
    assert marketing_list_respects_prohibitions(check_context(register_engine)).passed


def test_the_extract_check_fails_when_a_published_customer_comes_under_doubt(register_engine, tmp_path):
    load_batch(register_engine, batch_of("d1", [ADULT]))
    today = database_today(register_engine)
    write_extract(register_engine, tmp_path, today=today)
    assert verify_extract(register_engine, tmp_path, today=today).ok
    # The next night brings the "no marketing" call; the file already sent must be flagged.
    load_batch(register_engine, batch_of("d2", [PROHIBITING_CALL]))
    open_review(register_engine)
    verification = verify_extract(register_engine, tmp_path, today=today)
    assert not verification.ok and verification.ineligible.held_under_doubt == 1
    result = marketing_extract_respects_prohibitions(check_context(register_engine, tmp_path))
    assert not result.passed and result.metadata["held_under_doubt"].value == 1


# --- every doubt is stored ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated_landing(tmp_path_factory):
    out = tmp_path_factory.mktemp("doubt-zone")
    generate(out, people=1500, days=4, seed=7)
    return out / "landing"


def test_every_pair_scored_above_the_review_threshold_but_left_apart_is_a_review(register_engine, generated_landing):
    """The doubts the view reads are all there: a pair of records the frozen model scores at or
    above the review threshold whose customers differ is tied by a review between those two
    customers, unless they hold two different valid codes (never one person, rule 4)."""
    load_batch(register_engine, build_batch(read_all(discover(generated_landing)), TODAY))
    with register_engine.connect() as connection:
        records = register_records(connection)
    pairs = score_pairs(records, min_probability=MatchSettings().review_threshold)
    owner = records.set_index("record_key")["customer_id"]
    codes = records.groupby("customer_id")["personal_id"].agg(lambda s: frozenset(s.dropna()))
    tied = {frozenset(p) for p in table(register_engine, """
        SELECT sl.customer_id, sr.customer_id FROM review_queue r
        JOIN source_record sl ON sl.source_record_pk = r.left_source_record_pk
        JOIN source_record sr ON sr.source_record_pk = r.right_source_record_pk""")}
    apart = [(int(owner[a]), int(owner[b])) for a, b in zip(pairs["key_l"], pairs["key_r"]) if owner[a] != owner[b]]
    untied = [(a, b) for a, b in apart
              if frozenset((a, b)) not in tied and not (codes[a] and codes[b] and codes[a] != codes[b])]
    assert len(pairs) > 50 and apart, "the generated register should hold uncertain pairs"
    assert untied == [], f"{len(untied)} of {len(apart)} pairs above the review threshold are tied by no review"


def test_a_new_version_that_drops_the_prohibition_withdraws_its_weak_review(register_engine):
    """The call is re-sent corrected (no prohibition after all): the weak pair no longer
    qualifies, so its review is withdrawn and the adult is back on the list, as if the
    corrected call had been the only one."""
    owners = _load(register_engine, ADULT, WEAK_PROHIBITING_CALL)
    review_id = open_review(register_engine)
    corrected = {**WEAK_PROHIBITING_CALL, "marketing_prohibited": False,
                 "observed_at": pd.Timestamp("2026-11-03T10:00", tz="UTC")}  # a later version of the call
    load_batch(register_engine, batch_of("d2", [corrected]))
    assert table(register_engine, f"SELECT status FROM review_queue WHERE review_id = {review_id}") == [("withdrawn",)]
    assert owners[("web", "W-A")] in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == set()


def test_a_new_version_that_makes_the_pair_unlike_withdraws_its_review(register_engine):
    """The same for an ordinary review: the call is corrected to another person's names,
    the pair no longer scores for review, and the review no longer holds the adult back."""
    owners = _load(register_engine, ADULT, PROHIBITING_CALL)
    review_id = open_review(register_engine)
    corrected = {**PROHIBITING_CALL, "first_names": "Jussi", "observed_at": pd.Timestamp("2026-11-03T10:00", tz="UTC")}
    load_batch(register_engine, batch_of("d2", [corrected]))
    assert table(register_engine, f"SELECT status FROM review_queue WHERE review_id = {review_id}") == [("withdrawn",)]
    assert owners[("web", "W-A")] in listed(register_engine)
    assert view_ties(register_engine) == python_ties(register_engine) == set()
