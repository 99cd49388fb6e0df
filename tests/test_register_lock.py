"""The register lock (pipeline.register.locks): every writer takes it first.

On PostgreSQL a review decision used to lock its review row and only then, inside
identity resolution, the advisory lock; an erasure takes the advisory lock and
then deletes that person's review rows. Run together they deadlocked (40P01).
Here the two run in threads with the interleaving forced (a third connection
holds a row the erasure must update, so the erasure waits while holding the
register lock, and the decision starts meanwhile), and must both finish: the
erasure, then the decision, which finds its review gone.

Synthetic values only; assertion messages carry types and counts, never values.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import sqlalchemy as sa

from pipeline.register import rights, steward
from pipeline.register.locks import REGISTER_LOCK_KEY, lock_register
from pipeline.register.retention import purge
from schemas.register import quarantine, review_queue
from test_register_helpers import personal_id
from test_register_resolve import NEAR_MISS, NOW, _propose, batch_of, customer_of, load_batch, record
from test_rights import _with_quarantine

CODE = personal_id(9, 6, 1984, 238)
SUBJECT = dict(first_names="Lukko Testaaja", last_name="Lukitsija-Odottava", phone="+358400000065",
               street_address="Lukkotie 3", postal_code="00100", city="Helsinki")
STEWARD = "steward.lock"
WAIT_SECONDS = 30

postgres_only = pytest.mark.parametrize("register_engine", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                                        indirect=True)


def _person_with_open_review(engine) -> dict[str, int]:
    """A prospect (one record, one quarantine entry) with an open review against another person."""
    batch = batch_of("lock-d1", [record("web", "W-L1", "2026-11-01T10:00", personal_id=CODE, identity_verified=True,
                                        **SUBJECT), *NEAR_MISS])
    load_batch(engine, _with_quarantine(batch, "web", [
        {"source_record_id": "W-L1", "reasons": "duplicate_record_id_in_file",
         "raw_values": json.dumps({"last_name": SUBJECT["last_name"]})}]))
    review_id = _propose(engine, ("web", "W-L1"), ("phone", "P-1"))
    with engine.connect() as connection:
        entry_id = connection.execute(sa.select(quarantine.c.quarantine_id)
                                      .where(quarantine.c.source_record_id == "W-L1")).scalar_one()
    return {"customer_id": customer_of(engine)[("web", "W-L1")], "review_id": review_id, "entry_id": entry_id}


class _Worker(threading.Thread):
    """Runs `work` in a thread; keeps its result or the exception it raised."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work, self.result, self.error = work, None, None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            self.error = error


def _lock_waits(engine, events: tuple[str, ...]) -> int:
    """Sessions of this database waiting for a lock of one of these kinds (pg_stat_activity.wait_event)."""
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event IN :events")
            .bindparams(sa.bindparam("events", expanding=True)), {"events": list(events)}).scalar_one()


def _wait_until_blocked(engine, worker: _Worker, events: tuple[str, ...], expected: int = 1) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while _lock_waits(engine, events) < expected:
        assert worker.is_alive(), f"the worker ended instead of waiting ({type(worker.error).__name__})"
        assert time.monotonic() < deadline, f"no session waited for a {'/'.join(events)} lock"
        time.sleep(0.05)


ROW_LOCK = ("transactionid", "tuple")
ADVISORY = ("advisory",)


