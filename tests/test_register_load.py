"""The transactional load: nothing lost, idempotent, order-independent, atomic,
and silent about values."""

from __future__ import annotations

import traceback
from datetime import date, datetime, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

import pipeline.register.bulk as bulk
from pipeline.codes import Reason
from pipeline.register.load import IntakeBatch, load_intake
from pipeline.register.rights.erasure import bury, key_hash
from pipeline.batch import FILE_COLUMNS
from pipeline.register.checks import unbalanced_files
from schemas.register import intake_file, intake_file_duplicate, quarantine, source_record
from test_register_helpers import (
    accepted_records,
    batch,
    clear,
    file_row,
    personal_id,
    quarantined_records,
    snapshot,
)

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)


def _rows(engine: sa.Engine, query) -> list:
    with engine.connect() as connection:
        return connection.execute(query).all()


def _count(engine: sa.Engine, table: sa.Table, *where) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


def _file_counts(engine: sa.Engine) -> dict[str, tuple]:
    return {r.file_name: (r.status, r.records_read, r.records_accepted, r.records_resent, r.records_quarantined)
            for r in _rows(engine, sa.select(intake_file))}


def test_every_record_is_held_once_and_counts_add_up(register_engine):
    web = file_row("web", "web_20261124.jsonl")
    phone = file_row("phone", "phone_20261124.csv")
    phone_records = accepted_records(phone, ["P-1", "P-2"], first=50)
    phone_records = pd.concat([phone_records, phone_records.iloc[[0]].assign(record_number=3)],
                              ignore_index=True)  # P-1 twice in one file, the same content
    summary = load_intake(register_engine, batch(
        [web, phone],
        [accepted_records(web, [f"W-{i}" for i in range(7)]), phone_records],
        [quarantined_records(web, ["malformed_record", "missing_record_id invalid_timestamp"]),
         quarantined_records(phone, ["no_identity"])],
    ), run_id="run-1", now=NOW)

    counts = _file_counts(register_engine)
    assert counts == {"web_20261124.jsonl": ("loaded", 9, 7, 0, 2),
                      "phone_20261124.csv": ("loaded", 4, 3, 1, 1)}
    for name, (_, read, accepted, resent, quarantined_n) in counts.items():
        assert read == accepted + quarantined_n
        file_id = _rows(register_engine, sa.select(intake_file.c.intake_file_id)
                        .where(intake_file.c.file_name == name))[0][0]
        assert _count(register_engine, source_record, source_record.c.intake_file_id == file_id) == accepted - resent
        assert _count(register_engine, quarantine, quarantine.c.intake_file_id == file_id) == quarantined_n

    assert summary.total.read == 13 and summary.total.accepted == 10
    assert summary.total.resent == 1 and summary.total.inserted == 9 and summary.total.quarantined == 3
    assert summary.channels["web"].quarantined_by_reason == {
        "malformed_record": 1, "missing_record_id": 1, "invalid_timestamp": 1}
    assert summary.channels["phone"].quarantined_by_reason == {"no_identity": 1}
    assert [f.status for f in summary.files] == ["loaded", "loaded"]
    assert all(isinstance(v, int) for v in summary.metadata().values())
    assert summary.metadata()["web.quarantined.malformed_record"] == 1


def test_values_round_trip(register_engine):
    web = file_row("web", "web_20261124.jsonl")
    records = accepted_records(web, ["W-1", "W-2", "W-3"],
                               observed_at=["2026-11-24T18:03:11.250+02:00", "2026-11-24T10:00:00Z",
                                            "2026-07-01T00:30:00+03:00"])
    load_intake(register_engine, batch([web], [records]), run_id="run-7", now=NOW)
    rows = {r.source_record_id: r for r in _rows(register_engine, sa.select(source_record))}
    first = rows["W-1"]
    assert first.observed_at == datetime(2026, 11, 24, 16, 3, 11, 250000, tzinfo=timezone.utc)
    assert rows["W-3"].observed_at == datetime(2026, 6, 30, 21, 30, tzinfo=timezone.utc)
    assert first.birth_date == date(1950, 1, 1)
    assert first.personal_id == personal_id(1, 1, 1950, 2)
    assert first.last_name == "Esimerkki-Åkerlund"
    assert [rows[k].marketing_prohibited for k in ("W-1", "W-2", "W-3")] == [True, False, None]
    assert [rows[k].identity_verified for k in ("W-1", "W-2")] == [True, False]
    assert first.quality_flags == "phone_invalid email_invalid" and rows["W-2"].quality_flags == ""
    assert first.iban is None and first.customer_id is None and first.match_method is None
    assert (first.record_number, first.run_id, first.loaded_at) == (1, "run-7", NOW)


