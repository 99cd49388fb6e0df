"""Issue 9, readers and values: damaged files and hostile values, one test per case.

Each test damages a file the project's own generator wrote (or writes the one
hostile value) and checks that only the damaged record is the quarantine's, that
the rest load, and that read = accepted + quarantined. Every test here failed on
the code before issue 9 (see the report); the end-to-end test at the bottom puts
all of them through `pipeline.intake` into SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.channels import READERS, UnreadableFile, delimited, in_person, mail, phone, web
from pipeline.codes import Flag, Reason
from pipeline.intake import LandedFile, build_batch, discover, file_checksum, read_landed
from pipeline.normalise.limits import FIELD_LIMITS, RAW_RECORD_LIMIT, RAW_VALUE_LIMIT
from pipeline.register.load import load_intake
from synth import formats
from synth.landing_zone import generate

TODAY = dt.date(2026, 12, 31)
NOW = dt.datetime(2026, 12, 31, 12, tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------- generated files

@pytest.fixture(scope="module")
def zone(tmp_path_factory) -> Path:
    """A clean generated landing zone (no bad input of its own): the files to damage."""
    out = tmp_path_factory.mktemp("zone")
    generate(out, records=1500, days=1, seed=9, bad_input=False)
    return out / "landing"


def biggest(zone: Path, channel: str) -> Path:
    return max((zone / channel).iterdir(), key=lambda p: p.stat().st_size)


def copy_to(tmp_path: Path, source: Path, data: bytes | None = None) -> Path:
    target = tmp_path / source.parent.name / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        shutil.copyfile(source, target)
    else:
        target.write_bytes(data)
    return target


def landed(path: Path) -> LandedFile:
    channel = path.name.rsplit("_", 1)[0]  # web_20261124.jsonl, in_person_20261124.xlsx
    return LandedFile(channel, path, file_checksum(path), path.stat().st_size)


def ids(result) -> list[str]:
    return result.records["source_record_id"].tolist()


def unquoted_line(lines: list[bytes], delimiter: bytes, field: int, start: int) -> int:
    """The first line from `start` on whose `field` (0-based) is not quoted."""
    for number in range(start, len(lines)):
        parts = lines[number].split(delimiter)
        if len(parts) > field + 1 and parts[field] and not parts[field].startswith(b'"'):
            return number
    raise AssertionError("no such line")


# --------------------------------------------------------------------- unclosed quotes

@pytest.mark.parametrize("channel, delimiter", [("mail", b","), ("phone", b";")])
def test_unclosed_quote_is_that_records_problem_alone(zone, tmp_path, channel, delimiter):
    source = biggest(zone, channel)
    original = READERS[channel](source)
    lines = source.read_bytes().split(b"\r\n")
    # The name column (mail: 3rd, phone: 3rd) of a line near the top loses its closing quote.
    broken = unquoted_line(lines, delimiter, 2, 3)
    parts = lines[broken].split(delimiter)
    parts[2] = b'"' + parts[2]
    lines[broken] = delimiter.join(parts)
    path = copy_to(tmp_path, source, b"\r\n".join(lines))

    result = READERS[channel](path)
    line_number = broken + 1
    assert result.errors["record_number"].tolist() == [line_number]
    assert result.errors["reason"].tolist() == [Reason.MALFORMED_RECORD.value]
    expected = original.records[original.records["record_number"] != line_number]
    assert ids(result) == expected["source_record_id"].tolist()
    assert result.records["record_number"].tolist() == expected["record_number"].tolist()
    assert result.count == original.count  # nothing swallowed, nothing lost


def test_unclosed_quote_that_a_later_quote_closes_does_not_merge_two_records(tmp_path):
    """The quote runs into the next row and is closed by that row's own quoted name."""
    rows = [[f"L-{i}", "24.11.2026", f'Testinen "Aino" {i}' if i % 2 else f"Testinen Aino {i}", "",
             "Kuja 1", "00100 Helsinki", "", "", "", "sähkö", "", ""] for i in range(1, 8)]
    text = formats.mail_file(rows).decode("utf-8-sig").split("\r\n")
    text[2] = text[2].replace("Testinen Aino 2", '"Testinen Aino 2')  # line 3 (L-2) never closes its quote
    path = tmp_path / "mail_20261124.csv"
    path.write_bytes(("\r\n".join(text)).encode("utf-8-sig"))
    result = mail.read(path)
    assert ids(result) == ["L-1", "L-3", "L-4", "L-5", "L-6", "L-7"]
    assert result.errors["record_number"].tolist() == [3]


