"""Find personal values where they must not be: the needles, and a byte scanner for them.

    needles = needles_from_landing(landing, ground_truth)   # from the INPUT, never the register
    hits = scan_tree([dagster_home, ...], needles, exclude=[...])

The needles are the personal values of a landing zone, read straight from its
raw files (not with the pipeline's readers, so that a reader that drops a field,
as the phone reader drops `Nauhoite`, cannot hide it from the scan): every
personal identity code, bank account (IBAN or old domestic number), e-mail
address, phone number and call-recording reference, as typed and in the forms
the pipeline turns them into (`pipeline.normalise`). Rows a source broke (a cut
line, a stray delimiter) are read by position from both ends and swept with
patterns, so their values are needles too.

The people's first names, last names and street addresses are needles too
(`NAME`, `STREET`): as typed, as the pipeline writes them (`pipeline.normalise`),
each name of a full name on its own, in any letter case. They are words, so they
count only as whole words (a short first name is part of many an English word),
and they may hold ä, ö or å: each is searched as UTF-8 and as JSON writes it
(`\\u00e4`, the event log).

A `Hit` says which KIND of needle was found in which file and how many distinct
ones: never the needle itself, so a failing test prints no personal value.
Matching is on bytes, ASCII case folded; gzip files and zip members are scanned
inside as well. The other needle kinds are ASCII in the forms searched (codes,
IBANs, phones, e-mail addresses of the generator's people, recording references),
so the UTF-8 bytes are the only encoding that matters for SQLite (UTF-8 text),
JSON and log files.
"""

from __future__ import annotations

import csv
import email
import email.policy
import email.utils
import gzip
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from python_calamine import CalamineWorkbook

from pipeline.normalise import email as email_address
from pipeline.normalise import address, hetu, iban, names, phone

PERSONAL_ID, ACCOUNT, EMAIL, PHONE, RECORDING = "personal_id", "account", "email", "phone", "recording"
NAME, STREET = "name", "street_address"
# Kinds with a shape of their own: a field of a broken row is taken as one when it looks like one.
SHAPED_KINDS: tuple[str, ...] = (PERSONAL_ID, ACCOUNT, EMAIL, PHONE, RECORDING)
# Kinds that are words (first names, last names, street addresses): matched as whole words only,
# since a short name ("Ella", "Ari") is part of many an English word in a log.
WORD_KINDS: tuple[str, ...] = (NAME, STREET)
KINDS: tuple[str, ...] = SHAPED_KINDS + WORD_KINDS
# Shorter values (a cut-off "+358 4") are not specific enough to mean anything when found.
MIN_LENGTH = 6
# A name is a word: three letters ("Eva", "Ida") are enough when matched as a whole word.
MIN_NAME_LENGTH = 3
# A byte that continues a word: a needle of a word kind must not have one on either side.
_WORD_BYTE = rb"[a-z0-9_\x80-\xff]"
# A street address line that goes on with the postal code and city (the e-mail's `Osoite`).
_POSTAL_CODE_RE = re.compile(r",?\s*\b\d{5}\b")

# Patterns for rows a source broke, whose fields cannot be told apart by position.
_HETU_RE = re.compile(r"(?<![0-9A-Za-z])\d{6}[-+A-FU-Ya-fu-y]\d{3}[0-9A-Ya-y](?![0-9A-Za-z])")
_IBAN_RE = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]{2}\d{2}(?: ?[0-9]){14}(?![0-9])")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_RECORDING_RE = re.compile(r"REC-[0-9A-Za-z-]+")
# Loose shapes, to take a field of a broken row as a needle only when it looks like one.
_SHAPES = {
    PERSONAL_ID: re.compile(r"\s*[0-9Oo]{6}\s*[-+A-Za-z]\s*[0-9Oo]{3}\s*[0-9A-Za-z]\s*"),
    ACCOUNT: re.compile(r"\s*(?:[A-Za-z]{2}[0-9 Oo]{16,}|[0-9Oo]{6}-?[0-9Oo]{2,8})\s*"),
    EMAIL: re.compile(r"\s*\S+@\S+\s*"),
    PHONE: re.compile(r"\s*\+?[0-9Oo][0-9Oo ()\-]{6,15}\s*"),  # not an 18-digit metering point
    RECORDING: re.compile(r"\s*REC-\S+\s*"),
}

