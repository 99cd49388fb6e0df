"""Reader for the customer-service mailbox export (`email_YYYYMMDD.mbox`).

One message is one record (docs/intake_formats.md, "email"): its `Message-ID` is the record
id, its `Date` the time and its `From` address the person's email; the details
are `label: value` lines, Finnish or Swedish, in the text/plain part (or in the
HTML part when there is no plain one).

Speed: a full `email` parse alone costs ~70 µs a message, `mailbox.mbox` more.
Here the file is split on its From_ lines directly, a message's MIME tree is
walked with a few byte operations, the labels are found with one generic regex
and a dict, and the dates, ids and addresses are read on whole Arrow columns:
~25 µs a message in all. The stdlib parser is the reference the tests compare
against.

The module is `pipeline.channels.email`; absolute imports keep `import email`
below pointing at the standard library, so the name shadows nothing.

>>> fields = labelled_fields(["Hei!\\n\\nNimi : Aino Testinen\\nTUOTE:sähkö\\n\\nTerveisin, Aino", "Kiitos!"])
>>> fields.iloc[0].dropna().to_dict(), int(fields.iloc[1].notna().sum())
({'full_name': 'Aino Testinen', 'product': 'sähkö'}, 0)
>>> html_to_text("<p>Namn:&nbsp;Test<br>Produkt: el</p>")
'\\nNamn: Test\\nProdukt: el\\n'
"""

from __future__ import annotations

import binascii
import email.utils
import html
import pathlib
import re
import unicodedata
from datetime import timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.channels.base import ChannelRead, UnreadableFile, read_errors, staged_frame
from pipeline.codes import Flag, Reason
from schemas.canonical import GIVEN_FIRST

CHANNEL = "email"

# Label (lower case, inner spaces single) -> staged column ("marketing": the raw answer).
LABELS: dict[str, str] = {
    "nimi": "full_name", "namn": "full_name",
    "henkilötunnus": "personal_id", "personbeteckning": "personal_id",
    "osoite": "address_line", "adress": "address_line",
    "puhelin": "phone", "telefon": "phone",
    "tilinumero": "account", "kontonummer": "account",
    "tuote": "product", "produkt": "product",
    "käyttöpaikka": "metering_point", "förbrukningsplats": "metering_point",
    "suoramarkkinointikielto": "marketing", "förbud mot direktmarknadsföring": "marketing",
}
FIELDS: tuple[str, ...] = tuple(dict.fromkeys(LABELS.values()))
# Both languages' answers count under either label: a Swedish answer to the
# Finnish label is still an answer.
MARKETING_ANSWERS: dict[str, bool] = {"kyllä": True, "ja": True, "ei": False, "nej": False}

# --- mbox framing -----------------------------------------------------------
# A literal "\n" rather than "^" + re.M lets the engine jump between line breaks.
_FROM_LINE = re.compile(rb"\nFrom [^\n]*\n")
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)  # mboxrd: writing added one '>'