def test_loading_the_same_batch_again_changes_nothing(register_engine):
    web = file_row("web", "web_20261124.jsonl")
    same = batch([web], [accepted_records(web, ["W-1", "W-2"])], [quarantined_records(web, ["malformed_record"])])
    load_intake(register_engine, same, run_id="run-1", now=NOW)
    before = snapshot(register_engine)
    summary = load_intake(register_engine, same, run_id="run-2", now=LATER)
    assert snapshot(register_engine) == before
    assert [f.status for f in summary.files] == ["skipped"]
    assert summary.total.files_skipped == 1 and summary.total.read == 0


def _duplicates(engine: sa.Engine) -> list[tuple]:
    return [tuple(r) for r in _rows(engine, sa.select(
        intake_file_duplicate.c.channel, intake_file_duplicate.c.file_name, intake_file_duplicate.c.checksum,
        intake_file_duplicate.c.size_bytes, intake_file_duplicate.c.duplicate_of_intake_file_id,
        intake_file_duplicate.c.seen_at, intake_file_duplicate.c.run_id).order_by(intake_file_duplicate.c.duplicate_id))]


def _file_id(engine: sa.Engine, name: str) -> int:
    return _rows(engine, sa.select(intake_file.c.intake_file_id).where(intake_file.c.file_name == name))[0][0]


def _without_duplicates(state: dict) -> dict:
    return {table: rows for table, rows in state.items() if table != "intake_file_duplicate"}


def test_a_resent_file_under_another_name_is_skipped_and_recorded(register_engine):
    original = file_row("mail", "mail_20261124.csv", "mail content A")
    renamed = file_row("mail", "mail_20261124_resent.csv", "mail content A")
    assert original["checksum"] == renamed["checksum"]
    load_intake(register_engine, batch([original], [accepted_records(original, ["M-1", "M-2"])]),
                run_id="run-1", now=NOW)
    before = snapshot(register_engine)
    summary = load_intake(register_engine, batch([renamed], [accepted_records(renamed, ["M-1", "M-2"])]),
                          run_id="run-2", now=LATER)
    # Nothing of the records or the files loaded changes; the copy is recorded, with the file it repeats.
    assert _without_duplicates(snapshot(register_engine)) == _without_duplicates(before)
    original_id = _file_id(register_engine, "mail_20261124.csv")
    assert _duplicates(register_engine) == [("mail", "mail_20261124_resent.csv", original["checksum"],
                                             original["size_bytes"], original_id, LATER, "run-2")]
    assert summary.files[0].status == "skipped" and summary.files[0].file_name == "mail_20261124_resent.csv"
    assert summary.files[0].duplicate_of == original_id
    assert summary.total.files_skipped == 1 and summary.total.files_duplicate == 1 and summary.total.read == 0
    assert unbalanced_files(register_engine) == []
    # The next run sees the copy again (landed files are never moved): recorded once.
    recorded = snapshot(register_engine)
    again = load_intake(register_engine, batch([renamed, original]), run_id="run-3", now=LATER)
    assert snapshot(register_engine) == recorded
    assert again.total.files_skipped == 2 and again.total.files_duplicate == 0


def test_the_same_content_twice_in_one_batch_loads_once(register_engine):
    late_name = file_row("web", "web_20261124b.jsonl", "web content")
    early_name = file_row("web", "web_20261124a.jsonl", "web content")
    summary = load_intake(register_engine, batch(
        [late_name, early_name],
        [accepted_records(late_name, ["W-1", "W-2"]), accepted_records(early_name, ["W-1", "W-2"])],
        [quarantined_records(late_name, ["malformed_record"]), quarantined_records(early_name, ["malformed_record"])],
    ), run_id="run-1", now=NOW)
    assert _file_counts(register_engine) == {"web_20261124a.jsonl": ("loaded", 3, 2, 0, 1)}
    assert [(f.file_name, f.status) for f in summary.files] == [
        ("web_20261124b.jsonl", "skipped"), ("web_20261124a.jsonl", "loaded")]
    assert _count(register_engine, source_record) == 2 and _count(register_engine, quarantine) == 1
    # The later name is the copy, recorded against the file this very load wrote.
    first_id = _file_id(register_engine, "web_20261124a.jsonl")
    assert [(d[0], d[1], d[4], d[6]) for d in _duplicates(register_engine)] == [
        ("web", "web_20261124b.jsonl", first_id, "run-1")]
    assert summary.files[0].duplicate_of == first_id and summary.total.files_duplicate == 1


