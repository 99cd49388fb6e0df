"""The synthetic landing-zone generator (generator/synth): formats, truth, noise, determinism.

Every file is read back with the format's plain tools (json, csv in the right
encoding, mailbox, openpyxl) and compared with the ground truth; the channel
readers of pipeline/channels read a generated zone too.
"""

from __future__ import annotations

import csv
import datetime
import filecmp
import hashlib
import io
import json
import mailbox
import os
import subprocess
import sys
import zipfile
from email.header import decode_header, make_header
from email.utils import parseaddr
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.ean import calc_check_digit as gs1_check_digit
from stdnum.fi import hetu

from pipeline.codes import Reason
from synth import GROUND_TRUTH_FILE, TRUTH_COLUMNS, generate
from synth import formats, identifiers, population
from synth.cli import main
from synth.plan import CHANNEL_MIX, CHANNELS

MISTAKES = {"wrong_digit", "swapped_digits", "letter_o"}
COSMETIC = {"lower_case", "inner_spaces", "surrounding_spaces"}
PERSONAL_ID_LABELS = ("Henkilötunnus", "Personbeteckning")


def read_truth(out: Path) -> pd.DataFrame:
    truth = pd.read_csv(out / GROUND_TRUTH_FILE, dtype=str, keep_default_na=False)
    truth["record_number"] = truth["record_number"].astype(int)
    return truth


@pytest.fixture(scope="module")
def zone(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, records=3000, days=5, seed=11)
    return out


@pytest.fixture(scope="module")
def truth(zone) -> pd.DataFrame:
    return read_truth(zone)


@pytest.fixture(scope="module")
def noisy_records(tmp_path_factory) -> pd.DataFrame:
    """A zone's accepted records as the intake reads them, with each one's noise tokens."""
    from synth.train import generated_records

    out = tmp_path_factory.mktemp("noisy")
    records = generated_records(out, records=12000, days=5, seed=4)
    truth = pd.read_csv(out / GROUND_TRUTH_FILE, dtype=str, keep_default_na=False,
                        usecols=["channel", "source_record_id", "noise"])
    truth["source_record_id"] = truth["source_record_id"].str.strip().str.strip("<>")
    return records.merge(truth.drop_duplicates(["channel", "source_record_id"]),
                         on=["channel", "source_record_id"], how="left")


# --- reading each format with plain tools ------------------------------------------------------

def plain_records(path: Path, channel: str) -> dict[int, dict]:
    """Records by the readers' record number: {'id', 'personal_id', 'ok'} per record."""
    data = path.read_bytes()
    out: dict[int, dict] = {}
    if channel == "web":
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                out[number] = {"ok": False}
                continue
            if not isinstance(obj, dict):
                out[number] = {"ok": False}
                continue
            out[number] = {"ok": True, "id": obj.get("id") or "",
                           "personal_id": (obj.get("person") or {}).get("personal_id") or ""}
    elif channel in ("phone", "mail"):
        if channel == "mail":
            assert data.startswith(b"\xef\xbb\xbf")
            text, delimiter, header, width = data.decode("utf-8-sig"), ",", formats.MAIL_HEADER, 12
        else:
            text, delimiter, header, width = data.decode("cp1252"), ";", formats.PHONE_HEADER, 14
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        assert tuple(rows[0]) == header
        for number, row in enumerate(rows[1:], start=2):
            out[number] = ({"ok": True, "id": row[0], "personal_id": row[3]} if len(row) == width
                           else {"ok": False})
    elif channel == "email":
        box = mailbox.mbox(str(path), create=False)
        try:
            for number, message in enumerate(box, start=1):
                out[number] = {"ok": True, "id": message.get("Message-ID", ""),
                               "personal_id": _labelled(_plain_text(message), PERSONAL_ID_LABELS),
                               "text": _plain_text(message), "from": parseaddr(message["From"])[1],
                               "display": str(make_header(decode_header(message["From"])))}
        finally:
            box.close()
    else:
        workbook = openpyxl.load_workbook(path, read_only=True)
        sheet = workbook["Asioinnit"]
        rows = list(sheet.iter_rows(values_only=True))
        workbook.close()
        assert tuple(rows[0]) == formats.IN_PERSON_HEADER
        for number, row in enumerate(rows[1:], start=2):
            assert isinstance(row[1], datetime.datetime)
            out[number] = {"ok": True, "id": row[0] or "", "personal_id": row[4] or "", "row": row}
    return out


