"""Reader for letters keyed in by the mail room (`mail_YYYYMMDD.csv`).

UTF-8 with a byte-order mark (a missing one is tolerated), `,`-delimited, fields
quoted where needed (names and addresses hold commas and quotes), one header row
(docs/intake_formats.md):

    letter_id,received,full_name,personal_id,address,postal_code_and_city,phone,
    email,account,product,metering_point,no_direct_marketing

`received` is a date only; the record is observed at 00:00 Finnish time that day.
`no_direct_marketing` is a tick box: `x` is a prohibition, an empty box states nothing.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.channels.base import ChannelRead, UnreadableFile, read_errors, staged_frame
from pipeline.channels.delimited import (clean_text, constant_text, decode_by_bom, file_bytes, flag_where,
                                        helsinki_to_utc, read_delimited, yes_no)
from pipeline.codes import Flag, Reason
from schemas.canonical import GIVEN_FIRST

CHANNEL = "mail"
DELIMITER = ","
BOM = b"\xef\xbb\xbf"
HEADER: tuple[str, ...] = (
    "letter_id", "received", "full_name", "personal_id", "address", "postal_code_and_city",
    "phone", "email", "account", "product", "metering_point", "no_direct_marketing",
)
TEXT_COLUMNS: dict[str, str] = {
    "letter_id": "source_record_id",
    "full_name": "full_name",
    "personal_id": "personal_id",
    "address": "street_address",
    "postal_code_and_city": "postal_code_and_city",
    "phone": "phone",
    "email": "email",
    "account": "account",
    "product": "product",
    "metering_point": "metering_point",
}
DATE_PATTERN = r"^(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})$"  # 24.11.2026
MARKETING_ANSWERS: dict[str, bool] = {"X": True}  # a ticked box, any case


def _utf8_without_bom(file_name: str, data: bytes) -> bytes:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # saved as "Unicode text" (UTF-16): read it as such
        return decode_by_bom(file_name, data)
    if data.startswith(BOM):
        data = data[len(BOM):]
    if not data or data.isspace():
        raise UnreadableFile(Reason.FILE_EMPTY, f"{file_name}: the file holds no header and no records")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableFile(Reason.FILE_ENCODING,
                             f"{file_name}: byte at offset {error.start} is not UTF-8") from None
    return data


def read(path: Path) -> ChannelRead:
    """Read one mail-room export into staged records and read errors."""
    data = _utf8_without_bom(path.name, file_bytes(path))
    rows = read_delimited(path.name, data, delimiter=DELIMITER, expected=HEADER)
    n = len(rows.record_numbers)

    columns: dict[str, object] = {staged: clean_text(rows.columns[source]) for source, staged in TEXT_COLUMNS.items()}
    columns["channel"] = constant_text(CHANNEL, n)
    columns["name_order"] = constant_text(GIVEN_FIRST, n)
    columns["record_number"] = rows.record_numbers
    columns["observed_at"] = helsinki_to_utc(clean_text(rows.columns["received"]), DATE_PATTERN)
    marketing, unrecognised = yes_no(clean_text(rows.columns["no_direct_marketing"]), MARKETING_ANSWERS)
    columns["marketing_prohibited"] = marketing
    columns["read_flags"] = flag_where(unrecognised, Flag.MARKETING_ANSWER_UNRECOGNISED)
    records = staged_frame(columns, n)

    errors = read_errors([
        {"channel": CHANNEL, "record_number": number, "source_record_id": None,
         "reason": Reason.MALFORMED_RECORD.value, "raw": text}
        for number, text in rows.bad_rows
    ])
    return ChannelRead(records=records, errors=errors)