def test_a_real_line_break_in_a_quoted_value_still_reads(tmp_path):
    rows = [["L-1", "24.11.2026", "Testinen Aino", "", "Kuusitie 5\nB 12", "00100 Helsinki", "", "", "", "", "", ""],
            'L-2,24.11.2026,"Testinen Bea,,Kuja 1,00100 Helsinki,,,,,,',
            ["L-3", "24.11.2026", "Testinen Cea", "", "Kuja\n2", "00100 Helsinki", "", "", "", "", "", "x"]]
    path = tmp_path / "mail_20261124.csv"
    path.write_bytes(formats.mail_file(rows))
    result = mail.read(path)
    assert ids(result) == ["L-1", "L-3"]
    assert result.records["street_address"].tolist() == ["Kuusitie 5\nB 12", "Kuja\n2"]
    assert result.records["record_number"].tolist() == [2, 5]
    assert result.errors["record_number"].tolist() == [4]


# --------------------------------------------------------------------- binary lines (web)

def test_a_line_of_binary_garbage_is_that_lines_problem_alone(zone, tmp_path):
    source = biggest(zone, "web")
    original = web.read(source)
    lines = source.read_bytes().split(b"\n")
    lines[10] = bytes(range(256)).replace(b"\n", b"")  # not UTF-8, a NUL and every control byte
    path = copy_to(tmp_path, source, b"\n".join(lines))
    result = web.read(path)
    assert result.errors["record_number"].tolist() == [11]
    assert result.errors["reason"].tolist() == [Reason.MALFORMED_RECORD.value]
    assert "\x00" not in result.errors["raw"].iloc[0]
    assert len(result.records) == original.count - 1
    assert 11 not in result.records["record_number"].tolist()


def test_a_web_file_with_no_utf8_line_is_a_file_encoding_error(tmp_path):
    path = tmp_path / "web_20261124.jsonl"
    path.write_bytes('{"id": "W-1", "person": {"last_name": "Äijälä"}}\n'.encode("cp1252") * 3)
    with pytest.raises(UnreadableFile) as caught:
        web.read(path)
    assert caught.value.reason is Reason.FILE_ENCODING
    assert path.name in caught.value.detail


# --------------------------------------------------------------------- re-encodings, line endings

def test_phone_csv_in_utf16_reads_like_the_original(zone, tmp_path):
    source = biggest(zone, "phone")
    original = phone.read(source)
    text = source.read_bytes().decode("cp1252")
    path = copy_to(tmp_path, source, text.encode("utf-16"))  # with its byte-order mark
    result = phone.read(path)
    pd.testing.assert_frame_equal(result.records, original.records)


def test_mail_csv_with_cr_only_line_endings_reads_like_the_original(zone, tmp_path):
    source = biggest(zone, "mail")
    original = mail.read(source)
    path = copy_to(tmp_path, source, source.read_bytes().replace(b"\r\n", b"\r"))
    result = mail.read(path)
    pd.testing.assert_frame_equal(result.records, original.records)