def test_files_the_intake_did_not_read_are_recorded_against_the_file_they_repeat(register_engine):
    """The intake does not read a file whose content is loaded; it hands it over in `duplicates`."""
    day1 = file_row("phone", "phone_20261124.csv", "phone content")
    load_intake(register_engine, batch([day1], [accepted_records(day1, ["P-1"])]), run_id="run-1", now=NOW)
    before = snapshot(register_engine)

    def seen(*rows: dict) -> pd.DataFrame:
        return pd.DataFrame([{k: r[k] for k in ("channel", "file_name", "checksum", "size_bytes")} for r in rows])

    copy = file_row("phone", "phone_20261130.csv", "phone content")
    same_name = file_row("phone", "phone_20261124.csv", "phone content")   # the loaded file, still landed
    other_channel = file_row("mail", "mail_20261130.csv", "phone content")  # never loaded in mail
    unknown = file_row("phone", "phone_20261201.csv", "content never loaded")
    summary = load_intake(register_engine, IntakeBatch(
        files=pd.DataFrame(columns=list(FILE_COLUMNS)),
        duplicates=seen(copy, same_name, other_channel, unknown)), run_id="run-2", now=LATER)
    assert _duplicates(register_engine) == [("phone", "phone_20261130.csv", day1["checksum"], day1["size_bytes"],
                                             _file_id(register_engine, "phone_20261124.csv"), LATER, "run-2")]
    assert [(f.channel, f.file_name, f.status) for f in summary.files] == [("phone", "phone_20261130.csv", "skipped")]
    assert _without_duplicates(snapshot(register_engine)) == _without_duplicates(before)


def test_a_resent_record_in_a_later_batch_is_counted_not_stored(register_engine):
    day1 = file_row("phone", "phone_20261124.csv")
    day2 = file_row("phone", "phone_20261125.csv")
    load_intake(register_engine, batch([day1], [accepted_records(day1, ["P-1", "P-2"])]), run_id="run-1", now=NOW)
    first_file_id = _rows(register_engine, sa.select(intake_file.c.intake_file_id))[0][0]
    original = _rows(register_engine, sa.select(source_record).where(source_record.c.source_record_id == "P-2"))

    same_p2 = accepted_records(day1, ["P-1", "P-2"]).iloc[[1]].assign(checksum=day2["checksum"])
    others = accepted_records(day2, ["P-3", "P-4"], first=10, observed_at=["2026-11-25T09:00:00+02:00"] * 2,
                              record_numbers=[2, 3])
    summary = load_intake(register_engine, batch(
        [day2], [pd.concat([same_p2.assign(record_number=1), others], ignore_index=True)]),
        run_id="run-2", now=LATER)

    assert _file_counts(register_engine)["phone_20261125.csv"] == ("loaded", 3, 3, 1, 0)
    assert summary.files[0].resent == 1 and summary.files[0].inserted == 2
    assert _count(register_engine, source_record) == 4
    assert _rows(register_engine, sa.select(source_record).where(source_record.c.source_record_id == "P-2")) \
        == original  # the held record is untouched
    assert original[0].intake_file_id == first_file_id


def test_an_erased_record_sent_again_is_counted_as_a_resend_and_not_loaded(register_engine):
    # Erasure leaves a tombstone of the key (pipeline.register.rights.erasure); the first
    # load of the register has no source record yet, so the tombstone alone must stop it.
    with register_engine.begin() as connection:
        assert bury(connection, [("phone", "P-2"), ("web", "P-3")], NOW) == 2
        assert bury(connection, [("phone", "P-2")], NOW) == 0  # once is enough
    day = file_row("phone", "phone_20261125.csv")
    summary = load_intake(register_engine, batch([day], [accepted_records(day, ["P-1", "P-2", "P-3"])]),
                          run_id="run-1", now=LATER)
    assert _file_counts(register_engine)["phone_20261125.csv"] == ("loaded", 3, 3, 1, 0)
    assert summary.files[0].resent == 1 and summary.files[0].inserted == 2
    held = {r[0] for r in _rows(register_engine, sa.select(source_record.c.source_record_id))}
    assert held == {"P-1", "P-3"}  # P-3 was erased from another channel: this one is new
    # The tombstone holds no key, only its hash.
    with register_engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT key_hash FROM erased_record").scalars().all()
    assert len(stored) == 2 and not any("P-" in value for value in stored)
    assert key_hash("phone", "P-2") in stored