# Each channel's column (or JSON key, or e-mail label) for each kind.
PHONE_COLUMNS = {"Henkilötunnus": PERSONAL_ID, "Puhelin": PHONE, "Sähköposti": EMAIL, "Tilinumero": ACCOUNT,
                 "Nauhoite": RECORDING, "Nimi": NAME, "Katuosoite": STREET}
MAIL_COLUMNS = {"personal_id": PERSONAL_ID, "phone": PHONE, "email": EMAIL, "account": ACCOUNT,
                "full_name": NAME, "address": STREET}
IN_PERSON_COLUMNS = {"Henkilötunnus": PERSONAL_ID, "Puhelin": PHONE, "Sähköposti": EMAIL, "Tilinumero": ACCOUNT,
                     "Etunimet": NAME, "Sukunimi": NAME, "Lähiosoite": STREET}
WEB_KEYS = {"personal_id": PERSONAL_ID, "phone": PHONE, "email": EMAIL, "iban": ACCOUNT,
            "first_names": NAME, "last_name": NAME, "street": STREET}
EMAIL_LABELS = {"henkilötunnus": PERSONAL_ID, "personbeteckning": PERSONAL_ID, "puhelin": PHONE,
                "telefon": PHONE, "tilinumero": ACCOUNT, "kontonummer": ACCOUNT,
                "nimi": NAME, "namn": NAME, "osoite": STREET, "adress": STREET}
# Every key of the web format (docs/intake_formats.md): any other key is someone's typing.
WEB_FORMAT_KEYS = {"id", "submitted_at", "authenticated", "person", "first_names", "last_name", "personal_id",
                   "contact", "email", "phone", "address", "street", "postal_code", "city", "billing", "iban",
                   "service", "product", "metering_point", "consents", "direct_marketing_prohibited", "language"}
