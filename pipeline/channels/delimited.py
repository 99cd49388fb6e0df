"""Delimited text exports: what the two CSV readers (call centre, letters) share.

Reading bytes (`file_bytes`, `decode_by_bom`), checking a header (`check_header`),
splitting records with pyarrow and, where a bad quote or line breaks a file,
record by record with resynchronisation (`read_delimited`, `resynchronised_rows`),
and turning the raw text into staged columns (`clean_text`, `helsinki_to_utc`,
`yes_no`, `flag_where`, `constant_text`). The web reader takes the text helpers too.

>>> answers, unrecognised = yes_no(pd.Series([" k", "E", None, "ehkä"]), {"K": True, "E": False})
>>> answers.tolist(), unrecognised.tolist()
([True, False, <NA>, <NA>], [False, False, False, True])
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.channels.base import UnreadableFile
from pipeline.codes import Flag, Reason
from pipeline.finland import TIME_ZONE
from pipeline.privacy import mask


def file_bytes(path: Path) -> bytes:
    """The file's bytes; a zero-byte (or whitespace-only) file is `file_empty`."""
    try:
        data = path.read_bytes()
    except OSError:
        raise UnreadableFile(Reason.FILE_UNREADABLE, f"{path.name}: the file cannot be opened") from None
    if not data or data.isspace():  # isspace stops at the first other byte; strip() would copy
        raise UnreadableFile(Reason.FILE_EMPTY, f"{path.name}: the file holds no header and no records")
    return data


_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
)


