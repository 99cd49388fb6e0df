"""Issue 13, item 4: the landed files read, and normalised, in worker processes.

The parallel intake must give exactly the batch the serial one gives: the same
accepted frame (rows in the same order, same dtypes), the same quarantine entries
and reasons, the same per-file counts, the same handling of duplicates and of files
that cannot be read. Each test here builds both from the same files, damaged ones
included, and holds them equal. A worker that dies or raises costs only its file,
and nothing it raised crosses back with a personal value in it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import intake_worker_faults as faults
import pipeline.intake as intake
import pipeline.intake_workers as intake_workers
from pipeline.channels import READERS
from pipeline.codes import Reason
from pipeline.intake import FileRead, LandedFile, build_batch, channel_counts, discover, read_all
from pipeline.intake_workers import IntakeWorkerFailed, read_in_workers, workers_setting, worth_a_pool
from schemas.canonical import CHANNELS
from synth import formats, generate

TODAY = dt.date(2026, 12, 31)


# --------------------------------------------------------------------- zones

def _cut_short(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


@pytest.fixture(scope="module")
def damaged_zone(tmp_path_factory) -> Path:
    """A generated zone (the generator's own bad input included) with damaged files added:
    cut short, re-encoded, hostile, empty, and the same bytes twice in a channel and once
    in another channel."""
    out = tmp_path_factory.mktemp("parallel-zone")
    generate(out, people=300, days=5, seed=23)
    landing = out / "landing"

    def first(channel: str) -> Path:
        return sorted(p for p in (landing / channel).iterdir() if not p.name.endswith(".ready"))[0]

    def land(channel: str, name: str, data: bytes) -> None:
        (landing / channel / name).write_bytes(data)
        (landing / channel / f"{name}.ready").touch()  # exported: read at once

    web, mail, phone = first("web"), first("mail"), first("phone")
    # Cut short: in the middle of a line, a record, a workbook's zip.
    land("web", "web_20261201.jsonl", web.read_bytes()[: web.stat().st_size * 2 // 3])
    land("mail", "mail_20261201.csv", mail.read_bytes()[: mail.stat().st_size * 2 // 3])
    workbook = first("in_person")
    land("in_person", "in_person_20261201.xlsx", workbook.read_bytes()[: workbook.stat().st_size // 2])
    # Re-encoded: a phone export in UTF-16, a mail export with CR-only line endings, a web export in cp1252.
    land("phone", "phone_20261202.csv", phone.read_bytes().decode("cp1252").encode("utf-16"))
    land("mail", "mail_20261202.csv", mail.read_bytes().replace(b"\r\n", b"\r"))
    land("web", "web_20261202.jsonl", '{"id": "W-1", "person": {"last_name": "Äijälä"}}\n'.encode("cp1252") * 3)
    # Hostile: binary garbage, a NUL, an over-long value, a key given twice, a record id repeated with other content.
    lines = web.read_bytes().split(b"\n")
    lines[3] = bytes(range(256)).replace(b"\n", b"")
    lines[4] = lines[4].replace(b'"', b'"\x00', 1)
    lines[5] = json.dumps({"id": "W-long", "submitted_at": "2026-11-24T18:03:11+02:00",
                           "person": {"first_names": "A" * 20_000}}).encode()
    lines[6] = (b'{"id": "W-dup", "submitted_at": "2026-11-24T18:03:11+02:00", '
                b'"person": {"personal_id": "131052-308T", "personal_id": "010101-123N"}}')
    lines[7] = lines[9].replace(b'"first_names": "', b'"first_names": "Other ', 1)
    land("web", "web_20261203.jsonl", b"\n".join(lines))
    land("email", "email_20261203.mbox", b"From x Mon Jan  1 00:00:00 2026\n" + bytes(range(256)) * 40)
    land("in_person", "in_person_20261203.xlsx", b"PK\x03\x04" + bytes(range(256)) * 4)
    land("phone", "phone_20261203.csv", formats.phone_file([]))  # header only
    # The same bytes again in the channel (read once, the copy skipped) and in another channel.
    land("mail", "mail_20261204.csv", mail.read_bytes())
    land("phone", "phone_20261204.csv", mail.read_bytes())
    return landing


@pytest.fixture(scope="module")
def varied_zone(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parallel-varied")
    generate(out, records=3000, days=4, seed=31, spellings="varied", noise_profile="varied")
    return out / "landing"


@pytest.fixture
def any_size_is_worth_a_pool(monkeypatch):
    """The test zones are small: let them use worker processes all the same."""
    monkeypatch.setattr(intake_workers, "POOL_MIN_BYTES", {channel: 1 for channel in CHANNELS})


def shuffled(files: list[LandedFile], seed: int = 5) -> list[LandedFile]:
    """Not in channel and name order: the reads must come back in the order given, whatever it is."""
    order = list(files)
    random.Random(seed).shuffle(order)
    return order


# --------------------------------------------------------------------- comparisons

def read_summary(read: FileRead) -> tuple:
    """What a read says about its file: reason, detail, counts (no values)."""
    return (read.file, read.reason, read.detail, read.duplicate, read.records_read,
            None if read.result is None else len(read.result.errors))


def assert_same_reads(serial: list[FileRead], parallel: list[FileRead]) -> None:
    assert [read_summary(r) for r in parallel] == [read_summary(r) for r in serial]
    for s, p in zip(serial, parallel):
        if s.result is None:
            continue
        pd.testing.assert_frame_equal(p.result.errors, s.result.errors)
        if p.prepared is None:
            pd.testing.assert_frame_equal(p.result.records, s.result.records)
        else:  # normalised in the worker: the staged records stayed there, their columns came back
            assert p.prepared.records == len(s.result.records) and len(p.result.records) == 0
            pd.testing.assert_frame_equal(p.result.records, s.result.records.iloc[:0])


def assert_same_batch(serial, parallel) -> None:
    for part in ("files", "accepted", "quarantined", "duplicates"):
        pd.testing.assert_frame_equal(getattr(parallel, part), getattr(serial, part), check_exact=True, obj=part)


def assert_counts_add_up(batch) -> None:
    """Nothing lost: every record a file read is accepted or quarantined, file by file
    (a file given twice in its channel counts once)."""
    readable = batch.files[batch.files["file_reason"].isna()].drop_duplicates(["channel", "checksum"])
    for row in readable.itertuples():
        held = ((batch.accepted["checksum"] == row.checksum) & (batch.accepted["channel"] == row.channel)).sum()
        quarantined = ((batch.quarantined["checksum"] == row.checksum)
                       & (batch.quarantined["channel"] == row.channel)).sum()
        assert held + quarantined == row.records_read > 0, row.file_name
    assert len(batch.accepted) + len(batch.quarantined) == readable["records_read"].sum()


# --------------------------------------------------------------------- the same batch

@pytest.mark.parametrize("workers", [2, 3])
def test_the_parallel_batch_is_the_serial_batch_damaged_files_included(damaged_zone, any_size_is_worth_a_pool,
                                                                        workers):
    files = shuffled(discover(damaged_zone))
    serial = read_all(files, workers=1)
    parallel = read_all(files, today=TODAY, workers=workers)

    # The workers read and normalised every readable file; the serial path did neither.
    assert all(r.prepared is not None and r.prepared.today == TODAY for r in parallel if r.result is not None)
    assert all(r.prepared is None for r in serial)
    assert_same_reads(serial, parallel)
    reasons = {r.file.file_name: r.reason for r in parallel if r.reason is not None}
    assert reasons["web_20261202.jsonl"] is Reason.FILE_ENCODING
    assert reasons["phone_20261203.csv"] is Reason.FILE_EMPTY
    assert reasons["in_person_20261201.xlsx"] is Reason.FILE_UNREADABLE
    assert "phone_20261204.csv" in reasons  # mail's bytes are no phone export
    assert channel_counts(parallel) == channel_counts(serial)

    serial_batch, parallel_batch = build_batch(serial, TODAY), build_batch(parallel, TODAY)
    assert_same_batch(serial_batch, parallel_batch)
    # The damage is in the batch: a repeated id with other content, values too long, malformed lines.
    reasons_held = set(" ".join(parallel_batch.quarantined["reasons"]).split())
    assert {Reason.DUPLICATE_RECORD_ID_IN_FILE.value, Reason.VALUE_TOO_LONG.value, Reason.MALFORMED_RECORD.value,
            Reason.DUPLICATE_KEY.value} <= reasons_held
    # The mail export given twice is read twice but taken once.
    copies = parallel_batch.files[parallel_batch.files["file_name"].isin(["mail_20261204.csv"])]
    assert len(copies) == 1 and (parallel_batch.accepted["checksum"] == copies["checksum"].iloc[0]).sum() > 0
    assert_counts_add_up(parallel_batch)


def test_the_parallel_batch_is_the_serial_batch_on_varied_spellings(varied_zone, any_size_is_worth_a_pool):
    files = discover(varied_zone)
    serial, parallel = read_all(files, workers=1), read_all(files, today=TODAY, workers=2)
    assert all(r.prepared is not None for r in parallel if r.result is not None)
    assert_same_reads(serial, parallel)
    assert_same_batch(build_batch(serial, TODAY), build_batch(parallel, TODAY))
    assert len(build_batch(parallel, TODAY).accepted) > 2500


def test_files_normalised_for_another_day_are_read_again_for_the_day_of_the_batch(
        damaged_zone, any_size_is_worth_a_pool):
    """A run that passes midnight between reading and building: the day the batch is built for counts."""
    files = discover(damaged_zone)
    serial, parallel = read_all(files, workers=1), read_all(files, today=TODAY, workers=2)
    later = TODAY + dt.timedelta(days=1)
    assert_same_batch(build_batch(serial, later), build_batch(parallel, later))


def test_a_file_changed_before_it_is_read_again_stops_the_batch(tmp_path, damaged_zone, any_size_is_worth_a_pool):
    landing = tmp_path / "landing"
    shutil.copytree(damaged_zone, landing)
    files = [f for f in discover(landing) if f.channel == "mail"]
    parallel = read_all(files, today=TODAY, workers=2)
    changed = next(f for f in files if f.file_name == "mail_20261202.csv")
    with changed.path.open("ab") as handle:
        handle.write(b"L-999,2026-12-04T10:00:00+02:00,Aino Testinen\r\n")
    # For the day it was normalised for, nothing is read again: the batch is built.
    assert len(build_batch(parallel, TODAY).accepted) > 0
    with pytest.raises(intake.LandedFileChanged, match=r"^mail/mail_20261202\.csv changed after it was read"):
        build_batch(parallel, TODAY + dt.timedelta(days=1))


# --------------------------------------------------------------------- workers that die or raise

def test_a_worker_that_dies_costs_only_its_file(damaged_zone, any_size_is_worth_a_pool, capfd):
    files = discover(damaged_zone)
    victim = next(f for f in files if f.file_name == "email_20261203.mbox")
    parallel = read_in_workers(files, today=TODAY, workers=2, task=functools.partial(faults.killed_on,
                                                                                     victim.file_name))
    serial = read_all(files, workers=1)

    ended = parallel[files.index(victim)]
    assert ended.reason is Reason.FILE_UNREADABLE and ended.result is None
    assert ended.detail == "email_20261203.mbox: the worker process reading it ended abruptly"
    # Every other file read as the serial path reads it; the batch is the serial one with that file quarantined whole.
    expected = [FileRead(victim, reason=ended.reason, detail=ended.detail) if f is victim else r
                for f, r in zip(files, serial)]
    assert_same_reads(expected, parallel)
    assert_same_batch(build_batch(expected, TODAY), build_batch(parallel, TODAY))
    assert faults.PERSONAL_TEXT not in capfd.readouterr().err


_IGNORING_SIGTERM = """
import functools, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as under nohup or a supervisor that masks it
import intake_worker_faults as faults
import pipeline.intake_workers as intake_workers
from pipeline.intake import discover
from pipeline.intake_workers import read_in_workers
intake_workers.POOL_MIN_BYTES = {channel: 1 for channel in intake_workers.POOL_MIN_BYTES}
files = discover(sys.argv[1])
victim = next(f for f in files if f.file_name == "email_20261203.mbox")
reads = read_in_workers(files, workers=2, task=functools.partial(faults.killed_on, victim.file_name))
print(sum(r.reason is not None for r in reads), len(reads))
"""


def test_a_dead_worker_ends_the_pool_even_when_the_parent_ignores_sigterm(damaged_zone):
    # A broken pool ends its other workers with SIGTERM. Started from a process that ignores
    # it (nohup, some supervisors), a worker inherited the ignore, never ended, and the pool
    # waited for it for good: the night stopped. Workers now take SIGTERM's default.
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    for _ in range(3):  # the hang needed the other worker caught mid-hand-back: try a few times
        done = subprocess.run([sys.executable, "-c", _IGNORING_SIGTERM, str(damaged_zone)], env=env,
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr[-2000:]
        quarantined, read = map(int, done.stdout.split())
        assert read == len(discover(damaged_zone)) and quarantined >= 1


def test_a_readers_exception_in_a_worker_quarantines_the_file_as_the_serial_path_does(
        damaged_zone, any_size_is_worth_a_pool, monkeypatch, capfd):
    files = discover(damaged_zone)
    parallel = read_in_workers(files, today=TODAY, workers=2,
                               task=functools.partial(faults.reader_raises, "mail", "ValueError"))
    monkeypatch.setitem(READERS, "mail", faults._raising(ValueError(faults.PERSONAL_TEXT)))
    serial = read_all(files, workers=1)

    mail = [r for r in parallel if r.file.channel == "mail"]
    assert mail and all(r.reason is Reason.FILE_UNREADABLE for r in mail)
    assert {r.detail for r in mail} == {f"{r.file.file_name}: ValueError while reading" for r in mail}
    assert_same_reads(serial, parallel)
    assert_same_batch(build_batch(serial, TODAY), build_batch(parallel, TODAY))
    assert faults.PERSONAL_TEXT not in capfd.readouterr().err


def test_what_stops_a_worker_crosses_back_as_the_file_and_the_errors_type_only(
        damaged_zone, any_size_is_worth_a_pool, capfd):
    files = discover(damaged_zone)
    with pytest.raises(IntakeWorkerFailed) as caught:
        read_in_workers(files, today=TODAY, workers=2,
                        task=functools.partial(faults.reader_raises, "in_person", "SystemExit"))
    message = str(caught.value)
    assert message.startswith("in_person/in_person_") and message.endswith(
        ": SystemExit while reading in a worker process")
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert faults.PERSONAL_TEXT not in message
    assert faults.PERSONAL_TEXT not in capfd.readouterr().err


@pytest.mark.parametrize("channel", ["web", "mail"])
def test_a_file_a_worker_could_not_normalise_is_normalised_in_the_run(damaged_zone, any_size_is_worth_a_pool,
                                                                      channel, capfd):
    """build_batch normalises it in its own process, so it stops (or not) as the serial path does."""
    files = discover(damaged_zone)
    parallel = read_in_workers(files, today=TODAY, workers=2,
                               task=functools.partial(faults.normalising_fails, channel))
    readable = [r for r in parallel if r.result is not None]
    assert [r.file.channel for r in readable if r.prepared is None] == [r.file.channel for r in readable
                                                                         if r.file.channel == channel]
    assert any(r.prepared is not None for r in readable)
    serial = read_all(files, workers=1)
    assert_same_batch(build_batch(serial, TODAY), build_batch(parallel, TODAY))
    assert faults.PERSONAL_TEXT not in capfd.readouterr().err


# --------------------------------------------------------------------- when a pool is used

def test_a_nights_few_files_are_read_in_this_process(tmp_path, monkeypatch):
    generate(tmp_path, people=250, days=3, seed=23)
    files = discover(tmp_path / "landing")

    def no_pool(*_args, **_kwargs):
        raise AssertionError("a pool was started for a small batch")

    monkeypatch.setattr(intake_workers, "read_in_workers", no_pool)
    assert not worth_a_pool(files)
    reads = read_all(files, today=TODAY, workers=2)
    assert [r.file for r in reads] == files and all(r.prepared is None for r in reads)


def test_a_pool_needs_two_files_and_enough_bytes_for_their_channels():
    def landed(channel: str, day: int, size: int) -> LandedFile:
        return LandedFile(channel, Path(f"/landing/{channel}/{channel}_202612{day:02}.x"), "0" * 64, size)

    web, in_person = intake_workers.POOL_MIN_BYTES["web"], intake_workers.POOL_MIN_BYTES["in_person"]
    assert in_person < web  # a workbook's byte costs more than a JSON line's
    assert not worth_a_pool([landed("web", 1, 10 * web)])  # one file cannot be split
    assert not worth_a_pool([landed("web", 1, web // 4), landed("web", 2, web // 4)])
    assert worth_a_pool([landed("web", 1, web // 2), landed("web", 2, web // 2)])
    assert worth_a_pool([landed("in_person", 1, in_person // 2), landed("in_person", 2, in_person // 2)])
    # Channels together: each counts its share of its own threshold.
    assert worth_a_pool([landed("web", 1, web // 2), landed("in_person", 2, in_person // 2)])
    assert not worth_a_pool([landed("web", 1, web // 3), landed("in_person", 2, in_person // 3)])


def test_the_workers_setting(monkeypatch):
    monkeypatch.delenv("REGISTER_INTAKE_WORKERS", raising=False)
    assert workers_setting() == intake_workers.default_workers() >= 1
    monkeypatch.setenv("REGISTER_INTAKE_WORKERS", "1")
    assert workers_setting() == 1
    for wrong in ("two", "-1", "1.5"):
        with pytest.raises(ValueError, match="REGISTER_INTAKE_WORKERS must be a whole number"):
            workers_setting({"REGISTER_INTAKE_WORKERS": wrong})


def test_groups_keep_each_channel_apart_and_cover_every_file_once(damaged_zone):
    files = shuffled(discover(damaged_zone))
    groups = intake_workers.groups_of(files, workers=2)
    assert sorted(i for group in groups for i in group) == list(range(len(files)))
    assert all(len({files[i].channel for i in group}) == 1 for group in groups)
    per_channel = pd.Series([files[group[0]].channel for group in groups]).value_counts()
    assert per_channel.max() <= intake_workers.GROUPS_PER_WORKER * 2


# --------------------------------------------------------------------- a Dagster run

def _register_tables(url: str) -> dict[str, pd.DataFrame]:
    """The intake's tables, without the columns a run's time and id decide."""
    engine = sa.create_engine(url)
    times = {"loaded_at", "run_id", "quarantined_at", "seen_at", "created_at", "updated_at"}
    try:
        with engine.connect() as connection:
            tables = {table: pd.read_sql(sa.text(f"SELECT * FROM {table} ORDER BY 1"), connection)
                      for table in ("intake_file", "source_record", "quarantine", "customer")}
    finally:
        engine.dispose()
    return {table: frame[[c for c in frame.columns if c not in times]] for table, frame in tables.items()}


def test_a_dagster_run_with_workers_loads_what_a_serial_run_loads(tmp_path, damaged_zone, any_size_is_worth_a_pool,
                                                                  monkeypatch):
    import dagster as dg

    from pipeline.orchestration.definitions import defs
    from pipeline.orchestration.io_manager import RunMemoryIOManager
    from pipeline.orchestration.resources import ExtractDirectory, LandingZone, MatchingConfig, RegisterDatabase

    landing = tmp_path / "landing"
    shutil.copytree(damaged_zone, landing)
    for data in landing.rglob("*_*.*"):
        if not data.name.endswith(".ready"):
            (data.parent / f"{data.name}.ready").touch()
    pools = []

    def spied(files, **options):
        pools.append(len(files))
        return read_in_workers(files, **options)

    monkeypatch.setattr(intake_workers, "read_in_workers", spied)
    tables = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("REGISTER_INTAKE_WORKERS", workers)
        url = f"sqlite:///{tmp_path / f'register-{workers}.db'}"
        result = defs.resolve_job_def("register_load").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            resources={"register_db": RegisterDatabase(url=url), "landing_zone": LandingZone(path=str(landing)),
                       "extract_dir": ExtractDirectory(path=str(tmp_path / f"extract-{workers}")),
                       "io_manager": RunMemoryIOManager(), "matching": MatchingConfig()})
        assert result.success
        tables[workers] = _register_tables(url)
        # The serial run started no pool; the other, one per channel.
        assert len(pools) == (0 if workers == "1" else 5), pools
    for table in tables["1"]:
        assert len(tables["1"][table]) > 0, table
        pd.testing.assert_frame_equal(tables["2"][table], tables["1"][table], obj=table)
