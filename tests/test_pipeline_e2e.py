"""The whole register_load job through Dagster, on SQLite and PostgreSQL.

A generated landing zone goes in; every record must come out in exactly one of
source_record or quarantine, loading again must change nothing, and a file
re-sent under a new name must be skipped. The records are counted in the landing
files themselves, by each format's own rules (docs/intake_formats.md), not by
pipeline.channels: a reader that silently drops a record cannot hide it.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from pathlib import Path

import dagster as dg
import openpyxl
import pandas as pd
import pytest
from sqlalchemy import text

from pii_scan import NAME, STREET, needles_from_landing, scan_bytes
from pipeline.orchestration.definitions import defs
from pipeline.orchestration.io_manager import RunMemoryIOManager
from pipeline.orchestration.resources import ExtractDirectory, LandingZone, MatchingConfig, RegisterDatabase
from synth import generate


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zone")
    generate(out, people=300, days=3, seed=7)
    return out


def _run(landing_dir: Path, url: str, logged: list[str] | None = None) -> dg.ExecuteInProcessResult:
    """One whole run in process; `logged` receives the text of every entry of its event log
    (log messages, and the events' metadata) when given."""
    job = defs.resolve_job_def("register_load")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            resources={
                "register_db": RegisterDatabase(url=url),
                "landing_zone": LandingZone(path=str(landing_dir)),
                # The extract goes beside the test's landing zone, never into the project's data/.
                "extract_dir": ExtractDirectory(path=str(landing_dir.parent / "extract")),
                "io_manager": RunMemoryIOManager(),
                "matching": MatchingConfig(),
            },
        )
        if logged is not None:
            for entry in instance.all_logs(result.run_id):
                logged.append(entry.user_message or "")
                if entry.dagster_event is not None:
                    logged.append(repr(entry.dagster_event.event_specific_data))
        return result


def _table_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in ("intake_file", "source_record", "quarantine")}


def _duplicates(engine) -> set[tuple]:
    """(channel, name, size, name of the earlier file) of every recorded duplicate, each
    holding the earlier file's checksum."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT d.channel, d.file_name, d.size_bytes, f.file_name, d.checksum, f.checksum "
            "FROM intake_file_duplicate d JOIN intake_file f "
            "ON f.intake_file_id = d.duplicate_of_intake_file_id")).all()
    assert all(r[4] == r[5] for r in rows)
    return {tuple(r[:4]) for r in rows}


# --- the landing files' records, counted here (docs/intake_formats.md), not with pipeline.channels --

def _lines(data: bytes) -> list[bytes]:
    """The file's non-blank lines (LF or CRLF; a byte-order mark is not a line of its own)."""
    return [line for line in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if line.strip()]


def _records_in(path: Path) -> int | None:
    """How many records the export holds by its format; None for a file no one could read."""
    data = path.read_bytes()
    channel = path.parent.name
    if channel == "web":  # JSON Lines: a record per non-blank line, whole or not
        return len(_lines(data))
    if channel in ("phone", "mail"):  # a header row, then a record per line
        return max(len(_lines(data)) - 1, 0)
    if channel == "email":  # mbox: a message per `From ` line; a file without one is no mbox
        if not data.strip():
            return 0
        return len(re.findall(rb"(?m)^From ", data)) if data.lstrip().startswith(b"From ") else None
    if channel == "in_person":  # the sheet `Asioinnit`: a record per non-blank row under the header
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 - a cut-off workbook: not a zip any more
            return None
        try:
            rows = list(book["Asioinnit"].iter_rows(values_only=True))
        finally:
            book.close()
        return sum(1 for row in rows[1:] if any(cell not in (None, "") for cell in row))
    raise AssertionError(f"a file in an unknown channel folder: {channel}")


def _landing_records(zone: Path) -> dict[tuple[str, str], tuple[str, int | None]]:
    """(channel, file name) -> (SHA-256 of the bytes, records counted) for every export ready to read."""
    found = {}
    for path in sorted(zone.glob("*/*")):
        if path.is_file() and not path.name.endswith(".ready") and not path.name.startswith("."):
            found[(path.parent.name, path.name)] = (hashlib.sha256(path.read_bytes()).hexdigest(), _records_in(path))
    return found


