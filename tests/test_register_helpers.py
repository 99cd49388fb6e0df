"""Builders of synthetic intake batches for the register tests (no real people).

Identity codes are computed here from made-up dates and individual numbers with
their check character; names and addresses are obviously fictional.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import sqlalchemy as sa

from pipeline.register.load import ACCEPTED_COLUMNS, FILE_COLUMNS, QUARANTINED_COLUMNS, IntakeBatch
from schemas.register import REGISTER_TABLES

_CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_CENTURY_SIGN = {18: "+", 19: "-", 20: "A"}


def personal_id(day: int, month: int, year: int, individual: int) -> str:
    """A well-formed synthetic henkilötunnus with its check character."""
    ddmmyy = f"{day:02d}{month:02d}{year % 100:02d}"
    check = _CHECK_CHARACTERS[int(f"{ddmmyy}{individual:03d}") % 31]
    return f"{ddmmyy}{_CENTURY_SIGN[year // 100]}{individual:03d}{check}"


def checksum(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def file_row(channel: str, file_name: str, content_label: str | None = None, *,
             reason: str | None = None, detail: str | None = None) -> dict:
    return {"channel": channel, "file_name": file_name, "checksum": checksum(content_label or file_name),
            "size_bytes": 1234, "file_reason": reason, "file_detail": detail}


def accepted_records(file: dict, ids: list[str], *, observed_at: list[str] | None = None,
                     record_numbers: list[int] | None = None, first: int = 0) -> pd.DataFrame:
    """Canonical accepted records for `file`, one per id."""
    n = len(ids)
    observed = observed_at or [f"2026-11-24T10:{i % 60:02d}:00+02:00" for i in range(n)]
    marketing = [True, False, None]
    frame = pd.DataFrame({
        "channel": file["channel"],
        "source_record_id": ids,
        "record_number": record_numbers or list(range(1, n + 1)),
        "observed_at": pd.to_datetime(observed, utc=True, format="ISO8601"),
        "first_names": [f"Testi Henkilö{first + i}" for i in range(n)],
        "last_name": "Esimerkki-Åkerlund",
        "personal_id": [personal_id(1 + (first + i) % 28, 1 + (first + i) % 12, 1950 + (first + i) % 60,
                                    2 + (first + i) % 800) for i in range(n)],
        "birth_date": [pd.Timestamp(1950 + (first + i) % 60, 1 + (first + i) % 12, 1 + (first + i) % 28)
                       for i in range(n)],
        "street_address": "Testitie 5 B 12",
        "postal_code": "00100",
        "city": "HELSINKI",
        # Each person's own phone: a phone shared with someone who prohibited direct marketing
        # holds the others back from the marketing list (`prohibited_contact`).
        "phone": [f"+35840{1_000_000 + first + i:07d}" for i in range(n)],
        "email": [f"testi{first + i}@example.fi" for i in range(n)],
        "iban": None,
        "bic": None,
        "product": "electricity",
        "metering_point": None,
        "marketing_prohibited": pd.array([marketing[(first + i) % 3] for i in range(n)], dtype="boolean"),
        "identity_verified": [(first + i) % 2 == 0 for i in range(n)],
        "quality_flags": ["" if (first + i) % 4 else "phone_invalid email_invalid" for i in range(n)],
        "checksum": file["checksum"],
    })
    return frame[list(ACCEPTED_COLUMNS)]


def quarantined_records(file: dict, reasons: list[str], *, first_record_number: int = 100) -> pd.DataFrame:
    n = len(reasons)
    return pd.DataFrame({
        "channel": file["channel"],
        "source_record_id": [f"Q-{file['checksum'][:8]}-{i}" if i % 2 == 0 else None for i in range(n)],
        "checksum": file["checksum"],
        "record_number": list(range(first_record_number, first_record_number + n)),
        "reasons": reasons,
        "detail": [f"{file['file_name']}: record {first_record_number + i}" for i in range(n)],
        "raw_values": [json.dumps({"nimi": "Testi Esimerkki", "line": i}) for i in range(n)],
    })[list(QUARANTINED_COLUMNS)]


def batch(files: list[dict], accepted: list[pd.DataFrame] = (), quarantined: list[pd.DataFrame] = ()) -> IntakeBatch:
    return IntakeBatch(
        files=pd.DataFrame(files, columns=list(FILE_COLUMNS)),
        accepted=pd.concat(accepted, ignore_index=True) if accepted else pd.DataFrame(columns=list(ACCEPTED_COLUMNS)),
        quarantined=(pd.concat(quarantined, ignore_index=True) if quarantined
                     else pd.DataFrame(columns=list(QUARANTINED_COLUMNS))),
    )


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every register table, in primary-key order."""
    out = {}
    with engine.connect() as connection:
        for table in REGISTER_TABLES:
            out[table.name] = [tuple(r) for r in connection.execute(
                sa.select(table).order_by(*table.primary_key.columns))]
    return out


def clear(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(REGISTER_TABLES):
            connection.execute(table.delete())


# --- the builders themselves ------------------------------------------------------------------

def test_synthetic_personal_ids_are_valid_codes():
    from stdnum.fi import hetu

    codes = [personal_id(1 + i % 28, 1 + i % 12, 1950 + i % 60, 2 + i % 800) for i in range(200)]
    assert all(hetu.is_valid(code) for code in codes)
    assert personal_id(13, 10, 1952, 308) == "131052-308T"  # python-stdnum's documented example


def test_builders_give_the_load_contract():
    file = file_row("web", "web_20261124.jsonl")
    built = batch([file], [accepted_records(file, ["W-1", "W-2"])], [quarantined_records(file, ["malformed_record"])])
    assert list(built.accepted.columns) == list(ACCEPTED_COLUMNS)
    assert list(built.quarantined.columns) == list(QUARANTINED_COLUMNS)
    assert set(built.accepted["checksum"]) == {file["checksum"]}