def decode_by_bom(file_name: str, data: bytes) -> bytes | None:
    """UTF-8 bytes without the mark of a file that starts with a Unicode byte-order mark; else None.

    Text that is not what its mark says is `file_encoding`; nothing after the mark is `file_empty`.

    >>> decode_by_bom("f.csv", "\\ufeffa;ä\\r\\n".encode("utf-16-le"))
    b'a;\\xc3\\xa4\\r\\n'
    >>> decode_by_bom("f.csv", b"a;b") is None
    True
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(encoding)
            except UnicodeDecodeError as error:
                raise UnreadableFile(Reason.FILE_ENCODING, f"{file_name}: byte at offset {error.start + len(bom)} "
                                                           f"is not {encoding.upper()}") from None
            if not text or text.isspace():
                raise UnreadableFile(Reason.FILE_EMPTY, f"{file_name}: the file holds no header and no records")
            return text.encode("utf-8")
    return None


@dataclass
class DelimitedRows:
    """The good rows of a delimited file as Arrow string columns, plus the bad rows."""

    columns: dict[str, pa.ChunkedArray]  # file column name -> raw text (not stripped)
    record_numbers: np.ndarray           # line number of each good row, the header being line 1
                                         # (the row number instead if a quoted value spans lines)
    bad_rows: list[tuple[int, str]]      # (number, raw row text) of rows with a wrong field count
    header: list[str]                    # the file's column names, in file order


def _header_names(file_name: str, first_line: str, delimiter: str) -> list[str]:
    try:
        fields = next(csv.reader([first_line], delimiter=delimiter), [])
    except csv.Error:  # its message may quote the line, which may hold values
        raise UnreadableFile(Reason.FILE_UNREADABLE, f"{file_name}: the header row cannot be parsed") from None
    return [name.strip() for name in fields]


def check_header(file_name: str, names: Sequence[str], expected: Sequence[str]) -> None:
    """Raise `UnreadableFile` unless `names` holds each expected column exactly once.

    Missing columns are reported first and by our own names only: when the first row
    is not a header at all its "names" are values, which must not reach a message.

    >>> check_header("f.csv", ["a", "b"], ["a", "b"])
    >>> check_header("f.csv", ["a"], ["a", "b"])
    Traceback (most recent call last):
    pipeline.channels.base.UnreadableFile: file_missing_column: f.csv: missing column(s) 'b'
    >>> check_header("f.csv", ["a", "b", "c"], ["a", "b"])
    Traceback (most recent call last):
    pipeline.channels.base.UnreadableFile: file_unknown_column: f.csv: unknown column(s) '*' (column 3)
    """
    missing = [name for name in expected if name not in names]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        extra = sum(1 for name in names if name not in expected)
        more = f" ({extra} column(s) not in the format)" if extra else ""
        raise UnreadableFile(Reason.FILE_MISSING_COLUMN, f"{file_name}: missing column(s) {listed}{more}")
    seen: set[str] = set()
    unknown: list[str] = []
    for position, name in enumerate(names, start=1):
        if name not in expected or name in seen:
            # Masked, with its position: even in a real header, a cell may hold a value typed there.
            unknown.append(f"{mask(name[:40])!r} (column {position})")
        seen.add(name)
    if unknown:
        listed = ", ".join(unknown)
        raise UnreadableFile(Reason.FILE_UNKNOWN_COLUMN, f"{file_name}: unknown column(s) {listed}")


def _line_numbers(data: bytes, rows_seen: int) -> np.ndarray | None:
    """Each row's line number, when empty lines made pyarrow's row numbers differ from them.

    Row r (the header is row 1) is the r-th non-empty line, provided every row is one
    line. When a quoted value spans lines that does not hold: keep the row numbers
    (None), which still order the records and locate them for a steward.
    """
    if b"\n\n" not in data and not data.startswith(b"\n"):
        return None
    lengths = np.diff(np.concatenate(([-1], np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))))) - 1
    non_empty = np.flatnonzero(lengths > 0) + 1
    if len(non_empty) != rows_seen + 1:
        return None
    return non_empty


# A quoted value may span lines (an address with a line break); a record that has
# not ended after this many lines is taken for an unclosed quote while resynchronising.
MAX_RECORD_LINES = 20


def read_delimited(file_name: str, data: bytes, *, delimiter: str, expected: Sequence[str],
                   drop: Sequence[str] = ()) -> DelimitedRows:
    """Read UTF-8 CSV bytes (header in row 1) with every column as text.

    Rows with the wrong number of fields are set aside with their number; blank
    lines are skipped; the columns in `drop` are never materialised. pyarrow's own
    messages quote row text, so none of them is passed on. CRLF, LF and CR-only
    line endings are all read. A header with no record under it is `file_empty`.

    pyarrow reads the file first. When a set-aside row spans lines (a quote opened
    and never closed swallows the lines after it until some later quote) or pyarrow
    refuses the file, it is read again with `resynchronised_rows`, which sets aside
    only the line where the broken record starts and carries on at the next line.
    """
    data = data.replace(b"\r\n", b"\n")  # one line ending, so a line is blank or not the same way everywhere
    if b"\r" in data:
        # CR-only (old Mac) line endings, or a stray CR: pyarrow and the csv module both end
        # a line at a lone CR outside quotes; inside quotes it is a line break like LF.
        data = data.replace(b"\r", b"\n")
    if not data.endswith(b"\n"):
        data += b"\n"
    first_line = data[: data.index(b"\n")].decode("utf-8")
    header = _header_names(file_name, first_line, delimiter)
    check_header(file_name, header, expected)

    keep = [name for name in header if name not in drop]
    table, bad_rows = _arrow_read(data, delimiter=delimiter, header=header, keep=keep)
    if table is None or table.num_rows + len(bad_rows) != _non_empty_lines(data) - 1:
        # Some row spans lines: a quoted value with a line break, or a quote never closed
        # that ran into the records after it. Only record by record can the two be told apart.
        rows = resynchronised_rows(data, delimiter=delimiter, header=header, keep=keep)
    else:
        # pyarrow numbers rows from the header (row 1), not counting empty lines; a line of
        # spaces is a row with one field, set aside like any bad row but not a record.
        rows_seen = table.num_rows + len(bad_rows)
        set_aside_numbers = np.array([number for number, _ in bad_rows], dtype="int64")
        record_numbers = np.setdiff1d(np.arange(2, rows_seen + 2, dtype="int64"), set_aside_numbers,
                                      assume_unique=True)
        line_of_row = _line_numbers(data, rows_seen)
        if line_of_row is not None:
            record_numbers = line_of_row[record_numbers - 1]
            bad_rows = [(int(line_of_row[number - 1]), text) for number, text in bad_rows]
        bad_rows = [(number, text) for number, text in bad_rows if text.strip()]
        rows = DelimitedRows(
            columns={name: table.column(name) for name in keep},
            record_numbers=record_numbers,
            bad_rows=bad_rows,
            header=header,
        )
    if len(rows.record_numbers) == 0 and not rows.bad_rows:
        raise UnreadableFile(Reason.FILE_EMPTY, f"{file_name}: the file holds a header and no records")
    return rows


def _non_empty_lines(data: bytes) -> int:
    """How many lines of LF-terminated bytes are not empty (the header included)."""
    if b"\n\n" not in data and not data.startswith(b"\n"):
        return data.count(b"\n")
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
    return int(np.count_nonzero(np.diff(np.concatenate(([-1], ends))) > 1))


def _arrow_read(data: bytes, *, delimiter: str, header: Sequence[str],
                keep: Sequence[str]) -> tuple[pa.Table | None, list[tuple[int, str]]]:
    """pyarrow's reading of the rows under the header, and the rows it set aside (None: refused)."""
    bad_rows: list[tuple[int, str]] = []

    def set_aside(row: pacsv.InvalidRow) -> str:
        bad_rows.append((row.number, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            # single-threaded: only then does pyarrow know each bad row's number
            read_options=pacsv.ReadOptions(use_threads=False, skip_rows=1, column_names=list(header),
                                           block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                             newlines_in_values=True, ignore_empty_lines=True,
                                             invalid_row_handler=set_aside),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in keep},
                                                 include_columns=list(keep), strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowException):  # its message quotes row text: not passed on
        return None, bad_rows
    return table, bad_rows