def _ground_truth(landing: Path) -> pd.DataFrame:
    with gzip.open(landing / "ground_truth.csv.gz", "rt", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def test_load_accounts_for_every_record_and_is_idempotent(landing, register_engine, tmp_path):
    url = register_engine.url.render_as_string(hide_password=False)
    zone = tmp_path / "landing"
    shutil.copytree(landing / "landing", zone)

    first = _run(zone, url)
    assert first.success
    counts = _table_counts(register_engine)
    with register_engine.connect() as conn:
        read, accepted, resent, quarantined = conn.execute(text(
            "SELECT SUM(records_read), SUM(records_accepted), SUM(records_resent), SUM(records_quarantined) "
            "FROM intake_file")).one()
        record_quarantine = conn.execute(text(
            "SELECT COUNT(*) FROM quarantine WHERE record_number IS NOT NULL")).scalar_one()
        distinct_ids = conn.execute(text(
            "SELECT COUNT(*) FROM (SELECT DISTINCT channel, source_record_id FROM source_record) d")).scalar_one()
    assert read == accepted + quarantined
    assert accepted - resent == counts["source_record"] == distinct_ids
    assert quarantined == record_quarantine
    assert counts["source_record"] > 500

    # Nothing lost, counted without the loader: each export's records by its own format, against
    # what the register holds from the file and the loader's counts.
    landed = _landing_records(zone)
    with register_engine.connect() as conn:
        loaded = {(r.channel, r.file_name): r for r in conn.execute(text(
            "SELECT channel, file_name, checksum, status, records_read FROM intake_file"))}
        held = conn.execute(text(
            "SELECT (SELECT COUNT(*) FROM source_record) + (SELECT COUNT(*) FROM source_record_version)"
            " + (SELECT COUNT(*) FROM quarantine WHERE source_record_id IS NOT NULL OR record_number IS NOT NULL)"
            " + (SELECT SUM(records_resent + records_requarantined + records_erased) FROM intake_file)")).scalar_one()
    assert set(loaded) <= set(landed), "the register names a file that is not in the landing zone"
    in_files, unreadable, copies = 0, 0, 0
    for (channel, name), (digest, records) in landed.items():
        row = loaded.get((channel, name))
        if row is None:  # skipped: the same bytes as a file loaded under another name
            assert (channel, digest) in {(r.channel, r.checksum) for r in loaded.values()}, f"{name} was not loaded"
            copies += 1
            continue
        assert row.checksum == digest
        if records is None:  # no one can read it: quarantined whole, no record read
            assert (row.status, row.records_read) == ("quarantined", 0), f"{name}: unreadable but {row.status}"
            unreadable += 1
            continue
        assert row.records_read == records, f"{name}: {records} records in the file, {row.records_read} read"
        in_files += records
    assert in_files == read == held, f"{in_files} records in the files, {read} read, {held} held or counted"
    assert in_files > 500 and len(loaded) >= 15, f"{len(loaded)} files loaded ({unreadable} unreadable), {copies} copies"

    # Every record the generator meant as a registration is held once, or quarantined.
    truth = _ground_truth(landing)
    assert read >= truth.drop_duplicates(["channel", "source_record_id"]).shape[0] - counts["quarantine"]

    # Every check ran; the blocking ones (the landing zone's three, the register's four and the
    # extract's) passed. The informative one warns exactly when someone is held back under doubt.
    checks = first.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {
        "landing_zone_holds_files", "landing_zone_names_as_agreed", "landing_zone_has_no_links",
        "intake_counts_add_up", "no_invalid_or_temporary_codes_on_customers", "no_two_customers_share_a_code",
        "marketing_list_respects_prohibitions", "marketing_held_under_doubt",
        "marketing_extract_respects_prohibitions"}
    assert all(c.passed for c in checks if c.check_name != "marketing_held_under_doubt")
    doubt_check = next(c for c in checks if c.check_name == "marketing_held_under_doubt")
    assert doubt_check.passed == (doubt_check.metadata["held_under_doubt"].value == 0)

    # The run's figures, plain numbers for Dagster's plots, agree with the register.
    figures = {k: v.value for k, v in first.asset_materializations_for_node("register")[0].metadata.items()}
    with register_engine.connect() as conn:
        new_customers = conn.execute(text("SELECT COUNT(*) FROM customer")).scalar_one()
        reviews = conn.execute(text("SELECT COUNT(*) FROM review_queue")).scalar_one()
    assert (figures["records_read"], figures["records_accepted"], figures["records_quarantined"]) == \
        (read, accepted, quarantined)
    assert figures["new_customers"] == new_customers and figures["to_review"] == reviews
    assert figures["records_linked"] + figures["new_customers"] == counts["source_record"]
    assert 0.0 < figures["link_rate"] < 1.0
    assert figures["quarantine_rate"] == pytest.approx(quarantined / read)

    # The marketing extract was published beside the landing zone: one file per product.
    extract_files = sorted(p.name for p in (tmp_path / "extract").glob("*/marketing_*.csv"))
    assert len(extract_files) == 5

    # Loading the same landing zone again changes nothing.
    first_duplicates = _duplicates(register_engine)
    again = _run(zone, url)
    assert again.success
    assert _table_counts(register_engine) == counts
    assert _duplicates(register_engine) == first_duplicates

    # A file re-sent under a new name is recognised by content and skipped.
    some_file = sorted((zone / "phone").iterdir())[0]
    shutil.copy(some_file, zone / "phone" / "phone_20991231.csv")
    (zone / "phone" / "phone_20991231.csv.ready").touch()  # ready to read: it is skipped, not waiting
    resend = _run(zone, url)
    assert resend.success
    assert _table_counts(register_engine) == counts
    # ... and recorded: the operator sees it arrived and which earlier file it repeats (the
    # generator's own re-sent exports were recorded by the first run).
    recorded = _duplicates(register_engine)
    assert recorded - first_duplicates == {("phone", "phone_20991231.csv", some_file.stat().st_size, some_file.name)}
    assert all(c.passed for c in resend.get_asset_check_evaluations() if c.check_name == "intake_counts_add_up")
    figures = resend.asset_materializations_for_node("register")[0].metadata
    totals = next(r.data for r in figures["per_channel"].value.records if r.data["channel"] == "total")
    assert totals["files_duplicate"] == 1 and figures["records_read"].value == 0
    # Seen again by the next run (the job never moves landed files): recorded once.
    assert _run(zone, url).success
    assert _table_counts(register_engine) == counts
    assert _duplicates(register_engine) == recorded


def test_run_metadata_holds_counts_not_values(landing, register_engine, tmp_path):
    """Run metadata, check metadata and log messages hold no personal value: neither the register's
    codes, accounts, e-mail addresses and phones nor the generated people's names and streets."""
    url = register_engine.url.render_as_string(hide_password=False)
    logged: list[str] = []
    result = _run(landing / "landing", url, logged)
    assert result.success
    metadata_text = []
    for event in result.all_events:
        if event.event_type_value in ("ASSET_MATERIALIZATION", "STEP_OUTPUT", "ASSET_CHECK_EVALUATION"):
            metadata_text.append(repr(event.event_specific_data))
    assert sum("ASSET_CHECK_EVALUATION" == e.event_type_value for e in result.all_events) >= 8, \
        "the run evaluated too few asset checks to look at their metadata"
    blob = "\n".join(metadata_text + logged)
    assert "records_read" in blob and "intake_counts_add_up" in blob
    with register_engine.connect() as conn:
        rows = conn.execute(text("SELECT personal_id, iban, email, phone FROM source_record")).all()
    values = {v for row in rows for v in row if v}
    assert values, "the load held no values to look for"
    leaked = sum(1 for v in values if v in blob)  # a count: pytest must not print the values
    assert leaked == 0, f"{leaked} personal values found in run metadata"

    # The generated people's names and street addresses (read from the landing files, not
    # from the register), as whole words in any case: none in the metadata or the logs.
    needles, _ = needles_from_landing(landing / "landing")
    assert needles.counts()[NAME] >= 300 and needles.counts()[STREET] >= 100, "too few names or streets"
    found = scan_bytes(blob.encode("utf-8"), needles)
    assert not found, f"personal values in run metadata or logs (kind: distinct values): {found}"
    # The scan is not hollow: the register's names and streets are among the needles.
    with register_engine.connect() as conn:
        held = conn.execute(text("SELECT first_names, last_name, street_address FROM source_record "
                                 "WHERE first_names IS NOT NULL AND last_name IS NOT NULL "
                                 "AND street_address IS NOT NULL")).all()
    sample = "\n".join(" ".join(row) for row in held[:50]).encode("utf-8")
    assert len(held) >= 50
    assert scan_bytes(sample, needles).keys() >= {NAME, STREET}


def test_a_file_and_its_copy_in_one_batch_count_once(landing, tmp_path):
    """A re-sent copy landing in the same batch as its original brings no second set of records."""
    import datetime as dt

    from pipeline.intake import build_batch, discover, read_all

    zone = tmp_path / "landing"
    shutil.copytree(landing / "landing", zone)
    original = sorted((zone / "web").iterdir())[0]
    shutil.copy(original, zone / "web" / "web_20991231_2.jsonl")
    (zone / "web" / "web_20991231_2.jsonl.ready").touch()
    files = discover(zone)
    single = build_batch(read_all([f for f in files if f.path == original]), dt.date(2026, 12, 31))
    both = build_batch(read_all([f for f in files if f.checksum == files[[f.path for f in files].index(original)].checksum]),
                       dt.date(2026, 12, 31))
    assert len(both.accepted) == len(single.accepted)
    assert len(both.quarantined) == len(single.quarantined)
    assert len(both.files) == 2
