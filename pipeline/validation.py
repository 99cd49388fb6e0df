"""Validate the canonical intake with pandera and report counts, never values.

pandera's own report lists the failing values ("failure cases"), which would put
personal data into the Dagster event log: keep only column, check and count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.errors

from schemas.canonical import CanonicalIntake


@dataclass
class ValidationReport:
    rows: int
    failures: dict[str, int] = field(default_factory=dict)  # "column: check" -> failing rows

    @property
    def ok(self) -> bool:
        return not self.failures


def validate_canonical(accepted: pd.DataFrame) -> ValidationReport:
    """Check accepted canonical records against `CanonicalIntake`, lazily, all checks."""
    frame = accepted.drop(columns=[c for c in ("checksum",) if c in accepted.columns])
    frame = frame.assign(reject_reason=pd.Series(pd.NA, index=frame.index, dtype="string"))
    report = ValidationReport(rows=len(frame))
    if frame.empty:
        return report
    try:
        CanonicalIntake.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        grouped = cases.groupby([cases["column"].astype(str), cases["check"].astype(str)], dropna=False).size()
        report.failures = {f"{column}: {check}": int(n) for (column, check), n in grouped.items()}
    return report
