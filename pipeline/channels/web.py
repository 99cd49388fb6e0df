"""Reader for the online service's form submissions (`web_YYYYMMDD.jsonl`).

UTF-8 JSON Lines, one submission per line (docs/intake_formats.md); any key may be absent
or null. A line that is not JSON, not an object, or not shaped like a submission
(an object where text belongs, text where an object belongs, a key the format
does not define) is that line's problem alone: a `malformed_record` read error
numbered by its line, and the file's other lines load. An unknown key is never
named in a message: a value typed where a key belongs would be a person's value
(the raw line is kept for the steward in the quarantine, like any malformed line).

Two ways to read, with the same result: pyarrow's JSON reader for clean stretches
of the file (every value where the format says it is, as the type it says), and
`json.loads` per line for any stretch pyarrow refuses. Both only gather the raw
values; one function turns them into the staged frame.

Numbers written where text belongs keep their digits as typed
(`"postal_code": 00100` is not JSON, but `"metering_point": 643007574000125688`
stays `"643007574000125688"`, never a float).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from pipeline.channels.base import ChannelRead, UnreadableFile, read_errors, staged_frame
from pipeline.channels.delimited import clean_text, constant_text, file_bytes
from pipeline.codes import Flag, Reason

CHANNEL = "web"
BOM = b"\xef\xbb\xbf"

# The submission's shape: nested objects, text leaves (str) and JSON booleans (bool).
FORMAT: dict[str, object] = {
    "id": str,
    "submitted_at": str,
    "authenticated": bool,
    "person": {"first_names": str, "last_name": str, "personal_id": str},
    "contact": {"email": str, "phone": str,
                "address": {"street": str, "postal_code": str, "city": str}},
    "billing": {"iban": str},
    "service": {"product": str, "metering_point": str},
    "consents": {"direct_marketing_prohibited": bool},
    "language": str,
}
# Text leaf (dotted path) -> staged column. `language` is read and not kept.
TEXT_FIELDS: dict[str, str] = {
    "id": "source_record_id",
    "person.first_names": "first_names",
    "person.last_name": "last_name",
    "person.personal_id": "personal_id",
    "contact.email": "email",
    "contact.phone": "phone",
    "contact.address.street": "street_address",
    "contact.address.postal_code": "postal_code",
    "contact.address.city": "city",
    "billing.iban": "account",
    "service.product": "product",
    "service.metering_point": "metering_point",
}
TIMESTAMP_FIELD = "submitted_at"
AUTHENTICATED_FIELD = "authenticated"
MARKETING_FIELD = "consents.direct_marketing_prohibited"

# An ISO 8601 date and time with its UTC offset; a time without one is not read
# (which zone it meant is a guess), so it becomes NaT for the normaliser.
_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$"
# A lone-surrogate escape cannot become UTF-8 text; leave such stretches to json.loads.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NEWLINE, _CR, _OPEN, _CLOSE = ord("\n"), ord("\r"), ord("{"), ord("}")
CHUNK_BYTES = 4 << 20
# A refused stretch is halved until it is this small before json.loads reads it line by line.
SLOW_BYTES = 128 << 10
_BLOCK_BYTES = 1 << 20  # pyarrow's block: a refused stretch up to this size names its bad line


def _leaves(shape: dict[str, object], prefix: str = "") -> dict[str, type]:
    out: dict[str, type] = {}
    for key, sub in shape.items():
        if isinstance(sub, dict):
            out.update(_leaves(sub, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = sub  # type: ignore[assignment]
    return out


LEAVES: dict[str, type] = _leaves(FORMAT)


def _arrow_type(shape: object) -> pa.DataType:
    if isinstance(shape, dict):
        return pa.struct([(key, _arrow_type(sub)) for key, sub in shape.items()])
    return pa.bool_() if shape is bool else pa.string()


ARROW_SCHEMA = pa.schema([(key, _arrow_type(sub)) for key, sub in FORMAT.items()])


@dataclass
class _Gathered:
    """Raw values of the readable lines of one stretch, and the lines that were not."""

    columns: dict[str, pa.Array | pa.ChunkedArray]  # leaf path -> raw text / booleans
    record_numbers: np.ndarray
    read_flags: list[str] | None = None           # None: no line raised a flag
    errors: list[dict[str, object]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.record_numbers)


class _Malformed(Exception):
    """A line that is JSON but not shaped like a submission (a key it does not define included)."""


def _reject_constant(name: str) -> object:
    raise ValueError("NaN and Infinity are not JSON")


def _decoder(conflicts: list[str]) -> json.JSONDecoder:
    """A decoder for the slow path; keys given twice with different values go into `conflicts`.

    Numbers keep their digits as typed; NaN and Infinity are not JSON. Made once per
    stretch: json.loads with these options would build a decoder per line.
    """
    def object_from(pairs: list[tuple[str, object]]) -> dict:
        value = dict(pairs)
        if len(value) != len(pairs):  # a key given twice: harmless only if both say the same
            for key, sub_value in pairs:
                if value[key] != sub_value:
                    conflicts.append(key)
        return value

    return json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=_reject_constant,
                            object_pairs_hook=object_from)


def _paths(shape: dict[str, object], prefix: str = "") -> dict[str, tuple[str, object]]:
    """FORMAT with each key's dotted path worked out once, not per line; leaves get their index."""
    return {key: (prefix + key, _paths(sub, f"{prefix}{key}.") if isinstance(sub, dict)
                  else (list(LEAVES).index(prefix + key), sub))
            for key, sub in shape.items()}