def test_utf16_that_does_not_decode_is_named_with_a_reason(tmp_path):
    path = tmp_path / "phone_20261124.csv"
    path.write_bytes(b"\xff\xfe" + ";".join(phone.HEADER).encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate
    result = read_landed(landed(path))
    assert result.reason is Reason.FILE_ENCODING
    assert path.name in result.detail


class _ValueQuotingError(Exception):
    """An exception a reader did not foresee, whose message quotes a value."""


@pytest.mark.parametrize("error", [csv.Error("line 3: Aino Testinen 131052-308T"),
                                   _ValueQuotingError("Aino Testinen 131052-308T"),
                                   RuntimeError("Aino Testinen 131052-308T")])
def test_no_reader_exception_escapes_read_landed(tmp_path, monkeypatch, error):
    path = tmp_path / "web" / "web_20261124.jsonl"
    path.parent.mkdir()
    path.write_text('{"id": "W-1"}\n')

    def failing_reader(_path):
        raise error

    monkeypatch.setitem(READERS, "web", failing_reader)
    result = read_landed(landed(path))
    assert result.reason is Reason.FILE_UNREADABLE
    assert result.detail == f"{path.name}: {type(error).__name__} while reading"
    assert "Aino" not in result.detail and "131052" not in result.detail


# --------------------------------------------------------------------- duplicate JSON keys

def test_a_key_given_twice_with_different_values_is_that_lines_problem(tmp_path):
    lines = [
        '{"id": "W-1", "submitted_at": "2026-11-24T18:03:11+02:00", "person": {"personal_id": "131052-308T", '
        '"last_name": "Testinen", "personal_id": ""}}',
        '{"id": "W-2", "submitted_at": "2026-11-24T18:03:11+02:00", "person": {"last_name": "Testinen"}, '
        '"person": {"first_names": "Aino"}}',
        '{"id": "W-3", "id": "W-3", "submitted_at": "2026-11-24T18:03:11+02:00", "person": {"last_name": "Testi"}}',
        '{"id": "W-4", "id": "W-5", "submitted_at": "2026-11-24T18:03:11+02:00", "person": {"last_name": "Testi"}}',
    ]
    path = tmp_path / "web_20261124.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for fast_path in (True, False):
        result = web.read(path, fast_path=fast_path)
        assert ids(result) == ["W-3"]  # the same value twice is harmless
        assert result.errors["record_number"].tolist() == [1, 2, 4]
        assert set(result.errors["reason"]) == {Reason.DUPLICATE_KEY.value}
        # the id is kept where it is not itself the key given twice
        assert result.errors["source_record_id"].tolist()[:2] == ["W-1", "W-2"]
        assert pd.isna(result.errors["source_record_id"].iloc[2])


# --------------------------------------------------------------------- header only, garbage

@pytest.mark.parametrize("channel", ["phone", "mail"])
def test_a_header_only_csv_is_an_empty_file(tmp_path, channel):
    path = tmp_path / f"{channel}_20261124.csv"
    path.write_bytes(formats.phone_file([]) if channel == "phone" else formats.mail_file([]))
    result = read_landed(landed(path))
    assert result.reason is Reason.FILE_EMPTY
    assert path.name in result.detail


def test_a_header_only_workbook_is_an_empty_file(tmp_path):
    path = tmp_path / "in_person_20261124.xlsx"
    path.write_bytes(formats.xlsx_file([]))
    result = read_landed(landed(path))
    assert result.reason is Reason.FILE_EMPTY
    assert path.name in result.detail


def _garbled_workbook(zone: Path) -> bytes:
    """A valid zip whose sheet XML is cut in the middle of a row."""
    source = zipfile.ZipFile(biggest(zone, "in_person"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = data[: len(data) // 2] + b"\x00<<garbage"
            target.writestr(item, data)
    return out.getvalue()


@pytest.mark.parametrize("channel, content", [
    ("in_person", lambda zone: b"PK\x03\x04" + bytes(range(256)) * 4),
    ("in_person", _garbled_workbook),
    ("email", lambda zone: b"From x Mon Jan  1 00:00:00 2026\n" + bytes(range(256)) * 40),
    ("email", lambda zone: bytes(range(256)) * 40),
])
def test_a_garbage_workbook_or_mbox_is_a_named_unreadable_file_or_a_bad_record(zone, tmp_path, channel, content):
    suffix = {"in_person": "xlsx", "email": "mbox"}[channel]
    path = tmp_path / channel / f"{channel}_20261124.{suffix}"
    path.parent.mkdir()
    path.write_bytes(content(zone))
    try:
        result = READERS[channel](path)
    except UnreadableFile as unreadable:
        assert unreadable.reason in {Reason.FILE_UNREADABLE, Reason.FILE_EMPTY, Reason.FILE_ENCODING}
        assert path.name in unreadable.detail
    else:
        assert result.count == len(result.records) + len(result.errors) >= 1
        for text in result.errors["raw"].dropna():
            assert "\x00" not in text


# --------------------------------------------------------------------- values: length, control characters

def test_a_10000_character_name_is_quarantined_as_too_long(zone, tmp_path):
    source = biggest(zone, "mail")
    lines = source.read_bytes().split(b"\r\n")
    victim = unquoted_line(lines, b",", 2, 2)
    parts = lines[victim].split(b",")
    parts[2] = b"A" * 10_000
    lines[victim] = b",".join(parts)
    path = copy_to(tmp_path, source, b"\r\n".join(lines))
    batch = build_batch([read_landed(landed(path))], TODAY)
    quarantined = batch.quarantined.set_index("record_number")
    assert quarantined.loc[victim + 1, "reasons"] == Reason.VALUE_TOO_LONG.value
    assert quarantined.loc[victim + 1, "detail"] == f"full_name over {FIELD_LIMITS['full_name']} characters"
    raw = json.loads(quarantined.loc[victim + 1, "raw_values"])
    assert raw["full_name"] == "A" * RAW_VALUE_LIMIT and raw["truncated"] == {"full_name": 10_000}
    assert len(batch.accepted) + len(batch.quarantined) == len(lines) - 2  # header and the final empty line


def test_a_5_mb_name_never_reaches_the_register_and_its_raw_value_is_bounded(tmp_path):
    huge = "Å" * (5 << 20)
    lines = [json.dumps({"id": f"W-{i}", "submitted_at": "2026-11-24T18:03:11+02:00",
                         "person": {"first_names": huge if i == 1 else "Aino", "last_name": "Testinen"}})
             for i in range(3)] + ["{" + "x" * (RAW_RECORD_LIMIT + 10)]
    path = tmp_path / "web" / "web_20261124.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    batch = build_batch([read_landed(landed(path))], TODAY)
    assert batch.accepted["source_record_id"].tolist() == ["W-0", "W-2"]
    by_number = batch.quarantined.set_index("record_number")
    assert by_number.loc[2, "reasons"] == Reason.VALUE_TOO_LONG.value
    assert len(by_number.loc[2, "raw_values"]) < 2 * RAW_VALUE_LIMIT
    assert json.loads(by_number.loc[2, "raw_values"])["truncated"] == {"first_names": 5 << 20}
    raw_line = json.loads(by_number.loc[4, "raw_values"])
    assert len(raw_line["raw"]) == RAW_RECORD_LIMIT and raw_line["truncated"] == {"raw": RAW_RECORD_LIMIT + 11}


def test_an_over_long_record_id_is_not_kept_in_the_quarantine(tmp_path):
    path = tmp_path / "web" / "web_20261124.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"id": "W" * 300, "submitted_at": "2026-11-24T18:03:11+02:00",
                                "person": {"last_name": "Testinen"}}) + "\n")
    batch = build_batch([read_landed(landed(path))], TODAY)
    assert batch.quarantined["reasons"].tolist() == [Reason.VALUE_TOO_LONG.value]
    assert batch.quarantined["source_record_id"].tolist() == [None]


NUL_LINES = [
    '{"id": "W-1\\u0000", "submitted_at": "2026-11-24T18:03:11+02:00", '
    '"person": {"first_names": "Ai\\u0000no\\u0085", "last_name": "Testinen\\u001f"}}',
    '{"id": "W-2", "submitted_at": "2026-11-24T18:03:11+02:00", "person": {"last_name": "Testinen"}, "x\\u0000": 1}',
]


@pytest.mark.parametrize("fast_path", [True, False])
def test_control_characters_are_removed_from_every_value_with_a_flag(tmp_path, fast_path):
    path = tmp_path / "web_20261124.jsonl"
    path.write_text("\n".join(NUL_LINES) + "\n")
    result = web.read(path, fast_path=fast_path)
    record = result.records.iloc[0]
    assert (record["source_record_id"], record["first_names"], record["last_name"]) == ("W-1", "Aino", "Testinen")
    assert Flag.CONTROL_CHARACTERS_REMOVED.value in record["read_flags"].split()
    assert "\x00" not in result.errors["raw"].iloc[0]


def test_control_characters_in_csv_and_workbook_values_are_removed(tmp_path):
    rows = [["T-1\x00", "24.11.2026 14:05", "Testinen\x00 Aino\x07", "", "", "", "", "", "", "", "", "", "", ""]]
    path = tmp_path / "phone_20261124.csv"
    path.write_bytes(formats.phone_file(rows))
    record = phone.read(path).records.iloc[0]
    assert (record["source_record_id"], record["full_name"]) == ("T-1", "Testinen Aino")
    assert record["read_flags"] == Flag.CONTROL_CHARACTERS_REMOVED.value


# --------------------------------------------------------------------- end to end, both backends

def _damaged_zone(zone: Path, out: Path) -> dict[str, int]:
    """A landing zone with one damaged file per case; returns the damaged files' record counts."""
    shutil.copytree(zone, out)
    counts = {}
    mail_file = biggest(out, "mail")
    lines = mail_file.read_bytes().split(b"\r\n")
    broken = unquoted_line(lines, b",", 2, 3)
    parts = lines[broken].split(b",")
    parts[2] = b'"' + parts[2]
    lines[broken] = b",".join(parts)
    mail_file.write_bytes(b"\r\n".join(lines).replace(b"\r\n", b"\r"))  # and CR-only line endings
    counts[mail_file.name] = sum(1 for line in lines[1:] if line)

    phone_file = biggest(out, "phone")
    text = phone_file.read_bytes().decode("cp1252")
    phone_file.write_bytes(text.encode("utf-16"))
    counts[phone_file.name] = sum(1 for line in text.split("\r\n")[1:] if line)

    web_file = biggest(out, "web")
    lines = web_file.read_bytes().split(b"\n")
    lines[5] = bytes(range(256)).replace(b"\n", b"")
    lines[6] = NUL_LINES[0].encode()
    lines[7] = json.dumps({"id": "W-huge", "submitted_at": "2026-11-24T18:03:11+02:00",
                           "person": {"first_names": "A" * (5 << 20)}}).encode()
    lines[8] = (b'{"id": "W-dup", "submitted_at": "2026-11-24T18:03:11+02:00", '
                b'"person": {"personal_id": "131052-308T", "personal_id": "010101-123N"}}')
    web_file.write_bytes(b"\n".join(lines))
    counts[web_file.name] = sum(1 for line in lines if line.strip())

    (out / "phone" / "phone_20261231.csv").write_bytes(formats.phone_file([]))  # header only
    return counts


def test_damaged_files_load_everything_else_and_the_counts_add_up(zone, tmp_path, register_engine):
    landing = tmp_path / "landing"
    damaged = _damaged_zone(zone, landing)
    files = discover(landing, settle_seconds=0)
    reads = [read_landed(f) for f in files]
    batch = build_batch(reads, TODAY)
    summary = load_intake(register_engine, batch, run_id="fault-test", now=NOW)

    by_name = {f.file_name: f for f in summary.files}
    for name, records in damaged.items():
        loaded = by_name[name]
        assert loaded.status == "loaded", name
        assert loaded.read == records == loaded.accepted + loaded.quarantined, name
        assert loaded.accepted >= records - 4, name  # only the damaged records are quarantined
    assert by_name["phone_20261231.csv"].file_reason == Reason.FILE_EMPTY.value
    for f in summary.files:
        assert f.read == f.accepted + f.quarantined
    web_reasons = by_name[biggest(landing, "web").name].quarantined_by_reason
    assert web_reasons == {Reason.MALFORMED_RECORD.value: 1, Reason.VALUE_TOO_LONG.value: 1,
                           Reason.DUPLICATE_KEY.value: 1}

    with register_engine.connect() as connection:
        held = connection.execute(sa.text("SELECT COUNT(*) FROM source_record")).scalar_one()
        assert held == summary.total.accepted - summary.total.resent
        longest = connection.execute(sa.text(
            "SELECT MAX(LENGTH(first_names)), MAX(LENGTH(source_record_id)) FROM source_record")).one()
        assert longest[0] <= FIELD_LIMITS["first_names"] and longest[1] <= FIELD_LIMITS["source_record_id"]
        raw_longest = connection.execute(sa.text("SELECT MAX(LENGTH(raw_values)) FROM quarantine")).scalar_one()
        assert raw_longest < RAW_RECORD_LIMIT + 1_000
        for table, column in [("source_record", "source_record_id"), ("source_record", "first_names"),
                              ("source_record", "last_name"), ("quarantine", "raw_values"),
                              ("quarantine", "source_record_id")]:
            values = connection.execute(sa.text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")).scalars()
            assert not any("\x00" in value or "\\u0000" in value for value in values), (table, column)
        flagged = connection.execute(sa.text(
            "SELECT first_names FROM source_record WHERE source_record_id = 'W-1'")).scalar_one()
        assert flagged == "Aino"


# --------------------------------------------------------------------- the slow path agrees with the fast one

@pytest.mark.parametrize("channel", ["mail", "phone"])
def test_reading_record_by_record_gives_what_pyarrow_gives_on_a_clean_file(zone, channel, monkeypatch):
    source = biggest(zone, channel)
    module = mail if channel == "mail" else phone
    fast = module.read(source)
    # Force the record-by-record path: pyarrow's first reading "disagrees" with the line count.
    monkeypatch.setattr(delimited, "_non_empty_lines", lambda data: -1)
    slow = module.read(source)
    pd.testing.assert_frame_equal(slow.records, fast.records)
    # And the scan's own fields, should pyarrow's second reading disagree with the scan.
    calls = []
    arrow_read = delimited._arrow_read

    def refusing_second_reading(*args, **kwargs):
        calls.append(1)
        return (None, []) if len(calls) > 1 else arrow_read(*args, **kwargs)

    monkeypatch.setattr(delimited, "_arrow_read", refusing_second_reading)
    fallback = module.read(source)
    pd.testing.assert_frame_equal(fallback.records, fast.records)


def test_a_control_character_in_a_header_never_reaches_the_files_detail(tmp_path):
    path = tmp_path / "phone_20261124.csv"
    path.write_bytes((";".join(phone.HEADER) + ";\x00Lisä\x00\r\n").encode("cp1252") + formats.phone_file([])[:0])
    result = read_landed(landed(path))
    assert result.reason is Reason.FILE_UNKNOWN_COLUMN
    assert "(column 15)" in result.detail and "\x00" not in result.detail


def test_a_charset_name_with_a_nul_is_an_unknown_charset_not_a_crash(tmp_path):
    """Found by the fuzzer: `bytes.decode("utf\\x00-8")` raises ValueError, not LookupError."""
    path = tmp_path / "email_20261124.mbox"
    path.write_bytes(b"From x@example.invalid Mon Nov 24 10:00:00 2026\n"
                     b"Message-ID: <1@example.invalid>\nDate: Tue, 24 Nov 2026 18:03:11 +0200\n"
                     b"From: Aino Testinen <aino@example.invalid>\n"
                     b"Content-Type: text/plain; charset=utf\x00-8\n\nNimi: Aino Testinen \xc3\xa4\n")
    result = read_landed(landed(path))
    assert result.reason is None
    assert result.result.records["full_name"].tolist() == ["Aino Testinen ä"]
