"""The pandera contract on the canonical intake (`pipeline.validation`, `CanonicalIntake`).

A correct frame passes; a frame that breaks the schema is rejected with a report of
counts per column and check, and the `canonical_intake` asset stops the run with a
`dagster.Failure` that names those counts only. pandera's own report lists the failing
values; neither the report nor the failure may carry one of them. Synthetic values only;
assertion messages carry counts and column names, never values.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

import assets.intake
from pipeline.batch import IntakeBatch
from pipeline.validation import validate_canonical
from test_register_helpers import accepted_records, batch, file_row

# Values that break the schema, each in a personal field (obviously fake, but shaped like the real thing).
BROKEN = {
    "personal_id": "010203-12",            # a code cut short
    "phone": "0401234567",                 # national form: the canonical form is E.164
    "postal_code": "0010",                 # four digits
    "iban": "FI21 1234 5600 0007 85",      # with spaces: the canonical form is compact
    "email": "testi.henkilo.example.fi",   # no @
}


def _good() -> pd.DataFrame:
    web = file_row("web", "web_20261124.jsonl")
    return accepted_records(web, [f"W-{i}" for i in range(6)])


def _broken() -> pd.DataFrame:
    frame = _good()
    for row, (column, value) in enumerate(BROKEN.items()):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    frame.loc[5, "channel"] = "fax"        # not a channel
    frame.loc[5, "quality_flags"] = "not_a_flag"
    return frame


def _leaked(text: str) -> int:
    """How many of the broken values (as typed, or without spaces) appear in the text."""
    return sum(1 for value in BROKEN.values() if value in text or value.replace(" ", "") in text)


def test_a_correct_frame_passes():
    report = validate_canonical(_good())
    assert report.ok and report.failures == {} and report.rows == 6


def test_a_frame_that_breaks_the_schema_is_rejected_with_counts_per_column_and_check():
    report = validate_canonical(_broken())
    assert not report.ok
    assert report.rows == 6
    # The report holds column names, check names and counts: none of the failing values
    # (checked first, so that no later message prints a report that holds them).
    leaked = _leaked(repr(report)) + _leaked(str(report.failures))
    assert leaked == 0, f"{leaked} failing values in the validation report"
    columns = {key.split(":", 1)[0] for key in report.failures}
    assert columns == set(BROKEN) | {"channel", "quality_flags"}, sorted(columns)
    counts = sorted(report.failures.values())
    assert counts == [1] * 7, f"failing rows per column and check: {counts}"  # one bad row each
    assert all(": " in key and key.split(": ", 1)[1] for key in report.failures), "a failure names no check"


def test_one_bad_value_is_enough():
    frame = _good()
    frame["postal_code"] = frame["postal_code"].astype(object)
    frame.loc[3, "postal_code"] = "ABCDE"
    report = validate_canonical(frame)
    assert {key.split(":", 1)[0] for key in report.failures} == {"postal_code"}
    assert sum(report.failures.values()) == 1


def _run_canonical_intake(monkeypatch, accepted: pd.DataFrame):
    """The `canonical_intake` asset invoked directly, on a batch whose accepted frame is given."""
    good = batch([file_row("web", "web_20261124.jsonl")], [_good()])
    monkeypatch.setattr(assets.intake, "build_batch",
                        lambda reads, today: IntakeBatch(files=good.files, accepted=accepted,
                                                         quarantined=good.quarantined))
    raw = {f"raw_{channel}": [] for channel in ("web", "phone", "mail", "email", "in_person")}
    return assets.intake.canonical_intake(dg.build_asset_context(), **raw)


def test_the_asset_stops_the_run_on_a_broken_frame_with_counts_only(monkeypatch):
    output = _run_canonical_intake(monkeypatch, _good())
    assert output.metadata["records_accepted"].value == 6

    with pytest.raises(dg.Failure) as failure:
        _run_canonical_intake(monkeypatch, _broken())
    error = failure.value
    assert "failed validation" in error.description
    failures = error.metadata["failures"].value
    text = f"{error}\n{error.description}\n{error.metadata!r}"
    leaked = _leaked(text)
    assert leaked == 0, f"{leaked} failing values in the run's failure"
    assert failures == validate_canonical(_broken()).failures and len(failures) == 7
    assert all(isinstance(key, str) and isinstance(n, int) for key, n in failures.items())