def _plain_text(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset())
    raise AssertionError("no text/plain part")


def _labelled(text: str, labels: tuple[str, ...]) -> str:
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and label.strip().lower() in {l.lower() for l in labels}:
            return value
    return ""


# --- tests -----------------------------------------------------------------------------------------

def test_same_arguments_give_the_same_bytes_and_another_seed_does_not(tmp_path):
    kwargs = dict(people=150, days=3, seed=5)
    first, second, other = (generate(tmp_path / name, **kwargs if name != "c" else dict(kwargs, seed=6))
                            for name in ("a", "b", "c"))
    # And in another process with another string-hash seed, through the command line.
    subprocess.run([sys.executable, "-m", "synth.cli", "--out", str(tmp_path / "d"), "--people", "150",
                    "--days", "3", "--seed", "5"], check=True, capture_output=True,
                   env={**os.environ, "PYTHONHASHSEED": "12345"})

    def digest(out: Path) -> dict[str, str]:
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}

    assert digest(first.out_dir) == digest(second.out_dir) == digest(tmp_path / "d")
    assert len(digest(first.out_dir)) >= 5 * 3 + 1
    assert digest(first.out_dir) != digest(other.out_dir)
    assert first.registrations == second.registrations and first.people == 150


def test_file_layout_and_names(zone, truth):
    for channel in CHANNELS:
        listed = sorted(p.name for p in (zone / "landing" / channel).iterdir())
        # Every export is followed by its `.ready` marker (the landing protocol, docs/intake_formats.md).
        names = [n for n in listed if not n.endswith(".ready")]
        assert sorted(n.removesuffix(".ready") for n in listed if n.endswith(".ready")) == names
        extension = formats.EXTENSIONS[channel]
        for day in range(5):
            assert f"{channel}_{(datetime.date(2026, 11, 1) + datetime.timedelta(days=day)):%Y%m%d}.{extension}" in names
        assert all(n.startswith(channel + "_2026110") and n.endswith("." + extension) for n in names)
    assert set(truth.columns) == set(TRUTH_COLUMNS)
    assert set(truth["file_name"]) == {p.name for p in (zone / "landing").rglob("*")
                                       if p.is_file() and not p.name.endswith(".ready")}


def test_channel_mix_and_record_count(tmp_path):
    summary = generate(tmp_path, records=6000, days=7, seed=3, bad_input=False)
    assert summary.records == 6000
    truth = read_truth(tmp_path)
    registrations = truth[truth["kind"] == "registration"]
    assert len(registrations) == 6000
    shares = registrations["channel"].value_counts(normalize=True)
    for channel, expected in zip(CHANNELS, CHANNEL_MIX):
        assert abs(shares[channel] - expected) < 0.025, channel
    per_person = registrations.groupby("person_key").size()
    assert per_person.min() >= 1 and per_person.max() >= 3
    assert 0.5 < (per_person == 1).mean() < 0.8  # most people send one record, some several


def test_every_file_reads_with_plain_tools_and_truth_covers_every_record(zone, truth):
    for (channel, name), rows in truth.groupby(["channel", "file_name"]):
        path = zone / "landing" / channel / name
        kinds = set(rows["kind"])
        if kinds & {"unreadable_file", "empty_file", "no_records"}:
            assert len(rows) == 1 and rows["record_number"].iloc[0] == 0
            if kinds == {"unreadable_file"}:
                with pytest.raises(zipfile.BadZipFile):
                    openpyxl.load_workbook(path, read_only=True)
            elif kinds == {"empty_file"}:
                assert path.stat().st_size == 0
            else:
                assert plain_records(path, channel) == {}
            continue
        records = plain_records(path, channel)
        assert sorted(records) == sorted(rows["record_number"]), name
        for row in rows.itertuples():
            record = records[row.record_number]
            assert record["ok"] == (row.kind != "malformed"), (name, row.record_number)
            if record["ok"]:
                assert record["id"] == row.source_record_id
            if row.kind == "missing_id":
                assert record["id"] == ""