def _swallows_a_record(lines: list[str], start: int, taken: int, delimiter: str, width: int) -> bool:
    """A record over several lines one of whose later lines is a whole record by itself.

    That is a quote opened and never closed which ran into the next record and was
    closed by a quote there (say, at the next name that needed quoting): the two
    records came out as one with the right number of fields. A real line break in
    a quoted value leaves a later line with fewer fields than a record.
    """
    for line in lines[start + 1:start + taken]:
        try:
            if len(next(csv.reader([line], delimiter=delimiter, quotechar='"', doublequote=True), [])) == width:
                return True
        except csv.Error:
            continue
    return False


@dataclass
class _Scan:
    """Where the records of a CSV text are, read record by record (0-based line indexes)."""

    starts: list[int]        # first line of each good record
    broken: list[int]        # first line of each record broken over several lines (or never ended)
    short_or_long: list[int]  # one-line rows with a wrong field count
    fields: list[list[str]] | None  # each good record's fields, when asked for


def _scan(lines: list[str], *, delimiter: str, width: int, keep_fields: bool) -> _Scan:
    """Find every record with the csv module, resynchronising after a broken one.

    A record is good when it ends (a strict reader: every quote closed, nothing
    after a closing quote) within MAX_RECORD_LINES lines with exactly `width`
    fields, and does not swallow a whole record (`_swallows_a_record`). A bad
    record on one line is set aside whole; a bad record over several lines sets
    aside only its first line, and reading starts again at the next line. The
    csv module reads the lines in C; Python only looks at each record's shape.
    """
    scan = _Scan([], [], [], [] if keep_fields else None)
    total = len(lines)

    def place(start: int, fields: list[str] | None, taken: int) -> int:
        """File one record read from line `start`; the line to read next."""
        if fields is not None and len(fields) == width and (
                taken == 1 or (taken <= MAX_RECORD_LINES
                               and not _swallows_a_record(lines, start, taken, delimiter, width))):
            scan.starts.append(start)
            if scan.fields is not None:
                scan.fields.append(fields)
            return start + taken
        if fields is not None and taken <= 1:
            if any(field.strip() for field in fields):  # not a blank line, nor a line of spaces
                scan.short_or_long.append(start)
            return start + 1
        scan.broken.append(start)
        return start + 1

    position = 1
    while position < total:
        reader = csv.reader(itertools.islice(lines, position, None), delimiter=delimiter, quotechar='"',
                            doublequote=True, strict=True)
        base, done = position, 0
        try:
            for fields in reader:
                start, taken, done = base + done, reader.line_num - done, reader.line_num
                following = place(start, fields, taken)
                if following != start + taken:  # a broken record: read again from its next line
                    position = following
                    break
            else:
                position = total
        except csv.Error:  # the csv module's message may quote the row: not passed on
            start = base + done
            if base + reader.line_num >= total:  # the lines ran out inside a quote
                position = place(start, None, total - start)
                continue
            # A closed quote with text after it (`"a"b`): read that one record leniently.
            lenient = csv.reader(itertools.islice(lines, start, None), delimiter=delimiter, quotechar='"',
                                 doublequote=True)
            try:
                fields = next(lenient, None)
            except csv.Error:  # a field over the csv module's size limit, say
                fields = None
            position = place(start, fields, max(lenient.line_num, 1))
    return scan