_FORMAT_PATHS = _paths(FORMAT)


def _gather_object(value: dict, shape: dict[str, tuple[str, object]], row: list[object],
                   flags: list[str]) -> None:
    """Put an object's values into `row` (one slot per leaf), checking each against the format."""
    for key, sub_value in value.items():
        known = shape.get(key)
        if known is None:  # even with a null value: the line is not the format's (never name the key)
            raise _Malformed
        if sub_value is None:
            continue
        path, sub_shape = known
        if isinstance(sub_shape, dict):
            if not isinstance(sub_value, dict):
                raise _Malformed
            _gather_object(sub_value, sub_shape, row, flags)
            continue
        index, kind = sub_shape  # type: ignore[misc]
        if kind is bool:
            if isinstance(sub_value, bool):
                row[index] = sub_value
            else:  # "yes", 1, "true": not what the format defines, so the answer is unknown
                flags.append(Flag.IDENTITY_CHECK_UNRECOGNISED.value if path == AUTHENTICATED_FIELD
                             else Flag.MARKETING_ANSWER_UNRECOGNISED.value)
        elif isinstance(sub_value, str):  # numbers arrive here as their own text (parse_int=str)
            row[index] = sub_value
        elif isinstance(sub_value, bool):
            row[index] = "true" if sub_value else "false"
        else:  # a list or an object where text belongs
            raise _Malformed


def _record_id(value: object) -> str | None:
    """The id of a line that is an object but cannot be read, when it has a usable one."""
    record_id = value.get("id") if isinstance(value, dict) else None
    if not isinstance(record_id, str) or not record_id.strip():
        return None
    try:
        record_id.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return record_id.strip()


def _gather_slowly(text: str, first_line: int) -> _Gathered:
    """Per line json.loads: every line that can be read, and an error for each that cannot."""
    rows: list[list[object]] = []
    numbers: list[int] = []
    flag_texts: list[str] = []
    errors: list[dict[str, object]] = []
    width = len(LEAVES)
    conflicts: list[str] = []
    decoder = _decoder(conflicts)
    for offset, line in enumerate(text.split("\n")):
        if not line.strip(" \t\r"):
            continue
        number = first_line + offset
        value: object = None
        try:
            value = decoder.decode(line)
            if conflicts:
                # Which of the two values is the person's cannot be known (say, two identity
                # codes): the line is the steward's, not a silent last-one-wins.
                record_id = None if "id" in conflicts else _record_id(value)
                conflicts.clear()
                errors.append({"channel": CHANNEL, "record_number": number, "source_record_id": record_id,
                               "reason": Reason.DUPLICATE_KEY.value, "raw": line.rstrip("\r")})
                continue
            if not isinstance(value, dict):
                raise _Malformed
            row: list[object] = [None] * width
            flags: list[str] = []
            _gather_object(value, _FORMAT_PATHS, row, flags)
            if "\\u" in line:
                for leaf in row:
                    if isinstance(leaf, str):
                        leaf.encode("utf-8")  # a lone surrogate escape cannot be stored
        except (ValueError, _Malformed, UnicodeEncodeError, RecursionError):
            conflicts.clear()
            # The raw line came from valid UTF-8, so it can always be stored for the steward.
            errors.append({"channel": CHANNEL, "record_number": number, "source_record_id": _record_id(value),
                           "reason": Reason.MALFORMED_RECORD.value, "raw": line.rstrip("\r")})
            continue
        rows.append(row)
        numbers.append(number)
        flag_texts.append(" ".join(sorted(set(flags))) if flags else "")
    by_leaf = list(zip(*rows)) if rows else [()] * width
    columns = {path: pa.array(by_leaf[i], type=pa.bool_() if kind is bool else pa.string())
               for i, (path, kind) in enumerate(LEAVES.items())}
    return _Gathered(columns=columns, record_numbers=np.array(numbers, dtype="int64"),
                     read_flags=flag_texts if any(flag_texts) else None, errors=errors)


