"""Identity resolution in the register, on SQLite and PostgreSQL.

Rules 2-6 of docs/register_rules.md: idempotent, order independent, one code one person and
never two codes in one customer, stable ids with merges, survivorship, and steward
decisions that stick. Small cases are built in code (synthetic values only); the
order-independence case uses the generator's days.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.intake import build_batch, discover, read_all
from pipeline.register import resolve, steward
from pipeline.register.load import IntakeBatch, load_intake
from pipeline.matching.settings import MatchSettings
from pipeline.register.resolve import resolve_identities
from synth import generate
from test_register_helpers import checksum, personal_id, snapshot

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 11, 25)
SETTINGS = MatchSettings()


def _resolve(connection):
    return resolve_identities(connection, now=NOW, run_id="test", settings=SETTINGS)


def load_batch(engine, batch: IntakeBatch):
    return load_intake(engine, batch, run_id="test", now=NOW, after_load=_resolve)


def record(channel: str, rid: str, when: str, **values) -> dict:
    base = {"channel": channel, "source_record_id": rid, "record_number": 1,
            "observed_at": pd.Timestamp(when, tz="UTC"), "first_names": None, "last_name": None,
            "personal_id": None, "birth_date": None, "street_address": None, "postal_code": None, "city": None,
            "phone": None, "email": None, "iban": None, "bic": None, "product": None, "metering_point": None,
            "marketing_prohibited": None, "identity_verified": False, "quality_flags": ""}
    base.update(values)
    if base["personal_id"] and base["birth_date"] is None:
        code = base["personal_id"]
        century = {"+": 1800, "-": 1900, "Y": 1900, "A": 2000, "B": 2000}[code[6]]
        base["birth_date"] = pd.Timestamp(century + int(code[4:6]), int(code[2:4]), int(code[0:2]))
    return base


def batch_of(label: str, records: list[dict]) -> IntakeBatch:
    files, accepted = [], []
    for channel in sorted({r["channel"] for r in records}):
        name = f"{channel}_{label}"
        files.append({"channel": channel, "file_name": name, "checksum": checksum(name), "size_bytes": 1,
                      "file_reason": None, "file_detail": None})
        for n, r in enumerate([r for r in records if r["channel"] == channel], start=1):
            accepted.append({**r, "record_number": n, "checksum": checksum(name)})
    frame = pd.DataFrame(accepted)
    frame["birth_date"] = pd.to_datetime(frame["birth_date"])
    frame["marketing_prohibited"] = frame["marketing_prohibited"].astype("boolean")
    quarantined = pd.DataFrame(columns=["channel", "source_record_id", "checksum", "record_number", "reasons",
                                        "detail", "raw_values"])
    return IntakeBatch(files=pd.DataFrame(files), accepted=frame, quarantined=quarantined)


def customer_of(engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT channel, source_record_id, customer_id FROM source_record")).all()
    return {(c, r): cid for c, r, cid in rows}


def grouping(engine) -> set[frozenset]:
    groups: dict[int, set] = {}
    for key, cid in customer_of(engine).items():
        groups.setdefault(cid, set()).add(key)
    return {frozenset(g) for g in groups.values()}


def open_reviews(engine) -> set[frozenset]:
    return {pair for pair, (_, status) in _reviews(engine).items() if status == "open"}


def table(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


# --- rule 4: the identity code -------------------------------------------------------------------

def test_same_code_links_and_century_sign_pairs_stay_apart(register_engine):
    dash = personal_id(1, 1, 1901, 123)  # 010101-123x
    y_sign = dash[:6] + "Y" + dash[7:]    # same digits, other 1900s sign: another person
    batch = batch_of("d1", [
        record("web", "W-1", "2026-11-01T10:00", personal_id=dash, first_names="Aatu", last_name="Testinen",
               phone="+358401111111"),
        record("phone", "P-1", "2026-11-02T10:00", personal_id=dash, first_names="Aatu", last_name="Testinen"),
        record("mail", "M-1", "2026-11-03T10:00", personal_id=y_sign, first_names="Aatu", last_name="Testinen",
               phone="+358401111111"),
    ])
    load_batch(register_engine, batch)
    owners = customer_of(register_engine)
    assert owners[("web", "W-1")] == owners[("phone", "P-1")]
    assert owners[("mail", "M-1")] != owners[("web", "W-1")]
    methods = dict(((c, r), m) for c, r, m in table(register_engine,
                                                      "SELECT channel, source_record_id, match_method FROM source_record"))
    assert methods[("phone", "P-1")] == "personal_id"
    assert len(table(register_engine, "SELECT customer_id FROM customer WHERE merged_into IS NULL")) == 2


def test_a_code_less_record_between_two_codes_never_joins_them(register_engine):
    twin_a = personal_id(5, 6, 1990, 201)
    twin_b = personal_id(5, 6, 1990, 203)
    shared = dict(last_name="Kaksonen", street_address="Testikuja 3", postal_code="00100", city="Helsinki",
                  phone="+358912345678", email="kaksoset@example.fi")
    batch = batch_of("d1", [
        record("web", "W-A", "2026-11-01T10:00", personal_id=twin_a, first_names="Eetu", **shared),
        record("web", "W-B", "2026-11-01T11:00", personal_id=twin_b, first_names="Eetu", **shared),
        record("phone", "P-X", "2026-11-02T10:00", first_names="Eetu", **shared),
    ])
    load_batch(register_engine, batch)
    owners = customer_of(register_engine)
    assert owners[("web", "W-A")] != owners[("web", "W-B")]
    # No customer holds records with two different codes.
    rows = table(register_engine, "SELECT customer_id, COUNT(DISTINCT personal_id) FROM source_record "
                                  "WHERE personal_id IS NOT NULL GROUP BY customer_id")
    assert all(n == 1 for _, n in rows)


# --- rule 5 and stable ids -----------------------------------------------------------------------

PERSON = dict(first_names="Kalle Johannes", last_name="Merkkinen", street_address="Koekatu 7 A 2",
              postal_code="33100", city="Tampere")


def test_merge_keeps_the_older_id_and_redirects_the_other(register_engine):
    load_batch(register_engine, batch_of("d1", [
        record("phone", "P-1", "2026-11-01T10:00", phone="+358407654321", **PERSON),
    ]))
    load_batch(register_engine, batch_of("d2", [
        # the same name at another address (he moved), with an e-mail address only
        record("email", "E-1", "2026-11-02T10:00", email="kalle.merkkinen@example.fi",
               **{**PERSON, "street_address": "Uusikatu 1", "postal_code": "00100", "city": "Helsinki"}),
    ]))
    first, second = customer_of(register_engine)[("phone", "P-1")], customer_of(register_engine)[("email", "E-1")]
    # The web record carries the code and both contacts: all three are one person.
    code = personal_id(12, 3, 1975, 456)
    load_batch(register_engine, batch_of("d3", [
        record("web", "W-1", "2026-11-03T10:00", personal_id=code, phone="+358407654321",
               email="kalle.merkkinen@example.fi", identity_verified=True, **PERSON),
    ]))
    owners = customer_of(register_engine)
    # The same name at two addresses, no contact in common: two customers until the web record came.
    assert first != second
    survivor = min(first, second)
    assert owners[("phone", "P-1")] == owners[("email", "E-1")] == owners[("web", "W-1")] == survivor
    merges = table(register_engine, "SELECT merged_customer_id, surviving_customer_id FROM customer_merge")
    assert (max(first, second), survivor) in merges
    merged_into = table(register_engine,
                        f"SELECT merged_into, personal_id FROM customer WHERE customer_id = {max(first, second)}")
    assert merged_into == [(survivor, None)]
    golden = table(register_engine, f"SELECT personal_id, phone, email FROM customer "
                                    f"WHERE customer_id = {owners[('web', 'W-1')]}")
    assert golden == [(code, "+358407654321", "kalle.merkkinen@example.fi")]


def test_a_chain_of_merges_resolves_every_old_id_to_the_last_survivor(register_engine):
    # Three customers of one person: by phone, by e-mail at another address, by bank account at a third.
    elsewhere = {**PERSON, "street_address": "Uusikatu 1", "postal_code": "00100", "city": "Helsinki"}
    third_place = {**PERSON, "street_address": "Rantatie 5", "postal_code": "90100", "city": "Oulu"}
    account = "FI2112345600000785"
    load_batch(register_engine, batch_of("d1", [
        record("phone", "P-1", "2026-11-01T10:00", phone="+358407654321", **PERSON)]))
    load_batch(register_engine, batch_of("d2", [
        record("email", "E-1", "2026-11-02T10:00", email="kalle.merkkinen@example.fi", **elsewhere)]))
    load_batch(register_engine, batch_of("d3", [
        record("mail", "M-1", "2026-11-03T10:00", iban=account, **third_place)]))
    owners = customer_of(register_engine)
    first, second, third = owners[("phone", "P-1")], owners[("email", "E-1")], owners[("mail", "M-1")]
    assert first < second < third
    code = personal_id(12, 3, 1975, 456)
    # The code with the e-mail and the account: the second and third customers are one (third -> second).
    load_batch(register_engine, batch_of("d4", [
        record("web", "W-1", "2026-11-04T10:00", personal_id=code, email="kalle.merkkinen@example.fi",
               iban=account, **elsewhere)]))
    assert table(register_engine, f"SELECT merged_into FROM customer WHERE customer_id = {third}") == [(second,)]
    # The code with the phone: all are one (second -> first), and the third now points at the first too.
    load_batch(register_engine, batch_of("d5", [
        record("web", "W-2", "2026-11-05T10:00", personal_id=code, phone="+358407654321", **PERSON)]))
    assert set(customer_of(register_engine).values()) == {first}
    pointing = dict(table(register_engine, "SELECT customer_id, merged_into FROM customer "
                                           "WHERE merged_into IS NOT NULL"))
    assert pointing == {second: first, third: first}
    merges = table(register_engine, "SELECT merged_customer_id, surviving_customer_id FROM customer_merge")
    assert sorted(merges) == [(second, first), (third, second)]


def test_loading_twice_changes_nothing(register_engine):
    records = [
        record("web", "W-1", "2026-11-01T10:00", personal_id=personal_id(1, 2, 1980, 300), phone="+358401230000",
               **PERSON),
        record("phone", "P-1", "2026-11-02T10:00", phone="+358401230000", **PERSON),
    ]
    batch = batch_of("d1", records)
    load_batch(register_engine, batch)
    before = (table(register_engine, "SELECT * FROM customer ORDER BY customer_id"),
              customer_of(register_engine),
              table(register_engine, "SELECT COUNT(*) FROM review_queue"))
    load_batch(register_engine, batch)  # the same files: skipped by checksum
    resent = batch_of("d1-resent", records)
    summary = load_batch(register_engine, resent)  # the same records in new files: re-sends
    assert summary.total.resent == 2 and summary.after_load.records_resolved == 0
    with register_engine.begin() as conn:
        assert _resolve(conn).records_resolved == 0
    after = (table(register_engine, "SELECT * FROM customer ORDER BY customer_id"),
             customer_of(register_engine),
             table(register_engine, "SELECT COUNT(*) FROM review_queue"))
    assert before == after


# --- rule 6: survivorship ------------------------------------------------------------------------

def test_survivorship_moved_house_changed_surname_withdrawn_prohibition(register_engine):
    code = personal_id(9, 9, 1985, 222)
    load_batch(register_engine, batch_of("d1", [
        record("in_person", "I-1", "2026-11-01T09:00", personal_id=code, first_names="Liisa", last_name="Vanha",
               street_address="Vanhatie 1", postal_code="40100", city="Jyväskylä", identity_verified=True,
               marketing_prohibited=True),
        record("web", "W-1", "2026-11-02T09:00", personal_id=code, first_names="Liisa", last_name="Uusi",
               street_address="Uusitie 2 B 3", postal_code="90100", city="Oulu", marketing_prohibited=None),
    ]))
    load_batch(register_engine, batch_of("d2", [
        record("mail", "M-1", "2026-11-03T09:00", personal_id=code, first_names="Liisa", last_name="Uusi",
               marketing_prohibited=False),
    ]))
    golden = table(register_engine, "SELECT last_name, street_address, postal_code, city, marketing_prohibited "
                                    "FROM customer WHERE merged_into IS NULL")
    # Names from the identity-verified record; address (as a unit) from the latest that has one;
    # the latest explicit answer withdraws the prohibition (an empty answer states nothing).
    assert golden == [("Vanha", "Uusitie 2 B 3", "90100", "Oulu", False)]
    provenance = dict(table(register_engine, "SELECT attribute, channel FROM golden_value_provenance"))
    assert provenance["last_name"] == "in_person" and provenance["street_address"] == "web"
    assert provenance["marketing_prohibited"] == "mail"


# --- rule 3: order independence, on the generator's days ----------------------------------------

@pytest.fixture(scope="module")
def zone(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resolve-zone")
    # Seed 23: in calendar order an uncertain pair of day one is tied together on day three.
    generate(out, people=250, days=3, seed=23)
    return out / "landing"


def _days(landing: Path) -> list[str]:
    return sorted({p.name.rsplit("_", 1)[-1].split(".")[0] for p in landing.rglob("*_*.*")})


def _load_zone(engine, landing: Path) -> None:
    reads = read_all(discover(landing))
    load_batch(engine, build_batch(reads, TODAY))


def test_days_one_at_a_time_group_like_all_at_once(zone, register_engine, second_register_engine, tmp_path,
                                                    monkeypatch):
    _load_zone(register_engine, zone)
    all_at_once = grouping(register_engine)
    assert len(all_at_once) > 100

    # Each held record a load reads is read once, whichever round of the affected set
    # first needs it (a later round takes it from the earlier rounds' reads).
    reads: list[list[int]] = []
    read_records_by_key = resolve.read_records_by_key

    def counted(connection, ids):
        reads[-1].append(sorted(int(i) for i in ids))
        return read_records_by_key(connection, ids)

    monkeypatch.setattr(resolve, "read_records_by_key", counted)
    # A second, empty register of the same backend, loaded day by day.
    daily = tmp_path / "daily"
    for day in _days(zone):
        for path in zone.rglob(f"*_{day}.*"):
            target = daily / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
        reads.append([])
        _load_zone(second_register_engine, daily)
    assert grouping(second_register_engine) == all_at_once
    later = reads[1:]
    assert any(len(load) > 1 for load in later), "the case needs held records read in more than one round"
    for load in later:
        keys = [key for part in load for key in part]
        assert len(keys) == len(set(keys))
    assert open_reviews(register_engine), "the case needs a doubt for a steward"
    assert open_reviews(second_register_engine) == open_reviews(register_engine)


# --- the steward ----------------------------------------------------------------------------------

def _propose(engine, left: tuple[str, str], right: tuple[str, str]) -> int:
    """Put a pair on the review queue as the matcher would (probability and evidence)."""
    with engine.begin() as conn:
        pks = dict(((c, r), pk) for c, r, pk in conn.execute(sa.text(
            "SELECT channel, source_record_id, source_record_pk FROM source_record")).all())
        owners = customer_of(engine)
        existing = conn.execute(sa.text(
            "SELECT review_id FROM review_queue WHERE (left_source_record_pk = :a AND right_source_record_pk = :b) "
            "OR (left_source_record_pk = :b AND right_source_record_pk = :a)"),
            {"a": pks[left], "b": pks[right]}).scalar()
        if existing:
            return existing
        return conn.execute(sa.text(
            "INSERT INTO review_queue (left_source_record_pk, right_source_record_pk, left_customer_id, "
            "right_customer_id, probability, evidence, status, created_at) VALUES (:a, :b, :ca, :cb, 0.9, "
            "'{\"reason\": \"uncertain\"}', 'open', :now) RETURNING review_id"),
            {"a": pks[left], "b": pks[right], "ca": owners[left], "cb": owners[right], "now": NOW}).scalar()


NEAR_MISS = [
    record("phone", "P-1", "2026-11-01T10:00", phone="+358401112222", **PERSON),
    record("mail", "M-1", "2026-11-01T11:00", **{**PERSON, "first_names": "Kalle", "street_address": "Koekatu 9"}),
]


def _reviews(engine) -> dict[frozenset, tuple[int, str]]:
    """Each review entry by its pair of records: (review_id, status)."""
    with engine.connect() as conn:
        record_of = dict(((pk, (c, r)) for pk, c, r in conn.execute(sa.text(
            "SELECT source_record_pk, channel, source_record_id FROM source_record")).all()))
        rows = conn.execute(sa.text("SELECT review_id, left_source_record_pk, right_source_record_pk, status "
                                    "FROM review_queue")).all()
    entries = {frozenset({record_of[a], record_of[b]}): (review_id, status) for review_id, a, b, status in rows}
    assert len(entries) == len(rows), "one entry per pair of records"
    return entries


# A third record agreeing fully with both sides of NEAR_MISS.
TIE = record("web", "W-9", "2026-11-02T10:00", phone="+358401112222", **{**PERSON, "street_address": "Koekatu 9"})


def test_a_review_a_later_record_settles_is_withdrawn_and_reopened_if_the_doubt_returns(
        register_engine, second_register_engine):
    """Rule 3 for the queue: what is open after the days one at a time is what one load of them opens."""
    pair = frozenset({("phone", "P-1"), ("mail", "M-1")})
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    review_id, status = _reviews(register_engine)[pair]
    assert status == "open"  # the matcher's own doubt, not a hand-made entry

    load_batch(register_engine, batch_of("d2", [TIE]))
    owners = customer_of(register_engine)
    assert owners[("phone", "P-1")] == owners[("mail", "M-1")] == owners[("web", "W-9")]
    assert _reviews(register_engine) == {pair: (review_id, "withdrawn")}
    with pytest.raises(steward.StewardError, match="withdrawn"):
        steward.decide_review(register_engine, review_id, accept=True, by="steward.one", now=NOW)
    # One load of the same records puts nothing to a steward.
    load_batch(second_register_engine, batch_of("d1", [*NEAR_MISS, TIE]))
    assert grouping(second_register_engine) == grouping(register_engine)
    assert _reviews(second_register_engine) == {}

    # W-9 corrected by its channel (a new version: someone else's details): the doubt is back, on the same entry.
    load_batch(register_engine, batch_of("d3", [record(
        "web", "W-9", "2026-11-03T10:00", phone="+358409998888", first_names="Aino", last_name="Muualla",
        street_address="Toinenkatu 1", postal_code="00100", city="Helsinki")]))
    owners = customer_of(register_engine)
    assert owners[("phone", "P-1")] != owners[("mail", "M-1")]
    assert _reviews(register_engine) == {pair: (review_id, "open")}
    with register_engine.connect() as conn:
        left, right, decided_at = conn.execute(sa.text(
            "SELECT left_customer_id, right_customer_id, decided_at FROM review_queue "
            f"WHERE review_id = {review_id}")).one()
    assert {left, right} == {owners[("phone", "P-1")], owners[("mail", "M-1")]} and decided_at is None


def test_rejected_review_keeps_the_pair_apart_across_later_loads(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    owners = customer_of(register_engine)
    if owners[("phone", "P-1")] == owners[("mail", "M-1")]:
        pytest.fail("the near-miss pair was linked outright; the case needs less agreement")
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    with register_engine.connect() as conn:
        shown = steward.show_review(conn, review_id)
    assert shown["left"]["last_name"] != PERSON["last_name"]  # masked by default
    steward.decide_review(register_engine, review_id, accept=False, by="steward.one", now=NOW)
    # A later record agreeing with both must not bring them together.
    load_batch(register_engine, batch_of("d2", [
        record("web", "W-9", "2026-11-02T10:00", phone="+358401112222", **{**PERSON, "street_address": "Koekatu 9"}),
    ]))
    after = customer_of(register_engine)
    assert after[("phone", "P-1")] != after[("mail", "M-1")]
    assert owners[("phone", "P-1")] == after[("phone", "P-1")]
    decided = table(register_engine, f"SELECT status, decided_by FROM review_queue WHERE review_id = {review_id}")
    assert decided == [("rejected", "steward.one")]
    pairs = table(register_engine, "SELECT left_source_record_pk, right_source_record_pk FROM review_queue")
    assert len(pairs) == len({tuple(sorted(p)) for p in pairs})


def test_accepting_a_review_between_two_different_valid_codes_is_refused(register_engine, capsys):
    """Two valid codes are two people (rule 4): a steward's accept is refused and nothing is merged,
    whether the codes are on the two records or only on their customers' other records."""
    code_a, code_b = personal_id(2, 3, 1971, 214), personal_id(2, 3, 1971, 226)  # twins' codes, say
    same = dict(first_names="Kalle Johannes", last_name="Merkkinen", street_address="Koekatu 7 A 2",
                postal_code="33100", city="Tampere")
    load_batch(register_engine, batch_of("d1", [
        record("web", "W-1", "2026-11-01T10:00", personal_id=code_a, phone="+358401110001", **same),
        record("phone", "P-1", "2026-11-01T11:00", personal_id=code_b, phone="+358401110002", **same),
        # Without a code of their own, but each linked by phone to one of the codes above.
        record("mail", "M-1", "2026-11-02T10:00", phone="+358401110001", email="m1@example.fi", **same),
        record("email", "E-1", "2026-11-02T11:00", phone="+358401110002", email="e1@example.fi", **same),
    ]))
    owners = customer_of(register_engine)
    assert owners[("web", "W-1")] != owners[("phone", "P-1")], "two valid codes were linked outright"
    direct = _propose(register_engine, ("web", "W-1"), ("phone", "P-1"))
    pairs = [(direct, "steward.one")]
    if owners[("mail", "M-1")] == owners[("web", "W-1")] and owners[("email", "E-1")] == owners[("phone", "P-1")]:
        pairs.append((_propose(register_engine, ("mail", "M-1"), ("email", "E-1")), "steward.two"))
    before = snapshot(register_engine)
    for review_id, by in pairs:
        with pytest.raises(steward.StewardError, match="different valid identity codes"):
            steward.decide_review(register_engine, review_id, accept=True, by=by, now=NOW)
        assert snapshot(register_engine) == before, "a refused accept changed the register"
    # The command line refuses it too (exit 2, the reason on stderr, no code echoed).
    from pipeline.cli import main
    url = register_engine.url.render_as_string(hide_password=False)
    assert main(["--database-url", url, "review", "accept", str(direct), "--by", "steward.cli"]) == 2
    said = capsys.readouterr()
    assert "different valid identity codes" in said.err and code_a not in said.err + said.out
    assert snapshot(register_engine) == before, "a refused accept changed the register"
    assert table(register_engine, "SELECT COUNT(*) FROM customer_merge") == [(0,)]
    assert table(register_engine, "SELECT DISTINCT status FROM review_queue") == [("open",)]
    assert customer_of(register_engine) == owners
    assert len(pairs) == 2, "the records without codes were not linked to the coded ones: the indirect case untested"
    # Rejecting stays possible: the two are never the same person.
    assert steward.decide_review(register_engine, direct, accept=False, by="steward.one", now=NOW).status == "rejected"


def test_accepted_review_merges_and_sticks(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    owners = customer_of(register_engine)
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    decision = steward.decide_review(register_engine, review_id, accept=True, by="steward.two", now=NOW)
    assert decision.status == "accepted"
    merged = customer_of(register_engine)
    survivor = min(owners[("phone", "P-1")], owners[("mail", "M-1")])
    assert merged[("phone", "P-1")] == merged[("mail", "M-1")] == survivor
    assert table(register_engine, "SELECT decided_by FROM customer_merge") == [("steward.two",)]
    load_batch(register_engine, batch_of("d2", [
        record("email", "E-1", "2026-11-02T10:00", email="toinen@example.fi", first_names="Other", last_name="Person"),
    ]))
    later = customer_of(register_engine)
    assert later[("phone", "P-1")] == later[("mail", "M-1")] == survivor
    methods = table(register_engine, "SELECT match_method FROM source_record WHERE channel IN ('phone', 'mail')")
    assert ("steward",) in methods
