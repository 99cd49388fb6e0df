"""The `register` command line: a steward's review and quarantine work, masked by default."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pipeline.cli import main
from pipeline.register.database import make_engine, migrate
from test_register_resolve import NEAR_MISS, PERSON, _propose, batch_of, customer_of, load_batch


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_a_stewards_first_review_through_the_command_line(sqlite_engine, capsys):
    load_batch(sqlite_engine, batch_of("d1", NEAR_MISS))
    review_id = _propose(sqlite_engine, ("phone", "P-1"), ("mail", "M-1"))
    url = _url(sqlite_engine)

    assert main(["--database-url", url, "review", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["review_id"] for r in listed] == [review_id]

    assert main(["--database-url", url, "review", "show", str(review_id)]) == 0
    shown = capsys.readouterr().out
    assert PERSON["last_name"] not in shown and "+358401112222" not in shown  # masked by default
    assert main(["--database-url", url, "review", "show", str(review_id), "--unmask"]) == 0
    assert PERSON["last_name"] in capsys.readouterr().out

    assert main(["--database-url", url, "review", "accept", str(review_id), "--by", "steward.cli"]) == 0
    assert "accepted" in capsys.readouterr().out
    owners = customer_of(sqlite_engine)
    assert owners[("phone", "P-1")] == owners[("mail", "M-1")]
    # A decided review cannot be decided again.
    assert main(["--database-url", url, "review", "reject", str(review_id), "--by", "steward.cli"]) == 2
    assert "already decided" in capsys.readouterr().err


def test_quarantine_list_and_show_mask_raw_values(sqlite_engine, capsys):
    load_batch(sqlite_engine, batch_of("d1", NEAR_MISS))
    with sqlite_engine.begin() as conn:
        file_id = conn.execute(sa.text("SELECT MIN(intake_file_id) FROM intake_file")).scalar()
        conn.execute(sa.text(
            "INSERT INTO quarantine (channel, source_record_id, intake_file_id, record_number, reasons, raw_values, "
            "quarantined_at) VALUES ('mail', 'M-9', :f, 9, 'no_identity', :raw, '2026-11-25 03:00:00.000000')"),
            {"f": file_id, "raw": json.dumps({"phone": "+358409998877", "city": "Tampere"})})
    url = _url(sqlite_engine)
    assert main(["--database-url", url, "quarantine", "list", "--reason", "no_identity"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [q["source_record_id"] for q in listed] == ["M-9"]
    assert main(["--database-url", url, "quarantine", "show", str(listed[0]["quarantine_id"])]) == 0
    shown = capsys.readouterr().out
    assert "+358409998877" not in shown and json.loads(shown)["reasons"] == ["no_identity"]