def test_the_same_id_in_another_channel_is_another_record(register_engine):
    web = file_row("web", "web_20261124.jsonl")
    mail = file_row("mail", "mail_20261124.csv")
    summary = load_intake(register_engine, batch(
        [web, mail], [accepted_records(web, ["X-1"]), accepted_records(mail, ["X-1"])]), run_id="run-1", now=NOW)
    assert summary.total.resent == 0 and _count(register_engine, source_record) == 2


def _kept(engine: sa.Engine) -> dict[str, tuple]:
    query = (sa.select(source_record.c.source_record_id, intake_file.c.file_name, source_record.c.record_number,
                       source_record.c.observed_at)
             .join(intake_file, intake_file.c.intake_file_id == source_record.c.intake_file_id))
    return {r[0]: tuple(r[1:]) for r in _rows(engine, query)}


def test_duplicates_within_a_batch_keep_the_same_occurrence_whatever_the_load_order(register_engine):
    day1 = file_row("web", "web_20261124.jsonl")
    day2 = file_row("web", "web_20261125.jsonl")
    day2_again = file_row("web", "web_20261125_2.jsonl")
    t1, t2 = "2026-11-24T12:00:00+02:00", "2026-11-25T12:00:00+02:00"
    day2_records = accepted_records(day2, ["W-1", "W-3", "W-4", "W-4"], observed_at=[t2] * 4)
    day2_records.iloc[3, 4:] = day2_records.iloc[2, 4:]  # the same content twice (all but the position)
    day2_again_records = accepted_records(day2_again, ["W-3"], observed_at=[t2], record_numbers=[1])
    day2_again_records.iloc[0, 4:-1] = day2_records.iloc[1, 4:-1]
    batches = [
        batch([day1], [accepted_records(day1, ["W-1", "W-2"], observed_at=[t1, t1])]),
        batch([day2, day2_again], [
            # W-1 is re-sent on day 2, observed later: a new version (issue 9: content
            # differs); W-3 appears in both day-2 files at the same time with the same
            # content (file name decides); W-4 twice in one file (record number decides).
            day2_records, day2_again_records,
        ]),
    ]
    everything = batch(
        [day2_again, day2, day1],  # listed in another order on purpose
        list(reversed([b.accepted for b in batches])))

    summary_all = load_intake(register_engine, everything, run_id="all", now=NOW)
    at_once = _kept(register_engine)
    clear(register_engine)
    totals_by_day = [load_intake(register_engine, b, run_id=f"day-{i}", now=NOW).total
                     for i, b in enumerate(batches)]
    day_by_day = _kept(register_engine)

    assert at_once == day_by_day
    assert at_once["W-1"][0] == "web_20261125.jsonl"  # a changed version: the later observed_at is current
    assert at_once["W-3"][0] == "web_20261125.jsonl"  # same time: first file name
    assert at_once["W-4"][1] == 3  # same time and file: first record number
    assert summary_all.total.resent == sum(t.resent for t in totals_by_day) == 2
    assert summary_all.total.versioned == sum(t.versioned for t in totals_by_day) == 1
    assert summary_all.total.inserted == 4


def test_an_unreadable_file_is_quarantined_whole_and_the_others_load(register_engine):
    web = file_row("web", "web_20261124.jsonl")
    broken = file_row("in_person", "in_person_20261124.xlsx", reason=Reason.FILE_MISSING_SHEET.value,
                      detail="in_person_20261124.xlsx: no sheet Asioinnit")
    summary = load_intake(register_engine, batch([broken, web], [accepted_records(web, ["W-1"])]),
                          run_id="run-1", now=NOW)
    assert _file_counts(register_engine) == {
        "in_person_20261124.xlsx": ("quarantined", 0, 0, 0, 0),
        "web_20261124.jsonl": ("loaded", 1, 1, 0, 0)}
    held = _rows(register_engine, sa.select(quarantine))
    assert len(held) == 1
    assert held[0].source_record_id is None and held[0].record_number is None and held[0].raw_values is None
    assert (held[0].channel, held[0].reasons) == ("in_person", "file_missing_sheet")
    assert held[0].detail == "in_person_20261124.xlsx: no sheet Asioinnit"
    assert summary.total.files_quarantined == 1 and summary.total.files_loaded == 1
    assert summary.channels["in_person"].files_quarantined_by_reason == {"file_missing_sheet": 1}
    assert _count(register_engine, source_record) == 1


class InjectedCrash(RuntimeError):
    pass


