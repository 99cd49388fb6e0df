"""A load's new records wait for identity resolution and are written once, with their customer
(pipeline/register/pending.py), on SQLite and PostgreSQL.

What could go wrong: the resolver sees the waiting records differently from how it would
read them once written (a first load would then group otherwise than the same days loaded
one by one, rule 3); a record is lost or written twice; a failed load leaves rows waiting on
a pooled connection for the next transaction to write.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import weakref
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.intake import build_batch, discover, read_all
from pipeline.matching.settings import MatchSettings
from pipeline.register import pending
from pipeline.register.bulk import _foreign_keys, _secondary_indexes, indexes_and_keys_built_after
from pipeline.register.load import load_intake
from pipeline.register.resolve import _read_records, resolve_identities, take_pending_values
from schemas.register import service
from synth import generate

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 11, 25)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Every noise the generators make: the varied profile, respelled values, bad input, re-sends
    and versions of one record within the batch."""
    out = tmp_path_factory.mktemp("pending-zone")
    generate(out, people=400, days=4, seed=41, noise_profile="varied", spellings="varied")
    batch = build_batch(read_all(discover(Path(out) / "landing")), TODAY)
    # Later versions of some records, in the same files: versions of records new in the batch.
    later = batch.accepted.iloc[::30].copy()
    later["observed_at"] = later["observed_at"] + pd.Timedelta(hours=5)
    later["city"] = later["city"].str.upper() + " K"
    later["record_number"] = later["record_number"] + 100_000
    added = later.groupby(["channel", "checksum"], observed=True).size()
    files = batch.files.copy()
    files["records_read"] = files["records_read"] + pd.MultiIndex.from_frame(files[["channel", "checksum"]]).map(
        lambda key: int(added.get(key, 0))).to_numpy()
    return dataclasses.replace(batch, files=files,
                               accepted=pd.concat([batch.accepted, later], ignore_index=True))


def _resolve(connection):
    return resolve_identities(connection, now=NOW, run_id="test", settings=MatchSettings())


def test_waiting_records_read_as_they_would_once_written(batch, register_engine):
    seen = {}

    def compare(connection):
        waiting = pending.take(connection)
        assert waiting is not None and len(waiting) > 500
        copy = dataclasses.replace(waiting, records=waiting.records.copy())
        seen["waiting"] = take_pending_values(connection, copy)
        assert set(copy.records.columns) == {"source_record_pk", "record_number", "quality_flags", "intake_file_id",
                                             "loaded_at", "run_id", "content_hash"}, "values held twice"
        pending.write(connection, waiting)
        seen["written"] = _read_records(connection, "ORDER BY s.source_record_pk")

    summary = load_intake(register_engine, batch, run_id="test", now=NOW, after_load=compare)
    assert summary.total.versioned > 0, "the case needs versions of records new in the batch"
    waiting, written = seen["waiting"], seen["written"]
    assert len(written) == len(waiting) == summary.total.accepted - summary.total.resent - summary.total.versioned
    pd.testing.assert_frame_equal(waiting.sort_values("record_key").reset_index(drop=True), written)


