"""The `register` command line on SQLite and PostgreSQL: a steward's review and quarantine
work (masked by default), and people's rights (access, rectification, erasure)."""

from __future__ import annotations

import io
import json
import os
import stat

import sqlalchemy as sa

from pipeline.cli import main
from pipeline.register.checks import unbalanced_files
from schemas.register import quarantine
from test_register_helpers import personal_id
from test_register_resolve import NEAR_MISS, NOW, PERSON, _propose, batch_of, customer_of, load_batch, record, table


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_a_stewards_first_review_through_the_command_line(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    url = _url(register_engine)

    assert main(["--database-url", url, "review", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["review_id"] for r in listed["items"]] == [review_id] and listed["total"] == 1

    assert main(["--database-url", url, "review", "show", str(review_id)]) == 0
    shown = capsys.readouterr().out
    assert PERSON["last_name"] not in shown and "+358401112222" not in shown  # masked by default
    assert main(["--database-url", url, "review", "show", str(review_id), "--unmask"]) == 0
    assert PERSON["last_name"] in capsys.readouterr().out

    assert main(["--database-url", url, "review", "accept", str(review_id), "--by", "steward.cli"]) == 0
    assert "accepted" in capsys.readouterr().out
    owners = customer_of(register_engine)
    assert owners[("phone", "P-1")] == owners[("mail", "M-1")]
    # A decided review cannot be decided again.
    assert main(["--database-url", url, "review", "reject", str(review_id), "--by", "steward.cli"]) == 2
    assert "already decided" in capsys.readouterr().err


# Two records of one (synthetic) person, every field `review show` shows filled in on the left.
SHOWN_LEFT = dict(first_names="Kalle Johannes", last_name="Merkkinen", personal_id=personal_id(14, 7, 1968, 274),
                  street_address="Koekatu 7 A 2", postal_code="33100", city="Tampere", phone="+358401112222",
                  email="kalle.merkkinen@example.fi", iban="FI2112345600000785")
SHOWN_RIGHT = dict(first_names="Kalle", last_name="Merkkinen", street_address="Koekatu 9", postal_code="33100",
                   city="Tampere", email="k.merkkinen@example.fi")
# The fields whose values are personal: masked unless asked (postal codes are shown as they are).
PERSONAL_FIELDS = ("first_names", "last_name", "personal_id", "birth_date", "street_address", "city", "phone",
                   "email", "iban")


def test_review_show_prints_masked_values_unless_unmask_is_given(register_engine, capsys):
    from pipeline.register.steward import masked_value

    load_batch(register_engine, batch_of("d1", [record("web", "W-7", "2026-11-01T10:00", **SHOWN_LEFT),
                                                record("mail", "M-7", "2026-11-01T11:00", **SHOWN_RIGHT)]))
    review_id = _propose(register_engine, ("web", "W-7"), ("mail", "M-7"))
    url = _url(register_engine)
    with register_engine.connect() as connection:
        held = {side: dict(connection.execute(sa.text(
            f"SELECT {', '.join(PERSONAL_FIELDS)} FROM source_record WHERE source_record_id = :r"),
            {"r": rid}).mappings().one()) for side, rid in (("left", "W-7"), ("right", "M-7"))}
    values = {str(v) for side in held.values() for v in side.values() if v is not None}
    values |= {v for v in (*SHOWN_LEFT.values(), *SHOWN_RIGHT.values()) if v not in ("33100",)}
    assert sum(v is not None for v in held["left"].values()) == len(PERSONAL_FIELDS), "the left record lost a field"

    assert main(["--database-url", url, "review", "show", str(review_id)]) == 0  # the table
    table_text = capsys.readouterr().out
    printed = sum(1 for v in values if v in table_text)  # a count: pytest must not print the values
    assert printed == 0, f"{printed} personal values printed by review show's table without --unmask"
    assert main(["--database-url", url, "review", "show", str(review_id), "--json"]) == 0
    shown_text = capsys.readouterr().out
    shown = json.loads(shown_text)
    for side in ("left", "right"):
        for field in PERSONAL_FIELDS:
            value = held[side][field]
            expected = None if value is None else masked_value(field, value)
            assert shown[side][field] == expected, f"{side} {field} is not shown masked"
    printed = sum(1 for v in values if v in shown_text)  # a count: pytest must not print the values
    assert printed == 0, f"{printed} personal values printed by review show without --unmask"
    assert shown["left"]["postal_code"] == "33100" and shown["left"]["channel"] == "web"

    assert main(["--database-url", url, "review", "show", str(review_id), "--unmask", "--json"]) == 0
    unmasked = json.loads(capsys.readouterr().out)
    for side in ("left", "right"):
        for field in PERSONAL_FIELDS:
            value = held[side][field]
            as_shown = value.isoformat() if hasattr(value, "isoformat") else value
            assert unmasked[side][field] == as_shown, f"{side} {field} is not shown as held with --unmask"


def test_quarantine_list_and_show_mask_raw_values(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    with register_engine.begin() as conn:
        file_id = conn.execute(sa.text("SELECT MIN(intake_file_id) FROM intake_file")).scalar()
        conn.execute(quarantine.insert().values(
            channel="mail", source_record_id="M-9", intake_file_id=file_id, record_number=9, reasons="no_identity",
            raw_values=json.dumps({"phone": "+358409998877", "city": "Tampere"}), quarantined_at=NOW))
    url = _url(register_engine)
    assert main(["--database-url", url, "quarantine", "list", "--reason", "no_identity", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["items"]
    assert [q["source_record_id"] for q in listed] == ["M-9"]
    assert main(["--database-url", url, "quarantine", "show", str(listed[0]["quarantine_id"]), "--json"]) == 0
    shown = capsys.readouterr().out
    assert "+358409998877" not in shown and json.loads(shown)["reasons"] == ["no_identity"]


# --- people's rights ------------------------------------------------------------------------------

CODE = personal_id(3, 4, 1979, 512)
SUBJECT = dict(first_names="Aili Koetta", last_name="Oikeuksinen", phone="+358400000041",
               email="aili.oikeuksinen@example.fi")


def _load_subject(engine) -> int:
    """A person without a contract (two records, one code) among other people."""
    load_batch(engine, batch_of("rights-d1", [
        record("web", "W-S1", "2026-11-01T10:00", personal_id=CODE, street_address="Koetie 4", postal_code="00100",
               city="Helsinki", **SUBJECT),
        record("phone", "P-S1", "2026-11-02T10:00", personal_id=CODE, **SUBJECT),
        *NEAR_MISS,
    ]))
    owners = customer_of(engine)
    assert owners[("web", "W-S1")] == owners[("phone", "P-S1")]
    return owners[("web", "W-S1")]


def _said(capsys) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_subject_access_through_the_command_line(register_engine, capsys, monkeypatch, tmp_path):
    customer_id = _load_subject(register_engine)
    url = _url(register_engine)

    assert main(["--database-url", url, "subject", "access", "--customer-id", str(customer_id), "--by", "s1"]) == 0
    access = json.loads(capsys.readouterr().out)
    assert {r["source_record_id"] for r in access["source_records"]} == {"W-S1", "P-S1"}
    assert access["request"]["decided_by"] == "s1"

    # By code read from standard input (kept out of the shell history), as a report in a private file.
    out = tmp_path / "subject-access.txt"
    monkeypatch.setattr("sys.stdin", io.StringIO(CODE + "\n"))
    assert main(["--database-url", url, "subject", "access", "--personal-id", "-", "--format", "report",
                 "--out", str(out)]) == 0
    said = _said(capsys)
    assert "source_records 2" in said and CODE not in said, "the summary line is wrong or holds the code"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    report = out.read_text(encoding="utf-8")
    assert report.startswith("SUBJECT ACCESS REPORT")
    assert CODE in report and SUBJECT["email"] in report, "the report lacks the person's own values"
    assert PERSON["last_name"] not in report, "the report holds someone else's name"

    # An existing file is never overwritten, and the attempt is not recorded as an access.
    assert main(["--database-url", url, "subject", "access", "--customer-id", str(customer_id),
                 "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert table(register_engine, "SELECT COUNT(*) FROM rights_request") == [(2,)]

    wrong = CODE[:-1] + ("A" if CODE[-1] != "A" else "B")
    assert main(["--database-url", url, "subject", "access", "--personal-id", wrong]) == 2
    said = _said(capsys)
    assert "not valid" in said and wrong not in said, "the refusal is wrong or echoes the code"


def test_rectify_and_erase_through_the_command_line(register_engine, capsys, monkeypatch):
    customer_id = _load_subject(register_engine)
    url = _url(register_engine)

    monkeypatch.setattr("sys.stdin", io.StringIO("040 000 0042\n"))
    assert main(["--database-url", url, "subject", "rectify", "--customer-id", str(customer_id),
                 "--attribute", "phone", "--value", "-", "--reason", "typo reported", "--by", "s2"]) == 0
    said = _said(capsys)
    assert "phone rectified" in said and "0042" not in said, "the output is wrong or holds the value"
    rectified = table(register_engine, f"SELECT phone FROM customer WHERE customer_id = {customer_id}")
    assert rectified == [("+358400000042",)], "the phone was not rectified"
    assert main(["--database-url", url, "subject", "rectify", "--customer-id", str(customer_id),
                 "--attribute", "personal_id", "--value", CODE, "--reason", "asked"]) == 2
    assert "review" in capsys.readouterr().err

    held = "SELECT (SELECT COUNT(*) FROM source_record), (SELECT COUNT(*) FROM customer)"
    before = table(register_engine, held)
    monkeypatch.setattr("sys.stdin", io.StringIO(CODE + "\n"))
    assert main(["--database-url", url, "subject", "erase", "--personal-id", "-", "--reason", "asked",
                 "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out and table(register_engine, held) == before

    monkeypatch.setattr("sys.stdin", io.StringIO(CODE + "\n"))
    assert main(["--database-url", url, "subject", "erase", "--personal-id", "-", "--reason", "asked",
                 "--by", "s2", "--yes"]) == 0
    said = _said(capsys)
    assert f"erased customer {customer_id}: everything (no contract)" in said
    leaked = [v for v in (CODE, *SUBJECT.values(), "+358400000042") if v in said]
    assert len(leaked) == 0, f"{len(leaked)} personal values in the output"
    assert table(register_engine, held) == [(before[0][0] - 2, before[0][1] - 1)]
    assert table(register_engine, f"SELECT COUNT(*) FROM customer WHERE personal_id = '{CODE}'") == [(0,)]
    assert table(register_engine, "SELECT action, decided_by FROM rights_request ORDER BY request_id") == [
        ("rectification", "s2"), ("erasure", "s2")]
    assert unbalanced_files(register_engine) == []


def test_a_reason_holding_personal_data_is_refused_through_the_command_line(register_engine, capsys):
    customer_id = _load_subject(register_engine)
    url = _url(register_engine)
    held = "SELECT (SELECT COUNT(*) FROM source_record), (SELECT COUNT(*) FROM rights_request)"
    before = table(register_engine, held)
    for reason, personal in ((f"asked by {SUBJECT['last_name']}", SUBJECT["last_name"]),
                             ("call back on 040 765 4321", "4321")):
        for command in (["subject", "erase", "--customer-id", str(customer_id), "--yes"],
                        ["subject", "access", "--customer-id", str(customer_id)],
                        ["subject", "rectify", "--customer-id", str(customer_id), "--attribute", "city",
                         "--value", "Espoo"]):
            assert main(["--database-url", url, *command, "--reason", reason, "--by", "s3"]) == 2
            said = _said(capsys)
            assert "personal data" in said and personal not in said, "the refusal is wrong or echoes the reason"
    assert table(register_engine, held) == before, "a refused request changed or recorded something"

    assert main(["--database-url", url, "subject", "erase", "--customer-id", str(customer_id), "--reason",
                 "asked, ticket 4711", "--by", "s3", "--yes"]) == 0
    assert "tombstones left (a re-send stays erased): 2" in capsys.readouterr().out
