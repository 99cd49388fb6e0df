"""Retention: quarantined raw values purged after the period, erased people's records
swept (with their tombstones), nothing else touched, twice the same as once, and every
file's counts still adding up. On SQLite and PostgreSQL; old marketing extract folders
removed; then the Dagster job and its schedule.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.instance.config import dagster_instance_config  # the schema check `dagster` itself runs
from dagster._utils.concurrency import ConcurrencySlotStatus

from pipeline.orchestration.definitions import defs
from pipeline.register.checks import unbalanced_files
from pipeline.register.load import load_intake
from pipeline.finland import today_in_finland
from pipeline.register.retention import PurgeSummary, purge, purge_extracts
from pipeline.orchestration.resources import ExtractDirectory, RegisterDatabase, RetentionPolicy, \
    retention_policy_from_env
from pipeline.register.rights.erasure import key_hash
from schemas.register import (customer, erased_record, golden_provenance, intake_file, match_key, quarantine,
                              review_queue, source_record)
from test_asset_checks import NOW, load_sample_register
from test_register_helpers import batch, file_row, quarantined_records, snapshot


def _quarantine_aged(engine: sa.Engine, label: str, days: int, reasons: int = 2) -> None:
    """A file whose records were all quarantined `days` days before NOW, raw values kept."""
    file = file_row("phone", f"phone_{label}.csv")
    load_intake(engine, batch([file], [], [quarantined_records(file, ["malformed_record"] * reasons)]),
                run_id="test", now=NOW - dt.timedelta(days=days))


def _quarantine_state(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    """Per file: (entries still holding raw values, entries purged at NOW)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(intake_file.c.file_name, quarantine.c.raw_values.is_not(None), quarantine.c.raw_purged_at)
            .join(intake_file, intake_file.c.intake_file_id == quarantine.c.intake_file_id)).all()
    state: dict[str, list[int]] = {}
    for name, has_raw, purged_at in rows:
        counts = state.setdefault(name, [0, 0])
        counts[0] += int(bool(has_raw))
        counts[1] += int(purged_at == NOW)
    return {name: tuple(c) for name, c in state.items()}


def test_raw_values_older_than_the_period_are_purged_and_younger_kept(register_engine):
    _quarantine_aged(register_engine, "91_days", 91)
    _quarantine_aged(register_engine, "89_days", 89)
    _quarantine_aged(register_engine, "5_days", 5, reasons=3)
    whole = file_row("mail", "mail_unreadable.xlsx", reason="file_unreadable", detail="mail_unreadable.xlsx")
    load_intake(register_engine, batch([whole]), run_id="test", now=NOW - dt.timedelta(days=200))

    summary = purge(register_engine, NOW, quarantine_days=90)
    assert summary == PurgeSummary(quarantine_raw_values_purged=2)
    assert _quarantine_state(register_engine) == {
        "phone_91_days.csv": (0, 2), "phone_89_days.csv": (2, 0), "phone_5_days.csv": (3, 0),
        "mail_unreadable.xlsx": (0, 0),  # a whole-file entry never held raw values: nothing to purge
    }
    assert unbalanced_files(register_engine) == []

    # Twice changes nothing; a shorter period reaches the younger entries.
    held = snapshot(register_engine)
    assert purge(register_engine, NOW, quarantine_days=90) == PurgeSummary()
    assert snapshot(register_engine) == held
    assert purge(register_engine, NOW, quarantine_days=4).quarantine_raw_values_purged == 5
    assert unbalanced_files(register_engine) == []


