"""The service-desk reader (pipeline/channels/in_person.py) on small workbooks written with openpyxl."""

from __future__ import annotations

import datetime as dt
import pathlib

import openpyxl
import pandas as pd
import pytest

from pipeline.channels import in_person
from pipeline.channels.base import UnreadableFile
from pipeline.codes import Flag, Reason
from schemas.canonical import READ_ERROR_COLUMNS, STAGED_COLUMNS, STAGED_STRING_COLUMNS

CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
HEADER = list(in_person.HEADER)
METERING_POINT = "643007574000125688"


def identity_code(ddmmyy: str, sign: str, individual: int) -> str:
    """A well-formed identity code with a temporary (900-999) number: never a real person's."""
    assert 900 <= individual <= 999
    return f"{ddmmyy}{sign}{individual}{CHECK_CHARACTERS[int(ddmmyy + str(individual)) % 31]}"


CODE = identity_code("150590", "-", 934)


def row(**overrides) -> list[object]:
    values = {
        "Asiointi": "A-1", "Päivämäärä": dt.date(2026, 11, 24), "Etunimet": "Öljy Åsa", "Sukunimi": "Äijälä-Testi",
        "Henkilötunnus": CODE, "Lähiosoite": "Kuusitie 5 B 12", "Postinumero": "00100",
        "Postitoimipaikka": "HELSINKI", "Puhelin": "040 1234567", "Sähköposti": "oljy@example.invalid",
        "Tilinumero": "FI21 1234 5600 0007 85", "Tuote": "Sähkö", "Käyttöpaikka": METERING_POINT,
        "Suoramarkkinointikielto": "Ei", "Henkilöllisyys tarkistettu": "Kyllä",
    }
    values.update(overrides)
    return [values[name] for name in HEADER]


def write_workbook(tmp_path: pathlib.Path, rows, header=None, sheet="Asioinnit",
                   name="in_person_20261124.xlsx") -> pathlib.Path:
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    worksheet.append(HEADER if header is None else header)
    for values in rows:
        worksheet.append(values)
    path = tmp_path / name
    workbook.save(path)
    return path


def unreadable(path: pathlib.Path) -> UnreadableFile:
    with pytest.raises(UnreadableFile) as caught:
        in_person.read(path)
    return caught.value


def test_module_contract():
    assert in_person.CHANNEL == "in_person"


def test_reads_a_row_into_staged_columns(tmp_path):
    result = in_person.read(write_workbook(tmp_path, [row()]))
    assert list(result.records.columns) == list(STAGED_COLUMNS)
    assert list(result.errors.columns) == list(READ_ERROR_COLUMNS) and result.errors.empty
    record = result.records.iloc[0]
    assert record["channel"] == "in_person"
    assert record["source_record_id"] == "A-1"
    assert record["record_number"] == 2  # the Excel row: the header is row 1
    assert record["observed_at"] == pd.Timestamp("2026-11-23 22:00", tz="UTC")  # 00:00 in Helsinki (UTC+2)
    assert record["first_names"] == "Öljy Åsa"
    assert record["last_name"] == "Äijälä-Testi"
    assert record["personal_id"] == CODE
    assert record["street_address"] == "Kuusitie 5 B 12"
    assert record["postal_code"] == "00100"
    assert record["city"] == "HELSINKI"
    assert record["phone"] == "040 1234567"
    assert record["email"] == "oljy@example.invalid"
    assert record["account"] == "FI21 1234 5600 0007 85"
    assert record["product"] == "Sähkö"
    assert record["metering_point"] == METERING_POINT
    assert record["marketing_prohibited"] == False  # noqa: E712
    assert record["identity_verified"] == True  # noqa: E712
    assert record["read_flags"] == ""
    assert pd.isna(record["reject_reason"])
    for column in ("full_name", "name_order", "address_line", "postal_code_and_city"):
        assert pd.isna(record[column]), column


def test_staged_dtypes(tmp_path):
    records = in_person.read(write_workbook(tmp_path, [row(), row(**{"Asiointi": "A-2"})])).records
    for column in STAGED_STRING_COLUMNS:
        assert records[column].dtype == "string[pyarrow]", column
    assert str(records["observed_at"].dtype) == "datetime64[ns, UTC]"
    assert records["marketing_prohibited"].dtype == "boolean"
    assert records["identity_verified"].dtype == bool
    assert records["record_number"].dtype == "int64"