def _object_lines(chunk: bytes, first_line: int) -> np.ndarray | None:
    """Line numbers of a stretch whose every line is blank or `{...}`; None otherwise."""
    return _object_lines_or_first_other(chunk, first_line)[0]


def _object_lines_or_first_other(chunk: bytes, first_line: int) -> tuple[np.ndarray | None, int | None]:
    """(line numbers, None) of a stretch whose every line is blank or `{...}`, else
    (None, the number of its first line that is neither).

    pyarrow reads a `null` line as a record where json.loads sees no object (and a
    file of just `null` crashes pyarrow 26), so only stretches of plain object lines,
    found with numpy rather than a Python loop, are given to it. Lines padded with
    spaces go the slow way: they are rare.
    """
    data = np.frombuffer(chunk, dtype=np.uint8)
    ends = np.flatnonzero(data == _NEWLINE)
    if not chunk.endswith(b"\n"):
        ends = np.append(ends, len(data))
    starts = np.concatenate(([0], ends[:-1] + 1))
    last = ends - 1
    crlf = (last >= starts) & (data[np.maximum(last, 0)] == _CR)
    last = last - crlf
    filled = last >= starts
    plain = ~filled | ((data[np.minimum(starts, len(data) - 1)] == _OPEN) & (data[np.maximum(last, 0)] == _CLOSE))
    if not plain.all():
        return None, first_line + int(np.argmin(plain))
    return first_line + np.flatnonzero(filled).astype("int64"), None


def _gather_quickly(chunk: bytes, first_line: int) -> _Gathered | None:
    """pyarrow's reader over a clean stretch; None when it refuses or may disagree with json.loads."""
    return _try_quickly(chunk, first_line)[0]


# pyarrow names the row (object) where it stopped: "... in row 17", counted within its block.
_REFUSED_ROW = re.compile(r" in row ([0-9]+)$")


def _try_quickly(chunk: bytes, first_line: int) -> tuple[_Gathered | None, int | None]:
    """`_gather_quickly`, and when pyarrow refused the stretch, the line it named (if any).

    The named line is only a hint of where to split: whatever is read fast is still
    read by pyarrow in full and checked, and the line itself is read slowly.
    """
    numbers, other = _object_lines_or_first_other(chunk, first_line)
    if numbers is None:
        return None, other
    escape = _SURROGATE_ESCAPE.search(chunk)
    if escape is not None:
        return None, first_line + chunk.count(b"\n", 0, escape.start())
    try:
        table = pajson.read_json(
            io.BytesIO(chunk),
            read_options=pajson.ReadOptions(use_threads=True, block_size=_BLOCK_BYTES),
            parse_options=pajson.ParseOptions(explicit_schema=ARROW_SCHEMA, newlines_in_values=False,
                                              unexpected_field_behavior="error"),
        )
    except (pa.ArrowInvalid, pa.ArrowException, UnicodeDecodeError) as refused:
        named = _REFUSED_ROW.search(str(refused))
        # Rows count from the start of a block: a stretch of one block names its own line.
        row = int(named.group(1)) if named and len(chunk) <= _BLOCK_BYTES else None
        return None, (int(numbers[row]) if row is not None and row < len(numbers) else None)
    if len(numbers) != table.num_rows:  # two objects on one line: json.loads calls that malformed
        return None, None
    while any(pa.types.is_struct(column.type) for column in table.columns):
        table = table.flatten()
    return _Gathered(columns={path: table.column(path) for path in LEAVES}, record_numbers=numbers), None