_WEB_PAIR_RE = re.compile(r'"(personal_id|phone|email|iban)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_LABEL_RE = re.compile(r"^\s*([^\W\d_][^:\n]{1,40}?)\s*:\s*(.*?)\s*$", re.MULTILINE)


class Needles:
    """Personal values by kind, each in every form it may take, lower-cased UTF-8 bytes."""

    def __init__(self) -> None:
        self.by_kind: dict[str, set[bytes]] = {kind: set() for kind in KINDS}
        self._patterns: dict[str, tuple[int, re.Pattern[bytes] | None]] = {}

    def counts(self) -> dict[str, int]:
        return {kind: len(values) for kind, values in self.by_kind.items()}

    def _put(self, kind: str, text: str | None) -> None:
        if text is None:
            return
        text = text.strip()
        if len(text) < (MIN_NAME_LENGTH if kind == NAME else MIN_LENGTH):
            return
        if kind in WORD_KINDS:
            # Any letter case, as UTF-8 and as JSON writes it (`M\\u00e4kinen`: the event log).
            for form in {text, text.lower(), text.upper(), text.title()}:
                self.by_kind[kind].add(form.lower().encode("utf-8"))
                self.by_kind[kind].add(json.dumps(form)[1:-1].lower().encode("ascii"))
            return
        self.by_kind[kind].add(text.lower().encode("utf-8"))

    def word_pattern(self, kind: str) -> re.Pattern[bytes] | None:
        """One pattern for every needle of a word kind, each matched as a whole word."""
        values = self.by_kind[kind]
        cached = self._patterns.get(kind)
        if cached is None or cached[0] != len(values):
            alternatives = b"|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
            pattern = re.compile(rb"(?<!" + _WORD_BYTE + rb")(?:" + alternatives + rb")(?!" + _WORD_BYTE + rb")") \
                if values else None
            cached = self._patterns[kind] = (len(values), pattern)
        return cached[1]

    def add(self, kind: str, value: object) -> None:
        """A value as typed, and the forms the pipeline may turn it into."""
        if value is None or (isinstance(value, float) and value != value):
            return
        if isinstance(value, float) and value.is_integer():  # a number cell: its digits as typed
            value = str(int(value))
        raw = str(value).strip()
        if not raw:
            return
        self._put(kind, raw)
        self._put(kind, " ".join(raw.split()))
        if kind == PERSONAL_ID:
            self._add_personal_id(raw)
        elif kind == ACCOUNT:
            self._add_account(raw)
        elif kind == PHONE:
            self._add_phone(raw)
        elif kind == EMAIL:
            self._put(EMAIL, email_address.compact(raw))
        elif kind == NAME:
            self._add_name(raw)
        elif kind == STREET:
            self._add_street(raw)

    def _add_name(self, raw: str) -> None:
        """A whole name as typed and as the pipeline writes it, and each name in it."""
        collapsed = " ".join(raw.replace(",", " ").split())
        self._put(NAME, collapsed)
        self._put(NAME, names.case_name(collapsed))
        for token in collapsed.split():
            self._put(NAME, token)
            self._put(NAME, names.case_name(token))
            for part in token.split("-"):
                self._put(NAME, part)

    def _add_street(self, raw: str) -> None:
        """A street address (street, number, stair and flat) as typed and as normalised."""
        street = _POSTAL_CODE_RE.split(raw, maxsplit=1)[0].strip(" ,")  # `Kuusitie 5 B 12, 00100 Helsinki`
        collapsed = " ".join(street.split())
        self._put(STREET, collapsed)
        self._put(STREET, address.normalise_street(collapsed))

    def _add_personal_id(self, raw: str) -> None:
        compact = hetu.compact(raw)
        self._put(PERSONAL_ID, compact)
        self._put(PERSONAL_ID, hetu.repair_o_for_zero(compact))  # the canonical code of a repaired one

    def _add_account(self, raw: str) -> None:
        compact = iban.compact(raw)
        self._put(ACCOUNT, compact)
        self._put(ACCOUNT, iban.repair_o_for_zero(compact))
        canonical = iban.inspect(raw).iban
        if canonical:
            self._put(ACCOUNT, canonical)
            self._put(ACCOUNT, " ".join(canonical[i:i + 4] for i in range(0, len(canonical), 4)))
            self._put(ACCOUNT, canonical[4:])  # the BBAN: a domestic number's 14-digit machine form
        if "-" in raw:  # a domestic number: its digits without the hyphen
            self._put(ACCOUNT, re.sub(r"\D", "", raw))

    def _add_phone(self, raw: str) -> None:
        self._put(PHONE, phone.compact(raw))
        self._put(PHONE, re.sub(r"[^\d+]", "", raw))
        try:
            e164 = phone.validate(raw)
        except Exception:  # noqa: BLE001 - an invalid number has no canonical form
            return
        self._put(PHONE, e164)
        self._put(PHONE, e164.lstrip("+"))
        if e164.startswith("+358"):
            self._put(PHONE, "0" + e164[4:])  # the national form

    def sweep(self, text: str, *, emails: bool = True) -> None:
        """Values found by pattern in text whose fields cannot be told apart (a broken row)."""
        for match in _HETU_RE.finditer(text):
            self.add(PERSONAL_ID, match.group())
        for match in _IBAN_RE.finditer(text):
            self.add(ACCOUNT, match.group())
        for match in _RECORDING_RE.finditer(text):
            self.add(RECORDING, match.group())
        if emails:
            for match in _EMAIL_RE.finditer(text):
                self.add(EMAIL, match.group())

    def add_if_shaped(self, kind: str, value: str | None) -> None:
        """A field of a broken row, taken only when it looks like a value of its kind."""
        if value is not None and _SHAPES[kind].fullmatch(value):
            self.add(kind, value)


# --- reading the landing zone ---------------------------------------------------------------

def _delimited(needles: Needles, text: str, delimiter: str, columns: dict[str, str]) -> int:
    """A CSV export's needles; returns how many rows were read (header excluded)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return 0
    header = [name.strip() for name in next(csv.reader([lines[0]], delimiter=delimiter))]
    positions = {header.index(name): kind for name, kind in columns.items() if name in header}
    if not positions:  # no header at all (a broken file): every row is values
        header, positions = [], {}
    for name in header:  # a value typed into a header cell
        for kind in SHAPED_KINDS:
            needles.add_if_shaped(kind, name)
    rows = 0
    for line in lines[1:] if header else lines:
        fields = next(csv.reader([line], delimiter=delimiter), [])
        rows += 1
        needles.sweep(line)
        if header and len(fields) == len(header):
            for position, kind in positions.items():
                needles.add(kind, fields[position])
            continue
        # A broken row (a stray delimiter or quote): every field, split with and without
        # the quoting rules, taken when it looks like a value of some kind.
        for field in fields + line.split(delimiter):
            for kind in SHAPED_KINDS:
                needles.add_if_shaped(kind, field)
    return rows


def _web(needles: Needles, text: str) -> int:
    rows = 0

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if key in WEB_KEYS and isinstance(sub, (str, int, float)) and not isinstance(sub, bool):
                    needles.add(WEB_KEYS[key], sub if isinstance(sub, str) else str(sub))
                walk(sub)
                if key not in WEB_FORMAT_KEYS:  # a value typed where a key belongs, and what it holds
                    for kind in SHAPED_KINDS:
                        needles.add_if_shaped(kind, key)
                        needles.add_if_shaped(kind, sub if isinstance(sub, str) else None)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for line in text.splitlines():
        if not line.strip():
            continue
        rows += 1
        needles.sweep(line)
        for key, value in _WEB_PAIR_RE.findall(line):  # also in a line cut short
            needles.add(WEB_KEYS[key], json.loads(f'"{value}"'))
        try:
            walk(json.loads(line))
        except ValueError:
            continue
    return rows


def _message_texts(message: email.message.Message) -> list[str]:
    texts: list[str] = []
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        try:
            texts.append(payload.decode(charset, errors="replace"))
        except LookupError:
            texts.append(payload.decode("latin-1"))
    return texts


def _mbox(needles: Needles, data: bytes) -> int:
    """Messages split on From_ lines; each message's From address and labelled values."""
    chunks = re.split(rb"(?m)^From ", data)
    # Text before the first From_ line (all of a file that is no mbox) is a message of its own.
    messages = [(index > 0, chunk) for index, chunk in enumerate(chunks) if chunk.strip()]
    for after_from_line, chunk in messages:
        rest = chunk
        if after_from_line:
            first_line, _, rest = chunk.partition(b"\n")
            sender = first_line.split(b" ", 1)[0].decode("latin-1")
            needles.add(EMAIL, sender if "@" in sender else None)
        message = email.message_from_bytes(rest, policy=email.policy.compat32)
        for header in ("From", "Reply-To", "Sender"):
            for display_name, sender_address in email.utils.getaddresses(message.get_all(header, [])):
                needles.add(EMAIL, sender_address)
                needles.add(NAME, display_name or None)
        for text in _message_texts(message):
            text = re.sub(r"<br\s*/?>|</?p>", "\n", text)
            needles.sweep(text, emails=False)  # the body may name the company's own address
            for label, value in _LABEL_RE.findall(text):
                kind = EMAIL_LABELS.get(" ".join(label.lower().split()))
                if kind:
                    needles.add(kind, value)
    return len(messages)


def _xlsx(needles: Needles, path: Path) -> int:
    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Asioinnit").to_python()
    except Exception:  # noqa: BLE001 - a truncated workbook: its bytes are zipped, nothing to read
        return 0
    if not rows:
        return 0
    header = [str(cell).strip() for cell in rows[0]]
    positions = {header.index(name): kind for name, kind in IN_PERSON_COLUMNS.items() if name in header}
    for cell in header:  # a value typed where a header belongs
        for kind in SHAPED_KINDS:
            needles.add_if_shaped(kind, cell)
    for row in rows[1:]:
        for position, kind in positions.items():
            if position < len(row):
                needles.add(kind, row[position])
        needles.sweep(" ".join(str(cell) for cell in row if isinstance(cell, str)))
    return len(rows) - 1


def needles_from_landing(landing: Path, ground_truth: Path | None = None) -> tuple[Needles, dict[str, int]]:
    """Every personal value in a landing zone (and the generator's true codes); rows read per channel."""
    needles = Needles()
    rows: dict[str, int] = {}
    for path in sorted(Path(landing).rglob("*")):
        if not path.is_file() or path.name.endswith(".ready"):  # a `.ready` marker is empty, not data
            continue
        channel = path.parent.name
        data = path.read_bytes()
        if channel == "web":
            n = _web(needles, data.decode("utf-8", errors="replace"))
        elif channel == "phone":
            n = _delimited(needles, data.decode("cp1252", errors="replace"), ";", PHONE_COLUMNS)
        elif channel == "mail":
            n = _delimited(needles, data.decode("utf-8-sig", errors="replace"), ",", MAIL_COLUMNS)
        elif channel == "email":
            n = _mbox(needles, data)
        elif channel == "in_person":
            n = _xlsx(needles, path)
        else:
            continue
        rows[channel] = rows.get(channel, 0) + n
    if ground_truth is not None:
        truth = pd.read_csv(ground_truth, dtype=str, keep_default_na=False, usecols=["personal_id_true"])
        for code in truth["personal_id_true"]:
            needles.add(PERSONAL_ID, code or None)
    return needles, rows


# --- the scanner ----------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Hit:
    """Distinct needles of one kind found in one file: no value, only where and how many."""

    file: str
    kind: str
    count: int

    def __str__(self) -> str:
        return f"{self.count} {self.kind} value(s) in {self.file}"


def _contents(name: str, data: bytes) -> Iterable[tuple[str, bytes]]:
    """The file's bytes, and what is inside a gzip file or a zip archive."""
    yield name, data
    if data[:2] == b"\x1f\x8b":
        try:
            yield f"{name} (gunzipped)", gzip.decompress(data)
        except (OSError, EOFError):
            pass
    elif data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    yield f"{name}:{member}", archive.read(member)
        except (zipfile.BadZipFile, OSError, EOFError):
            pass


def scan_bytes(data: bytes, needles: Needles) -> dict[str, int]:
    """Distinct needles of each kind found in `data` (ASCII case folded); kinds with none left out.

    Needles of a word kind (names, street addresses) count only as whole words."""
    haystack = data.lower()
    found = {kind: sum(1 for needle in needles.by_kind[kind] if needle in haystack) for kind in SHAPED_KINDS}
    for kind in WORD_KINDS:
        pattern = needles.word_pattern(kind)
        found[kind] = len(set(pattern.findall(haystack))) if pattern is not None else 0
    return {kind: n for kind, n in found.items() if n}


def scan_file(path: Path, needles: Needles, label: str | None = None) -> list[Hit]:
    hits: list[Hit] = []
    for name, data in _contents(label or str(path), Path(path).read_bytes()):
        hits.extend(Hit(name, kind, n) for kind, n in scan_bytes(data, needles).items())
    return hits


def files_under(roots: Iterable[Path], exclude: Iterable[Path] = ()) -> list[Path]:
    """Every file under the roots, except those at or under an excluded path."""
    excluded = [Path(p).resolve() for p in exclude]
    found: set[Path] = set()
    for root in roots:
        for path in [Path(root)] if Path(root).is_file() else Path(root).rglob("*"):
            resolved = path.resolve()
            if path.is_file() and not any(resolved == e or e in resolved.parents for e in excluded):
                found.add(resolved)
    return sorted(found)


def scan_tree(roots: Iterable[Path], needles: Needles, exclude: Iterable[Path] = (),
              relative_to: Path | None = None) -> tuple[list[Hit], list[Path]]:
    """Hits in every file under the roots (not under `exclude`), and the files scanned."""
    files = files_under(roots, exclude)
    hits: list[Hit] = []
    for path in files:
        label = str(path.relative_to(relative_to)) if relative_to and relative_to in path.parents else str(path)
        hits.extend(scan_file(path, needles, label))
    return sorted(hits), files