def test_dates_datetimes_and_text_dates(tmp_path):
    rows = [row(**{"Asiointi": f"A-{i}", "Päivämäärä": value}) for i, value in enumerate([
        dt.date(2026, 11, 24),                 # winter: UTC+2
        dt.date(2026, 7, 1),                   # summer: UTC+3
        dt.datetime(2026, 11, 24, 14, 5),      # a date-time cell: local time
        "24.11.2026", " 1.7.2026 ", "24.11.2026 14:05",
        "huomenna", "31.02.2026", None,
    ])]
    observed = in_person.read(write_workbook(tmp_path, rows)).records["observed_at"].tolist()
    assert observed[:6] == [pd.Timestamp("2026-11-23 22:00", tz="UTC"), pd.Timestamp("2026-06-30 21:00", tz="UTC"),
                            pd.Timestamp("2026-11-24 12:05", tz="UTC"), pd.Timestamp("2026-11-23 22:00", tz="UTC"),
                            pd.Timestamp("2026-06-30 21:00", tz="UTC"), pd.Timestamp("2026-11-24 12:05", tz="UTC")]
    assert all(pd.isna(value) for value in observed[6:])  # the normaliser quarantines these


def test_numbers_become_text_without_a_decimal_point(tmp_path):
    rows = [row(**{"Asiointi": 17, "Postinumero": 100, "Puhelin": 401234567}),
            row(**{"Asiointi": "A-2", "Postinumero": 100.0, "Puhelin": 358401234567.0}),
            row(**{"Asiointi": "A-3", "Postinumero": "00100", "Puhelin": "+358 40 123 4567"})]
    records = in_person.read(write_workbook(tmp_path, rows)).records
    assert records["source_record_id"].tolist() == ["17", "A-2", "A-3"]
    assert records["postal_code"].tolist() == ["100", "100", "00100"]  # the normaliser pads
    assert records["phone"].tolist() == ["401234567", "358401234567", "+358 40 123 4567"]
    assert records["read_flags"].tolist() == ["", "", ""]


def test_numeric_metering_point_is_dropped_with_a_flag(tmp_path):
    rows = [row(**{"Asiointi": "A-1", "Käyttöpaikka": int(METERING_POINT)}),  # 18 digits: beyond a float
            row(**{"Asiointi": "A-2", "Käyttöpaikka": 1234}),
            row(**{"Asiointi": "A-3", "Käyttöpaikka": METERING_POINT}),
            row(**{"Asiointi": "A-4", "Käyttöpaikka": None})]
    records = in_person.read(write_workbook(tmp_path, rows)).records
    assert pd.isna(records["metering_point"].iloc[0])
    assert records["metering_point"].tolist()[1:3] == ["1234", METERING_POINT]
    assert pd.isna(records["metering_point"].iloc[3])
    assert records["read_flags"].tolist() == [Flag.METERING_POINT_INVALID.value, "", "", ""]


def test_yes_no_cells_and_excel_booleans(tmp_path):
    answers = [("Kyllä", "Kyllä"), (" ei ", "EI"), (True, True), (False, False), ("KYLLÄ", "kyllä "),
               (None, None), ("joo", "ehkä"), ("Ei", 1)]
    rows = [row(**{"Asiointi": f"A-{i}", "Suoramarkkinointikielto": marketing, "Henkilöllisyys tarkistettu": checked})
            for i, (marketing, checked) in enumerate(answers)]
    records = in_person.read(write_workbook(tmp_path, rows)).records
    assert records["marketing_prohibited"].tolist() == [True, False, True, False, True, pd.NA, pd.NA, False]
    assert records["identity_verified"].tolist() == [True, False, True, False, True, False, False, False]
    both = f"{Flag.MARKETING_ANSWER_UNRECOGNISED.value} {Flag.IDENTITY_CHECK_UNRECOGNISED.value}"
    assert records["read_flags"].tolist() == ["", "", "", "", "", "", both, Flag.IDENTITY_CHECK_UNRECOGNISED.value]


