"""No personal data where it does not belong (issue 4).

A whole load runs through Dagster as a user runs it (`dagster job execute` in a
subprocess, with a real SQLite-backed instance in a fresh DAGSTER_HOME). Then
every file the instance holds (event log, run storage, schedules, compute logs)
and every other file the run left in the test's directory, its own stdout and
stderr included, is searched for every personal identity code, bank account,
e-mail address, phone number, call-recording reference, first name, last name and
street address of the INPUT (names and addresses as whole words). Only the
landing zone, the register database and the marketing extract may hold them.
A second load adds one broken file per channel, so the quarantine paths (whole
files, single lines and rows, their details and warnings) run too.

Failures name the kind of value and the file, with a count: never a value.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import dagster as dg
import pytest
from openpyxl import Workbook
from python_calamine import CalamineWorkbook
from stdnum import luhn

from pii_scan import (ACCOUNT, EMAIL, KINDS, NAME, PERSONAL_ID, PHONE, RECORDING, STREET, Hit, Needles, files_under,
                      needles_from_landing, scan_bytes, scan_file, scan_tree)
from pipeline.normalise import hetu, iban
from synth import GROUND_TRUTH_FILE, generate

PROJECT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
# At least this many distinct needles of each kind, so the scan cannot pass by looking for nothing.
MINIMUM_NEEDLES = {PERSONAL_ID: 100, ACCOUNT: 100, EMAIL: 100, PHONE: 100, RECORDING: 20, NAME: 300, STREET: 100}


# --- obviously synthetic values, valid by checksum -------------------------------------------

def synthetic_code(n: int) -> str:
    """A permanent identity code born on the 28th of a 1970s month: individual number 2xx."""
    body = f"28{1 + n % 12:02d}7{n % 10}"
    individual = f"{200 + n:03d}"
    return f"{body}-{individual}{hetu.calc_check_character(body + individual)}"


def synthetic_iban(n: int) -> str:
    """A Finnish IBAN from a domestic number of bank group 5 with its Luhn digit."""
    digits = f"5{n:05d}000{n:04d}"
    return iban.domestic_to_iban(digits + luhn.calc_check_digit(digits))


def planted(n: int) -> dict[str, str]:
    """One synthetic person's values, by needle kind."""
    return {PERSONAL_ID: synthetic_code(n), ACCOUNT: synthetic_iban(n), EMAIL: f"planted.person{n}@example.fi",
            PHONE: f"+358 50 {5550000 + n:07d}", RECORDING: f"REC-20261110-1200{n:02d}-PLANT{n:02d}"}


# --- one broken file per channel, each holding planted values ---------------------------------

def _web_line(record_id: str, p: dict[str, str]) -> dict:
    return {"id": record_id, "submitted_at": "2026-11-10T12:00:00+02:00", "authenticated": False,
            "person": {"first_names": "Testi", "last_name": "Henkilö", "personal_id": p[PERSONAL_ID]},
            "contact": {"email": p[EMAIL], "phone": p[PHONE]}, "billing": {"iban": p[ACCOUNT]}}


def _phone_row(ticket: str, p: dict[str, str]) -> list[str]:
    return [ticket, "10.11.2026 12:00", "Henkilö Testi", p[PERSONAL_ID], p[PHONE], p[EMAIL], "Testikatu 1",
            "00100", "Helsinki", p[ACCOUNT], "Sähkö", "", "E", p[RECORDING]]


PHONE_HEADER = ["Tiketti", "Aika", "Nimi", "Henkilötunnus", "Puhelin", "Sähköposti", "Katuosoite", "Postinumero",
                "Postitoimipaikka", "Tilinumero", "Tuote", "Käyttöpaikka", "Suoramarkkinointikielto", "Nauhoite"]
MAIL_HEADER = ["letter_id", "received", "full_name", "personal_id", "address", "postal_code_and_city", "phone",
               "email", "account", "product", "metering_point", "no_direct_marketing"]
