"""Fault injection on the landing zone and the operation of the load (issue 9).

Each case is one way the intake broke a promise: a file read while still being
written (a mail row cut before its "no marketing" x), symbolic links followed out
of the landing zone, channel folders and file names not matched as docs/intake_formats.md names
them, a wrong landing directory passing for a quiet night, identical content in two
channels taken for a copy, a run killed with SIGKILL holding the `register_write`
pool slot for ever, and two first runs racing on the migrations. On SQLite and
PostgreSQL wherever the register is involved. Every value here is made up.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipeline.orchestration.definitions import defs
from pipeline.orchestration.io_manager import RunMemoryIOManager
from pipeline.register.database import make_engine, migrate
from pipeline.orchestration.resources import ExtractDirectory, LandingZone, MatchingConfig, RegisterDatabase

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
MAIL_HEADER = ["letter_id", "received", "full_name", "personal_id", "address", "postal_code_and_city", "phone",
               "email", "account", "product", "metering_point", "no_direct_marketing"]
# Content of a file outside the landing zone that a link points at: must never be read.
OUTSIDE_SECRET = "OUTSIDE-THE-LANDING-ZONE-7f3a"


# --- made-up exports -------------------------------------------------------------------------------

def mail_bytes(prohibited_last: bool = True) -> bytes:
    """Two letters; the last one ticks "no direct marketing" (its final `x`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(MAIL_HEADER)
    writer.writerow(["M-900001", "24.11.2026", "Testi Esimerkki", "", "Testitie 1", "00100 HELSINKI",
                     "040 0000001", "testi.esimerkki@example.invalid", "", "sähkö", "", ""])
    writer.writerow(["M-900002", "24.11.2026", "Malli Mallikas", "", "Mallitie 2", "00100 HELSINKI",
                     "040 0000002", "malli.mallikas@example.invalid", "", "sähkö", "",
                     "x" if prohibited_last else ""])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def web_bytes(*numbers: int) -> bytes:
    lines = [json.dumps({
        "id": f"W-20261124-{n:06d}", "submitted_at": "2026-11-24T18:03:11+02:00", "authenticated": False,
        "person": {"first_names": "Testi", "last_name": f"Esimerkki{n}"},
        "contact": {"email": f"testi{n}@example.invalid",
                    "address": {"street": "Testitie 1", "postal_code": "00100", "city": "Helsinki"}},
        "service": {"product": "electricity"}, "consents": {"direct_marketing_prohibited": False},
    }) for n in numbers]
    return ("\n".join(lines) + "\n").encode("utf-8")


def land(zone: Path, channel_folder: str, name: str, content: bytes, *, ready: bool = True) -> Path:
    """Write an export; with `ready`, its `.ready` marker after it (the landing protocol)."""
    folder = zone / channel_folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    if ready:
        (folder / f"{name}.ready").write_bytes(b"")
    return path


# --- through Dagster ------------------------------------------------------------------------------

def run_load(zone: Path, engine: sa.Engine, extract: Path, settle_seconds: int = 60) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("register_load")
    with dg.instance_for_test() as instance:
        return job.execute_in_process(
            instance=instance, raise_on_error=False,
            resources={
                "register_db": RegisterDatabase(url=engine.url.render_as_string(hide_password=False)),
                "landing_zone": LandingZone(path=str(zone), settle_seconds=settle_seconds),
                "extract_dir": ExtractDirectory(path=str(extract)),
                "io_manager": RunMemoryIOManager(),
                "matching": MatchingConfig(),
            },
        )


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def metadata_of(result: dg.ExecuteInProcessResult, node: str) -> dict[str, object]:
    return {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}


def scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar_one()


# --- 1. files still being written -----------------------------------------------------------------

def test_a_file_still_being_written_is_not_loaded_until_it_is_ready(register_engine, tmp_path):
    """A mail row cut just before its final `x` must not load without the prohibition."""
    zone = tmp_path / "landing"
    full = mail_bytes()
    cut = full[: full.rindex(b"x")]  # the copy so far: the last letter's box not yet there
    assert cut.endswith(b",")
    land(zone, "mail", "mail_20261124.csv", cut, ready=False)

    first = run_load(zone, register_engine, tmp_path / "extract")
    assert first.success
    assert scalar(register_engine, "SELECT COUNT(*) FROM intake_file") == 0, "a file still being written was read"
    assert scalar(register_engine, "SELECT COUNT(*) FROM source_record") == 0
    assert metadata_of(first, "landed_files")["files_waiting"] == 1
    assert metadata_of(first, "landed_files")["waiting_names"] == ["mail/mail_20261124.csv"]
    assert metadata_of(first, "raw_mail")["files_waiting"] == 1

    # The copy completes and the system writes its marker: the next run loads it whole.
    land(zone, "mail", "mail_20261124.csv", full, ready=True)
    second = run_load(zone, register_engine, tmp_path / "extract")
    assert second.success
    assert scalar(register_engine, "SELECT COUNT(*) FROM intake_file WHERE channel = 'mail'") == 1
    assert scalar(register_engine, "SELECT marketing_prohibited FROM source_record "
                                   "WHERE channel = 'mail' AND source_record_id = 'M-900002'") in (True, 1)


def test_without_a_marker_a_file_is_ready_once_unchanged_for_the_settle_time(tmp_path):
    from pipeline.intake import discover, survey_landing

    zone = tmp_path / "landing"
    path = land(zone, "web", "web_20261124.jsonl", web_bytes(1), ready=False)
    now = time.time()
    os.utime(path, (now - 30, now - 30))
    assert discover(zone, settle_seconds=60, now=now) == []
    assert survey_landing(zone, settle_seconds=60, now=now).waiting == ["web/web_20261124.jsonl"]
    os.utime(path, (now - 61, now - 61))
    assert [f.file_name for f in discover(zone, settle_seconds=60, now=now)] == ["web_20261124.jsonl"]
    # A marker makes it ready at once, whatever its age; the marker itself is no data file.
    os.utime(path, (now, now))
    (zone / "web" / "web_20261124.jsonl.ready").write_bytes(b"")
    survey = survey_landing(zone, settle_seconds=3600, now=now)
    assert [f.file_name for f in survey.files] == ["web_20261124.jsonl"]
    assert survey.waiting == [] and survey.unexpected_names == []


def test_a_file_its_writer_renamed_to_done_is_ready_at_once_under_its_exported_name(tmp_path):
    from pipeline.intake import build_batch, discover, read_all, survey_landing
    from synth import generate

    generated = tmp_path / "generated"
    generate(generated, people=60, days=1, seed=5, bad_input=False)
    zone = tmp_path / "landing"
    expected = {}
    for source in sorted((generated / "landing").glob("*/*_*")):
        if source.name.endswith(".ready"):
            continue
        target = zone / source.parent.name / (source.name + ".done")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.utime(target)  # just arrived: the settle time alone would make it wait
        expected[source.parent.name] = source.name
    assert set(expected) == {"web", "phone", "mail", "email", "in_person"}
    now = time.time()
    survey = survey_landing(zone, settle_seconds=3600, now=now)
    assert survey.waiting == [] and survey.unexpected_names == []
    assert {f.channel: f.file_name for f in survey.files} == expected
    batch = build_batch(read_all(discover(zone, settle_seconds=3600, now=now)), dt.date(2026, 12, 31))
    assert batch.files["file_reason"].isna().all(), "a .done file was not read as its format"
    assert set(batch.files["file_name"]) == set(expected.values())
    assert set(batch.accepted["channel"]) == set(expected)
    # A name that is not `<export>.done` is still no export.
    (zone / "mail" / "mail_20261124.csv.tmp").write_bytes(b"x")
    assert survey_landing(zone, settle_seconds=3600, now=now).unexpected_names == ["mail/mail_20261124.csv.tmp"]


def test_a_file_that_grows_after_it_was_summed_is_not_read(tmp_path):
    from pipeline.intake import discover

    zone = tmp_path / "landing"
    path = land(zone, "web", "web_20261124.jsonl", web_bytes(1))
    landed = discover(zone)[0]
    assert landed.unchanged()
    with path.open("ab") as handle:
        handle.write(web_bytes(2))
    assert not landed.unchanged()


def test_the_generator_marks_its_exports_ready(tmp_path):
    from pipeline.intake import survey_landing
    from synth import generate

    summary = generate(tmp_path / "zone", people=20, days=1, seed=2)
    survey = survey_landing(summary.landing, settle_seconds=3600)
    assert len(survey.files) == len(summary.files) and survey.waiting == []
    unmarked = generate(tmp_path / "bare", people=20, days=1, seed=2, ready_markers=False)
    assert survey_landing(unmarked.landing, settle_seconds=3600).files == []


# --- 2. the landing zone is guarded ---------------------------------------------------------------

def test_symbolic_links_are_never_followed(register_engine, tmp_path):
    zone = tmp_path / "landing"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text(f"root:x:0:0:{OUTSIDE_SECRET}:/root:/bin/sh\n", encoding="utf-8")
    (outside / "phone").mkdir()
    (outside / "phone" / "phone_20261124.csv").write_text(f"{OUTSIDE_SECRET}\n", encoding="utf-8")
    land(zone, "web", "web_20261125.jsonl", web_bytes(1))              # a real export beside them
    (zone / "web" / "web_20261124.jsonl").symlink_to(outside / "passwd")  # a linked file
    (zone / "web" / "web_20261124.jsonl.ready").write_bytes(b"")
    (zone / "phone").symlink_to(outside / "phone", target_is_directory=True)  # a linked channel folder
    mail = land(zone, "mail", "mail_20261124.csv", mail_bytes(), ready=False)  # ... and a linked marker
    (zone / "mail" / "mail_20261124.csv.ready").symlink_to(outside / "passwd")

    from pipeline.intake import file_checksum
    with pytest.raises(OSError):
        file_checksum(zone / "web" / "web_20261124.jsonl")

    result = run_load(zone, register_engine, tmp_path / "extract")
    assert result.success
    with register_engine.connect() as connection:
        files = connection.execute(sa.text("SELECT channel, file_name FROM intake_file")).all()
        raw = [r[0] or "" for r in connection.execute(sa.text("SELECT raw_values FROM quarantine"))]
        detail = [r[0] or "" for r in connection.execute(sa.text("SELECT detail FROM quarantine"))]
    assert [tuple(f) for f in files] == [("web", "web_20261125.jsonl")]
    assert not any(OUTSIDE_SECRET in text for text in raw + detail), "a linked file's content was read"
    assert metadata_of(result, "landed_files")["refused_links_names"] == [
        "mail/mail_20261124.csv.ready", "phone", "web/web_20261124.jsonl"]
    assert metadata_of(result, "landed_files")["waiting_names"] == [mail.relative_to(zone).as_posix()]
    check = checks_of(result)["landing_zone_has_no_links"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert checks_of(result)["landing_zone_names_as_agreed"].passed


def test_folder_and_file_names_are_matched_as_intake_md_names_them(register_engine, tmp_path):
    zone = tmp_path / "landing"
    land(zone, "web", "web_20261124.jsonl", web_bytes(1, 2))
    land(zone, "Web", "web_20261125.jsonl", web_bytes(3))              # a channel folder in the wrong case
    land(zone, "inperson", "in_person_20261124.xlsx", b"PK")           # ... or spelt otherwise
    land(zone, "web", "export.jsonl", web_bytes(4))                    # a file name out of pattern
    land(zone, "web", "WEB_20261126.JSONL", web_bytes(5))

    result = run_load(zone, register_engine, tmp_path / "extract")
    assert result.success  # the other files load: one misplaced file never stops the night ...
    assert scalar(register_engine, "SELECT COUNT(*) FROM source_record") == 2
    check = checks_of(result)["landing_zone_names_as_agreed"]  # ... but the operator is told
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["unknown_entries"].value == 2 and check.metadata["unexpected_names"].value == 2
    assert sorted(check.metadata["names"].value) == ["Web", "inperson", "web/WEB_20261126.JSONL", "web/export.jsonl"]
    # Nothing is lost: the misplaced files are where they were, for the operator to rename.
    assert (zone / "Web" / "web_20261125.jsonl").exists() and (zone / "web" / "export.jsonl").exists()


@pytest.mark.parametrize("layout", ["missing", "no_channel_folders"])
def test_a_wrong_landing_directory_fails_the_run_before_the_extract(register_engine, tmp_path, layout):
    zone = tmp_path / "landing"
    if layout == "no_channel_folders":  # e.g. REGISTER_LANDING_DIR set to the folder above, or every name wrong
        land(zone, "Web", "web_20261124.jsonl", web_bytes(1))
        land(zone, "Phone", "phone_20261124.csv", b"")
    result = run_load(zone, register_engine, tmp_path / "extract")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "landed_files"
    assert not (tmp_path / "extract").exists(), "a marketing extract was published from a wrong landing zone"
    assert "STEP_START" not in {e.event_type_value for e in result.all_events if e.step_key == "register"}


def test_an_empty_landing_zone_is_a_warning_the_operator_sees(register_engine, tmp_path):
    zone = tmp_path / "landing"
    for channel in ("web", "phone", "mail", "email", "in_person"):
        (zone / channel).mkdir(parents=True)
    result = run_load(zone, register_engine, tmp_path / "extract")
    assert result.success
    check = checks_of(result)["landing_zone_holds_files"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN


def test_identical_content_in_two_channels_is_two_files(register_engine, tmp_path):
    from pipeline.intake import build_batch, discover, new_files, read_all
    from pipeline.register.files import known_files
    from pipeline.register.load import load_intake

    def load_zone(zone: Path):
        fresh = new_files(discover(zone), known_files(register_engine))
        return load_intake(register_engine, build_batch(read_all(fresh), NOW.date()), run_id="fault", now=NOW)

    zone = tmp_path / "landing"
    land(zone, "phone", "phone_20261124.csv", b"")  # two empty exports: the same bytes
    land(zone, "mail", "mail_20261124.csv", b"")
    first = load_zone(zone)
    assert first.total.files_quarantined == 2 and first.total.files_skipped == 0
    assert scalar(register_engine, "SELECT COUNT(DISTINCT channel) FROM intake_file") == 2

    # Loading again changes nothing; the same bytes in a third channel are that channel's file,
    # and a copy within a channel is still one file.
    land(zone, "email", "email_20261124.mbox", b"")
    land(zone, "phone", "phone_20261125.csv", b"")
    second = load_zone(zone)
    assert [(f.channel, f.status) for f in second.files] == [("email", "quarantined")]
    assert scalar(register_engine, "SELECT COUNT(*) FROM intake_file") == 3

    # One batch holding the same content in two channels and twice in one.
    other = tmp_path / "other"
    web = web_bytes(7)
    land(other, "web", "web_20261124.jsonl", web)
    land(other, "web", "web_20261124_2.jsonl", web)
    land(other, "mail", "mail_20261124.csv", web)  # not a mail export: quarantined whole, but not a "copy"
    summary = load_zone(other)
    assert sorted((f.channel, f.file_name, f.status) for f in summary.files) == [
        ("mail", "mail_20261124.csv", "quarantined"), ("web", "web_20261124.jsonl", "loaded")]
    assert scalar(register_engine, "SELECT COUNT(*) FROM source_record WHERE channel = 'web'") == 1
    assert scalar(register_engine, "SELECT COUNT(*) FROM intake_file") == 5


def test_a_resent_file_is_not_read_but_recorded_with_the_file_it_repeats(register_engine, tmp_path):
    """Issue 12: the operator sees a re-sent export arrived, and which earlier file it repeats."""
    zone = tmp_path / "landing"
    original = land(zone, "mail", "mail_20261124.csv", mail_bytes())
    assert run_load(zone, register_engine, tmp_path / "extract").success
    counts = {t: scalar(register_engine, f"SELECT COUNT(*) FROM {t}")
              for t in ("intake_file", "source_record", "quarantine", "customer")}

    land(zone, "mail", "mail_20261125.csv", mail_bytes())        # re-sent under another name
    land(zone, "mail", "mail_20261125_2.csv", mail_bytes())      # and again, in the same run
    original.rename(original.with_name("mail_20261124.csv.done"))  # the loaded file itself: not a copy
    result = run_load(zone, register_engine, tmp_path / "extract")
    assert result.success
    assert {t: scalar(register_engine, f"SELECT COUNT(*) FROM {t}") for t in counts} == counts
    with register_engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT d.file_name, d.size_bytes, f.file_name AS earlier, d.checksum = f.checksum AS same "
            "FROM intake_file_duplicate d JOIN intake_file f ON f.intake_file_id = d.duplicate_of_intake_file_id "
            "ORDER BY d.file_name")).all()
    size = len(mail_bytes())
    assert [tuple(r) for r in rows] == [("mail_20261125.csv", size, "mail_20261124.csv", True),
                                        ("mail_20261125_2.csv", size, "mail_20261124.csv", True)]
    raw = metadata_of(result, "raw_mail")
    assert (raw["files_new"], raw["files_duplicate"], raw["records_read"]) == (0, 3, 0)
    totals = next(r.data for r in metadata_of(result, "register")["per_channel"].records if r.data["channel"] == "total")
    assert totals["files_duplicate"] == 2
    assert checks_of(result)["intake_counts_add_up"].passed

    # The next night sees them all again (landed files are never moved): nothing more is recorded.
    assert run_load(zone, register_engine, tmp_path / "extract").success
    assert scalar(register_engine, "SELECT COUNT(*) FROM intake_file_duplicate") == 2
    assert {t: scalar(register_engine, f"SELECT COUNT(*) FROM {t}") for t in counts} == counts


def test_the_intake_hands_over_duplicates_unread(tmp_path):
    from pipeline.intake import FileRead, build_batch, channel_counts, discover, duplicate_files, new_files

    zone = tmp_path / "landing"
    land(zone, "web", "web_20261124.jsonl", web_bytes(1, 2))
    land(zone, "web", "web_20261125.jsonl", web_bytes(1, 2))   # a copy, later by name
    land(zone, "web", "web_20261126.jsonl", web_bytes(3))
    land(zone, "mail", "mail_20261124.csv", mail_bytes())     # already loaded (below)
    files = discover(zone)
    mail = next(f for f in files if f.channel == "mail")
    known = {mail.identity}
    assert [f.file_name for f in new_files(files, known)] == ["web_20261124.jsonl", "web_20261126.jsonl"]
    assert [f.file_name for f in duplicate_files(files, known)] == ["mail_20261124.csv", "web_20261125.jsonl"]
    reads = [FileRead(f) for f in new_files(files, known)] + [FileRead(f, duplicate=True)
                                                              for f in duplicate_files(files, known)]
    assert channel_counts(reads).files == 2
    batch = build_batch(reads, NOW.date())
    assert sorted(batch.files["file_name"]) == ["web_20261124.jsonl", "web_20261126.jsonl"]
    assert batch.duplicates.to_dict("records") == [
        {"channel": "mail", "file_name": "mail_20261124.csv", "checksum": mail.checksum, "size_bytes": mail.size_bytes},
        {"channel": "web", "file_name": "web_20261125.jsonl",
         "checksum": files[0].checksum, "size_bytes": files[0].size_bytes}]


# --- 3. crash recovery: SIGKILL, then a plain re-run ------------------------------------------------

@pytest.fixture(scope="module")
def small_zone(tmp_path_factory) -> Path:
    from synth import generate

    out = tmp_path_factory.mktemp("kill-zone")
    generate(out, people=120, days=2, seed=11)
    return out / "landing"


def _dagster_home(path: Path) -> Path:
    """A fresh Dagster home with the project's instance settings (pools, run monitoring)."""
    path.mkdir(parents=True)
    text = (ROOT / "dagster.yaml").read_text(encoding="utf-8").replace("base_dir: data/", f"base_dir: {path}/")
    (path / "dagster.yaml").write_text(text, encoding="utf-8")
    # Create the instance's storage here, once: Dagster's SQLite storage checks for its
    # tables and then creates them with no lock, so the run and the test opening a new
    # home at the same moment could both create them ("more than one head").
    dg.DagsterInstance.from_config(str(path)).dispose()
    return path


def _start_load(home: Path, url: str, zone: Path, extract: Path) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "REGISTER_DATABASE_URL": url,
           "REGISTER_LANDING_DIR": str(zone), "REGISTER_EXTRACT_DIR": str(extract)}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "pipeline.orchestration.definitions",
         "-j", "register_load"],
        cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    if process.stderr:
        process.stderr.close()