def test_empty_rows_are_skipped_and_record_numbers_are_excel_rows(tmp_path):
    rows = [row(**{"Asiointi": "A-1"}), [None] * len(HEADER), ["  ", "", None] + [None] * (len(HEADER) - 3),
            row(**{"Asiointi": "A-2"}), row(**{"Asiointi": None, "Etunimet": "Ilman Tunnusta"})]
    result = in_person.read(write_workbook(tmp_path, rows))
    assert result.count == 3
    assert result.records["record_number"].tolist() == [2, 5, 6]
    assert result.records["source_record_id"].tolist()[:2] == ["A-1", "A-2"]
    assert pd.isna(result.records["source_record_id"].iloc[2])  # staged; the normaliser quarantines it


def test_columns_in_another_order(tmp_path):
    header = list(reversed(HEADER))
    path = write_workbook(tmp_path, [list(reversed(row(**{"Asiointi": "A-9", "Postinumero": 49400})))], header=header)
    record = in_person.read(path).records.iloc[0]
    assert record["source_record_id"] == "A-9"
    assert record["postal_code"] == "49400"
    assert record["personal_id"] == CODE


def test_header_only_workbook_and_a_blank_sheet_are_empty(tmp_path):
    # Issue 9: a header with no record under it is `file_empty`, like a blank sheet.
    assert unreadable(write_workbook(tmp_path, [])).reason == Reason.FILE_EMPTY
    blank = write_workbook(tmp_path, [], header=[], name="in_person_20261125.xlsx")
    assert unreadable(blank).reason == Reason.FILE_EMPTY


def test_missing_sheet(tmp_path):
    error = unreadable(write_workbook(tmp_path, [row()], sheet="Taul1"))
    assert error.reason == Reason.FILE_MISSING_SHEET
    assert "in_person_20261124.xlsx" in error.detail and "Asioinnit" in error.detail


def test_missing_column_is_named(tmp_path):
    header = [name for name in HEADER if name != "Puhelin"]
    values = [value for name, value in zip(HEADER, row()) if name != "Puhelin"]
    error = unreadable(write_workbook(tmp_path, [values], header=header))
    assert error.reason == Reason.FILE_MISSING_COLUMN
    assert "Puhelin" in error.detail and "in_person_20261124.xlsx" in error.detail


def test_unknown_column_is_named_by_its_letter(tmp_path):
    error = unreadable(write_workbook(tmp_path, [row() + ["lisätieto"]], header=HEADER + ["Lisätieto"]))
    assert error.reason == Reason.FILE_UNKNOWN_COLUMN
    assert "column P" in error.detail and "in_person_20261124.xlsx" in error.detail


def test_values_under_no_header_make_an_unknown_column(tmp_path):
    error = unreadable(write_workbook(tmp_path, [row() + ["something"]], header=HEADER + [None]))
    assert error.reason == Reason.FILE_UNKNOWN_COLUMN
    assert "column P" in error.detail


def test_a_data_row_in_place_of_the_header_is_not_quoted(tmp_path):
    values = row()
    error = unreadable(write_workbook(tmp_path, [values], header=values))
    assert error.reason == Reason.FILE_MISSING_COLUMN
    for value in (CODE, "Öljy Åsa", "Äijälä-Testi", "oljy@example.invalid", "040 1234567"):
        assert value not in str(error)


def test_truncated_workbook_is_unreadable(tmp_path):
    whole = write_workbook(tmp_path, [row()])
    truncated = tmp_path / "in_person_20261125.xlsx"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    error = unreadable(truncated)
    assert error.reason == Reason.FILE_UNREADABLE
    assert "in_person_20261125.xlsx" in error.detail


def test_not_a_zip_is_unreadable_and_empty_file_is_empty(tmp_path):
    text = tmp_path / "in_person_20261124.xlsx"
    text.write_text(f"Asiointi;Henkilötunnus\nA-1;{CODE}\n", encoding="utf-8")
    error = unreadable(text)
    assert error.reason == Reason.FILE_UNREADABLE and CODE not in str(error)
    text.write_bytes(b"")
    assert unreadable(text).reason == Reason.FILE_EMPTY
