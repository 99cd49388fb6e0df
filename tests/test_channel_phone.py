"""The call-centre reader (pipeline/channels/phone.py) on small synthetic files."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from pipeline.channels import phone
from pipeline.channels.base import UnreadableFile
from pipeline.codes import Flag, Reason
from schemas.canonical import READ_ERROR_COLUMNS, STAGED_COLUMNS, SURNAME_FIRST

HELSINKI = ZoneInfo("Europe/Helsinki")
HEADER = ";".join(phone.HEADER)
CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def temporary_code(ddmmyy: str, sign: str, individual: int) -> str:
    """A well-formed identity code with a temporary (900-999) number: never a real person's."""
    return f"{ddmmyy}{sign}{individual}{CHECK_CHARACTERS[int(ddmmyy + str(individual)) % 31]}"


def row(ticket="T-1", time="24.11.2026 14:05", name="Äijälä Öljy Åsa", code="", phone_number="040 1234567",
        email="osa@example.fi", street="Kuusitie 5 B 12", postal="00100", city="HELSINKI",
        account="FI21 1234 5600 0007 85", product="Sähkö", metering="643007574000125688",
        marketing="K", recording="REC-0000") -> str:
    return ";".join([ticket, time, name, code, phone_number, email, street, postal, city, account,
                     product, metering, marketing, recording])


def write(tmp_path, lines, name="phone_20261124.csv", ending="\r\n", encoding="cp1252"):
    path = tmp_path / name
    path.write_bytes(ending.join(lines).encode(encoding) + ending.encode())
    return path


def helsinki_utc(*parts, fold=0) -> pd.Timestamp:
    local = datetime(*parts, tzinfo=HELSINKI, fold=fold)
    return pd.Timestamp(local.astimezone(timezone.utc))


def test_module_contract():
    assert phone.CHANNEL == "phone"


def test_reads_fields_as_typed_with_cp1252_letters(tmp_path):
    code = temporary_code("010203", "A", 912)
    path = write(tmp_path, [HEADER,
                            row(name="  Äijälä-Öljy  Åsa Éva Ünelma ", code=code, postal="00100",
                                metering="643007574000125688", product="Kaukolämpö"),
                            row(ticket="0042", name="Ström Björn", postal="", marketing="E")])
    result = phone.read(path)
    records = result.records

    assert list(records.columns) == list(STAGED_COLUMNS)
    assert list(result.errors.columns) == list(READ_ERROR_COLUMNS)
    assert len(result.errors) == 0
    first, second = records.iloc[0], records.iloc[1]
    assert first["full_name"] == "Äijälä-Öljy  Åsa Éva Ünelma"  # stripped, inner spacing as typed
    assert first["name_order"] == SURNAME_FIRST
    assert pd.isna(first["first_names"]) and pd.isna(first["last_name"])
    assert first["personal_id"] == code
    assert first["postal_code"] == "00100"
    assert first["metering_point"] == "643007574000125688"
    assert first["product"] == "Kaukolämpö"
    assert first["account"] == "FI21 1234 5600 0007 85"
    assert first["street_address"] == "Kuusitie 5 B 12" and first["city"] == "HELSINKI"
    assert first["phone"] == "040 1234567" and first["email"] == "osa@example.fi"
    assert second["source_record_id"] == "0042"  # an id of digits keeps its leading zeros
    assert pd.isna(second["postal_code"])        # empty -> NA
    assert records["channel"].tolist() == ["phone", "phone"]
    assert records["record_number"].tolist() == [2, 3]  # the header is row 1
    assert records["identity_verified"].tolist() == [False, False]
    assert records["full_name"].dtype == "string"
    assert str(records["observed_at"].dtype) == "datetime64[ns, UTC]"


def test_recording_reference_never_surfaces(tmp_path):
    references = [f"NAUHA-{n:04d}-{(n * 7919) % 10007}" for n in range(6)]
    path = write(tmp_path, [
        HEADER,
        row(ticket="T-1", recording=references[0]),
        row(ticket="T-2", recording=references[1]) + ";",                      # one field too many, trailing
        row(ticket="T-3", name="Äijälä; Öljy", recording=references[2]),        # delimiter typed in the name
        "T-4;24.11.2026 14:05;Ström Björn;" + references[3],                     # far too few fields
        row(ticket="T-5", recording=f'"{references[4]};x"') + ";",              # quoted, with a delimiter inside
        row(ticket="T-6", recording=references[5]),
    ])
    result = phone.read(path)

    assert result.records["source_record_id"].tolist() == ["T-1", "T-6"]
    assert result.errors["record_number"].tolist() == [3, 4, 5, 6]
    assert set(result.errors["reason"]) == {Reason.MALFORMED_RECORD.value}
    everything = result.records.astype(str).to_csv() + result.errors.astype(str).to_csv()
    for reference in references:
        assert reference not in everything
    assert "NAUHA" not in everything
    assert not any("nauh" in column.lower() for column in result.records.columns)
    # the steward still gets the rest of each bad row
    assert result.errors["raw"].str.startswith("T-").all()
    assert "Ström Björn" in result.errors["raw"].iloc[2]