def test_web_lines_are_what_json_writes(zone, truth):
    lines = 0
    for path in sorted((zone / "landing" / "web").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            assert json.dumps(value, ensure_ascii=False) == line
            lines += 1
    readable = truth["channel"].eq("web") & truth["record_number"].gt(0) & truth["kind"].ne("malformed")
    assert lines >= readable.sum() > 0  # every readable line checked (an array-wrapped line parses too)
    assert any(v.get("contact", {}).get("address") is None and "address" in v.get("contact", {})
               for p in (zone / "landing" / "web").glob("*.jsonl")
               for v in map(json.loads, filter(_is_json_object, p.read_text(encoding="utf-8").splitlines())))


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def test_identity_codes_valid_unless_the_truth_marks_a_mistake(zone, truth):
    checked = {"exact": 0, "cosmetic": 0, "mistake": 0, "missing": 0}
    for (channel, name), rows in truth.groupby(["channel", "file_name"]):
        if rows["record_number"].iloc[0] == 0:
            continue
        records = plain_records(zone / "landing" / channel / name, channel)
        for row in rows[rows["kind"].isin(["registration", "resend", "file_copy", "missing_id"])].itertuples():
            written = records[row.record_number]["personal_id"]
            done = set(row.personal_id_noise.split())
            temporary = int(row.personal_id_true[7:10]) >= 900
            assert hetu.is_valid(row.personal_id_true, allow_temporary=temporary)
            if "missing" in done:
                assert written == ""
                checked["missing"] += 1
            elif done & MISTAKES:
                assert not hetu.is_valid("".join(written.split()), allow_temporary=True)
                checked["mistake"] += 1
            elif done:
                assert done <= COSMETIC
                assert "".join(written.split()).upper() == row.personal_id_true
                checked["cosmetic"] += 1
            else:
                assert written.strip() == row.personal_id_true if channel == "email" else written == row.personal_id_true
                checked["exact"] += 1
    assert all(checked.values()), checked
    assert checked["mistake"] < 0.1 * sum(checked.values())


def test_phone_and_email_records_often_lack_the_code(truth):
    records = truth[truth["kind"] == "registration"]
    for channel in ("phone", "email"):
        missing = records[records["channel"] == channel]["personal_id_noise"].str.contains("missing")
        assert missing.mean() >= 1 / 3, channel
    web = records[records["channel"] == "web"]["personal_id_noise"].str.contains("missing")
    assert web.mean() < 0.2


def test_population_has_households_twins_juniors_and_shared_details():
    pop = population.build(np.random.default_rng(1), 20_000, datetime.date(2026, 11, 1))
    frame = pd.DataFrame({"household": pop.household, "first": pop.first_names, "last": pop.last_name,
                          "birth": pop.birth_date, "code": pop.personal_id, "email": pop.email,
                          "landline": pop.landline, "bban": pop.bban, "role": pop.role})
    assert frame["code"].is_unique
    assert all(hetu.is_valid(c, allow_temporary=True) for c in frame["code"])
    assert {c[6] for c in frame["code"]} >= set("-AYB")  # classic and 2023 century signs
    assert 0 < sum(int(c[7:10]) >= 900 for c in frame["code"]) < 0.01 * len(frame)
    multi = frame.groupby("household").filter(lambda g: len(g) > 1)
    assert multi["household"].nunique() > 0.3 * frame["household"].nunique()
    same_surname = multi.groupby("household")["last"].agg(lambda s: s.nunique() == 1).mean()
    assert same_surname > 0.5
    twins = multi[multi.duplicated(["household", "birth"], keep=False) & (multi["role"] == "child")]
    assert len(twins) > 0 and twins["code"].is_unique
    juniors = multi[multi.duplicated(["household", "first", "last"], keep=False)]
    assert len(juniors) > 0 and juniors["code"].is_unique
    assert multi[multi["email"] != ""].duplicated(["household", "email"]).any()
    assert multi[multi["landline"] != ""].duplicated(["household", "landline"]).any()
    assert multi[multi["bban"] > 0].duplicated(["household", "bban"]).any()
    # every address is one household's (new addresses come from moves)
    assert len(set(zip(pop.addresses.street_address, pop.addresses.postal_code))) == len(pop.addresses)


def test_households_and_life_events_reach_the_records(tmp_path):
    generate(tmp_path, records=8000, days=7, seed=2, bad_input=False)
    truth = read_truth(tmp_path)
    registrations = truth[truth["kind"] == "registration"]
    people_per_household = registrations.groupby("household_key")["person_key"].nunique()
    assert (people_per_household >= 2).sum() > 100
    events = set(" ".join(registrations["events"]).split())
    assert events == {"household_moved", "moved", "surname_changed", "marketing_prohibited",
                      "marketing_prohibition_withdrawn"}
    # A changed record is never a person's first: the old state came before.
    for person, rows in registrations.groupby("person_key"):
        if rows["events"].str.contains("surname_changed").any():
            assert (rows["events"] == "").any() or rows["events"].str.contains("household_moved").any()


def test_resends_and_file_copies(zone, truth):
    resends = truth[truth["kind"] == "resend"]
    assert len(resends) > 0
    first = truth[truth["kind"] == "registration"].set_index(["channel", "source_record_id"])["file_name"]
    for row in resends.itertuples():
        assert first.loc[(row.channel, row.source_record_id)] < row.file_name  # a later day's file
    copies = truth[truth["kind"] == "file_copy"]["file_name"].unique()
    assert len(copies) > 0
    for name in copies:
        channel = name.rsplit("_", 2)[0]
        directory = zone / "landing" / channel
        assert any(filecmp.cmp(directory / name, other, shallow=False)
                   for other in directory.iterdir() if other.name not in (name, f"{name}.ready"))


def test_bad_input_is_present_only_when_asked(zone, truth, tmp_path):
    kinds = set(truth["kind"])
    assert kinds >= {"malformed", "missing_id", "not_registration", "unreadable_file", "empty_file",
                     "duplicate_in_file", "conflicting_duplicate"}
    assert (truth.loc[truth["kind"] == "not_registration", "person_key"] == "").all()
    assert (truth.loc[truth["kind"] == "registration", "person_key"] != "").all()
    assert set(truth["expected_reason"]) - {""} <= {r.value for r in Reason}
    generate(tmp_path, records=1500, days=3, seed=11, bad_input=False)
    clean = read_truth(tmp_path)
    assert not set(clean["kind"]) & {"malformed", "missing_id", "not_registration", "unreadable_file",
                                     "empty_file", "duplicate_in_file", "conflicting_duplicate"}


def test_email_messages_have_labels_greetings_and_mixed_encodings(zone, truth):
    charsets, encodings, html = set(), set(), 0
    for path in sorted((zone / "landing" / "email").glob("*.mbox")):
        box = mailbox.mbox(str(path), create=False)
        for message in box:
            html += message.get_content_type() == "multipart/alternative"
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    charsets.add(part.get_content_charset())
                    encodings.add(part.get("Content-Transfer-Encoding"))
        box.close()
    assert charsets == {"utf-8", "iso-8859-1"} and encodings == {"8bit", "quoted-printable"} and html > 0
    questions = truth[truth["kind"] == "not_registration"]
    for row in questions.itertuples():
        text = plain_records(zone / "landing" / "email" / row.file_name, "email")[row.record_number]["text"]
        labels = [l for d in formats.EMAIL_LABELS.values() for l in d.values()]
        assert not any(line.split(":")[0].strip() in labels for line in text.splitlines())
    registrations = truth[(truth["kind"] == "registration") & (truth["channel"] == "email")].head(40)
    for row in registrations.itertuples():
        text = plain_records(zone / "landing" / "email" / row.file_name, "email")[row.record_number]["text"]
        assert _labelled(text, ("Nimi", "Namn")) or "first_names" in row.noise


def test_xlsx_cells_and_the_fast_row_writer_match_openpyxl():
    rows = [["A-1", datetime.datetime(2026, 11, 2, 10, 5, 17), " Aino ", "Mäki & <Sons>", "120385-1232", None,
             100, "Hamina", 401234567, "a@example.fi", None, "Sähkö", "643007574000125688", True, "Kyllä"],
            [None, datetime.datetime(2026, 11, 3, 9, 0), "B", None, None, "Katu 1", "00100", None, None, None,
             "FI21", "TV", None, False, None]]
    ours = formats.xlsx_file(rows)
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Asioinnit")
    sheet.append(list(formats.IN_PERSON_HEADER))
    for row in rows:
        sheet.append(row)
    theirs = io.BytesIO()
    workbook.save(theirs)
    part = "xl/worksheets/sheet1.xml"
    assert zipfile.ZipFile(io.BytesIO(ours)).read(part) == zipfile.ZipFile(theirs).read(part)
    read = list(openpyxl.load_workbook(io.BytesIO(ours), read_only=True)["Asioinnit"].iter_rows(values_only=True))
    assert read[1][:4] == ("A-1", datetime.datetime(2026, 11, 2, 10, 5, 17), " Aino ", "Mäki & <Sons>")
    assert ours == formats.xlsx_file(rows)


def test_in_person_postal_codes_as_numbers_and_yes_no_or_booleans(zone):
    rows = [r for p in sorted((zone / "landing" / "in_person").glob("in_person_2026110?.xlsx"))
            for r in plain_records(p, "in_person").values()]
    postal = [r["row"][6] for r in rows if r["row"][6] is not None]
    assert any(isinstance(v, int) for v in postal) and any(isinstance(v, str) for v in postal)
    assert any(isinstance(v, int) and v < 10000 for v in postal)  # leading zeros lost
    answers = {type(r["row"][14]) for r in rows}
    assert answers == {str, bool}
    assert {r["row"][14] for r in rows if isinstance(r["row"][14], str)} == {"Kyllä", "Ei"}


def test_identifiers_are_valid_by_independent_checks():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 8, 500)
    bodies = rng.integers(11, 99, 500) * 10 ** (lengths - 2) + rng.integers(0, 10, 500)
    bban = identifiers.bban_array(rng.integers(100000, 999999, 500), bodies, lengths)
    for number, iban in zip(bban.tolist(), identifiers.iban_array(bban)):
        assert luhn.is_valid(f"{number:014d}")
        assert stdnum_iban.is_valid(iban)
        assert identifiers.iban_from_bban(f"{number:014d}") == iban
        # Back from the old domestic form by the Finnish rule: zeros after the 6th digit,
        # or after the 7th in savings and co-operative banks (groups 4 and 5).
        bank, _, rest = identifiers.domestic_account(f"{number:014d}").partition("-")
        padded = bank + rest[0] + rest[1:].rjust(7, "0") if bank[0] in "45" else bank + rest.rjust(8, "0")
        assert padded == f"{number:014d}"
    seventeen = 64300700000000000 + rng.integers(0, 10 ** 11, 200)
    for number, gsrn in zip(seventeen.tolist(), identifiers.gsrn_array(seventeen)):
        assert gsrn[:17] == str(number) and gsrn[17] == gs1_check_digit(str(number))
    days, months, years = np.array([1, 29, 31]), np.array([1, 2, 12]), np.array([1999, 2000, 2024])
    codes = identifiers.hetu_array(days, months, years, np.array(["-", "A", "B"]), np.array([2, 899, 123]))
    assert all(hetu.is_valid(c) for c in codes)
    assert codes[1] == identifiers.make_hetu(datetime.date(2000, 2, 29), 899)