def _wait_for_step(home: Path, process: subprocess.Popen, step: str, timeout: float = 240) -> None:
    """Until the run has started `step` (and, for the register, holds the register_write slot)."""
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before the kill"
            runs = instance.get_runs(limit=1)
            if runs:
                started = {e.step_key for e in instance.all_logs(runs[0].run_id)
                           if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_START"}
                if step in started and (step != "register" or instance.event_log_storage.get_concurrency_run_ids()):
                    return
            time.sleep(0.05)
        raise AssertionError(f"the run never reached {step}")
    finally:
        instance.dispose()


def _rerun_completes(home: Path, url: str, zone: Path, extract: Path, timeout: float = 300) -> None:
    process = _start_load(home, url, zone, extract)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise AssertionError("the re-run after the kill did not finish: a pool slot is still held") from None
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]


def _consistent(engine: sa.Engine) -> dict[str, int]:
    """The register's counts add up, nothing is held twice; returns the table counts."""
    with engine.connect() as connection:
        read, accepted, resent, quarantined = connection.execute(sa.text(
            "SELECT SUM(records_read), SUM(records_accepted), SUM(records_resent), SUM(records_quarantined) "
            "FROM intake_file")).one()
        counts = {t: connection.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                  for t in ("intake_file", "source_record", "quarantine")}
        distinct_ids = connection.execute(sa.text(
            "SELECT COUNT(*) FROM (SELECT DISTINCT channel, source_record_id FROM source_record) d")).scalar_one()
        distinct_files = connection.execute(sa.text(
            "SELECT COUNT(*) FROM (SELECT DISTINCT channel, checksum FROM intake_file) d")).scalar_one()
        runs = connection.execute(sa.text("SELECT COUNT(DISTINCT run_id) FROM intake_file")).scalar_one()
    assert read == accepted + quarantined
    assert accepted - resent == counts["source_record"] == distinct_ids
    assert distinct_files == counts["intake_file"]
    assert runs == 1, "the files were loaded by more than one run: the killed one left part of its load"
    return counts