def test_purge_refuses_a_naive_time_or_a_period_under_a_day(register_engine):
    with pytest.raises(ValueError):
        purge(register_engine, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        purge(register_engine, NOW, quarantine_days=0)


def _count(engine: sa.Engine, query) -> int:
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def test_records_of_erased_customers_are_swept_and_counts_still_add_up(register_engine):
    load_sample_register(register_engine)
    with register_engine.begin() as connection:
        records = connection.execute(sa.select(source_record.c.source_record_pk, source_record.c.customer_id)
                                     .order_by(source_record.c.source_record_pk)).all()
        erased, kept = records[0], records[1]
        # An erasure whose records were left behind (interrupted, or a record resolved onto it later).
        connection.execute(customer.update().where(customer.c.customer_id == erased.customer_id)
                           .values(erased_at=NOW))
        connection.execute(review_queue.insert().values(
            left_source_record_pk=erased.source_record_pk, right_source_record_pk=kept.source_record_pk,
            left_customer_id=erased.customer_id, right_customer_id=kept.customer_id, probability=0.9,
            evidence={"reason": "test"}, status="open", created_at=NOW, run_id="test"))
    of_erased = sa.select(source_record.c.source_record_pk).where(source_record.c.customer_id == erased.customer_id)
    n_records = _count(register_engine, sa.select(sa.func.count()).select_from(of_erased.subquery()))
    with register_engine.connect() as connection:
        erased_keys = connection.execute(sa.select(source_record.c.channel, source_record.c.source_record_id)
                                         .where(source_record.c.customer_id == erased.customer_id)).all()
    n_keys = _count(register_engine, sa.select(sa.func.count()).select_from(match_key)
                    .where(match_key.c.source_record_pk.in_(of_erased)))
    total_records = _count(register_engine, sa.select(sa.func.count()).select_from(source_record))
    touching = sa.or_(review_queue.c.left_source_record_pk.in_(of_erased),
                      review_queue.c.right_source_record_pk.in_(of_erased),
                      review_queue.c.left_customer_id == erased.customer_id,
                      review_queue.c.right_customer_id == erased.customer_id)
    n_reviews = _count(register_engine, sa.select(sa.func.count()).select_from(review_queue).where(touching))
    all_reviews = _count(register_engine, sa.select(sa.func.count()).select_from(review_queue))
    assert n_records >= 1 and n_keys >= 1, "the sample must give the erased customer records and blocking keys"

    summary = purge(register_engine, NOW)
    assert summary.erased_source_records_deleted == n_records
    assert summary.erased_match_keys_deleted == n_keys
    assert summary.reviews_deleted == n_reviews >= 1
    assert summary.provenance_references_removed >= 1
    assert summary.intake_files_adjusted == 1
    assert summary.tombstones_written == n_records
    with register_engine.connect() as connection:
        buried = set(connection.execute(sa.select(erased_record.c.key_hash)).scalars())
    assert buried == {key_hash(c, r) for c, r in erased_keys}, "the tombstones are not the swept records' keys"
    assert _count(register_engine, sa.select(sa.func.count()).select_from(of_erased.subquery())) == 0
    assert _count(register_engine, sa.select(sa.func.count()).select_from(source_record)) == total_records - n_records
    assert _count(register_engine, sa.select(sa.func.sum(intake_file.c.records_erased))) == n_records
    with register_engine.connect() as connection:
        pointers = connection.execute(sa.select(golden_provenance).where(
            golden_provenance.c.customer_id == erased.customer_id)).one()
    assert _count(register_engine, sa.select(sa.func.count()).select_from(review_queue)) == all_reviews - n_reviews
    assert _count(register_engine, sa.select(sa.func.count()).select_from(review_queue).where(touching)) == 0
    assert all(v is None for k, v in pointers._mapping.items() if k != "customer_id")
    assert unbalanced_files(register_engine) == []

    held = snapshot(register_engine)
    assert purge(register_engine, NOW) == PurgeSummary()
    assert snapshot(register_engine) == held


# --- the Dagster job -----------------------------------------------------------------------------

def _run_retention(engine: sa.Engine, retention: RetentionPolicy, extract_dir: Path) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("register_retention")
    with dg.instance_for_test() as instance:
        return job.execute_in_process(instance=instance, resources={
            "register_db": RegisterDatabase(url=engine.url.render_as_string(hide_password=False)),
            "retention": retention, "extract_dir": ExtractDirectory(path=str(extract_dir))})


def _step_metadata(result: dg.ExecuteInProcessResult) -> dict:
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    return {k: v.value for k, v in output.event_specific_data.metadata.items()}


def test_the_retention_job_purges_with_the_configured_period(register_engine, monkeypatch, tmp_path):
    # The job purges as of the real now: age the entries from it.
    real_now = dt.datetime.now(dt.timezone.utc)
    for label, days in (("31_days", 31), ("29_days", 29)):
        file = file_row("phone", f"phone_{label}.csv")
        load_intake(register_engine, batch([file], [], [quarantined_records(file, ["malformed_record"])]),
                    run_id="test", now=real_now - dt.timedelta(days=days))

    default = _run_retention(register_engine, RetentionPolicy(), tmp_path / "extract")
    assert default.success
    assert default.output_for_node("purge_expired_personal_data") is None
    materialised = [e for e in default.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert materialised[0].event_specific_data.metadata["quarantine_raw_values_purged"].value == 0

    monkeypatch.setenv("REGISTER_QUARANTINE_RETENTION_DAYS", "30")
    thirty = _run_retention(register_engine, retention_policy_from_env(), tmp_path / "extract")
    assert thirty.success
    output = next(e for e in thirty.all_events if e.event_type_value == "STEP_OUTPUT")
    assert output.event_specific_data.metadata["quarantine_raw_values_purged"].value == 1
    assert output.event_specific_data.metadata["quarantine_days"].value == 30
    assert unbalanced_files(register_engine) == []


def test_the_retention_job_removes_old_extracts_with_the_configured_period(tmp_path, monkeypatch):
    # The job dates the folders in Finnish time, as the extract names them.
    today = today_in_finland()
    root = tmp_path / "extract"
    for age in (0, 3, 6, 10):
        _extract_folder(root, today - dt.timedelta(days=age))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'r.db'}")

    default = _run_retention(engine, retention_policy_from_env(), root)
    assert default.success
    assert (_step_metadata(default)["extract_folders_removed"], _step_metadata(default)["extract_days"]) == (1, 7)
    monkeypatch.setenv("REGISTER_EXTRACT_RETENTION_DAYS", "5")
    five = _run_retention(engine, retention_policy_from_env(), root)
    assert five.success
    assert (_step_metadata(five)["extract_folders_removed"], _step_metadata(five)["extract_days"]) == (1, 5)
    assert _folders(root) == [(today - dt.timedelta(days=age)).isoformat() for age in (3, 0)]
    engine.dispose()


def test_the_retention_job_writes_in_the_register_pool_daily_at_half_past_three():
    job = defs.resolve_job_def("register_retention")
    assert {node.definition.pool for node in job.graph.node_dict.values()} == {"register_write"}
    register_asset = defs.resolve_assets_def("register")
    assert register_asset.op.pool == "register_write"
    schedule = defs.resolve_schedule_def("daily_register_retention")
    assert schedule.cron_schedule == "30 3 * * *"
    assert schedule.execution_timezone == "Europe/Helsinki"
    assert schedule.job_name == "register_retention"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


# --- one writer at a time --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("instance_yaml", ["dagster.yaml", "deploy/dagster.production.yaml"])
def test_instance_files_are_valid_and_limit_the_register_pool_to_one(instance_yaml, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / instance_yaml, home / "dagster.yaml")
    config, _ = dagster_instance_config(str(home))  # Dagster's own schema check of the file
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_a_second_writer_waits_for_the_register_pool(tmp_path):
    """With the project's pool settings, the retention step waits while another run holds the slot."""
    pools = yaml.safe_load((ROOT / "dagster.yaml").read_text(encoding="utf-8"))["concurrency"]
    outcome: dict[str, dg.ExecuteInProcessResult] = {}
    with dg.instance_for_test(overrides={"concurrency": pools}) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("register_write")
        # A live run elsewhere (no worker this host can check): its slot is not stale.
        instance.add_run(dg.DagsterRun(job_name="register_load", run_id="another-run",
                                       status=dg.DagsterRunStatus.STARTED))
        held = storage.claim_concurrency_slot("register_write", "another-run", "register")
        assert held.slot_status == ConcurrencySlotStatus.CLAIMED

        def run() -> None:
            outcome["result"] = defs.resolve_job_def("register_retention").execute_in_process(
                instance=instance, resources={"register_db": RegisterDatabase(url=f"sqlite:///{tmp_path / 'r.db'}"),
                                              "retention": RetentionPolicy(),
                                              "extract_dir": ExtractDirectory(path=str(tmp_path / "extract"))})

        writer = threading.Thread(target=run)
        writer.start()
        time.sleep(3)
        assert writer.is_alive(), "the second writer ran while the pool's only slot was held"
        assert storage.get_concurrency_info("register_write").limit == 1
        storage.free_concurrency_slots_for_run("another-run")
        writer.join(120)
    assert not writer.is_alive() and outcome["result"].success


# --- old marketing extracts ------------------------------------------------------------------------

TODAY = dt.date(2026, 11, 25)


def _extract_folder(root: Path, day: dt.date | str) -> Path:
    """A dated extract folder holding a (synthetic, empty but for its header) extract file."""
    folder = root / (day if isinstance(day, str) else day.isoformat())
    folder.mkdir(parents=True)
    (folder / "marketing_electricity.csv").write_text("customer_id,first_names\r\n", encoding="utf-8")
    return folder


def _folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_extract_folders_older_than_the_period_are_removed(tmp_path):
    for day in ("2026-11-10", "2026-11-17", "2026-11-18", "2026-11-24", "2026-11-25"):
        _extract_folder(tmp_path, day)
    # 2026-11-17 is 8 days old: removed; 2026-11-18 is 7 days old: kept.
    assert purge_extracts(tmp_path, TODAY, 7) == 2
    assert _folders(tmp_path) == ["2026-11-18", "2026-11-24", "2026-11-25"]
    assert (tmp_path / "2026-11-18" / "marketing_electricity.csv").is_file()
    assert purge_extracts(tmp_path, TODAY, 7) == 0  # twice the same as once
    assert purge_extracts(tmp_path, TODAY, 1) == 1
    assert _folders(tmp_path) == ["2026-11-24", "2026-11-25"]


def test_the_newest_extract_stays_however_old_it_is(tmp_path):
    for day in ("2026-09-30", "2026-10-01", "2026-10-02"):
        _extract_folder(tmp_path, day)
    assert purge_extracts(tmp_path, TODAY, 7) == 2
    assert _folders(tmp_path) == ["2026-10-02"]
    assert purge_extracts(tmp_path, TODAY, 7) == 0
    assert (tmp_path / "2026-10-02" / "marketing_electricity.csv").is_file()


def test_only_dated_folders_of_the_extract_directory_are_removed(tmp_path):
    root = tmp_path / "extract"
    _extract_folder(root, "2026-01-01")
    _extract_folder(root, "2026-11-25")
    others = [_extract_folder(root, name) for name in ("2026-01-01.bak", "latest", "2026-13-40", "20260101")]
    nested = _extract_folder(root / "archive", "2025-01-01")
    (root / "2025-12-31").write_text("a file named like a date\n", encoding="utf-8")
    (root / "README.txt").write_text("notes\n", encoding="utf-8")
    outside = _extract_folder(tmp_path / "elsewhere", "2025-06-01")
    (root / "2025-06-01").symlink_to(outside, target_is_directory=True)

    assert purge_extracts(root, TODAY, 7) == 1
    assert _folders(root) == sorted(["2025-06-01", "2025-12-31", "2026-01-01.bak", "2026-11-25", "2026-13-40",
                                     "20260101", "README.txt", "archive", "latest"])
    assert all((p / "marketing_electricity.csv").is_file() for p in [*others, nested, outside])
    assert (root / "2025-06-01").is_symlink()


@pytest.mark.parametrize("keep_days", [0, -1, True, 1.5, "7"])
def test_purge_extracts_refuses_a_period_that_is_not_whole_days_from_one(tmp_path, keep_days):
    _extract_folder(tmp_path, "2026-01-01")
    _extract_folder(tmp_path, "2026-11-25")
    with pytest.raises(ValueError):
        purge_extracts(tmp_path, TODAY, keep_days)
    assert _folders(tmp_path) == ["2026-01-01", "2026-11-25"]


def test_purge_extracts_of_a_missing_or_empty_directory_removes_nothing(tmp_path):
    assert purge_extracts(tmp_path / "missing", TODAY, 7) == 0
    assert purge_extracts(tmp_path, TODAY, 7) == 0
