"""The mail-room reader (pipeline/channels/mail.py) on small synthetic files."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from pipeline.channels import mail
from pipeline.channels.base import UnreadableFile
from pipeline.codes import Flag, Reason
from schemas.canonical import GIVEN_FIRST, STAGED_COLUMNS

HELSINKI = ZoneInfo("Europe/Helsinki")
BOM = "\ufeff"
CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def temporary_code(ddmmyy: str, sign: str, individual: int) -> str:
    """A well-formed identity code with a temporary (900-999) number: never a real person's."""
    return f"{ddmmyy}{sign}{individual}{CHECK_CHARACTERS[int(ddmmyy + str(individual)) % 31]}"


def record(letter_id="L-1", received="24.11.2026", full_name="Åsa Éva Äijälä", personal_id="",
           address="Kuusitie 5 B 12", postal_code_and_city="00100 HELSINKI", phone="040 1234567",
           email="osa@example.fi", account="FI21 1234 5600 0007 85", product="sähkö",
           metering_point="643007574000125688", no_direct_marketing="x") -> list[str]:
    return [letter_id, received, full_name, personal_id, address, postal_code_and_city, phone, email,
            account, product, metering_point, no_direct_marketing]


def csv_text(rows, header=mail.HEADER) -> str:
    """Rows written the way a spreadsheet writes CSV: quoted only where needed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write(tmp_path, text, name="mail_20261124.csv", bom=True, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(((BOM if bom else "") + text).encode(encoding))
    return path


def helsinki_midnight_utc(year, month, day) -> pd.Timestamp:
    return pd.Timestamp(datetime(year, month, day, tzinfo=HELSINKI).astimezone(timezone.utc))


def test_module_contract():
    assert mail.CHANNEL == "mail"


def test_quoted_commas_and_quotes_survive(tmp_path):
    code = temporary_code("300795", "-", 931)
    rows = [record(full_name='Åsa "Åsku" Éva Äijälä-Öljy', address="Kuusitie 5, as. 12",
                   personal_id=code, postal_code_and_city="00100 HELSINKI"),
            record(letter_id="L-2", full_name="Björn, Ünelma Ström", product="Fjärrvärme, tack")]
    result = mail.read(write(tmp_path, csv_text(rows)))
    records = result.records

    assert list(records.columns) == list(STAGED_COLUMNS)
    assert len(result.errors) == 0
    first = records.iloc[0]
    assert first["full_name"] == 'Åsa "Åsku" Éva Äijälä-Öljy'
    assert first["name_order"] == GIVEN_FIRST
    assert first["street_address"] == "Kuusitie 5, as. 12"
    assert first["postal_code_and_city"] == "00100 HELSINKI"
    assert pd.isna(first["postal_code"]) and pd.isna(first["city"])  # kept as one field for the normaliser
    assert first["personal_id"] == code
    assert first["metering_point"] == "643007574000125688"
    assert first["account"] == "FI21 1234 5600 0007 85"
    assert records["full_name"].iloc[1] == "Björn, Ünelma Ström"
    assert records["product"].iloc[1] == "Fjärrvärme, tack"
    assert records["channel"].tolist() == ["mail", "mail"]
    assert records["record_number"].tolist() == [2, 3]
    assert records["identity_verified"].tolist() == [False, False]


def test_text_stays_as_typed_apart_from_stripping(tmp_path):
    rows = [record(letter_id="007", full_name="  ÅSA  éva äijälä ", phone=" 0401234567", metering_point="643007574000125688",
                   postal_code_and_city="00100  helsinki", product="")]
    records = mail.read(write(tmp_path, csv_text(rows))).records
    first = records.iloc[0]
    assert first["source_record_id"] == "007"
    assert first["full_name"] == "ÅSA  éva äijälä"
    assert first["phone"] == "0401234567"
    assert first["postal_code_and_city"] == "00100  helsinki"
    assert pd.isna(first["product"])


def test_missing_bom_is_tolerated(tmp_path):
    rows = [record(), record(letter_id="L-2", full_name="Björn Ström")]
    with_bom = mail.read(write(tmp_path, csv_text(rows), name="mail_1.csv", bom=True))
    without = mail.read(write(tmp_path, csv_text(rows), name="mail_2.csv", bom=False))
    pd.testing.assert_frame_equal(with_bom.records, without.records)
    assert with_bom.records["source_record_id"].iloc[0] == "L-1"  # the BOM is not part of the first id


@pytest.mark.parametrize("typed, expected", [
    ("24.11.2026", helsinki_midnight_utc(2026, 11, 24)),  # winter: 22:00 UTC the day before
    ("28.6.2026", helsinki_midnight_utc(2026, 6, 28)),    # summer: 21:00 UTC the day before
    ("29.03.2026", helsinki_midnight_utc(2026, 3, 29)),   # the spring-forward day
    ("30.02.2026", pd.NaT),
    ("2026-11-24", pd.NaT),
    ("24.11.26", pd.NaT),
    ("", pd.NaT),
])
def test_received_date_is_helsinki_midnight(tmp_path, typed, expected):
    records = mail.read(write(tmp_path, csv_text([record(received=typed)]))).records
    observed = records["observed_at"].iloc[0]
    assert str(records["observed_at"].dtype) == "datetime64[ns, UTC]"
    if pd.isna(expected):
        assert pd.isna(observed)
    else:
        assert observed == expected
    assert records["read_flags"].iloc[0] == ""


def test_no_direct_marketing_box(tmp_path):
    answers = ["x", "X", " x ", "", "yes", "xx"]
    rows = [record(letter_id=f"L-{i}", no_direct_marketing=a) for i, a in enumerate(answers)]
    records = mail.read(write(tmp_path, csv_text(rows))).records
    assert records["marketing_prohibited"].tolist() == [True, True, True, pd.NA, pd.NA, pd.NA]
    unrecognised = Flag.MARKETING_ANSWER_UNRECOGNISED.value
    assert records["read_flags"].tolist() == ["", "", "", "", unrecognised, unrecognised]


def test_wrong_field_count_is_that_rows_problem(tmp_path):
    text = csv_text([record(letter_id="L-1")]) + "L-2,24.11.2026,Björn Ström\r\n" + \
        csv_text([record(letter_id="L-3")]).split("\r\n", 1)[1]
    result = mail.read(write(tmp_path, text))
    assert result.records["source_record_id"].tolist() == ["L-1", "L-3"]
    assert result.records["record_number"].tolist() == [2, 4]
    assert result.errors["record_number"].tolist() == [3]
    assert result.errors["reason"].tolist() == [Reason.MALFORMED_RECORD.value]
    assert result.errors["raw"].tolist() == ["L-2,24.11.2026,Björn Ström"]
    assert result.errors["channel"].tolist() == ["mail"]


def test_newline_inside_quoted_address(tmp_path):
    rows = [record(address="Kuusitie 5\nB 12"), record(letter_id="L-2")]
    result = mail.read(write(tmp_path, csv_text(rows)))
    assert len(result.errors) == 0
    assert result.records["street_address"].iloc[0] == "Kuusitie 5\nB 12"
    assert result.records["source_record_id"].tolist() == ["L-1", "L-2"]


def test_blank_lines_are_not_records(tmp_path):
    text = csv_text([record()]) + "\r\n" + csv_text([record(letter_id="L-2")]).split("\r\n", 1)[1] + "\r\n"
    result = mail.read(write(tmp_path, text))
    assert result.records["record_number"].tolist() == [2, 4]
    assert len(result.errors) == 0


def test_header_only_is_an_empty_file(tmp_path):
    """Issue 9: a header with no record under it is `file_empty`, like a zero-byte file."""
    path = write(tmp_path, csv_text([]) + "\r\n\r\n")
    with pytest.raises(UnreadableFile) as caught:
        mail.read(path)
    assert caught.value.reason is Reason.FILE_EMPTY
    assert path.name in caught.value.detail


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "mail_20261124.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile) as caught:
        mail.read(path)
    assert caught.value.reason is Reason.FILE_EMPTY
    assert path.name in caught.value.detail


def test_invalid_utf8_is_an_encoding_error(tmp_path):
    path = write(tmp_path, csv_text([record(full_name="Åsa Äijälä")]), bom=False, encoding="cp1252")
    with pytest.raises(UnreadableFile) as caught:
        mail.read(path)
    assert caught.value.reason is Reason.FILE_ENCODING
    assert path.name in caught.value.detail
    assert "Äijälä" not in str(caught.value)


def test_missing_column_is_named(tmp_path):
    header = [name for name in mail.HEADER if name != "account"]
    rows = [[value for name, value in zip(mail.HEADER, record()) if name != "account"]]
    with pytest.raises(UnreadableFile) as caught:
        mail.read(write(tmp_path, csv_text(rows, header=header)))
    assert caught.value.reason is Reason.FILE_MISSING_COLUMN
    assert "'account'" in caught.value.detail and "mail_20261124.csv" in caught.value.detail
    assert "FI21" not in str(caught.value)


def test_unknown_column_is_named(tmp_path):
    header = list(mail.HEADER) + ["remarks"]
    with pytest.raises(UnreadableFile) as caught:
        mail.read(write(tmp_path, csv_text([record() + ["see letter"]], header=header)))
    assert caught.value.reason is Reason.FILE_UNKNOWN_COLUMN
    assert "'r*****s' (column 13)" in caught.value.detail and "mail_20261124.csv" in caught.value.detail
    assert "remarks" not in caught.value.detail  # masked: a header cell may hold a typed value


def test_file_without_header_names_no_value(tmp_path):
    code = temporary_code("150560", "-", 987)
    text = "\r\n".join(",".join(record(letter_id=f"L-{i}", personal_id=code)) for i in range(2)) + "\r\n"
    with pytest.raises(UnreadableFile) as caught:
        mail.read(write(tmp_path, text))
    assert caught.value.reason is Reason.FILE_MISSING_COLUMN
    for value in (code, "Äijälä", "osa@example.fi", "Kuusitie"):
        assert value not in str(caught.value)


def test_blank_line_and_multiline_value_together(tmp_path):
    # Rows no longer match lines one to one: each record is read on its own and numbered by
    # its first line (the record after the two-line address and the blank line is on line 5).
    body = csv_text([record(address="Kuusitie 5\nB 12")]) + "\r\n" + \
        csv_text([record(letter_id="L-2")]).split("\r\n", 1)[1]
    result = mail.read(write(tmp_path, body))
    assert result.records["source_record_id"].tolist() == ["L-1", "L-2"]
    assert result.records["record_number"].tolist() == [2, 5]
    assert len(result.errors) == 0