def resynchronised_rows(data: bytes, *, delimiter: str, header: Sequence[str], keep: Sequence[str]) -> DelimitedRows:
    """The rows of LF-ended UTF-8 CSV bytes, a broken record setting aside its first line only.

    `_scan` finds the records and the broken lines; the broken lines are then made
    blank and pyarrow reads the file again, which now gives the scan's records.
    Each record is numbered by its first line (the header is line 1). Should
    pyarrow still disagree with the scan, the scan's own fields are used.
    """
    lines = io.StringIO(data.decode("utf-8")).readlines()  # split at "\n" only, each keeping it
    scan = _scan(lines, delimiter=delimiter, width=len(header), keep_fields=False)
    table = None
    if scan.broken:
        pieces = data.split(b"\n")
        for index in scan.broken:
            pieces[index] = b""
        table, arrow_bad = _arrow_read(b"\n".join(pieces), delimiter=delimiter, header=header, keep=keep)
    else:
        table, arrow_bad = _arrow_read(data, delimiter=delimiter, header=header, keep=keep)
    agrees = (table is not None and table.num_rows == len(scan.starts)
              and sum(1 for _, text in arrow_bad if text.strip()) == len(scan.short_or_long))
    if agrees:
        columns = {name: table.column(name) for name in keep}
    else:
        scan = _scan(lines, delimiter=delimiter, width=len(header), keep_fields=True)
        wanted = [list(header).index(name) for name in keep]
        by_column = list(zip(*scan.fields)) if scan.fields else [()] * len(header)
        columns = {name: pa.chunked_array([pa.array(by_column[i], pa.string())], type=pa.string())
                   for name, i in zip(keep, wanted)}
    bad_rows = [(index + 1, lines[index].rstrip("\n")) for index in sorted(scan.broken + scan.short_or_long)]
    return DelimitedRows(
        columns=columns,
        record_numbers=np.array(scan.starts, dtype="int64") + 1,
        bad_rows=bad_rows,
        header=list(header),
    )


def clean_text(values: pa.ChunkedArray | pa.Array) -> pd.Series:
    """Text as typed, stripped; empty -> NA. Returns a pyarrow-backed pandas string Series."""
    trimmed = pc.utf8_trim_whitespace(values)
    trimmed = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
    if isinstance(trimmed, pa.Array):
        trimmed = pa.chunked_array([trimmed], type=pa.string())
    return pd.Series(pd.arrays.ArrowStringArray(trimmed))