def test_a_load_writes_each_new_record_once_with_its_customer(batch, register_engine, second_register_engine):
    updates = []

    def record_updates(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE SOURCE_RECORD"):
            updates.append(statement.split(" SET ")[0])

    sa.event.listen(register_engine, "before_cursor_execute", record_updates)
    try:
        summary = load_intake(register_engine, batch, run_id="test", now=NOW, after_load=_resolve)
    finally:
        sa.event.remove(register_engine, "before_cursor_execute", record_updates)
    assert updates == [], "the first load's records were written, then updated"
    with register_engine.connect() as connection:
        total, resolved, versions = connection.execute(sa.text(
            "SELECT COUNT(*), COUNT(customer_id), (SELECT COUNT(*) FROM source_record_version) "
            "FROM source_record WHERE match_method IS NOT NULL")).one()
    assert total == summary.after_load.records_resolved == resolved
    assert total + versions == summary.total.accepted - summary.total.resent
    assert versions == summary.total.versioned
    # The values written from the resolver's frame are the values a plain load writes.
    load_intake(second_register_engine, batch, run_id="test", now=NOW, after_load=lambda connection: None)
    stored = []
    for engine in (register_engine, second_register_engine):
        with engine.connect() as connection:
            stored.append(pd.read_sql_query(
                sa.text("SELECT * FROM source_record ORDER BY channel, source_record_id"), connection)
                .drop(columns=["source_record_pk", "customer_id", "match_method", "match_probability"]))
            stored.append(pd.read_sql_query(sa.text(
                "SELECT v.*, s.channel, s.source_record_id FROM source_record_version AS v "
                "JOIN source_record AS s USING (source_record_pk) "
                "ORDER BY s.channel, s.source_record_id, v.content_hash"), connection)
                .drop(columns=["source_record_pk", "version_pk"]))
    pd.testing.assert_frame_equal(stored[0], stored[2])
    pd.testing.assert_frame_equal(stored[1], stored[3])
    assert len(stored[1]) == versions


def test_a_hook_that_does_not_resolve_still_gets_every_record_written(batch, register_engine):
    summary = load_intake(register_engine, batch, run_id="test", now=NOW, after_load=lambda connection: "done")
    assert summary.after_load == "done"
    with register_engine.connect() as connection:
        held, without_customer = connection.execute(sa.text(
            "SELECT COUNT(*), COUNT(*) - COUNT(customer_id) FROM source_record")).one()
    assert held == without_customer == summary.total.accepted - summary.total.resent - summary.total.versioned
    # ...and the next resolution finds them as any unresolved record.
    with register_engine.begin() as connection:
        assert _resolve(connection).records_resolved == held


def test_a_failed_load_leaves_nothing_waiting_for_the_next_transaction(batch, register_engine):
    def fail(connection):
        raise RuntimeError("the hook failed")

    with pytest.raises(RuntimeError, match="the hook failed"):
        load_intake(register_engine, batch, run_id="test", now=NOW, after_load=fail)
    # The pool hands the same DBAPI connection out again: nothing may wait on it.
    with register_engine.connect() as connection:
        assert pending.take(connection) is None
        assert connection.execute(sa.text("SELECT COUNT(*) FROM source_record")).scalar() == 0
    summary = load_intake(register_engine, batch, run_id="test", now=NOW, after_load=_resolve)
    assert summary.after_load.records_resolved == summary.total.accepted - summary.total.resent \
        - summary.total.versioned


def test_a_resolution_that_misses_a_waiting_record_stops_the_load(batch, register_engine):
    def partial(connection):
        waiting = pending.take(connection)
        keys = waiting.records["source_record_pk"].iloc[1:]
        pending.write(connection, waiting, pd.DataFrame({"source_record_pk": keys, "customer_id": None,
                                                         "match_method": None, "match_probability": None}))

    with pytest.raises(RuntimeError, match="does not cover each waiting record once"):
        load_intake(register_engine, batch, run_id="test", now=NOW, after_load=partial)


def test_records_written_in_parts_are_each_written_once_before_their_versions(batch, register_engine):
    waited = []

    def in_parts(connection):
        waiting = pending.take(connection)
        keys = waiting.records["source_record_pk"]
        waited.extend([len(keys), len(waiting.versions)])
        unresolved = {"customer_id": None, "match_method": None, "match_probability": None}
        first, rest = keys.iloc[:100], keys.iloc[100:]
        pending.write_part(connection, waiting, pd.DataFrame({"source_record_pk": first, **unresolved}))
        with pytest.raises(RuntimeError, match="written twice"):
            pending.write_part(connection, waiting, pd.DataFrame({"source_record_pk": first.iloc[:1], **unresolved}))
        with pytest.raises(RuntimeError, match=f"{len(rest)} waiting records were not written"):
            pending.write_versions(connection, waiting)
        pending.write_part(connection, waiting, pd.DataFrame({"source_record_pk": rest, **unresolved}))
        pending.write_versions(connection, waiting)

    load_intake(register_engine, batch, run_id="test", now=NOW, after_load=in_parts)
    with register_engine.connect() as connection:
        written = connection.execute(sa.text("SELECT COUNT(*) FROM source_record")).scalar()
        versions = connection.execute(sa.text("SELECT COUNT(*) FROM source_record_version")).scalar()
    assert waited[0] > 100 and waited[1] > 0
    assert (written, versions) == tuple(waited)


def test_the_batch_checked_copy_is_let_go_before_the_resolution(batch, register_engine, monkeypatch):
    """A first load's resolution holds the records once (the waiting rows), not the load's own
    checked copy of the batch beside them: at a million records that copy is about 360 MB."""
    from pipeline.register import load

    copies = []
    checked = load._validated

    def remembered(given):
        frames = checked(given)
        copies.extend(weakref.ref(frame) for frame in frames)
        return frames

    def resolve(connection):
        gc.collect()
        assert copies and [copy() is None for copy in copies] == [True] * len(copies), "the batch is held twice"
        return _resolve(connection)

    monkeypatch.setattr(load, "_validated", remembered)
    load_intake(register_engine, batch, run_id="test", now=NOW, after_load=resolve)


def _indexes(engine) -> dict[str, list[tuple[str, str]]]:
    """Each bulk-written table's secondary indexes and (PostgreSQL) foreign keys, as the database
    defines them."""
    with engine.connect() as connection:
        return {table: _secondary_indexes(connection, table) + _foreign_keys(connection, table)
                for table in ("source_record", "customer", "service", "golden_provenance")}


def test_a_first_load_builds_the_indexes_after_its_rows_and_keeps_them_as_they_were(batch, register_engine):
    before = _indexes(register_engine)
    foreign_keys = 2 if register_engine.dialect.name == "postgresql" else 0  # its customer, its file
    assert len(before["source_record"]) == 3 + foreign_keys and len(before["customer"]) >= 7
    dropped = []

    def record_drops(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("DROP INDEX") or " DROP CONSTRAINT " in statement:
            dropped.append(statement.split('"')[1])

    sa.event.listen(register_engine, "before_cursor_execute", record_drops)
    try:
        load_intake(register_engine, batch, run_id="test", now=NOW, after_load=_resolve)
        # The next load finds the tables holding rows: it inserts into the indexes as they are.
        count = len(dropped)
        load_intake(register_engine, batch, run_id="again", now=NOW, after_load=_resolve)
        assert len(dropped) == count
    finally:
        sa.event.remove(register_engine, "before_cursor_execute", record_drops)
    assert sorted(dropped) == sorted(name for indexes in before.values() for name, _ in indexes)
    assert _indexes(register_engine) == before
    # PostgreSQL checks the foreign keys after the rows too (SQLite cannot drop them mid-transaction).
    assert any(name.startswith("fk_") for name in dropped) == (register_engine.dialect.name == "postgresql")


def test_a_row_pointing_nowhere_is_refused_when_its_keys_are_checked_after(register_engine):
    """An empty table's foreign keys, dropped for a first load on PostgreSQL, are added back in
    the same transaction: a row whose customer does not exist fails the load, and names no value."""
    before = _indexes(register_engine)
    with pytest.raises(sa.exc.IntegrityError) as refused:
        with register_engine.begin() as connection:
            with indexes_and_keys_built_after(connection, service):
                connection.execute(service.insert(), [{"customer_id": 424242, "product": "electricity",
                                                       "first_seen": NOW, "last_seen": NOW}])
    assert "foreign key" in str(refused.value).lower() and "electricity" not in str(refused.value)
    assert _indexes(register_engine) == before
    with register_engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(service)).scalar_one() == 0


def test_a_failed_first_load_leaves_the_indexes_in_place(batch, register_engine):
    before = _indexes(register_engine)

    def resolve_then_fail(connection):
        _resolve(connection)
        raise RuntimeError("after the writes")

    with pytest.raises(RuntimeError, match="after the writes"):
        load_intake(register_engine, batch, run_id="test", now=NOW, after_load=resolve_then_fail)
    assert _indexes(register_engine) == before


def test_the_scoring_batch_is_a_setting_that_changes_no_customer(batch, register_engine, second_register_engine):
    batches = []
    from pipeline.matching import score

    original = score._read  # how the scorer reads Splink's scored pairs from DuckDB

    def counted(relation, batch_rows):
        for frame in original(relation, batch_rows):
            batches.append(len(frame))
            yield frame

    score._read = counted
    try:
        load_intake(register_engine, batch, run_id="test", now=NOW, after_load=lambda connection: resolve_identities(
            connection, now=NOW, run_id="test", settings=MatchSettings(score_batch_rows=100)))
    finally:
        score._read = original
    assert len(batches) > 5 and max(batches) <= 100
    load_intake(second_register_engine, batch, run_id="test", now=NOW, after_load=_resolve)
    groupings = []
    for engine in (register_engine, second_register_engine):
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT channel, source_record_id, customer_id FROM source_record")).all()
        by_customer: dict[int, set] = {}
        for channel, record_id, customer_id in rows:
            by_customer.setdefault(customer_id, set()).add((channel, record_id))
        groupings.append(sorted(sorted(members) for members in by_customer.values()))
    assert groupings[0] == groupings[1]
