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


class UnreadableFile(Exception):
    """A whole file that cannot be read as its channel's format."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


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

    String columns get the pandas "string" dtype, flags default to "",
    identity_verified to False, marketing_prohibited to NA.
    """
    out: dict[str, object] = {}
    for name in STAGED_STRING_COLUMNS:
        value = columns.get(name)
        if value is None:
            value = [""] * n if name == "read_flags" else [pd.NA] * n
        out[name] = pd.Series(value, dtype="string[pyarrow]").reset_index(drop=True) if not isinstance(value, pd.Series) \
            else value.astype("string[pyarrow]").reset_index(drop=True)
    out["record_number"] = pd.Series(columns["record_number"], dtype="int64").reset_index(drop=True)
    observed = columns.get("observed_at")
    out["observed_at"] = (pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]") if observed is None
                          else pd.Series(observed).reset_index(drop=True).astype("datetime64[ns, UTC]"))
    marketing = columns.get("marketing_prohibited")
    out["marketing_prohibited"] = pd.Series([pd.NA] * n if marketing is None else marketing,
                                            dtype="boolean").reset_index(drop=True)
    verified = columns.get("identity_verified")
    out["identity_verified"] = pd.Series([False] * n if verified is None else verified,
                                         dtype="bool").reset_index(drop=True)
    frame = pd.DataFrame(out)
    return frame[list(STAGED_COLUMNS)]


def read_errors(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A read-error frame from dicts with READ_ERROR_COLUMNS keys."""
    frame = pd.DataFrame(rows, columns=list(READ_ERROR_COLUMNS))
    for name in ("channel", "source_record_id", "reason", "raw"):
        frame[name] = frame[name].astype("string[pyarrow]")
    frame["record_number"] = frame["record_number"].astype("int64")
    return frame