@postgres_only
def test_an_erasure_and_a_review_decision_on_the_same_person_do_not_deadlock(register_engine):
    person = _person_with_open_review(register_engine)
    with register_engine.connect() as holder:
        holding = holder.begin()
        # The erasure will stop at this entry (it purges the person's quarantine before deleting
        # reviews), holding the register lock: the review decision then starts.
        holder.execute(sa.select(quarantine.c.quarantine_id)
                       .where(quarantine.c.quarantine_id == person["entry_id"]).with_for_update())
        eraser = _Worker(lambda: rights.erase(register_engine, customer_id=person["customer_id"], reason="asked",
                                              by=STEWARD, now=NOW))
        eraser.start()
        _wait_until_blocked(register_engine, eraser, ROW_LOCK)
        decider = _Worker(lambda: steward.decide_review(register_engine, person["review_id"], accept=False,
                                                        by=STEWARD, now=NOW))
        decider.start()
        _wait_until_blocked(register_engine, decider, ADVISORY)
        holding.rollback()
    eraser.join(WAIT_SECONDS)
    decider.join(WAIT_SECONDS)
    assert not eraser.is_alive() and not decider.is_alive(), "a writer still waits"
    assert eraser.error is None, f"the erasure failed: {type(eraser.error).__name__}"
    assert eraser.result.kinds == {person["customer_id"]: "prospect"}
    # The decision waited for the erasure, which took the review away with the person.
    assert isinstance(decider.error, steward.StewardError), \
        f"the decision ended with {type(decider.error).__name__}, not a refusal"
    assert "no review" in str(decider.error)
    with register_engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(review_queue)
                                  .where(review_queue.c.review_id == person["review_id"])).scalar_one() == 0


@postgres_only
def test_a_review_decision_takes_the_register_lock_before_its_review_row(register_engine):
    person = _person_with_open_review(register_engine)
    with register_engine.connect() as holder:
        holding = holder.begin()
        lock_register(holder)
        decider = _Worker(lambda: steward.decide_review(register_engine, person["review_id"], accept=False,
                                                        by=STEWARD, now=NOW))
        decider.start()
        _wait_until_blocked(register_engine, decider, ADVISORY)
        # While the decision waits for the register lock, its review row is still free.
        free = holder.execute(sa.select(review_queue.c.review_id).where(review_queue.c.review_id
                                                                        == person["review_id"])
                              .with_for_update(nowait=True)).scalar_one()
        assert free == person["review_id"]
        holding.rollback()
    decider.join(WAIT_SECONDS)
    assert not decider.is_alive() and decider.error is None, f"the decision failed: {type(decider.error).__name__}"
    assert decider.result.status == "rejected"


WRITERS = {
    "review decision": lambda engine, person: steward.decide_review(engine, person["review_id"], accept=False,
                                                                    by=STEWARD, now=NOW),
    "erasure": lambda engine, person: rights.erase(engine, customer_id=person["customer_id"], reason="asked",
                                                   by=STEWARD, now=NOW),
    "rectification": lambda engine, person: rights.rectify(engine, person["customer_id"], "city", "Espoo",
                                                           reason="moved", by=STEWARD, now=NOW),
    "retention": lambda engine, person: purge(engine, NOW),
}


@postgres_only
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_every_writer_waits_for_the_register_lock(register_engine, writer):
    person = _person_with_open_review(register_engine)
    with register_engine.connect() as holder:
        holding = holder.begin()
        lock_register(holder)
        worker = _Worker(lambda: WRITERS[writer](register_engine, person))
        worker.start()
        _wait_until_blocked(register_engine, worker, ADVISORY)
        holding.commit()
    worker.join(WAIT_SECONDS)
    assert not worker.is_alive() and worker.error is None, f"{writer} failed: {type(worker.error).__name__}"


def _register_locks_held(connection: sa.Connection) -> int:
    """Granted advisory locks on the register key held by this session (a bigint key: objid = its low bits)."""
    return connection.execute(sa.text(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted "
        "AND classid = 0 AND objid = :key AND objsubid = 1"), {"key": REGISTER_LOCK_KEY}).scalar_one()


def test_lock_register_holds_until_the_transaction_ends_on_postgresql_and_is_free_on_sqlite(register_engine):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with register_engine.connect() as connection:
        with connection.begin():
            sa.event.listen(connection, "before_cursor_execute", count)
            lock_register(connection)
            lock_register(connection)  # again in the same transaction: no wait for oneself
            sa.event.remove(connection, "before_cursor_execute", count)
            if register_engine.dialect.name == "postgresql":
                assert _register_locks_held(connection) == 1
        if register_engine.dialect.name == "postgresql":
            assert len(statements) == 2
            assert _register_locks_held(connection) == 0, "the lock outlived its transaction"
        else:
            assert statements == [], "SQLite needs no lock statement (BEGIN IMMEDIATE serialises writers)"