def test_blank_recording_keeps_other_fields():
    index = phone.HEADER.index(phone.RECORDING_COLUMN)
    raw = row(ticket="T-9", recording="NAUHA-1") + ";"
    blanked = phone.blank_recording(raw, index)
    assert "NAUHA-1" not in blanked
    assert blanked.split(";")[:3] == ["T-9", "24.11.2026 14:05", "Äijälä Öljy Åsa"]


@pytest.mark.parametrize("typed, expected", [
    ("24.11.2026 14:05", helsinki_utc(2026, 11, 24, 14, 5)),           # winter time, +02:00
    ("28.6.2026 14:05", helsinki_utc(2026, 6, 28, 14, 5)),             # summer time, +03:00
    ("24.11.2026 14:05:30", helsinki_utc(2026, 11, 24, 14, 5, 30)),    # seconds accepted
    ("29.3.2026 03:30", helsinki_utc(2026, 3, 29, 3, 30)),             # spring gap: read as +02:00
    ("25.10.2026 03:30", helsinki_utc(2026, 10, 25, 3, 30, fold=0)),   # autumn twice: the first one
    ("25.10.2026 04:30", helsinki_utc(2026, 10, 25, 4, 30)),
    ("30.2.2026 10:00", pd.NaT),
    ("24.11.2026", pd.NaT),
    ("2026-11-24 14:05", pd.NaT),
    ("24.11.2026 25:05", pd.NaT),
    ("", pd.NaT),
])
def test_local_time_to_utc_across_dst(tmp_path, typed, expected):
    result = phone.read(write(tmp_path, [HEADER, row(time=typed)]))
    observed = result.records["observed_at"].iloc[0]
    if pd.isna(expected):
        assert pd.isna(observed)
    else:
        assert observed == expected
    assert result.records["read_flags"].iloc[0] == ""  # a bad time is the normaliser's call


def test_dst_hours_are_an_hour_apart(tmp_path):
    # 02:30 and 04:30 on the spring-forward day are one real hour apart, not two.
    path = write(tmp_path, [HEADER, row(time="29.3.2026 02:30"), row(time="29.3.2026 04:30")])
    observed = phone.read(path).records["observed_at"]
    assert observed.iloc[1] - observed.iloc[0] == pd.Timedelta(hours=1)


def test_marketing_answers(tmp_path):
    answers = ["K", "E", "", " k ", "e", "kyllä", "X"]
    path = write(tmp_path, [HEADER] + [row(ticket=f"T-{i}", marketing=a) for i, a in enumerate(answers)])
    records = phone.read(path).records
    assert records["marketing_prohibited"].tolist() == [True, False, pd.NA, True, False, pd.NA, pd.NA]
    assert str(records["marketing_prohibited"].dtype) == "boolean"
    unrecognised = Flag.MARKETING_ANSWER_UNRECOGNISED.value
    assert records["read_flags"].tolist() == ["", "", "", "", "", unrecognised, unrecognised]


def test_blank_lines_are_skipped_and_rows_keep_their_line_numbers(tmp_path):
    path = write(tmp_path, [HEADER, row(ticket="T-1"), "", "   ", row(ticket="T-2"), "", "T-3;x", row(ticket="T-4"), ""])
    result = phone.read(path)
    assert result.records["source_record_id"].tolist() == ["T-1", "T-2", "T-4"]
    assert result.records["record_number"].tolist() == [2, 5, 8]
    assert result.errors["record_number"].tolist() == [7]


def test_lf_line_endings_read_the_same(tmp_path):
    lines = [HEADER, row(ticket="T-1"), row(ticket="T-2", name="Öljy Åsa")]
    crlf = phone.read(write(tmp_path, lines, name="phone_1.csv", ending="\r\n"))
    lf = phone.read(write(tmp_path, lines, name="phone_2.csv", ending="\n"))
    pd.testing.assert_frame_equal(crlf.records, lf.records)


def test_missing_id_and_duplicate_ids_are_kept(tmp_path):
    path = write(tmp_path, [HEADER, row(ticket=""), row(ticket="T-7"), row(ticket="T-7", name="Ström Björn")])
    records = phone.read(path).records
    assert len(records) == 3
    assert pd.isna(records["source_record_id"].iloc[0])
    assert records["source_record_id"].iloc[1:].tolist() == ["T-7", "T-7"]


def test_quoted_field_with_delimiter(tmp_path):
    path = write(tmp_path, [HEADER, row(name='"Äijälä; Öljy"', street='"Kuja ""A"" 1"')])
    result = phone.read(path)
    assert len(result.errors) == 0
    assert result.records["full_name"].iloc[0] == "Äijälä; Öljy"
    assert result.records["street_address"].iloc[0] == 'Kuja "A" 1'


