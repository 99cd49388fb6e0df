"""The register's blocking index (`match_key`) and migration 0014, which gives held records the
keys of the matcher's name-parts rule: on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
from alembic import command

from pipeline.matching.blocking import blocking_keys
from pipeline.matching.features import match_features
from pipeline.matching.model import BLOCKING_KEYS
from pipeline.register.database import _run_alembic, downgrade, migrate
from pipeline.register.resolve import _read_records
from test_register_resolve import batch_of, customer_of, load_batch, record

HOME = dict(street_address="Rautatienkatu 5 B 12", postal_code="49400", city="Hamina")
NAME_PARTS_RULE = BLOCKING_KEYS.index(("name_sorted", "postal_code"))


def stored_keys(engine) -> set[tuple[int, int]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT blocking_key, source_record_pk FROM match_key").all()
    return {(int(k), int(r)) for k, r in rows}


def expected_keys(engine, numbers=None) -> set[tuple[int, int]]:
    with engine.connect() as connection:
        records = _read_records(connection, "")
    keys = blocking_keys(match_features(records), BLOCKING_KEYS, numbers=numbers)
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
    assert len(added) == 2 and stored_keys(register_engine) == everything

    downgrade(register_engine, "0013")  # the rule's keys go; the others stay
    assert stored_keys(register_engine) == everything - added
    migrate(register_engine)
    assert stored_keys(register_engine) == everything
    # Over a register that already has every key: nothing written twice, nothing lost.
    _run_alembic(register_engine, lambda config: command.stamp(config, "0013"), exclusive=True)
    migrate(register_engine)
    assert stored_keys(register_engine) == everything


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
