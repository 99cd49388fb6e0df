"""The register's blocking index (`match_key`) and migration 0014, which gives held records the
keys of the matcher's name-parts rule: on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.matching.blocking import blocking_keys, held_keys, probe_keys
from pipeline.matching.features import match_features
from pipeline.matching.model import BLOCKING_KEYS, DOUBT_BLOCKING_KEYS
from pipeline.matching.settings import MatchSettings
from pipeline.register.database import _run_alembic, downgrade, migrate
from pipeline.register.resolve import _read_records
from test_register_resolve import batch_of, customer_of, load_batch, record

HOME = dict(street_address="Rautatienkatu 5 B 12", postal_code="49400", city="Hamina")
NAME_PARTS_RULE = BLOCKING_KEYS.index(("name_sorted", "postal_code"))


def stored_keys(engine) -> set[tuple[int, int]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT blocking_key, source_record_pk FROM match_key").all()
    return {(int(k), int(r)) for k, r in rows}


def reverts_and_writes_once(engine, before: str, left: set, everything: set) -> None:
    """Downgraded to `before`, the register holds `left`; migrated again, `everything`. Stamped at
    `before` over a register that already has every key and migrated: nothing written twice, nothing
    lost."""
    downgrade(engine, before)
    assert stored_keys(engine) == left
    migrate(engine)
    assert stored_keys(engine) == everything
    _run_alembic(engine, lambda config: command.stamp(config, before), exclusive=True)
    migrate(engine)
    assert stored_keys(engine) == everything


def expected_keys(engine, numbers=None) -> set[tuple[int, int]]:
    with engine.connect() as connection:
        records = _read_records(connection, "")
    features = match_features(records)
    keys = (held_keys(features, BLOCKING_KEYS, DOUBT_BLOCKING_KEYS) if numbers is None
            else blocking_keys(features, BLOCKING_KEYS, numbers=numbers))
    return set(zip(keys["blocking_key"].astype(int), keys["record_key"].astype(int)))


def test_name_parts_rule_is_the_last_and_0014_spells_the_same_rules():
    from importlib import import_module

    migration = import_module("schemas.migrations.versions.0014_name_parts_blocking_key")
    assert tuple(BLOCKING_KEYS) == migration.RULES
    assert migration.ADDED == (NAME_PARTS_RULE,) == (len(BLOCKING_KEYS) - 1,)


def test_migration_0014_writes_the_name_parts_keys_once_and_reverts(register_engine):
    load_batch(register_engine, batch_of("d1", [
        record("web", "W-1", "2026-11-01T10:00", first_names="Viivi Nea Sisko", last_name="Liukkonen",
               phone="+358401111111", **HOME),
        record("mail", "M-1", "2026-11-02T10:00", first_names="Aatu", last_name="Testinen", **HOME),
        record("phone", "P-1", "2026-11-03T10:00", phone="+358402222222"),  # no name: no key of the rule
    ]))
    everything = expected_keys(register_engine)
    added = expected_keys(register_engine, numbers={NAME_PARTS_RULE})
    doubt = everything - expected_keys(register_engine, numbers=set(range(len(BLOCKING_KEYS))))
    assert len(added) == 2 and stored_keys(register_engine) == everything

    # The rule's keys go (and 0019's); the others stay.
    reverts_and_writes_once(register_engine, "0013", everything - added - doubt, everything)


def test_names_in_the_wrong_fields_find_their_customer_in_a_later_load(register_engine):
    """Loaded a day apart, the record with the given names in the surname field meets the held
    one only by the name-parts key (no contact in common): the held record needs its key."""
    load_batch(register_engine, batch_of("d1", [
        record("web", "W-1", "2026-11-01T10:00", first_names="Viivi Nea Sisko", last_name="Liukkonen",
               phone="+358401111111", email="viivi.liukkonen@example.fi", **HOME)]))
    # A register loaded before 0014 (no key of the rule), then migrated.
    rule_keys = expected_keys(register_engine, numbers={NAME_PARTS_RULE})
    with register_engine.begin() as connection:
        for key, _ in rule_keys:
            connection.exec_driver_sql(f"DELETE FROM match_key WHERE blocking_key = {int(key)}")
    _run_alembic(register_engine, lambda config: command.stamp(config, "0013"), exclusive=True)
    migrate(register_engine)
    load_batch(register_engine, batch_of("d2", [
        record("phone", "P-1", "2026-11-02T10:00", first_names="Liukkonen", last_name="Viivi Nea Sisko",
               **HOME)]))
    owners = customer_of(register_engine)
    assert owners[("phone", "P-1")] == owners[("web", "W-1")]


def test_the_old_keys_alone_would_not_have_paired_them():
    features = match_features(pd.DataFrame([
        {"record_key": 1, "personal_id": None, "birth_date": None, "first_names": "Viivi Nea Sisko",
         "last_name": "Liukkonen", "phone": "+358401111111", "email": "viivi.liukkonen@example.fi", "iban": None,
         "observed_at": pd.Timestamp("2026-11-01", tz="UTC"), "channel": "web", **HOME},
        {"record_key": 2, "personal_id": None, "birth_date": None, "first_names": "Liukkonen",
         "last_name": "Viivi Nea Sisko", "phone": None, "email": None, "iban": None,
         "observed_at": pd.Timestamp("2026-11-02", tz="UTC"), "channel": "phone", **HOME}]).astype(
        {"personal_id": "string", "phone": "string", "email": "string", "iban": "string"}))
    old = blocking_keys(features, BLOCKING_KEYS, numbers=set(range(NAME_PARTS_RULE)))
    assert old.groupby("blocking_key")["record_key"].nunique().max() == 1
    new = blocking_keys(features, BLOCKING_KEYS, numbers={NAME_PARTS_RULE})
    assert new["blocking_key"].nunique() == 1 and len(new) == 2


def test_keys_are_the_same_bits_whatever_the_strings_storage():
    """`match_key` holds these bits for every record ever loaded: a faster way of computing them
    (arrow-backed columns hashed without a copy into Python strings) must not change one of them."""
    frame = pd.DataFrame({"record_key": [1, 2, 3, 4], "phone": ["+358401112222", "", None, "+358401112222"],
                          "last_name": ["Testinen", "Testinen", "Koe", None],
                          "postal_code": ["33100", "33100", None, "00100"]})
    rules = [("phone",), ("last_name", "postal_code")]
    pinned = {"blocking_key": [-8871539540339059772, -8871539540339059772, -3391396806587499461,
                               -3391396806587499461], "record_key": [1, 2, 1, 4]}
    for storage in (object, "string[python]", "string[pyarrow]"):
        typed = frame.astype({c: storage for c in ("phone", "last_name", "postal_code")})
        assert blocking_keys(typed, rules).to_dict("list") == pinned, storage


def test_keys_come_in_the_primary_keys_order():
    """`match_key` is its primary key's B-tree: the resolver inserts the keys as they come, in
    (blocking_key, record_key) order, whatever the order of the records and rules."""
    import numpy as np

    rows = [dict(record_key=key, first_names="Viivi Nea", last_name="Liukkonen", phone="+358401111111",
                 email=None, iban=None, birth_date=None, personal_id=None, channel="web",
                 observed_at=pd.Timestamp("2026-11-01", tz="UTC"), **HOME)
            for key in (9, 3, 7, 1)]
    keys = blocking_keys(match_features(pd.DataFrame(rows)), BLOCKING_KEYS)
    blocking, record = keys["blocking_key"].to_numpy(), keys["record_key"].to_numpy()
    assert len(keys) > 4 and keys["blocking_key"].nunique() < len(keys)
    assert np.all((blocking[1:] > blocking[:-1]) | ((blocking[1:] == blocking[:-1]) & (record[1:] > record[:-1])))


# --- the doubt-only rule's keys (migration 0019) ----------------------------------------------------

def test_0019_spells_the_rules_as_held_keys_positions_them():
    from importlib import import_module

    migration = import_module("schemas.migrations.versions.0019_doubt_blocking_keys")
    assert migration.RULES == tuple(BLOCKING_KEYS) + tuple(rule for rule in DOUBT_BLOCKING_KEYS for _ in range(2))
    assert (migration.REACH, migration.ANCHOR) == (len(BLOCKING_KEYS), len(BLOCKING_KEYS) + 1)


NAMESAKES = [
    # A code-less "no" (an anchor), a namesake elsewhere, and one with its names in the wrong fields.
    record("phone", "P-1", "2026-11-01T10:00", first_names="Viivi", last_name="Liukkonen", marketing_prohibited=True),
    record("web", "W-1", "2026-11-02T10:00", first_names="Viivi Nea", last_name="Liukkonen", **HOME),
    record("mail", "M-1", "2026-11-03T10:00", first_names="Liukkonen", last_name="Viivi", postal_code="00100"),
]


def test_migration_0019_writes_the_doubt_keys_once_and_reverts(register_engine):
    load_batch(register_engine, batch_of("d1", NAMESAKES))
    everything = expected_keys(register_engine)
    doubt = everything - expected_keys(register_engine, numbers=set(range(len(BLOCKING_KEYS))))
    # Every record's reach key, and the anchor's anchor key: four keys, of which three are one.
    assert len(doubt) == 4 and len({key for key, _ in doubt}) == 2
    assert stored_keys(register_engine) == everything

    reverts_and_writes_once(register_engine, "0018", everything - doubt, everything)  # the blocking rules' stay


def test_a_no_held_before_0019_meets_a_later_namesake_once_migrated(register_engine):
    """A register loaded before 0019 (no doubt key), then migrated: a later namesake still meets the
    held code-less "no" and goes to review, as if both had come in one load."""
    from test_marketing_doubt import ADULT, NAMES_ONLY_CALL

    load_batch(register_engine, batch_of("d1", [NAMES_ONLY_CALL]))
    doubt = expected_keys(register_engine) - expected_keys(register_engine, numbers=set(range(len(BLOCKING_KEYS))))
    assert len(doubt) == 2  # the call's reach key and anchor key
    with register_engine.begin() as connection:
        for key, pk in doubt:
            connection.exec_driver_sql(f"DELETE FROM match_key WHERE blocking_key = {int(key)} "
                                       f"AND source_record_pk = {int(pk)}")
    _run_alembic(register_engine, lambda config: command.stamp(config, "0018"), exclusive=True)
    migrate(register_engine)
    load_batch(register_engine, batch_of("d2", [ADULT]))
    with register_engine.connect() as connection:
        opened = [p for (p,) in connection.exec_driver_sql(
            "SELECT probability FROM review_queue WHERE status = 'open'").all()]
    settings = MatchSettings()
    assert len(opened) == 1 and settings.doubt_threshold <= opened[0] < settings.review_threshold


@given(st.lists(st.tuples(st.sampled_from(["a b", "a c", "b c", None]), st.booleans()), min_size=2, max_size=12),
       st.data())
@settings(max_examples=200, deadline=None)
def test_held_and_probe_keys_meet_exactly_the_pairs_the_doubt_rule_makes(rows, data):
    """Whatever records are held and which come later, a later record's probe keys meet exactly
    the held records the doubt-only rule pairs it with (equal names, one of the two an anchor),
    as Splink pairs them when all come at once (rule 3)."""
    features = pd.DataFrame({"record_key": range(len(rows)), "doubt_name": [name for name, _ in rows],
                             "doubt_anchor": [anchor for _, anchor in rows]})
    later = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    held, new = features[~pd.Series(later)], features[pd.Series(later)]
    rules = [("doubt_name",)]
    stored = held_keys(held, [], rules)
    probes = probe_keys(new, [], rules)
    met = set(probes.merge(stored, on="blocking_key", suffixes=("_new", "_held"))[
        ["record_key_new", "record_key_held"]].itertuples(index=False, name=None))
    expected = {(int(n.record_key), int(h.record_key)) for n in new.itertuples() for h in held.itertuples()
                if n.doubt_name is not None and n.doubt_name == h.doubt_name and (n.doubt_anchor or h.doubt_anchor)}
    assert met == expected