def test_header_only_is_an_empty_file(tmp_path):
    """Issue 9: a header with no record under it is `file_empty`, like a zero-byte file."""
    with pytest.raises(UnreadableFile) as caught:
        phone.read(write(tmp_path, [HEADER]))
    assert caught.value.reason is Reason.FILE_EMPTY
    assert "phone_20261124.csv" in caught.value.detail


def test_zero_byte_file_is_empty(tmp_path):
    path = tmp_path / "phone_20261124.csv"
    path.write_bytes(b"")
    with pytest.raises(UnreadableFile) as caught:
        phone.read(path)
    assert caught.value.reason is Reason.FILE_EMPTY
    assert path.name in caught.value.detail


def test_missing_column_is_named(tmp_path):
    header = ";".join(name for name in phone.HEADER if name != "Puhelin")
    with pytest.raises(UnreadableFile) as caught:
        phone.read(write(tmp_path, [header]))
    assert caught.value.reason is Reason.FILE_MISSING_COLUMN
    assert "Puhelin" in caught.value.detail and "phone_20261124.csv" in caught.value.detail


def test_unknown_column_is_named(tmp_path):
    with pytest.raises(UnreadableFile) as caught:
        phone.read(write(tmp_path, [HEADER + ";Lisätieto", row() + ";x"]))
    assert caught.value.reason is Reason.FILE_UNKNOWN_COLUMN
    assert "'L*******o' (column 15)" in caught.value.detail and "phone_20261124.csv" in caught.value.detail
    assert "Lisätieto" not in caught.value.detail  # masked: a header cell may hold a typed value


def test_value_typed_into_the_header_is_not_named(tmp_path):
    code = temporary_code("150560", "-", 987)
    with pytest.raises(UnreadableFile) as caught:
        phone.read(write(tmp_path, [HEADER + ";" + code, row() + ";x"]))
    assert caught.value.reason is Reason.FILE_UNKNOWN_COLUMN
    assert code not in str(caught.value) and "(column 15)" in caught.value.detail


def test_file_without_header_names_no_value(tmp_path):
    code = temporary_code("150560", "-", 987)
    with pytest.raises(UnreadableFile) as caught:
        phone.read(write(tmp_path, [row(code=code, recording="NAUHA-77"), row()]))
    assert caught.value.reason is Reason.FILE_MISSING_COLUMN
    message = str(caught.value)
    for value in (code, "NAUHA-77", "Äijälä", "osa@example.fi", "643007574000125688"):
        assert value not in message


@pytest.mark.parametrize("undefined", [0x81, 0x8D, 0x8F, 0x90, 0x9D])
def test_bytes_undefined_in_cp1252_are_an_encoding_error(tmp_path, undefined):
    path = tmp_path / "phone_20261124.csv"
    path.write_bytes(HEADER.encode("cp1252") + b"\r\n" + row().encode("cp1252")[:20] + bytes([undefined]) + b"\r\n")
    with pytest.raises(UnreadableFile) as caught:
        phone.read(path)
    assert caught.value.reason is Reason.FILE_ENCODING
    assert path.name in caught.value.detail


def test_utf8_file_is_an_encoding_error(tmp_path):
    with pytest.raises(UnreadableFile) as caught:
        phone.read(write(tmp_path, [HEADER, row()], encoding="utf-8"))
    assert caught.value.reason is Reason.FILE_ENCODING


def test_unclosed_quote_is_that_rows_problem_alone(tmp_path):
    """Issue 9: the row with the unclosed quote is set aside, the rows after it load."""
    path = write(tmp_path, [HEADER, row(ticket="T-1"), row(ticket="T-2", name='"Äijälä Öljy'),
                            row(ticket="T-3", recording="NAUHA-5")])
    result = phone.read(path)
    assert result.records["source_record_id"].tolist() == ["T-1", "T-3"]
    assert result.records["record_number"].tolist() == [2, 4]
    assert result.errors["record_number"].tolist() == [3]
    assert result.errors["reason"].tolist() == [Reason.MALFORMED_RECORD.value]
    assert "NAUHA" not in result.errors["raw"].iloc[0]  # the recording reference is blanked


def test_a_reordered_header_keeps_no_raw_text_of_malformed_rows(tmp_path):
    """If the recording column is not last, a short row's reference could be anywhere."""
    from pipeline.channels import phone

    columns = list(phone.HEADER)
    assert columns[-1] == "Nauhoite"
    reordered = [columns[-1], *columns[:-1]]
    good = ["REC-1", "T-1", "24.11.2026 14:05", "Testinen Aatu", "", "", "", "", "", "", "", "", "", ""]
    short = "REC-2;T-2;24.11.2026 14:06;Testinen Aatu"
    path = tmp_path / "phone_20261124.csv"
    path.write_bytes((";".join(reordered) + "\r\n" + ";".join(good[:len(reordered)]) + "\r\n" + short + "\r\n")
                     .encode("cp1252"))
    result = phone.read(path)
    assert len(result.errors) == 1
    assert result.errors["raw"].isna().all()
    assert "REC-" not in result.records.astype(str).to_csv()
