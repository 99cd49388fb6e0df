"""What every channel reader returns, and the errors it raises.

A reader turns one landed file into a *staged* frame (see `schemas/canonical.py`)
plus the records it could not read at all. A file it cannot read at all raises
`UnreadableFile`; the intake quarantines that file whole and the others load.
Messages never carry a value from the file: only the file name, column names,
positions and counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.codes import Flag, Reason
from schemas.canonical import READ_ERROR_COLUMNS, STAGED_COLUMNS, STAGED_STRING_COLUMNS

_STRING = pd.StringDtype("pyarrow")

# Control characters no value may hold: C0 but tab, line feed and carriage return
# (whitespace the normalisers collapse), DEL and C1. NUL above all: PostgreSQL text
# cannot hold it, SQLite would store it. Removed from every value a reader stages,
# with the flag `control_characters_removed`, and from read errors' raw text.
CONTROL_CHARACTERS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x{9F}]"  # RE2 (Arrow)
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Staged columns the readers fill from the file (the others they write themselves).
FROM_THE_FILE: tuple[str, ...] = tuple(c for c in STAGED_STRING_COLUMNS
                                       if c not in ("channel", "name_order", "read_flags", "reject_reason"))


def without_controls(text: str) -> str:
    """A text with its control characters (see CONTROL_CHARACTERS) removed.

    >>> without_controls("Ai\\x00no\\tMaria\\x85\\x7f")
    'Aino\\tMaria'
    """
    return _CONTROL_RE.sub("", text)


def _may_hold_controls(data: pa.ChunkedArray) -> bool:
    """A cheap look at the raw UTF-8 bytes: False means no value holds a control character.

    The smallest byte says whether any C0 character is there; DEL is 0x7F and every
    C1 character is encoded 0xC2 0x80-0x9F. True only means: look with the regex.
    """
    for chunk in data.chunks:
        buffers = chunk.buffers()
        buffer = buffers[2] if len(buffers) > 2 else None
        if buffer is None or buffer.size == 0:
            continue
        raw = np.frombuffer(buffer, dtype=np.uint8)
        if raw.min() < 0x20 or np.any((raw == 0x7F) | (raw == 0xC2)):
            return True
    return False


def remove_controls(values: pd.Series) -> tuple[pd.Series, np.ndarray | None]:
    """A staged string column without control characters, and which rows had any (None: none)."""
    data = values.array._pa_array  # the "string[pyarrow]" column's own Arrow data, no copy
    if not _may_hold_controls(data):
        return values, None
    found = pc.fill_null(pc.match_substring_regex(data, CONTROL_CHARACTERS), False)
    if not pc.any(found).as_py():
        return values, None
    cleaned = pc.replace_substring_regex(data, CONTROL_CHARACTERS, "")
    cleaned = pc.if_else(pc.equal(cleaned, ""), pa.scalar(None, cleaned.type), cleaned)
    return (pd.Series(pd.arrays.ArrowStringArray(cleaned), index=values.index, dtype=_STRING),
            found.to_numpy(zero_copy_only=False))


class UnreadableFile(Exception):
    """A whole file that cannot be read as its channel's format."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def is_rust_panic(error: BaseException) -> bool:
    """A panic inside a Rust extension (pyo3's PanicException derives from BaseException)."""
    return type(error).__name__ == "PanicException"


@dataclass
class ChannelRead:
    """A reader's result for one file: staged records and unreadable records."""

    records: pd.DataFrame  # STAGED_COLUMNS
    errors: pd.DataFrame   # READ_ERROR_COLUMNS

    @property
    def count(self) -> int:
        return len(self.records) + len(self.errors)


def staged_frame(columns: dict[str, object], n: int) -> pd.DataFrame:
    """Build a staged frame of n rows from the given columns; absent ones are NA.

    String columns get the pyarrow-backed "string" dtype, flags default to "",
    identity_verified to False, marketing_prohibited to NA. Control characters are
    removed from every value taken from the file, flagged `control_characters_removed`.
    """
    index = pd.RangeIndex(n)

    def values(value: object) -> object:
        # Positional: a Series from a reader may carry its own index.
        return value.set_axis(index) if isinstance(value, pd.Series) else value

    out: dict[str, pd.Series] = {}
    for name in STAGED_STRING_COLUMNS:
        value = columns.get(name)
        if value is None:
            out[name] = pd.Series("" if name == "read_flags" else pd.NA, index=index, dtype=_STRING)
        else:
            out[name] = pd.Series(values(value), index=index, dtype=_STRING)
    cleaned_rows = np.zeros(n, dtype=bool)
    for name in FROM_THE_FILE:
        out[name], had_controls = remove_controls(out[name])
        if had_controls is not None:
            cleaned_rows |= had_controls
    if cleaned_rows.any():
        flags = out["read_flags"].fillna("").to_numpy(dtype=object)
        flag = Flag.CONTROL_CHARACTERS_REMOVED.value
        flags[cleaned_rows] = [f"{text} {flag}".strip() for text in flags[cleaned_rows]]
        out["read_flags"] = pd.Series(flags, index=index, dtype=_STRING)
    out["record_number"] = pd.Series(values(columns["record_number"]), index=index, dtype="int64")
    observed = columns.get("observed_at")
    if observed is None:
        out["observed_at"] = pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]")
    else:
        times = pd.to_datetime(pd.Series(values(observed), index=index), utc=True)
        out["observed_at"] = times.astype("datetime64[ns, UTC]")
    marketing = columns.get("marketing_prohibited")
    out["marketing_prohibited"] = pd.Series(pd.NA if marketing is None else values(marketing),
                                            index=index, dtype="boolean")
    verified = columns.get("identity_verified")
    out["identity_verified"] = pd.Series(False if verified is None else values(verified),
                                         index=index, dtype="bool")
    return pd.DataFrame(out, index=index, columns=list(STAGED_COLUMNS), copy=False)


def read_errors(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A read-error frame from dicts with READ_ERROR_COLUMNS keys; control characters removed."""
    for row in rows:
        for name in ("source_record_id", "raw"):
            text = row.get(name)
            if isinstance(text, str) and _CONTROL_RE.search(text):
                row[name] = without_controls(text) or None
    frame = pd.DataFrame(rows, columns=list(READ_ERROR_COLUMNS))
    for name in ("channel", "source_record_id", "reason", "raw"):
        frame[name] = frame[name].astype(_STRING)
    frame["record_number"] = frame["record_number"].astype("int64")
    return frame
