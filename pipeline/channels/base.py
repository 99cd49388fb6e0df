"""What every channel reader returns, and the errors it raises.

A reader turns one landed file into a *staged* frame (see `schemas/canonical.py`)
plus the records it could not read at all. A file it cannot read at all raises
`UnreadableFile`; the intake quarantines that file whole and the others load.
Messages never carry a value from the file: only the file name, column names,
positions and counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.codes import Reason
from schemas.canonical import READ_ERROR_COLUMNS, STAGED_COLUMNS, STAGED_STRING_COLUMNS

_STRING = pd.StringDtype("pyarrow")


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
    identity_verified to False, marketing_prohibited to NA.
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
    """A read-error frame from dicts with READ_ERROR_COLUMNS keys."""
    frame = pd.DataFrame(rows, columns=list(READ_ERROR_COLUMNS))
    for name in ("channel", "source_record_id", "reason", "raw"):
        frame[name] = frame[name].astype(_STRING)
    frame["record_number"] = frame["record_number"].astype("int64")
    return frame