IN_PERSON_HEADER = ["Asiointi", "Päivämäärä", "Etunimet", "Sukunimi", "Henkilötunnus", "Lähiosoite", "Postinumero",
                    "Postitoimipaikka", "Puhelin", "Sähköposti", "Tilinumero", "Tuote", "Käyttöpaikka",
                    "Suoramarkkinointikielto", "Henkilöllisyys tarkistettu"]


def add_broken_files(landing: Path) -> dict[str, list[dict[str, str]]]:
    """A broken export per channel (three phone, two mail); returns the planted values by file."""
    people = iter(planted(n) for n in range(1, 40))
    used: dict[str, list[dict[str, str]]] = {}

    def take(name: str) -> dict[str, str]:
        person = next(people)
        used.setdefault(name, []).append(person)
        return person

    # web: values typed where keys belong, a line cut short, around a good line (per-line quarantine)
    a, b, c, d = (take("web_20261110.jsonl") for _ in range(4))
    lines = [
        json.dumps(_web_line("W-20261110-000001", a), ensure_ascii=False),
        json.dumps({"id": "W-20261110-000002", "person": {b[PERSONAL_ID]: "Testi"}, "contact": {b[EMAIL]: None}}),
        json.dumps(_web_line("W-20261110-000003", c), ensure_ascii=False)[:150],
        json.dumps({"id": "W-20261110-000004", "billing": {d[ACCOUNT]: d[PHONE]}}),
    ]
    (landing / "web" / "web_20261110.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # phone: an export that lost its header row (the file is quarantined whole) ...
    rows = [_phone_row(f"T99{i}", take("phone_20261110.csv")) for i in range(2)]
    (landing / "phone" / "phone_20261110.csv").write_bytes(
        ("\r\n".join(";".join(r) for r in rows) + "\r\n").encode("cp1252"))
    # ... and one with a row cut short and a row with an unquoted delimiter (quarantined by row)
    short, shifted, good = (_phone_row(f"T98{i}", take("phone_20261111.csv")) for i in range(3))
    shifted[6] = shifted[6].replace(" ", ";")
    text = [";".join(PHONE_HEADER), ";".join(short[:-3]), ";".join(shifted), ";".join(good)]
    (landing / "phone" / "phone_20261111.csv").write_bytes(("\r\n".join(text) + "\r\n").encode("cp1252"))

    # ... and one with an identity code typed into its header row (quarantined whole)
    extra = take("phone_20261112.csv")
    text = [";".join(PHONE_HEADER + [extra[PERSONAL_ID]]), ";".join(_phone_row("T970", extra) + [""])]
    (landing / "phone" / "phone_20261112.csv").write_bytes(("\r\n".join(text) + "\r\n").encode("cp1252"))

    # mail: "Surname, First names" without quotes, and an unbalanced quote
    e, f = (take("mail_20261110.csv") for _ in range(2))
    mail_rows = [",".join(MAIL_HEADER),
                 ",".join(["M-20261110-00001", "10.11.2026", "Henkilö, Testi", e[PERSONAL_ID], "Testikatu 1",
                           "00100 HELSINKI", e[PHONE], e[EMAIL], e[ACCOUNT], "sähkö", "", ""]),
                 ",".join(["M-20261110-00002", "10.11.2026", '"Testi Henkilö', f[PERSONAL_ID], "Testikatu 2",
                           "00100 HELSINKI", f[PHONE], f[EMAIL], f[ACCOUNT], "sähkö", "", ""])]
    (landing / "mail" / "mail_20261110.csv").write_bytes(b"\xef\xbb\xbf" + "\n".join(mail_rows).encode("utf-8"))
    # ... and an e-mail address typed into the header row (quarantined whole)
    extra = take("mail_20261111.csv")
    text = [",".join(MAIL_HEADER + [extra[EMAIL]]),
            ",".join(["M-20261111-00001", "11.11.2026", "Testi Henkilö", extra[PERSONAL_ID], "Testikatu 3",
                      "00100 HELSINKI", extra[PHONE], extra[EMAIL], extra[ACCOUNT], "sähkö", "", "", ""])]
    (landing / "mail" / "mail_20261111.csv").write_bytes(b"\xef\xbb\xbf" + "\n".join(text).encode("utf-8"))

    # email: a mailbox export without its From_ lines (not an mbox: quarantined whole)
    g = take("email_20261110.mbox")
    message = (f"From: Testi Henkilö <{g[EMAIL]}>\nTo: asiakaspalvelu@energia.example\n"
               f"Date: Tue, 10 Nov 2026 12:00:00 +0200\nMessage-ID: <plant.1@example.fi>\n"
               f"Content-Type: text/plain; charset=\"utf-8\"\n\nHei,\n\nNimi: Testi Henkilö\n"
               f"Henkilötunnus: {g[PERSONAL_ID]}\nPuhelin: {g[PHONE]}\nTilinumero: {g[ACCOUNT]}\n\nTerveisin\n")
    (landing / "email" / "email_20261110.mbox").write_bytes(message.encode("utf-8"))

    # in_person: an identity code typed into the header row (a value where a column name belongs)
    h = take("in_person_20261110.xlsx")
    book = Workbook()
    sheet = book.active
    sheet.title = "Asioinnit"
    sheet.append(IN_PERSON_HEADER + [h[PERSONAL_ID]])
    sheet.append(["A-1", datetime.datetime(2026, 11, 10), "Testi", "Henkilö", h[PERSONAL_ID], "Testikatu 1",
                  "00100", "Helsinki", h[PHONE], h[EMAIL], h[ACCOUNT], "Sähkö", "", "Ei", "Kyllä", "x"])
    book.save(landing / "in_person" / "in_person_20261110.xlsx")
    for name in used:  # each export complete: its `.ready` marker (the landing protocol)
        (landing / name.split("_20")[0] / f"{name}.ready").write_bytes(b"")
    return used


# --- running the job as a user does -----------------------------------------------------------

def dagster_home(tmp_path: Path) -> Path:
    """A fresh DAGSTER_HOME with the project's dagster.yaml, every storage path moved into it.

    The project's file names paths relative to the directory the command runs from
    (the project root): left so, the test's runs would write into the project's data/.
    """
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = (PROJECT / "dagster.yaml").read_text(encoding="utf-8")
    relative = re.findall(r"^\s*base_dir:\s*(\S+)\s*$", config, flags=re.MULTILINE)
    assert relative and all(not Path(p).is_absolute() for p in relative), "dagster.yaml changed its storage paths"
    config = re.sub(r"^(\s*base_dir:\s*)data/dagster", lambda m: m.group(1) + str(home), config, flags=re.MULTILINE)
    assert str(PROJECT) not in config and "data/dagster" not in config
    (home / "dagster.yaml").write_text(config, encoding="utf-8")
    return home


def run_job(tmp_path: Path, home: Path, landing: Path, name: str) -> subprocess.CompletedProcess:
    """`dagster job execute -m pipeline.orchestration.definitions -j register_load`; its output kept
    as files to scan."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "REGISTER_LANDING_DIR": str(landing),
           "REGISTER_DATABASE_URL": f"sqlite:///{tmp_path / 'register.db'}",
           "REGISTER_EXTRACT_DIR": str(tmp_path / "extract")}
    done = subprocess.run([str(DAGSTER), "job", "execute", "-m", "pipeline.orchestration.definitions",
                           "-j", "register_load"],
                          cwd=PROJECT, env=env, capture_output=True, timeout=300)
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / f"{name}.stdout").write_bytes(done.stdout)
    (logs / f"{name}.stderr").write_bytes(done.stderr)
    return done


def leaks(tmp_path: Path, needles: Needles, landing_root: Path) -> tuple[list[Hit], list[Path]]:
    """Hits in every file under tmp_path but the input, the register and the marketing extract."""
    register = [tmp_path / f"register.db{suffix}" for suffix in ("", "-wal", "-shm", "-journal")]
    return scan_tree([tmp_path], needles, exclude=[landing_root, tmp_path / "extract", *register],
                     relative_to=tmp_path)


def _succeeded(done: subprocess.CompletedProcess) -> bool:
    return done.returncode == 0 and b"RUN_SUCCESS" in done.stderr


def _run_summary(done: subprocess.CompletedProcess) -> str:
    """The exit code and the events' names: something to print that holds no value."""
    output = done.stdout + done.stderr
    events = {e.decode() for e in re.findall(rb" - ([A-Z_]{6,}) - ", output)}
    errors = {e.decode() for e in re.findall(rb"(?m)^([A-Za-z_][\w.]*(?:Error|Exception|Failure))\b", output)}
    failed = {e.decode() for e in re.findall(rb" - (\w+) - STEP_FAILURE - ", output)}
    return (f"exit {done.returncode}; events {sorted(events)}; failed steps {sorted(failed)}; "
            f"exception types {sorted(errors)}")


def _instance_runs(home: Path, monkeypatch) -> list[dg.DagsterRun]:
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert Path(instance.root_directory).resolve() == home.resolve()
        runs = list(instance.get_runs())
        # The run's own materialisation (no partition), not the per-export-day ones a whole load adds.
        records = instance.fetch_materializations(dg.AssetKey("register"), limit=100).records
        event = next(r.asset_materialization for r in records if r.asset_materialization.partition is None)
        metadata = {k: v.value for k, v in event.metadata.items()}
    assert metadata.get("records_read", 0) > 0
    assert metadata["records_read"] == metadata["records_accepted"] + metadata["records_quarantined"]
    return runs


def _written_text(landing: Path, file_name: str) -> str:
    """A broken file's text as the needle reader sees it (cell text for a workbook)."""
    path = next(landing.glob(f"*/{file_name}"))
    if path.suffix == ".xlsx":
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Asioinnit").to_python()
        return "\n".join(str(cell) for row in rows for cell in row)
    return path.read_bytes().decode("cp1252" if path.parent.name == "phone" else "utf-8-sig")


def _register_files(register: Path) -> dict[str, tuple[str, int, int, int]]:
    """file name -> (status, read, accepted, quarantined) from the register's intake_file."""
    with sqlite3.connect(register) as connection:
        return {name: (status, read, accepted, quarantined) for name, status, read, accepted, quarantined in
                connection.execute("SELECT file_name, status, records_read, records_accepted, records_quarantined "
                                   "FROM intake_file")}


def _quarantine_reasons(register: Path, file_name: str) -> list[str]:
    with sqlite3.connect(register) as connection:
        return sorted(reason for (reason,) in connection.execute(
            "SELECT q.reasons FROM quarantine q JOIN intake_file f USING (intake_file_id) WHERE f.file_name = ?",
            (file_name,)))


@pytest.mark.slow
def test_a_whole_load_leaves_no_personal_value_outside_the_register(tmp_path, monkeypatch):
    began = time.perf_counter()
    synth = tmp_path / "synth"
    summary = generate(synth, people=300, days=3, seed=11)
    landing = summary.landing
    assert {f.channel for f in summary.files} == {"web", "phone", "mail", "email", "in_person"}
    assert {f.kind for f in summary.files} >= {"daily", "unreadable"}, "the generator wrote no bad input"
    with gzip.open(synth / GROUND_TRUTH_FILE, "rt", encoding="utf-8") as handle:
        kinds = {line.split(",")[4] for line in handle}
    assert {"malformed", "missing_id"} <= kinds, "the generator wrote no malformed records"
    phone_header = next((landing / "phone").glob("phone_*.csv")).read_bytes().split(b"\r\n", 1)[0]
    assert phone_header.rstrip(b"\n").endswith(b";Nauhoite"), "the phone export lacks its recording column"

    needles, rows = needles_from_landing(landing, synth / GROUND_TRUTH_FILE)
    counts = needles.counts()
    assert all(counts[kind] >= n for kind, n in MINIMUM_NEEDLES.items()), f"too few needles: {counts}"
    assert rows.keys() == {"web", "phone", "mail", "email", "in_person"} and min(rows.values()) >= 40, rows

    # The first load: the generated landing zone.
    home = dagster_home(tmp_path)
    first = run_job(tmp_path, home, landing, "first")
    hits, scanned = leaks(tmp_path, needles, synth)
    assert not hits, "personal values outside the register after the first load:\n" + "\n".join(map(str, hits))
    ok = _succeeded(first)  # a plain name: pytest must not print the process and its output
    assert ok, _run_summary(first)
    runs = _instance_runs(home, monkeypatch)
    assert [(r.job_name, r.status) for r in runs] == [("register_load", dg.DagsterRunStatus.SUCCESS)]
    # The scan looked where the instance keeps everything: event log, run index, compute logs.
    names = {str(p.relative_to(home)) for p in scanned if home in p.parents}
    assert {"storage/history/runs.db", "storage/history/runs/index.db",
            f"storage/history/runs/{runs[0].run_id}.db"} <= names, sorted(names)
    assert any(n.startswith(f"compute_logs/{runs[0].run_id}/") for n in names), sorted(names)
    # The scan is not hollow: the same needles are found where they belong.
    found_in_register = {hit.kind for path in tmp_path.glob("register.db*") for hit in scan_file(path, needles)}
    assert found_in_register == {PERSONAL_ID, ACCOUNT, EMAIL, PHONE, NAME, STREET}, found_in_register
    assert RECORDING not in found_in_register, "a call-recording reference reached the register"

    # The second load: one broken file per channel.
    planted_values = add_broken_files(landing)
    needles, _ = needles_from_landing(landing, synth / GROUND_TRUTH_FILE)
    checked = 0
    for file_name, people in planted_values.items():
        written = _written_text(landing, file_name)
        for person in people:
            for kind, value in person.items():
                if value in written:  # a line cut short lost its last values
                    checked += 1
                    found = bool(scan_bytes(value.encode("utf-8"), needles).get(kind))
                    assert found, f"the needle reader missed a planted {kind} in {file_name}"
    assert checked >= 45, checked
    second = run_job(tmp_path, home, landing, "second")
    hits, scanned_second = leaks(tmp_path, needles, synth)
    assert not hits, "personal values outside the register after the broken files:\n" + "\n".join(map(str, hits))
    ok = _succeeded(second)  # a plain name: pytest must not print the process and its output
    assert ok, _run_summary(second)
    runs = _instance_runs(home, monkeypatch)
    assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    warnings = second.stderr.count(b"whole file quarantined")
    assert warnings == 5, warnings  # two phone files, one mail file, the e-mail one, the workbook

    # The broken files took the paths meant for them, and every file's counts add up.
    register = tmp_path / "register.db"
    files = _register_files(register)
    assert files["web_20261110.jsonl"] == ("loaded", 4, 1, 3)
    assert _quarantine_reasons(register, "web_20261110.jsonl") == ["malformed_record"] * 3
    assert files["phone_20261110.csv"][0] == "quarantined"
    assert _quarantine_reasons(register, "phone_20261110.csv") == ["file_missing_column"]
    assert files["phone_20261111.csv"] == ("loaded", 3, 1, 2)
    assert _quarantine_reasons(register, "phone_20261112.csv") == ["file_unknown_column"]
    assert files["mail_20261110.csv"][0] == "loaded" and files["mail_20261110.csv"][3] >= 1
    assert _quarantine_reasons(register, "mail_20261111.csv") == ["file_unknown_column"]
    assert _quarantine_reasons(register, "email_20261110.mbox") == ["file_unreadable"]
    assert _quarantine_reasons(register, "in_person_20261110.xlsx") == ["file_unknown_column"]
    assert all(read == accepted + quarantined for _, read, accepted, quarantined in files.values())
    in_register = [hit for path in tmp_path.glob("register.db*") for hit in scan_file(path, needles)]
    assert RECORDING not in {hit.kind for hit in in_register}, \
        "a call-recording reference reached the register"

    elapsed = time.perf_counter() - began
    print(f"\nneedles per kind: {needles.counts()}; files scanned: {len(scanned)} then {len(scanned_second)}; "
          f"{elapsed:.1f} s")


# --- the scanner itself -----------------------------------------------------------------------

def test_the_scanner_finds_a_planted_needle_wherever_it_is(tmp_path):
    person = planted(77)
    needles = Needles()
    for kind, value in person.items():
        needles.add(kind, value)
    code, account, phone_number = person[PERSONAL_ID], person[ACCOUNT], person[PHONE]

    # As typed, in canonical form, in another case, inside SQLite, gzip and zip, and inside JSON.
    (tmp_path / "plain.log").write_text(f"... {code.lower()} ...", encoding="utf-8")
    (tmp_path / "iban.txt").write_text(f"x{iban.compact(account)}x", encoding="utf-8")
    (tmp_path / "e164.json").write_text(json.dumps({"p": "+358505550077"}), encoding="utf-8")
    (tmp_path / "national.txt").write_text("0505550077", encoding="utf-8")
    (tmp_path / "recording.out").write_text(person[RECORDING].lower(), encoding="utf-8")
    (tmp_path / "email.gz").write_bytes(gzip.compress(person[EMAIL].upper().encode()))
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        grouped = " ".join(account[i:i + 4] for i in range(0, len(account), 4))
        archive.writestr("inner.txt", f"account {grouped}")
    with sqlite3.connect(tmp_path / "events.db") as connection:
        connection.execute("CREATE TABLE event_logs (body TEXT)")
        connection.execute("INSERT INTO event_logs VALUES (?)", (json.dumps({"message": f"bad {code}"}),))
    (tmp_path / "clean.txt").write_text("counts only: 12 accepted, 3 quarantined; " + "1*********X", encoding="utf-8")

    hits, scanned = scan_tree([tmp_path], needles, relative_to=tmp_path)
    found = {(hit.file, hit.kind) for hit in hits}
    assert found == {("plain.log", PERSONAL_ID), ("iban.txt", ACCOUNT), ("e164.json", PHONE),
                     ("national.txt", PHONE), ("recording.out", RECORDING), ("email.gz (gunzipped)", EMAIL),
                     ("bundle.zip:inner.txt", ACCOUNT), ("events.db", PERSONAL_ID)}, sorted(found)
    assert len(scanned) == 9
    # A hit tells where and what kind, never the value.
    assert not any(value.lower() in str(hit).lower() for hit in hits for value in person.values())
    assert not any(phone_number.replace(" ", "") in str(hit) for hit in hits)


def test_the_scanner_finds_names_and_streets_as_whole_words_in_any_form(tmp_path):
    needles = Needles()
    needles.add(NAME, "Testinen Äijö-Kalle Ella")          # a full name, surname first, as the phone typed it
    needles.add(NAME, "Mäkelä")
    needles.add(STREET, "koekatu 7 a 2, 33100 TAMPERE")      # the e-mail's one-line address
    (tmp_path / "metadata.json").write_text(json.dumps({"example": "M\u00e4kel\u00e4"}), encoding="utf-8")
    (tmp_path / "escaped.json").write_text(json.dumps({"who": "ÄIJÖ-KALLE"}), encoding="utf-8")  # ensure_ascii
    (tmp_path / "log.txt").write_text("loaded Testinen, Koekatu 7 A 2 (normalised)", encoding="utf-8")
    (tmp_path / "words.txt").write_text("cancellation ellas testinenx koekatu 7 a 23 max_ella", encoding="utf-8")
    hits, _ = scan_tree([tmp_path], needles, relative_to=tmp_path)
    found = {(hit.file, hit.kind): hit.count for hit in hits}
    assert found == {("metadata.json", NAME): 1, ("escaped.json", NAME): 1, ("log.txt", NAME): 1,
                     ("log.txt", STREET): 1}, sorted(found)
    assert not any(name in str(hit).lower() for hit in hits for name in ("testinen", "äijö", "mäkelä", "koekatu"))


def test_needles_shorter_than_six_characters_are_dropped():
    needles = Needles()
    needles.add(PHONE, "040 1")    # a number cut short
    needles.add(EMAIL, "a@b.f")
    assert needles.counts() == {kind: 0 for kind in KINDS}


def test_files_under_leaves_out_the_excluded(tmp_path):
    (tmp_path / "keep").mkdir()
    (tmp_path / "skip").mkdir()
    (tmp_path / "keep" / "a.log").write_text("a")
    (tmp_path / "skip" / "b.log").write_text("b")
    (tmp_path / "register.db").write_text("c")
    files = files_under([tmp_path], exclude=[tmp_path / "skip", tmp_path / "register.db"])
    assert [p.name for p in files] == ["a.log"]