def _wall_clock(text: pd.Series, pattern: str) -> pd.Series:
    """Day-first date (and time) text -> naive datetime64; no match or no such date -> NaT.

    Done on whole columns: the numbers are cut out with one regex and assembled with
    numpy, which also rejects 30.2. (strptime-style parsers in Arrow roll it over).
    """
    values = pa.array(text.astype("string[pyarrow]").array)
    parts = pc.extract_regex(values, pattern)
    matched = parts.is_valid().to_numpy(zero_copy_only=False)

    def number(name: str, default: int = 0) -> np.ndarray:
        field = pc.struct_field(parts, name)
        field = pc.if_else(pc.equal(field, ""), pa.scalar(None, pa.string()), field)  # an optional group not given
        out = pc.cast(field, pa.int64()).fill_null(default).to_numpy(zero_copy_only=False)
        return out.astype("int64")

    names = parts.type.names
    day, month, year = number("day"), number("month"), number("year")
    hour = number("hour") if "hour" in names else np.zeros(len(values), dtype="int64")
    minute = number("minute") if "minute" in names else np.zeros(len(values), dtype="int64")
    second = number("second") if "second" in names else np.zeros(len(values), dtype="int64")
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (day - 1)
    valid = (matched & (month >= 1) & (month <= 12) & (day >= 1) & (days.astype("datetime64[M]") == months)
             & (hour < 24) & (minute < 60) & (second < 60) & (year >= 1700) & (year <= 2200))
    stamp = (days.astype("datetime64[ns]") + hour * np.timedelta64(3600, "s") + minute * np.timedelta64(60, "s")
             + second * np.timedelta64(1, "s"))
    return pd.Series(np.where(valid, stamp, np.datetime64("NaT", "ns")), index=text.index, dtype="datetime64[ns]")


def helsinki_to_utc(text: pd.Series, pattern: str) -> pd.Series:
    """Finnish local wall-clock text -> UTC; text that does not match `pattern` -> NaT.

    `pattern` has named groups day, month, year and optionally hour, minute, second.
    A time that occurs twice (the autumn hour 03:00-03:59) is read as the first,
    summer-time occurrence; a time that does not exist (the spring hour) as a
    clock not yet put forward (+02:00).

    >>> s = pd.Series(["24.11.2026 14:05", "28.6.2026 14:05", "29.3.2026 03:30", "25.10.2026 03:30",
    ...                "30.2.2026 10:00", "24.11.2026 24:00", "x", None])
    >>> from pipeline.channels.phone import TIME_PATTERN
    >>> [str(t) for t in helsinki_to_utc(s, TIME_PATTERN)]  # doctest: +NORMALIZE_WHITESPACE
    ['2026-11-24 12:05:00+00:00', '2026-06-28 11:05:00+00:00', '2026-03-29 01:30:00+00:00',
     '2026-10-25 00:30:00+00:00', 'NaT', 'NaT', 'NaT', 'NaT']
    """
    local = _wall_clock(text, pattern)
    summer_first = np.ones(len(local), dtype=bool)
    aware = local.dt.tz_localize(TIME_ZONE, ambiguous=summer_first, nonexistent=pd.Timedelta(hours=1))
    return aware.dt.tz_convert("UTC")


def yes_no(text: pd.Series, answers: dict[str, bool]) -> tuple[pd.Series, np.ndarray]:
    """Map a channel's yes/no codes (upper-case keys, matched in any case) to boolean.

    Empty -> NA: an empty answer states nothing. Returns the booleans and a mask of
    answers that are neither empty nor one of `answers`: those are NA as well and
    get `marketing_answer_unrecognised`.
    """
    folded = text.astype("string[pyarrow]").str.strip().str.upper()
    known = folded.isin(list(answers)).to_numpy(dtype=bool, na_value=False)
    result = pd.Series(pd.NA, index=text.index, dtype="boolean")
    result[known] = folded[known].map(answers).astype("boolean")
    unrecognised = folded.notna().to_numpy(dtype=bool, na_value=False) & ~known
    return result, unrecognised


def flag_where(mask: np.ndarray, flag: Flag) -> pd.Series:
    """`read_flags` text: the flag where the mask is set, "" elsewhere."""
    flags = constant_text("", len(mask))
    if mask.any():
        flags[mask] = flag.value
    return flags


def constant_text(value: str | None, n: int) -> pd.Series:
    """n copies of one text (or NA) as a pyarrow string Series, without a Python list of n."""
    column = pa.nulls(n, pa.string())
    if value is not None:
        column = column.fill_null(value)
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([column], type=pa.string())))
