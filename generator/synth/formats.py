"""The five export formats, byte for byte as docs/intake_formats.md describes them.

Each channel has a record builder (typed values -> one line, row or message)
and a file serialiser (records -> the file's bytes). Serialisers are
deterministic: the xlsx is rewritten with fixed timestamps and the mbox carries
its own envelope lines, so the same records always give the same bytes.
"""

from __future__ import annotations

import binascii
import csv
import datetime
import html
import io
import json
import re
import zipfile
from email.utils import format_datetime
from functools import lru_cache
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.utils.datetime import to_excel

PHONE_HEADER = ("Tiketti", "Aika", "Nimi", "Henkilötunnus", "Puhelin", "Sähköposti", "Katuosoite",
                "Postinumero", "Postitoimipaikka", "Tilinumero", "Tuote", "Käyttöpaikka",
                "Suoramarkkinointikielto", "Nauhoite")
MAIL_HEADER = ("letter_id", "received", "full_name", "personal_id", "address", "postal_code_and_city",
               "phone", "email", "account", "product", "metering_point", "no_direct_marketing")
IN_PERSON_HEADER = ("Asiointi", "Päivämäärä", "Etunimet", "Sukunimi", "Henkilötunnus", "Lähiosoite",
                    "Postinumero", "Postitoimipaikka", "Puhelin", "Sähköposti", "Tilinumero", "Tuote",
                    "Käyttöpaikka", "Suoramarkkinointikielto", "Henkilöllisyys tarkistettu")
IN_PERSON_SHEET = "Asioinnit"
EXTENSIONS = {"web": "jsonl", "phone": "csv", "mail": "csv", "email": "mbox", "in_person": "xlsx"}

EMAIL_LABELS = {
    "fi": {"name": "Nimi", "personal_id": "Henkilötunnus", "address": "Osoite", "phone": "Puhelin",
           "account": "Tilinumero", "product": "Tuote", "metering_point": "Käyttöpaikka",
           "marketing": "Suoramarkkinointikielto"},
    "sv": {"name": "Namn", "personal_id": "Personbeteckning", "address": "Adress", "phone": "Telefon",
           "account": "Kontonummer", "product": "Produkt", "metering_point": "Förbrukningsplats",
           "marketing": "Förbud mot direktmarknadsföring"},
}
EMAIL_YES_NO = {"fi": ("kyllä", "ei"), "sv": ("ja", "nej")}
MAILBOX_ADDRESS = "asiakaspalvelu@energia.example"

_GREETINGS = {"fi": ("Hei,", "Hei!", "Hyvä asiakaspalvelu,", "Moi,", "Hei"),
              "sv": ("Hej,", "Hej!", "Bästa kundtjänst,", "Hejsan,")}
_INTROS = {"fi": ("Tässä tietoni sopimusta varten:", "Haluaisin tehdä sopimuksen. Tietoni ovat:",
                  "Päivitän yhteystietoni:", "Alla tietoni.", ""),
           "sv": ("Här är mina uppgifter för avtalet:", "Jag vill ingå ett avtal. Mina uppgifter:",
                  "Jag uppdaterar mina kontaktuppgifter:", "")}
_SIGN_OFFS = {"fi": ("Ystävällisin terveisin\n{full}", "Terveisin\n{first}", "t. {first}",
                     "Kiitos!\n\n{full}", "Terv. {first}"),
              "sv": ("Med vänliga hälsningar\n{full}", "Hälsningar\n{first}", "MVH {first}", "Tack!\n{full}")}
_SUBJECTS = {"fi": ("Sopimus", "Asiakastiedot", "Yhteystietojen päivitys", "Sähkösopimus", "Tilaus", ""),
             "sv": ("Avtal", "Kunduppgifter", "Uppdatering av kontaktuppgifter", "Elavtal")}
_QUESTIONS = {"fi": ("Kysymys laskusta", "Hei,\n\nmilloin seuraava laskuni erääntyy? Voiko eräpäivää siirtää?"),
              "sv": ("Fråga om fakturan", "Hej,\n\nnär förfaller min nästa faktura? Kan förfallodagen flyttas?")}


