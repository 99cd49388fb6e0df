"""Reader for the call-centre CRM export (`phone_YYYYMMDD.csv`).

Windows-1252, `;`-delimited, one header row (docs/intake_formats.md):

    Tiketti;Aika;Nimi;Henkilötunnus;Puhelin;Sähköposti;Katuosoite;Postinumero;
    Postitoimipaikka;Tilinumero;Tuote;Käyttöpaikka;Suoramarkkinointikielto;Nauhoite

`Nauhoite`, the call-recording reference, is dropped at read time: it is never
parsed into a column, and a malformed row keeps its raw text for the steward
only with that field blanked out.

The delimited-text helpers it shares with the mail reader are in
`pipeline.channels.delimited`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pipeline.channels.base import ChannelRead, UnreadableFile, read_errors, staged_frame
from pipeline.channels.delimited import (clean_text, constant_text, decode_by_bom, file_bytes, flag_where,
                                        helsinki_to_utc, read_delimited, yes_no)
from pipeline.codes import Flag, Reason
from schemas.canonical import SURNAME_FIRST

CHANNEL = "phone"
ENCODING = "cp1252"
DELIMITER = ";"
HEADER: tuple[str, ...] = (
    "Tiketti", "Aika", "Nimi", "Henkilötunnus", "Puhelin", "Sähköposti", "Katuosoite",
    "Postinumero", "Postitoimipaikka", "Tilinumero", "Tuote", "Käyttöpaikka",
    "Suoramarkkinointikielto", "Nauhoite",
)
RECORDING_COLUMN = "Nauhoite"
# CRM column -> staged column, for the columns that are plain text.
TEXT_COLUMNS: dict[str, str] = {
    "Tiketti": "source_record_id",
    "Nimi": "full_name",
    "Henkilötunnus": "personal_id",
    "Puhelin": "phone",
    "Sähköposti": "email",
    "Katuosoite": "street_address",
    "Postinumero": "postal_code",
    "Postitoimipaikka": "city",
    "Tilinumero": "account",
    "Tuote": "product",
    "Käyttöpaikka": "metering_point",
}
# `24.11.2026 14:05`. The CRM writes minutes; seconds are accepted in case an export adds them.
TIME_PATTERN = (r"^(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4}) +"
                r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?$")
MARKETING_ANSWERS: dict[str, bool] = {"K": True, "E": False}



# ---------------------------------------------------------------- the phone reader

def _decode(file_name: str, data: bytes) -> bytes:
    """cp1252 bytes -> UTF-8 bytes; bytes cp1252 leaves undefined -> `file_encoding`.

    A file that starts with a byte-order mark says it is Unicode (a spreadsheet's
    "Unicode text" export is UTF-16): it is read as the mark says, not as cp1252.
    """
    unicode = decode_by_bom(file_name, data)
    if unicode is not None:
        return unicode
    header_line = data.split(b"\n", 1)[0]
    if not header_line.isascii():
        # The header has ö and ä: written as UTF-8 they also decode "fine" as
        # cp1252 (into Ã¶), so look at the header's own bytes to spot a UTF-8 file.
        try:
            header_line.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise UnreadableFile(Reason.FILE_ENCODING, f"{file_name}: the header is UTF-8, not Windows-1252")
    try:
        return data.decode(ENCODING).encode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableFile(Reason.FILE_ENCODING,
                             f"{file_name}: byte at offset {error.start} is not Windows-1252") from None


def blank_recording(row_text: str, recording_index: int, delimiter: str = DELIMITER) -> str:
    """A malformed row's text with the call-recording reference blanked out.

    A row with a wrong field count does not say where each field is. In a long row
    the reference is in its own column or later (an extra delimiter before it shifts
    it right): blank all of those. In a short row it is the last field that holds
    anything, if it is there at all: blank that. The steward may lose a field; the
    reference never survives.

    >>> blank_recording("T-1;a;b;c;REC-9", 3)
    'T-1;a;b;;'
    >>> blank_recording("T-1;a;REC-9;", 5)
    'T-1;a;;'
    >>> blank_recording("T-1;a;b;c;REC-9;", 3)
    'T-1;a;b;;;'
    >>> blank_recording("REC-9", 3)
    ''
    """
    rows = list(csv.reader(io.StringIO(row_text), delimiter=delimiter))
    fields = [field for row in rows for field in row]
    if len(fields) > recording_index:
        for index in range(recording_index, len(fields)):
            fields[index] = ""
    else:
        non_empty = [i for i, field in enumerate(fields) if field.strip()]
        if non_empty:
            fields[non_empty[-1]] = ""
    if len(fields) <= 1:
        return ""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(fields)
    return out.getvalue().rstrip("\n")


def read(path: Path) -> ChannelRead:
    """Read one phone export into staged records and read errors."""
    data = _decode(path.name, file_bytes(path))
    rows = read_delimited(path.name, data, delimiter=DELIMITER, expected=HEADER, drop=(RECORDING_COLUMN,))
    n = len(rows.record_numbers)

    columns: dict[str, object] = {staged: clean_text(rows.columns[source]) for source, staged in TEXT_COLUMNS.items()}
    columns["channel"] = constant_text(CHANNEL, n)
    columns["name_order"] = constant_text(SURNAME_FIRST, n)
    columns["record_number"] = rows.record_numbers
    columns["observed_at"] = helsinki_to_utc(clean_text(rows.columns["Aika"]), TIME_PATTERN)
    marketing, unrecognised = yes_no(clean_text(rows.columns["Suoramarkkinointikielto"]), MARKETING_ANSWERS)
    columns["marketing_prohibited"] = marketing
    columns["read_flags"] = flag_where(unrecognised, Flag.MARKETING_ANSWER_UNRECOGNISED)
    records = staged_frame(columns, n)

    recording_index = rows.header.index(RECORDING_COLUMN)
    # Where the header does not end with the recording column, a short row's reference
    # could sit anywhere: keep no raw text of malformed rows at all then.
    recording_last = recording_index == len(rows.header) - 1
    errors = read_errors([
        {"channel": CHANNEL, "record_number": number, "source_record_id": None,
         "reason": Reason.MALFORMED_RECORD.value,
         "raw": blank_recording(text, recording_index) if recording_last else None}
        for number, text in rows.bad_rows
    ])
    return ChannelRead(records=records, errors=errors)
