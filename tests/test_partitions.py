"""Daily partitions by export day (pipeline/orchestration/partitions.py), on SQLite and PostgreSQL.

A backfill of three export days, one run per day and in no particular order, must
leave the same register as one whole load of the same landing zone: the same
people grouped together with the same golden records, and the same quarantine,
open review queue and files. A day's run reads that day's files only and
publishes no marketing extract; a run without a partition loads every new file
and marks each export day it covered.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipeline.intake import LandedFile, LandingSurvey, export_day
from pipeline.orchestration.definitions import defs
from pipeline.orchestration.io_manager import RunMemoryIOManager
from pipeline.orchestration.partitions import EXPORT_DAYS, first_export_day_from_env
from pipeline.orchestration.resources import ExtractDirectory, LandingZone, MatchingConfig, RegisterDatabase
from schemas.register import customer
from synth import generate


@pytest.fixture(scope="module")
def zone(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("partition-zone")
    generate(out, people=250, days=3, seed=23)
    return out / "landing"


def export_days_in(landing: Path) -> list[str]:
    """The export days of the landing zone's files, read from their names by this test."""
    days = {found.group(1) for path in landing.rglob("*") if (found := re.search(r"_([0-9]{8})(?:_[0-9]+)?\.", path.name))}
    return sorted(f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in days)


def run(instance: dg.DagsterInstance, landing: Path, engine: sa.Engine | sa.URL, extract: Path,
        **partition) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("register_load")
    url = engine if isinstance(engine, sa.URL) else engine.url
    return job.execute_in_process(
        instance=instance,
        resources={
            "register_db": RegisterDatabase(url=url.render_as_string(hide_password=False)),
            "landing_zone": LandingZone(path=str(landing)),
            "extract_dir": ExtractDirectory(path=str(extract)),
            "io_manager": RunMemoryIOManager(),
            "matching": MatchingConfig(),
        },
        **partition,
    )


# The golden record's own values: everything of `customer` but ids, timestamps and the merge bookkeeping.
GOLDEN = [c.name for c in customer.columns
          if c.name not in {"customer_id", "created_at", "updated_at", "merged_into", "erased_at"}]


def register_state(engine: sa.Engine) -> dict[str, object]:
    """What the register holds, independent of the ids and times its loads happened to give."""
    with engine.connect() as conn:
        owners = conn.execute(sa.text("SELECT channel, source_record_id, customer_id FROM source_record")).all()
        golden = {row[0]: tuple(row[1:]) for row in conn.execute(sa.text(
            f"SELECT customer_id, {', '.join(GOLDEN)} FROM customer WHERE merged_into IS NULL"))}
        record_of = {pk: (c, r) for pk, c, r in conn.execute(sa.text(
            "SELECT source_record_pk, channel, source_record_id FROM source_record"))}
        reviews = {frozenset({record_of[a], record_of[b]}) for a, b, status in conn.execute(sa.text(
            "SELECT left_source_record_pk, right_source_record_pk, status FROM review_queue")) if status == "open"}
        state = {
            # By content, not name: of an export re-sent under another day's name, the copy read
            # first is the one loaded, and which that is depends on the order the days came in.
            "files": sorted(conn.execute(sa.text("SELECT channel, checksum, status FROM intake_file")).all()),
            "records": conn.execute(sa.text(
                "SELECT SUM(records_read), SUM(records_accepted), SUM(records_resent), SUM(records_quarantined) "
                "FROM intake_file")).one()._tuple(),
            "quarantine": sorted(conn.execute(sa.text(
                "SELECT channel, COALESCE(source_record_id, ''), COALESCE(record_number, 0), reasons "
                "FROM quarantine")).all()),
            "versions": conn.execute(sa.text("SELECT COUNT(*) FROM source_record_version")).scalar_one(),
            "reviews": reviews,
        }
    groups: dict[int, set] = {}
    for channel, record_id, customer_id in owners:
        groups.setdefault(customer_id, set()).add((channel, record_id))
    state["customers"] = {frozenset(members): golden[customer_id] for customer_id, members in groups.items()}
    return state


def test_a_backfill_of_three_days_gives_the_same_register_as_one_load(zone, register_engine,
                                                                        second_register_engine, tmp_path):
    days = export_days_in(zone)
    assert len(days) == 3, days

    with dg.instance_for_test() as instance:
        whole = run(instance, zone, register_engine, tmp_path / "extract-whole")
        assert whole.success
        # One day at a time, in an order no calendar gives: identity resolution does not depend on it.
        for day in (days[2], days[0], days[1]):
            result = run(instance, zone, second_register_engine, tmp_path / "extract-days", partition_key=day)
            assert result.success, day

        # The whole load marked each day it covered; the day runs materialised theirs.
        register_key = dg.AssetKey("register")
        assert instance.get_materialized_partitions(register_key) == set(days)

    once, by_day = register_state(register_engine), register_state(second_register_engine)
    assert len(once["customers"]) > 100 and len(once["quarantine"]) > 0 and len(once["files"]) >= 15
    assert once["reviews"], "the zone should put some pairs to a steward"
    for part in once:
        assert by_day[part] == once[part], part

    # Marketing is published by a whole load only: a backfill of ten days is not ten disclosures.
    assert any((tmp_path / "extract-whole").rglob("marketing_*.csv"))
    assert not (tmp_path / "extract-days").exists()