@pytest.mark.parametrize("step", ["raw_web", "register"])
def test_a_run_killed_with_sigkill_then_a_plain_rerun_completes(register_engine, small_zone, tmp_path, step):
    """kill -9 during the intake, or in the register write holding the pool slot; then a plain re-run."""
    url = register_engine.url.render_as_string(hide_password=False)
    home = _dagster_home(tmp_path / "dagster")
    zone = tmp_path / "landing"
    shutil.copytree(small_zone, zone)
    killed = _start_load(home, url, zone, tmp_path / "extract")
    try:
        _wait_for_step(home, killed, step)
    finally:
        _kill(killed)

    _rerun_completes(home, url, zone, tmp_path / "extract")
    counts = _consistent(register_engine)
    assert counts["source_record"] > 100
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "SUCCESS"], "the killed run is not marked failed"
        assert not instance.event_log_storage.get_concurrency_run_ids(), "a pool slot is still held"
    finally:
        instance.dispose()


# --- 4. concurrent first runs ---------------------------------------------------------------------

_FIRST_RUN = """
import sys, time
from pipeline.register.database import make_engine, migrate
engine = make_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
migrate(engine)
"""


def _first_runs_at_once(url: str, runs: int = 3) -> list[tuple[int, str]]:
    start = time.time() + 8  # every process imported and connected, then all migrate together
    processes = [subprocess.Popen([sys.executable, "-c", _FIRST_RUN, url, str(start)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(runs)]
    results = []
    for process in processes:
        _, stderr = process.communicate(timeout=180)
        results.append((process.returncode, stderr.strip().splitlines()[-1] if stderr.strip() else ""))
    return results


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_concurrent_first_runs_on_a_new_database_do_not_race(backend, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'new.db'}"
        results = _first_runs_at_once(url)
        engine = make_engine(url)
    else:
        from conftest import POSTGRES_ADMIN_URL
        admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"first_runs_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        engine = None
        try:
            results = _first_runs_at_once(url)
            engine = make_engine(url)
            migrate(engine)  # at the newest revision: nothing to do
            tables = set(sa.inspect(engine).get_table_names())
        finally:
            if engine is not None:
                engine.dispose()
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
        assert [code for code, _ in results] == [0, 0, 0], [line for _, line in results]
        assert {"intake_file", "source_record", "customer", "alembic_version"} <= tables
        return
    try:
        assert [code for code, _ in results] == [0, 0, 0], [line for _, line in results]
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT COUNT(*) FROM alembic_version")).scalar_one() == 1
    finally:
        engine.dispose()