# --- time ------------------------------------------------------------------------------

def _last_sunday(year: int, month: int) -> datetime.date:
    day = datetime.date(year, month + 1, 1) - datetime.timedelta(days=1)
    return day - datetime.timedelta(days=(day.weekday() + 1) % 7)


@lru_cache(maxsize=None)
def _summer_time(year: int) -> tuple[datetime.datetime, datetime.datetime]:
    return (datetime.datetime.combine(_last_sunday(year, 3), datetime.time(3)),
            datetime.datetime.combine(_last_sunday(year, 10), datetime.time(4)))


_EET = datetime.timezone(datetime.timedelta(hours=2))
_EEST = datetime.timezone(datetime.timedelta(hours=3))


def aware(local: datetime.datetime) -> datetime.datetime:
    """Finnish local time with its UTC offset."""
    begins, ends = _summer_time(local.year)
    return local.replace(tzinfo=_EEST if begins <= local < ends else _EET)


# --- web ---------------------------------------------------------------------------------

_PLAIN_JSON = re.compile(r'[^"\\\x00-\x1f]*\Z')


def _json_value(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if _PLAIN_JSON.match(value):  # nothing to escape: the common case, without json's overhead
        return '"' + value + '"'
    return json.dumps(value, ensure_ascii=False)


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _member_column(key: str, values, null_bits: list[int], bit: int) -> list[str]:
    """'"key": value' per record; a missing value is left out ('') or null, by its bit."""
    null = f'"{key}": null'
    prefix = f'"{key}": '
    plain = all(isinstance(v, str) or v is None for v in values) and \
        not _NEEDS_ESCAPE.search("".join(v for v in values if v))
    if plain:  # the usual case: no value needs escaping, so skip the per-value check
        quoted = prefix + '"'
        return [(null if (bits >> bit) & 1 else "") if not value else quoted + value + '"'
                for value, bits in zip(values, null_bits)]
    return [(null if (bits >> bit) & 1 else "") if value is None or value == "" else prefix + _json_value(value)
            for value, bits in zip(values, null_bits)]


def _objects(*members: list[str]) -> list[str]:
    return ["{" + ", ".join(m for m in parts if m) + "}" for parts in zip(*members)]


WEB_FIELDS = ("id", "first_names", "last_name", "personal_id", "email", "phone", "street", "postal_code", "city",
              "address", "iban", "product", "metering_point", "direct_marketing_prohibited")


def web_lines(columns: dict[str, list], null_bits: list[int]) -> list[str]:
    """JSON lines, as `json.dumps(..., ensure_ascii=False)` writes them, built column by column.

    `columns` holds id, submitted_at, authenticated, first_names, last_name,
    personal_id, email, phone, street, postal_code, city, account, product,
    metering_point, marketing and language. A missing value is left out, or
    written as null when its field's bit (position in WEB_FIELDS) is set.
    """
    bit = {name: i for i, name in enumerate(WEB_FIELDS)}

    def member(key: str, source: str | None = None) -> list[str]:
        return _member_column(key, columns[source or key], null_bits, bit[key])

    person = _objects(member("first_names"), member("last_name"), member("personal_id"))
    address = _objects(member("street"), member("postal_code"), member("city"))
    no_address = _member_column("address", [None] * len(null_bits), null_bits, bit["address"])
    address = [f'"address": {a}' if a != "{}" else empty for a, empty in zip(address, no_address)]
    contact = _objects(member("email"), member("phone"), address)
    billing = [f'"billing": {{{m}}}' if m else "" for m in member("iban", "account")]
    service = _objects(member("product"), member("metering_point"))
    consents = _objects(member("direct_marketing_prohibited", "marketing"))
    return ["{" + ", ".join(m for m in parts if m) + "}" for parts in zip(
        member("id"),
        [f'"submitted_at": "{v}"' for v in columns["submitted_at"]],
        ['"authenticated": true' if v else '"authenticated": false' for v in columns["authenticated"]],
        ['"person": ' + v for v in person], ['"contact": ' + v for v in contact], billing,
        ['"service": ' + v for v in service], ['"consents": ' + v for v in consents],
        ['"language": ' + _json_value(v) for v in columns["language"]])]


def web_file(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


# --- phone and mail (CSV) ---------------------------------------------------------------

def csv_file(header: tuple[str, ...], rows: list, delimiter: str, encoding: str) -> bytes:
    """Header and rows; a row given as a str is written as it is (a broken line)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        if isinstance(row, str):
            buffer.write(row + "\r\n")
        else:
            writer.writerow(row)
    return buffer.getvalue().encode(encoding)


def phone_file(rows: list) -> bytes:
    return csv_file(PHONE_HEADER, rows, ";", "cp1252")


def mail_file(rows: list) -> bytes:
    return csv_file(MAIL_HEADER, rows, ",", "utf-8-sig")


# --- email (mbox) ---------------------------------------------------------------------------

def _header(value: str, charset: str) -> str:
    """An RFC 2047 encoded word for a non-ASCII header value (B encoding).

    >>> _header('Mäki', 'utf-8')
    '=?utf-8?b?TcOka2k=?='
    """
    if value.isascii():
        return value
    return f"=?{charset}?b?{binascii.b2a_base64(value.encode(charset), newline=False).decode('ascii')}?="


def _encode_body(text: str, charset: str, quoted_printable: bool) -> tuple[bytes, str]:
    data = text.encode(charset)
    if quoted_printable:
        return binascii.b2a_qp(data), "quoted-printable"
    return data, "8bit"


def _html(text: str) -> str:
    paragraphs = [p for p in text.split("\n\n")]
    body = "".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs)
    return f"<html><body>\n{body}</body></html>\n"


def email_body(language: str, lines: list[str], first: str, full: str, style: tuple[int, int, int]) -> str:
    """Greeting, the label lines and a sign-off."""
    greeting = _GREETINGS[language][style[0] % len(_GREETINGS[language])]
    intro = _INTROS[language][style[1] % len(_INTROS[language])]
    sign_off = _SIGN_OFFS[language][style[2] % len(_SIGN_OFFS[language])].format(first=first, full=full)
    parts = [greeting, ""]
    if intro:
        parts += [intro, ""]
    parts += lines + ["", sign_off, ""]
    return "\n".join(parts)


def question_body(language: str, first: str) -> tuple[str, str]:
    subject, text = _QUESTIONS[language]
    sign = "Terveisin" if language == "fi" else "Hälsningar"
    return subject, f"{text}\n\n{sign}\n{first}\n"


def email_message(*, message_id: str | None, local: datetime.datetime, sender: str, display_name: str,
                  subject: str, body: str, charset: str, quoted_printable: bool, with_html: bool,
                  boundary: str) -> bytes:
    """One mbox entry: the envelope line, headers and a text/plain (or alternative) body."""
    moment = aware(local)
    envelope = f"From {sender.strip().lower()} {local:%a %b} {local.day:2d} {local:%H:%M:%S %Y}\n"
    headers = [f"From: {_header(display_name, charset)} <{sender.strip()}>" if display_name else f"From: {sender.strip()}",
               f"To: {MAILBOX_ADDRESS}"]
    if subject:
        headers.append(f"Subject: {_header(subject, charset)}")
    headers.append(f"Date: {format_datetime(moment)}")
    if message_id:
        headers.append(f"Message-ID: {message_id}")
    headers.append("MIME-Version: 1.0")
    plain, encoding = _encode_body(body, charset, quoted_printable)
    if not with_html:
        headers += [f'Content-Type: text/plain; charset="{charset}"', f"Content-Transfer-Encoding: {encoding}"]
        payload = plain
    else:
        rich, rich_encoding = _encode_body(_html(body), charset, quoted_printable)
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        payload = (f"--{boundary}\nContent-Type: text/plain; charset=\"{charset}\"\n"
                   f"Content-Transfer-Encoding: {encoding}\n\n").encode("ascii") + plain + \
                  (f"\n--{boundary}\nContent-Type: text/html; charset=\"{charset}\"\n"
                   f"Content-Transfer-Encoding: {rich_encoding}\n\n").encode("ascii") + rich + \
                  f"\n--{boundary}--\n".encode("ascii")
    head = ("\n".join(headers) + "\n\n").encode("ascii")
    # mboxo: a body line starting with "From " would start a new message.
    payload = re.sub(rb"(?m)^From ", b">From ", payload)
    if not payload.endswith(b"\n"):
        payload += b"\n"
    return envelope.encode("ascii") + head + payload + b"\n"


def mbox_file(messages: list[bytes]) -> bytes:
    return b"".join(messages)


# --- in_person (xlsx) ---------------------------------------------------------------------

_FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
_CORE_TIME = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")
_SHEET_DATA = re.compile(rb"<sheetData>.*</sheetData>", re.S)
_COLUMNS = tuple(chr(ord("A") + i) for i in range(len(IN_PERSON_HEADER)))
# One row with every kind of value the desk writes, so the package gets its date style.
_TEMPLATE_ROW = ["A-0", datetime.datetime(2026, 1, 1, 9, 0), "x", "x", "x", "x", 100, "x", "x", "x", "x", "x",
                 "x", True, "Kyllä"]


def xlsx_file(rows: list[list]) -> bytes:
    """The workbook with the sheet Asioinnit.

    openpyxl (write-only mode) writes the package: workbook, styles, theme and
    the header row. Its row writer costs about 0.1 ms a row (12 s for 100,000
    rows, with or without lxml), so the data rows are rendered here with the very
    cell markup openpyxl uses (inline strings, `t="n"` numbers and date serials
    with its date style, `t="b"` booleans; a test compares the two) and spliced
    into its sheet. The zip is rewritten with fixed times: same rows, same bytes.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(IN_PERSON_SHEET)
    sheet.append(list(IN_PERSON_HEADER))
    sheet.append(_TEMPLATE_ROW)
    raw = io.BytesIO()
    workbook.save(raw)
    package = zipfile.ZipFile(io.BytesIO(raw.getvalue()))
    sheet_name = "xl/worksheets/sheet1.xml"
    template = package.read(sheet_name)
    date_style = re.search(rb'<c r="B2" s="(\d+)"', template).group(1).decode()
    header = re.search(rb'<row r="1">.*?</row>', template, re.S).group(0).decode("utf-8")
    data = "".join([header] + [xlsx_row(row, number, date_style) for number, row in enumerate(rows, start=2)])
    sheet_xml = _SHEET_DATA.sub(lambda _: b"<sheetData>" + data.encode("utf-8") + b"</sheetData>", template)
    return _deterministic_zip(package, {sheet_name: sheet_xml})


def xlsx_row(values: list, number: int, date_style: str) -> str:
    """One <row> as openpyxl's write-only writer renders it (None cells left out)."""
    cells = [f'<row r="{number}">']
    for column, value in zip(_COLUMNS, values):
        if value is None or value == "":
            continue
        ref = f"{column}{number}"
        if isinstance(value, bool):
            cells.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
        elif isinstance(value, datetime.datetime):
            cells.append(f'<c r="{ref}" s="{date_style}" t="n"><v>{"%.16g" % to_excel(value)}</v></c>')
        elif isinstance(value, (int, float)):
            cells.append(f'<c r="{ref}" t="n"><v>{"%.16g" % value}</v></c>')
        else:
            stripped = value.strip()
            space = ' xml:space="preserve"' if stripped and stripped != value else ""
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t{space}>{escape(value)}</t></is></c>')
    cells.append("</row>")
    return "".join(cells)


def _deterministic_zip(source: zipfile.ZipFile, replace: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = replace.get(info.filename) or source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _CORE_TIME.sub(rb"\g<1>2026-01-01T00:00:00Z\g<2>", content)
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            target.writestr(fixed, content)
    return out.getvalue()