def submitted_to_utc(text: pd.Series) -> pd.Series:
    """ISO 8601 text with a UTC offset -> UTC; anything else (no offset, no such date) -> NaT.

    >>> s = pd.Series(["2026-11-24T18:03:11+02:00", "2026-07-01T12:00:00.5Z", "2026-07-01T12:00:00",
    ...                "2026-02-30T12:00:00+02:00", None], dtype="string")
    >>> [str(t) for t in submitted_to_utc(s)]
    ['2026-11-24 16:03:11+00:00', '2026-07-01 12:00:00.500000+00:00', 'NaT', 'NaT', 'NaT']
    """
    values = pa.array(text.astype("string[pyarrow]").array)
    shaped = pc.fill_null(pc.match_substring_regex(values, _WITH_OFFSET), False)
    candidates = pc.if_else(shaped, values, pa.scalar(None, values.type))
    # Arrow's cast reads ISO 8601 with offsets strictly (no 30 February) and fast, but
    # fails the whole column on one bad value, quoting it: the error is dropped, and
    # pandas, which reads the same text the same way, takes it value by value.
    try:
        utc = pc.cast(candidates, pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        utc = None
    if utc is not None:
        return pd.Series(utc.to_pandas(), index=text.index).astype("datetime64[ns, UTC]")
    parsed = pd.to_datetime(pd.Series(candidates.to_pandas(), index=text.index), format="ISO8601",
                            utc=True, errors="coerce")
    return parsed.astype("datetime64[ns, UTC]")


def _chunks(data: bytes, size: int):
    """(stretch of whole lines, number of its first line) pieces of about `size` bytes."""
    start, line = 0, 1
    while start < len(data):
        end = data.find(b"\n", min(start + size, len(data)) - 1)
        end = len(data) if end < 0 else end + 1
        chunk = data[start:end]
        yield chunk, line
        line += chunk.count(b"\n")
        start = end


@dataclass
class _Refusals:
    """How many more refused stretches may be halved before the rest is read slowly."""

    left: int = 512


def _gather(chunk: bytes, first_line: int, fast_path: bool, refusals: _Refusals,
            top_level: bool = True) -> list[_Gathered]:
    """Gather one stretch: pyarrow where it can, json.loads for the lines around a bad one.

    A refused stretch is halved and each half tried again, so a few bad lines cost a
    few small json.loads stretches, not the whole file. Halving has a budget per file:
    when trouble is everywhere (say, numbers where text belongs) read slowly at once.
    """
    if fast_path and (top_level or refusals.left > 0):
        part, refused_line = _try_quickly(chunk, first_line)
        if part is not None:
            return [part]
        refusals.left -= 1
        if refused_line is not None and refusals.left > 0:
            # Read the named line slowly and the stretches around it fast again, rather than
            # halving down to a slow stretch of hundreds of lines around one bad line.
            start = _line_start(chunk, refused_line - first_line)
            end = chunk.find(b"\n", start)
            end = len(chunk) if end < 0 else end + 1
            before, bad, after = chunk[:start], chunk[start:end], chunk[end:]
            return ((_gather(before, first_line, fast_path, refusals, top_level=False) if before else [])
                    + [_gather_slowly(bad.decode("utf-8"), refused_line)]
                    + (_gather(after, refused_line + 1, fast_path, refusals, top_level=False) if after else []))
    middle = chunk.find(b"\n", len(chunk) // 2)
    if not fast_path or refusals.left <= 0 or len(chunk) <= SLOW_BYTES or middle < 0 or middle + 1 >= len(chunk):
        return [_gather_slowly(chunk.decode("utf-8"), first_line)]
    left, right = chunk[: middle + 1], chunk[middle + 1:]
    right_line = first_line + left.count(b"\n")
    return (_gather(left, first_line, fast_path, refusals, top_level=False)
            + _gather(right, right_line, fast_path, refusals, top_level=False))


def _line_start(chunk: bytes, line_index: int) -> int:
    """Byte offset where the stretch's line `line_index` (0 = its first) starts."""
    if line_index <= 0:
        return 0
    ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == _NEWLINE)
    return int(ends[line_index - 1]) + 1


def _stage(parts: list[_Gathered]) -> pd.DataFrame:
    """The staged frame from gathered raw values (the same whichever way they were gathered)."""
    def joined(path: str) -> pa.ChunkedArray:
        kind = pa.bool_() if LEAVES[path] is bool else pa.string()
        pieces: list[pa.Array] = []
        for part in parts:
            column = part.columns[path]
            pieces.extend(column.chunks if isinstance(column, pa.ChunkedArray) else [column])
        return pa.chunked_array(pieces, type=kind)

    n = sum(part.count for part in parts)
    columns: dict[str, object] = {staged: clean_text(joined(path)) for path, staged in TEXT_FIELDS.items()}
    columns["channel"] = constant_text(CHANNEL, n)
    columns["record_number"] = np.concatenate([part.record_numbers for part in parts]) if parts \
        else np.array([], dtype="int64")
    columns["observed_at"] = submitted_to_utc(clean_text(joined(TIMESTAMP_FIELD)))
    columns["identity_verified"] = joined(AUTHENTICATED_FIELD).fill_null(False).to_numpy()
    columns["marketing_prohibited"] = pd.Series(pd.arrays.ArrowExtensionArray(joined(MARKETING_FIELD))) \
        .astype("boolean")
    if any(part.read_flags is not None for part in parts):
        columns["read_flags"] = pd.Series([flag for part in parts for flag in (part.read_flags or [""] * part.count)],
                                          dtype="string[pyarrow]")
    return staged_frame(columns, n)


def read(path: Path, *, fast_path: bool = True) -> ChannelRead:
    """Read one web export into staged records and read errors.

    `fast_path=False` reads every line with json.loads (the result is the same; tests use it).
    """
    data = file_bytes(path)
    if data.startswith(BOM):
        data = data[len(BOM):]
    if not data or data.isspace():
        raise UnreadableFile(Reason.FILE_EMPTY, f"{path.name}: the file holds no records")

    parts: list[_Gathered] = []
    undecodable: list[dict[str, object]] = []
    first_bad_byte: int | None = None
    refusals = _Refusals()
    offset = 0
    for chunk, first_line in _chunks(data, CHUNK_BYTES):
        chunk_offset, offset = offset, offset + len(chunk)
        try:
            chunk.decode("utf-8")  # the check only: the gatherers decode what they read slowly
        except UnicodeDecodeError as error:
            if first_bad_byte is None:
                first_bad_byte = chunk_offset + error.start
            chunk = _set_aside_undecodable(chunk, first_line, undecodable)
        if chunk:  # a stretch that was one undecodable line is now empty
            parts.extend(_gather(chunk, first_line, fast_path, refusals))

    records = _stage(parts)
    error_rows = [error for part in parts for error in part.errors]
    if undecodable and not len(records) and not error_rows:
        # Not one line is UTF-8: the file is in another encoding, not a file with a bad line.
        raise UnreadableFile(Reason.FILE_ENCODING, f"{path.name}: byte at offset {first_bad_byte} is not UTF-8")
    if undecodable:
        error_rows = sorted(error_rows + undecodable, key=lambda error: error["record_number"])
    return ChannelRead(records=records, errors=read_errors(error_rows))


def _set_aside_undecodable(chunk: bytes, first_line: int, errors: list[dict[str, object]]) -> bytes:
    """The stretch with each line that is not UTF-8 made blank, and a read error for each.

    A line of binary garbage is that line's problem alone. Its raw text keeps the
    bytes that are not UTF-8 as `\\xNN` escapes, so the steward sees what came.
    """
    lines = chunk.split(b"\n")
    for offset, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            errors.append({"channel": CHANNEL, "record_number": first_line + offset, "source_record_id": None,
                           "reason": Reason.MALFORMED_RECORD.value,
                           "raw": line.rstrip(b"\r").decode("utf-8", "backslashreplace")})
            lines[offset] = b""
    return b"\n".join(lines)