def test_no_noise_means_clean_codes(tmp_path):
    generate(tmp_path, records=800, days=2, seed=4, noise=0.0, bad_input=False)
    truth = read_truth(tmp_path)
    records = truth[truth["record_number"] > 0]
    assert (records["personal_id_noise"] == "").all()
    assert not records["noise"].str.contains("typo|wrong_digit|missing|swapped").any()


def test_cli_prints_counts_not_values(tmp_path, capsys):
    out = tmp_path / "zone"
    assert main(["--out", str(out), "--records", "400", "--days", "2", "--seed", "9"]) == 0
    printed = capsys.readouterr().out
    assert "web" in printed and "ground truth" in printed
    truth = read_truth(out)
    values = set(truth["personal_id_true"]) - {""}
    assert values and not any(v in printed for v in values)
    for path in (out / "landing" / "phone").glob("*.csv"):
        for row in list(csv.reader(io.StringIO(path.read_bytes().decode("cp1252")), delimiter=";"))[1:]:
            assert not any(len(v) > 4 and v in printed for v in row[2:13])
    assert main(["--out", str(out), "--records", "400"]) == 2  # refuses to mix two zones
    assert main(["--out", str(out), "--records", "400", "--force"]) == 0
    with pytest.raises(SystemExit):
        main(["--out", str(out), "--records", "10", "--people", "10"])