def _run_one_day(landing: str, url: str, extract: str, day: str) -> bool:
    """One day's run in a process of its own (what a backfill's run queue starts)."""
    import sqlalchemy

    with dg.instance_for_test() as instance:
        return run(instance, Path(landing), sqlalchemy.make_url(url), Path(extract), partition_key=day).success


def test_days_run_at_once_in_three_processes_give_the_same_register(zone, register_engine, second_register_engine,
                                                                   tmp_path):
    """Ingest in parallel per day: three day runs start together, each reads its own files in its
    own process, and the register lock lets one write at a time. A file re-sent under another
    day's name may be read by two of them at once; it is loaded once and recorded as a duplicate."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    days = export_days_in(zone)
    with dg.instance_for_test() as instance:
        assert run(instance, zone, register_engine, tmp_path / "extract-whole").success
    url = second_register_engine.url.render_as_string(hide_password=False)
    with ProcessPoolExecutor(len(days), mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_run_one_day, [str(zone)] * len(days), [url] * len(days),
                                [str(tmp_path / "extract-days")] * len(days), days))
    assert results == [True] * len(days)
    once, at_once = register_state(register_engine), register_state(second_register_engine)
    for part in once:
        assert at_once[part] == once[part], part


def test_a_day_reads_only_its_own_files_and_a_rerun_reads_nothing(zone, register_engine, tmp_path):
    first, second, _ = export_days_in(zone)
    with dg.instance_for_test() as instance:
        assert run(instance, zone, register_engine, tmp_path / "extract", partition_key=second).success
        with register_engine.connect() as conn:
            names = [n for (n,) in conn.execute(sa.text("SELECT file_name FROM intake_file"))]
            held = conn.execute(sa.text("SELECT COUNT(*) FROM source_record")).scalar_one()
        compact = second.replace("-", "")
        assert names and all(f"_{compact}" in name for name in names), "a day's run read another day's file"
        assert held > 0

        # Re-running the day finds its files held already: nothing new is read or written.
        again = run(instance, zone, register_engine, tmp_path / "extract", partition_key=second)
        assert again.success
        with register_engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM source_record")).scalar_one() == held
            assert conn.execute(sa.text("SELECT COUNT(*) FROM intake_file")).scalar_one() == len(names)

        # A range of days in one run (a single-run backfill) reads the days in it, and no others.
        ranged = run(instance, zone, register_engine, tmp_path / "extract", tags={
            "dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": second})
        assert ranged.success
        with register_engine.connect() as conn:
            days_held = {re.search(r"_([0-9]{8})", n).group(1)
                         for (n,) in conn.execute(sa.text("SELECT file_name FROM intake_file"))}
        assert days_held == {first.replace("-", ""), compact}


def test_the_night_and_the_sensor_start_whole_loads():
    from pipeline.orchestration.jobs import nightly_register_load

    job = defs.resolve_job_def("register_load")
    assert job.partitions_def == EXPORT_DAYS
    with dg.instance_for_test() as instance:
        tick = nightly_register_load.evaluate_tick(dg.build_schedule_context(
            instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 6, 2, 0, tzinfo=dt.timezone.utc)))
    # No partition: the night reads every new file, late ones of earlier days included.
    assert [request.partition_key for request in tick.run_requests] == [None]


def test_export_day_comes_from_the_file_name():
    assert export_day("in_person_20261105.xlsx") == dt.date(2026, 11, 5)
    assert export_day("email_20261105_3.mbox.done") == dt.date(2026, 11, 5)
    assert export_day("web_20260230.jsonl") is None  # no such day: a whole load reads it, no partition does
    assert export_day("notes.txt") is None


def test_a_survey_narrowed_to_days_keeps_the_operators_warnings(tmp_path):
    def landed(name: str) -> LandedFile:
        return LandedFile(channel=name.split("_")[0], path=tmp_path / name, checksum=name, size_bytes=1)

    survey = LandingSurvey(files=[landed("mail_20261104.csv"), landed("mail_20261105.csv"), landed("web_20261105.jsonl")],
                           waiting=["phone/phone_20261105.csv", "phone/phone_20261106.csv"],
                           refused_links=["mail/mail_20261101.csv"], unexpected_names=["web/Web.jsonl"])
    day = survey.on_days([dt.date(2026, 11, 5)])
    assert [f.path.name for f in day.files] == ["mail_20261105.csv", "web_20261105.jsonl"]
    assert day.waiting == ["phone/phone_20261105.csv"]
    assert day.refused_links == survey.refused_links and day.unexpected_names == survey.unexpected_names


def test_the_first_export_day_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("REGISTER_FIRST_EXPORT_DAY", "2025-03-01")
    assert first_export_day_from_env() == "2025-03-01"
    monkeypatch.setenv("REGISTER_FIRST_EXPORT_DAY", "1.3.2025")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        first_export_day_from_env()
    monkeypatch.delenv("REGISTER_FIRST_EXPORT_DAY")
    assert EXPORT_DAYS.get_first_partition_key() == first_export_day_from_env()