# --- MIME -------------------------------------------------------------------
# A header block: header lines and their folded continuations, up to the first
# line that is neither (normally the blank line before the body).
_HEADER_BLOCK = re.compile(rb"(?:[!-9;-~]+:[^\n]*\n(?:[ \t][^\n]*\n)*)*")
_WANTED_HEADERS = frozenset({"message-id", "date", "from", "content-type", "content-transfer-encoding",
                             "content-disposition"})
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.I)
_BOUNDARY = re.compile(r";\s*boundary\s*=\s*(?:\"([^\"]+)\"|([^;\s]+))", re.I)
_FLOWED = re.compile(r";\s*format\s*=\s*\"?flowed", re.I)
_DELSP = re.compile(r";\s*delsp\s*=\s*\"?yes", re.I)
# Declared Latin-1 or ASCII with 8-bit bytes is, in practice, UTF-8 or Windows-1252.
_LATIN1_OR_ASCII = {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii"}
_MAX_MIME_DEPTH = 10

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HTML_INVISIBLE = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>", re.S | re.I)
_HTML_BREAK = re.compile(r"<\s*/?\s*(?:br|p|div|tr|li|ul|ol|table|h[1-6]|blockquote|pre)\b[^>]*>", re.I)
_HTML_CELL = re.compile(r"<\s*/?\s*t[dh]\b[^>]*>", re.I)
_HTML_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")
# Any "label: value" line; the label is then looked up in LABELS. A generic
# pattern and a dict are 3x faster than a case-insensitive alternation of labels.
_LABEL_LINE = re.compile(r"\n([^\n:]{1,40}+):([^\n]*)")

# --- columns (RE2 syntax, run by Arrow) ---------------------------------------
_ANGLE_ADDRESS = r"<\s*(?P<address>[^<>\s]+@[^<>\s]+)\s*>\s*$"
_BARE_ADDRESS = r"^\s*(?P<address>[^\s<>\"(),;:]+@[^\s<>\"(),;:]+)\s*(?:\([^()]*\)\s*)?$"
_ANGLE_ID = r"<(?P<id>[^<>]*)>"
# "Tue, 24 Nov 2026 18:03:11 +0200 (EET)" -> "24 Nov 2026 18:03:11 +0200"
_DATE_WEEKDAY = r"^\s*[A-Za-z]{3},\s*"
_DATE_COMMENT = r"\s*\([^()]*\)\s*$"


class _Malformed(Exception):
    """The message's structure cannot be parsed (internal; becomes a read error)."""


def read(path: pathlib.Path) -> ChannelRead:
    """Read one mbox file into staged records and read errors."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        raise UnreadableFile(Reason.FILE_UNREADABLE, f"{path.name}: cannot be opened") from None
    if not data.strip():
        raise UnreadableFile(Reason.FILE_EMPTY, f"{path.name}: no messages")
    messages = split_mbox(data)
    if messages is None:
        raise UnreadableFile(Reason.FILE_UNREADABLE, f"{path.name}: does not start with a From_ line (not an mbox)")

    numbers: list[int] = []
    ids: list[str | None] = []
    senders: list[str | None] = []
    dates: list[str | None] = []
    texts: list[str] = []
    errors: list[dict[str, object]] = []
    for number, raw in enumerate(messages, start=1):
        try:
            headers, text = parse_message(raw)
        except _Malformed:
            errors.append({"channel": CHANNEL, "record_number": number,
                           "source_record_id": message_ids([_headers_of(_header_block(raw)).get("message-id")])[0],
                           "reason": Reason.MALFORMED_RECORD.value, "raw": _decode(raw, "utf-8")})
            continue
        numbers.append(number)
        ids.append(headers.get("message-id"))
        senders.append(headers.get("from"))
        dates.append(headers.get("date"))
        texts.append(text)

    n = len(numbers)
    fields = labelled_fields(texts)
    marketing, flags = marketing_answers(fields["marketing"])
    registration = fields.notna().any(axis=1).to_numpy()
    records = staged_frame({
        "channel": [CHANNEL] * n,
        "source_record_id": message_ids(ids),
        "record_number": numbers,
        "observed_at": parse_dates(dates),
        **{name: fields[name] for name in FIELDS if name != "marketing"},
        "name_order": [GIVEN_FIRST] * n,
        "email": sender_addresses(senders),
        "marketing_prohibited": marketing,
        "identity_verified": [False] * n,  # nobody saw an ID document
        "read_flags": flags,
        "reject_reason": pd.Series(np.where(registration, None, Reason.NOT_A_REGISTRATION.value), dtype=object),
    }, n)
    return ChannelRead(records=records, errors=read_errors(errors))


def split_mbox(data: bytes) -> list[bytes] | None:
    """The messages of an mbox file, From_ lines removed and `>From ` unquoted.

    Line ends become LF. None if the file does not start with a From_ line.

    >>> split_mbox(b"From a@b Thu Nov 24 10:00:00 2026\\nSubject: x\\n\\n>From here\\n\\nFrom c@d Fri\\r\\nX: y\\r\\n")
    [b'Subject: x\\n\\nFrom here\\n', b'X: y\\n']
    """
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    data = data.lstrip()
    if not data.startswith(b"From "):
        return None
    data = b"\n" + data + (b"" if data.endswith(b"\n") else b"\n")
    from_lines = list(_FROM_LINE.finditer(data))
    ends = [line.start() + 1 for line in from_lines[1:]] + [len(data)]
    messages = []
    for from_line, end in zip(from_lines, ends):
        message = data[from_line.end():end]
        # The blank line before the next From_ line separates; it is not the body's.
        if message.endswith(b"\n\n"):
            message = message[:-1]
        if b">From " in message:
            message = _QUOTED_FROM.sub(rb"\1", message)
        messages.append(message)
    return messages


def parse_message(raw: bytes) -> tuple[dict[str, str], str]:
    """The wanted headers (lower-case names, unfolded values) and the message's text.

    The text is the first text/plain part that is not an attachment, else the
    first such text/html part with its tags stripped, else "". Raises
    `_Malformed` when the structure cannot be parsed.

    >>> parse_message(b"Message-ID: <1@x>\\nContent-Type: text/plain; charset=iso-8859-1\\n"
    ...               b"Content-Transfer-Encoding: quoted-printable\\n\\nK=E4ytt=F6paikka: 643=\\n1\\n")
    ({'message-id': '<1@x>', 'content-type': 'text/plain; charset=iso-8859-1', \
'content-transfer-encoding': 'quoted-printable'}, 'Käyttöpaikka: 6431\\n')
    """
    if not raw.endswith(b"\n"):
        raw += b"\n"
    block = _header_block(raw)
    if not block:
        raise _Malformed("no header")
    headers = _headers_of(block)
    body = raw[len(block) + 1:] if raw[len(block):len(block) + 1] == b"\n" else raw[len(block):]
    plain, rich = _find_texts(headers, body, 0)
    if plain is not None:
        return headers, plain
    return headers, html_to_text(rich) if rich is not None else ""


def html_to_text(markup: str) -> str:
    """Text of an HTML body, one line per block or table row, entities decoded."""
    markup = _HTML_COMMENT.sub("", markup)
    markup = _HTML_INVISIBLE.sub("", markup)
    markup = _SPACES.sub(" ", markup)  # source line breaks are only spaces in HTML
    markup = _HTML_BREAK.sub("\n", markup)
    markup = _HTML_CELL.sub(" ", markup)
    text = html.unescape(_HTML_TAG.sub("", markup)).replace("\xa0", " ")
    return "\n".join(line.strip() for line in text.split("\n"))


def labelled_fields(texts: list[str]) -> pd.DataFrame:
    """One row per text, one column per field of `FIELDS` (NA where absent).

    A line `label: value` with a known label (any case, spaces around the colon)
    fills its field; the first non-empty value wins; lines quoted with `>` are
    not the sender's and do not match.
    """
    columns: dict[str, list[str | None]] = {name: [None] * len(texts) for name in FIELDS}
    for row, text in enumerate(texts):
        if not text.isascii() and not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)  # 'ä' may come as 'a' + combining diaeresis
        for label, value in _LABEL_LINE.findall("\n" + text):
            label = label.lower()
            name = LABELS.get(label.strip()) or LABELS.get(" ".join(label.split()))
            if name is not None and columns[name][row] is None:
                value = value.strip()
                if value:
                    columns[name][row] = value
    return pd.DataFrame({name: pd.Series(values, dtype="string[pyarrow]") for name, values in columns.items()},
                        index=range(len(texts)))


def marketing_answers(answers: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The direct-marketing prohibition (boolean, NA = no answer) and read flags.

    >>> prohibited, flags = marketing_answers(pd.Series(["Kyllä", " nej.", None, "ehkä"], dtype="string"))
    >>> prohibited.tolist(), flags.tolist()
    ([True, False, <NA>, <NA>], ['', '', '', 'marketing_answer_unrecognised'])
    """
    answer = answers.astype("string[pyarrow]").str.strip().str.rstrip(".!").str.strip().str.lower()
    prohibited = answer.map(MARKETING_ANSWERS, na_action="ignore").astype("boolean")
    unrecognised = (answer.notna() & prohibited.isna()).to_numpy()
    flags = pd.Series(np.where(unrecognised, Flag.MARKETING_ANSWER_UNRECOGNISED.value, ""), dtype="string[pyarrow]")
    return prohibited, flags


def message_ids(values: list[str | None]) -> pd.Series:
    """`Message-ID` values without angle brackets (NA where none).

    >>> message_ids(["<a.1@example.invalid>", " b2@x ", "<>", None]).tolist()
    ['a.1@example.invalid', 'b2@x', <NA>, <NA>]
    """
    raw = pa.array(values, pa.string())
    angle = pc.extract_regex(raw, _ANGLE_ID)
    identifier = pc.utf8_trim_whitespace(pc.if_else(pc.is_valid(angle), angle.field("id"), raw))
    identifier = pc.if_else(pc.equal(identifier, ""), pa.scalar(None, pa.string()), identifier)
    return pd.Series(identifier.to_pandas(types_mapper=pd.ArrowDtype), dtype="string[pyarrow]")


def sender_addresses(values: list[str | None]) -> pd.Series:
    """The address of each `From` header, without its display name.

    Display names may be RFC 2047 encoded words; those never hold `<`, so the
    address is read without decoding them.

    >>> headers = ["=?utf-8?q?Testi_=C3=84ij=C3=B6?= <t@example.invalid>", "b@x.fi (Bea)", '"x" <>', None]
    >>> sender_addresses(headers).tolist()
    ['t@example.invalid', 'b@x.fi', <NA>, <NA>]
    """
    raw = pa.array(values, pa.string())
    angle = pc.extract_regex(raw, _ANGLE_ADDRESS)
    bare = pc.extract_regex(raw, _BARE_ADDRESS)
    address = pc.if_else(pc.is_valid(angle), angle.field("address"),
                         pc.if_else(pc.is_valid(bare), bare.field("address"), pa.scalar(None, pa.string())))
    result = pd.Series(address.to_pandas(types_mapper=pd.ArrowDtype), dtype="string[pyarrow]")
    # The odd rest (groups, obsolete syntax) goes to the stdlib's parser.
    for i in np.flatnonzero(result.isna().to_numpy() & pc.is_valid(raw).to_numpy(zero_copy_only=False)):
        result.iat[i] = email.utils.parseaddr(values[i])[1].strip() or pd.NA
    return result


def parse_dates(values: list[str | None]) -> pd.Series:
    """RFC 2822 `Date` header values as UTC (NaT where unreadable).

    A time without a zone, or with `-0000`, is taken as UTC (RFC 2822 §3.3).

    >>> parse_dates(["Tue, 24 Nov 2026 18:03:11 +0200", "24 Nov 2026 18:03 -0500 (EST)", "yesterday", None]).tolist()
    [Timestamp('2026-11-24 16:03:11+0000', tz='UTC'), Timestamp('2026-11-24 23:03:00+0000', tz='UTC'), NaT, NaT]
    """
    raw = pa.array(values, pa.string())
    tidy = pc.replace_substring_regex(pc.replace_substring_regex(raw, _DATE_WEEKDAY, ""), _DATE_COMMENT, "")
    tidy = pc.replace_substring_regex(tidy, r"\s+", " ")
    stamps = pc.strptime(tidy, format="%d %b %Y %H:%M:%S %z", unit="s", error_is_null=True)
    result = pd.Series(stamps.to_pandas(), dtype="datetime64[ns, UTC]")
    # Other shapes (no seconds, two-digit years, zone names) go to the stdlib's parser.
    for i in np.flatnonzero(result.isna().to_numpy() & pc.is_valid(raw).to_numpy(zero_copy_only=False)):
        try:
            moment = email.utils.parsedate_to_datetime(values[i])
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if 1900 <= moment.year <= 2200:  # inside datetime64[ns]
            result.iat[i] = pd.Timestamp(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
    return result


# --- per message ----------------------------------------------------------------

def _header_block(raw: bytes) -> bytes:
    return raw[:_HEADER_BLOCK.match(raw).end()]


def _headers_of(block: bytes) -> dict[str, str]:
    """The wanted headers of a header block, unfolded (the first of each, as msg[name]).

    A loop over the lines beats a regex or a find per wanted name here.
    """
    headers: dict[str, str] = {}
    current = None
    for line in _decode(block, "utf-8").split("\n"):
        if line[:1] in (" ", "\t"):  # a folded continuation
            if current is not None:
                headers[current] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        name = name.lower()
        current = name if name in _WANTED_HEADERS and name not in headers else None
        if current is not None:
            headers[name] = value.strip()
    return headers


def _find_texts(headers: dict[str, str], body: bytes, depth: int) -> tuple[str | None, str | None]:
    """(first text/plain, first text/html) of this entity, attachments skipped."""
    content_type = headers.get("content-type", "text/plain")
    media = content_type.partition(";")[0].strip().lower() or "text/plain"
    if media.startswith("multipart/"):
        if depth >= _MAX_MIME_DEPTH:
            raise _Malformed("nesting too deep")
        plain = rich = None
        for part in _multipart_parts(content_type, body):
            block = _header_block(part)
            part_body = part[len(block) + 1:] if part[len(block):len(block) + 1] == b"\n" else part[len(block):]
            part_plain, part_rich = _find_texts(_headers_of(block), part_body, depth + 1)
            if part_plain is not None:
                return part_plain, rich
            rich = rich if rich is not None else part_rich
        return None, rich
    if media not in ("text/plain", "text/html"):
        return None, None
    if depth and headers.get("content-disposition", "").lower().startswith("attachment"):
        return None, None
    text = _decode_body(content_type, headers.get("content-transfer-encoding", ""), body)
    return (text, None) if media == "text/plain" else (None, text)


def _multipart_parts(content_type: str, body: bytes) -> list[bytes]:
    """The bodies between a multipart's delimiter lines (RFC 2046 §5.1.1)."""
    found = _BOUNDARY.search(content_type)
    if not found:
        raise _Malformed("multipart without boundary")
    delimiter = b"\n--" + (found.group(1) or found.group(2)).encode("ascii", "replace")
    body = b"\n" + body  # a delimiter on the first line also follows a line break
    positions = []
    start = body.find(delimiter)
    while start != -1:
        positions.append(start)
        start = body.find(delimiter, start + len(delimiter))
    if not positions:
        raise _Malformed("multipart boundary not found")
    parts = []
    for here, following in zip(positions, positions[1:] + [len(body)]):
        after = here + len(delimiter)
        if body[after:after + 2] == b"--":
            break  # the close delimiter: what follows is the epilogue
        line_end = body.find(b"\n", after)
        if line_end != -1 and line_end < following:
            parts.append(body[line_end + 1:following] + b"\n")
    return parts


def _decode_body(content_type: str, transfer_encoding: str, body: bytes) -> str:
    encoding = transfer_encoding.strip().lower()
    if encoding == "quoted-printable":
        body = binascii.a2b_qp(body)
    elif encoding == "base64":
        try:
            body = binascii.a2b_base64(body)
        except binascii.Error:
            raise _Malformed("base64 body cannot be decoded") from None
    found = _CHARSET.search(content_type)
    text = _decode(body, found.group(1).lower() if found else "us-ascii")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _FLOWED.search(content_type):
        text = _unflow(text, delete_space=bool(_DELSP.search(content_type)))
    return text


def _decode(data: bytes, charset: str) -> str:
    """Decode as declared, else UTF-8, else Windows-1252, else Latin-1 (never fails)."""
    if data.isascii():
        return data.decode("ascii")
    candidates = ("utf-8", "cp1252") if charset in _LATIN1_OR_ASCII else (charset, "utf-8", "cp1252")
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):  # unknown or not a text codec; a NUL in the name; undecodable
            continue
    return data.decode("latin-1")


def _unflow(text: str, delete_space: bool) -> str:
    """Join format=flowed soft line breaks (RFC 3676): a line ending in a space goes on."""
    out: list[str] = []
    carry = ""
    for line in text.split("\n"):
        if line.endswith(" ") and line != "-- ":
            carry += line[:-1] if delete_space else line
        else:
            out.append(carry + line)
            carry = ""
    if carry:
        out.append(carry)
    return "\n".join(out)