def test_channel_readers_read_a_generated_zone(zone, truth):
    from pipeline.channels import READERS, UnreadableFile

    for (channel, name), rows in truth.groupby(["channel", "file_name"]):
        path = zone / "landing" / channel / name
        if rows["expected_reason"].iloc[0] in ("file_unreadable", "file_empty"):
            with pytest.raises(UnreadableFile) as raised:
                READERS[channel](path)
            assert raised.value.reason.value == rows["expected_reason"].iloc[0]
            continue
        result = READERS[channel](path)
        if rows["record_number"].iloc[0] == 0:
            assert result.count == 0
            continue
        records = result.records.set_index("record_number")
        errors = result.errors.set_index("record_number")
        assert result.count == len(rows)
        for row in rows.itertuples():
            if row.kind == "malformed":
                assert errors.loc[row.record_number, "reason"] == Reason.MALFORMED_RECORD.value
                continue
            record = records.loc[row.record_number]
            if row.kind == "not_registration":
                assert record["reject_reason"] == Reason.NOT_A_REGISTRATION.value
                continue
            read_id = record["source_record_id"]
            assert (pd.isna(read_id) or read_id.strip() == "") if row.source_record_id == "" \
                else read_id.strip("<>") == row.source_record_id.strip("<>")
            if row.personal_id_noise == "":
                assert record["personal_id"].strip().upper() == row.personal_id_true