def test_a_crash_mid_load_leaves_the_register_as_it_was(register_engine, monkeypatch):
    day1 = file_row("web", "web_20261124.jsonl")
    load_intake(register_engine, batch([day1], [accepted_records(day1, ["W-1", "W-2"])]), run_id="run-1", now=NOW)
    before = snapshot(register_engine)

    day2 = file_row("web", "web_20261125.jsonl")
    broken = file_row("mail", "mail_20261125.csv", reason="file_unreadable", detail="mail_20261125.csv: truncated")
    crashing = batch([day2, broken], [accepted_records(day2, ["W-2"] + [f"W-{i}" for i in range(3, 40)])],
                     [quarantined_records(day2, ["malformed_record"])])
    written = []
    real_insert = {cls: cls.insert for cls in (bulk._SQLiteWriter, bulk._PostgreSQLWriter)}

    def insert_then_crash(self, table, frame, columns):
        real_insert[type(self)](self, table, frame, columns)
        written.append((table.name, len(frame)))
        if table.name == "source_record":
            # the rows really are in the open transaction
            assert self.connection.scalar(sa.select(sa.func.count()).select_from(source_record)) == 2 + 37
            raise InjectedCrash("injected after writing")

    monkeypatch.setattr(bulk, "CHUNK_ROWS", 5)  # several executemany/COPY chunks before the crash
    for cls in real_insert:
        monkeypatch.setattr(cls, "insert", insert_then_crash)
    with pytest.raises(InjectedCrash):
        load_intake(register_engine, crashing, run_id="run-2", now=LATER)

    assert written == [("quarantine", 2), ("source_record", 37)]
    assert snapshot(register_engine) == before
    monkeypatch.undo()
    summary = load_intake(register_engine, crashing, run_id="run-3", now=LATER)  # and it loads afterwards
    # W-2 came back with other values: a new version of the held record (issue 9), not a plain re-send.
    assert summary.total.inserted == 37 and summary.total.versioned == 1 and summary.total.resent == 0


def _everything_said(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


def test_a_database_error_during_the_bulk_load_carries_no_values(register_engine):
    web = file_row("web", "web_20261124.jsonl")
    records = accepted_records(web, ["W-1", "W-2"])
    records.loc[1, "product"] = "water"  # violates the product check in the database
    code, email = records.loc[1, "personal_id"], records.loc[1, "email"]
    with pytest.raises(Exception) as raised:
        load_intake(register_engine, batch([web], [records]), run_id="run-1", now=NOW)
    said = _everything_said(raised.value)
    assert code not in said and email not in said and "water" not in said
    assert "product" in said  # the constraint is named
    assert _count(register_engine, intake_file) == 0


def test_a_malformed_batch_is_refused_without_values(register_engine):
    web = file_row("web", "web_20261124.jsonl")
    bad_reason = batch([web], quarantined=[quarantined_records(web, ["131052-308T"])])
    with pytest.raises(ValueError) as raised:
        load_intake(register_engine, bad_reason, run_id="run-1", now=NOW)
    assert "131052-308T" not in str(raised.value) and "reasons" in str(raised.value)

    orphan = accepted_records(file_row("web", "other.jsonl"), ["W-1"])
    with pytest.raises(ValueError, match="checksum"):
        load_intake(register_engine, batch([web], [orphan]), run_id="run-1", now=NOW)
    with pytest.raises(ValueError, match="lacks columns"):
        load_intake(register_engine, IntakeBatch(files=pd.DataFrame([web]).drop(columns="size_bytes")),
                    run_id="run-1", now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        load_intake(register_engine, batch([web]), run_id="run-1", now=datetime(2026, 11, 25))
    assert _count(register_engine, intake_file) == 0


def test_an_empty_batch_loads_nothing(register_engine):
    summary = load_intake(register_engine, batch([]), run_id="run-1", now=NOW)
    assert summary.files == () and summary.total.read == 0
    assert _count(register_engine, intake_file) == 0


def test_a_record_lost_between_reader_and_load_stops_the_run(register_engine):
    web = file_row("web", "web_20261124.jsonl")
    lost = batch([web], [accepted_records(web, ["W-1", "W-2"])])
    lost.files["records_read"] = 3
    before = snapshot(register_engine)
    with pytest.raises(ValueError) as raised:
        load_intake(register_engine, lost, run_id="run-lost", now=NOW)
    assert "read 3 records but 2 arrived" in str(raised.value)
    assert snapshot(register_engine) == before
    counted = batch([web], [accepted_records(web, ["W-1", "W-2"])])
    counted.files["records_read"] = 2
    assert load_intake(register_engine, counted, run_id="run-ok", now=NOW).total.read == 2