def test_a_person_goes_by_one_call_name_in_every_channel(noisy_records):
    # Many Finns go by a given name other than their first; a record keyed by hand with one
    # name carries that one, the same in every channel. A later given name is sometimes
    # left out of all of them.
    records = noisy_records
    tags = records["noise"].fillna("").str.split()
    plain = ~records["noise"].fillna("").str.contains("first_names:(?!call_name|first_only)|name:", regex=True)
    call = records[tags.map(lambda t: "first_names:call_name" in t) & plain & records["first_names"].notna()]
    full = records[records["first_names"].fillna("").str.contains(" ") & plain
                   & ~tags.map(lambda t: "first_names:middle_dropped" in t)]
    assert len(call) > 50, f"only {len(call)} records carry a call name other than the first"
    checked = 0
    for person, rows in call.groupby("person_key"):
        names = set(rows["first_names"].str.casefold())
        one_name = len(names) == 1  # a bool, so a failure shows no name
        assert one_name, "one person, two call names"
        theirs = full[full["person_key"] == person]["first_names"].str.casefold().str.split()
        for given in theirs:
            later = next(iter(names)) in given[1:]
            assert later, "the call name is one of the later given names"
            checked += 1
    assert checked > 20
    dropped = records[tags.map(lambda t: "first_names:middle_dropped" in t)]
    assert len(dropped) > 5 and dropped["first_names"].str.count(" ").ge(1).all()


def test_an_email_address_at_the_wrong_provider_keeps_its_name(noisy_records):
    # A customer, or whoever keys the form, puts the e-mail name at the wrong provider: often
    # a namesake's address. Never in the e-mail channel, whose sender is the mailbox itself.
    records = noisy_records
    noise = records["noise"].fillna("")
    slipped = records[noise.str.contains("email:provider") & ~noise.str.contains("email:typo")
                      & records["email"].notna()]
    assert len(slipped) > 20, f"only {len(slipped)} e-mail addresses at the wrong provider"
    assert (slipped["channel"] != "email").all()
    own = records[~noise.str.contains("email:") & records["email"].notna()]
    own = own.assign(email=own["email"].str.lower()).groupby("person_key")["email"].first()
    checked = 0
    for person, written in zip(slipped["person_key"], slipped["email"].str.lower()):
        if person in own.index:
            user, _, provider = written.partition("@")
            own_user, _, own_provider = own[person].partition("@")
            same_name, other_provider = user == own_user, provider != own_provider  # bools: no value shown
            assert same_name and other_provider
            checked += 1
    assert checked > 10


def test_a_record_may_carry_another_household_members_mobile(noisy_records):
    # A parent's number on a child's contract: the number is another member's own mobile,
    # never the record's person's, and only where the household has another member.
    records = noisy_records
    noise = records["noise"].fillna("")
    lent = records[noise.str.contains("phone:other_member") & ~noise.str.contains("phone:wrong_digit")]
    assert len(lent) > 10, f"only {len(lent)} records with another member's mobile"
    own = records[~noise.str.contains("phone:") & records["phone"].notna()]
    owners = own.groupby("phone")["person_key"].agg(set)
    checked = 0
    for person, household, number in zip(lent["person_key"], lent["household_key"], lent["phone"]):
        if number in owners.index:
            holders = owners[number]
            anothers = person not in holders  # bools: no value shown
            same_home = set(own[own["phone"] == number]["household_key"]) == {household}
            assert anothers and same_home
            checked += 1
    assert checked > 5
