"""The `register` command line helps (issue 12, item 6), on SQLite and PostgreSQL:

tables by default and --json on request, "N of M" and paging, one-line errors for a
register that is missing or cannot be reached (a SQLite file is never created by any
command but `migrate`; no password printed), quarantine entries naming their file,
--help on every subcommand (found by walking the parser), and erasure that asks first
and knows when it was already done. Values stay masked unless --unmask.
"""

from __future__ import annotations

import argparse
import io
import json
import re

import pytest
import sqlalchemy as sa

from pipeline.cli import build_parser, main
from pipeline.privacy import mask
from schemas.register import quarantine, review_queue
from test_cli import CODE, SUBJECT, _load_subject, _url
from test_register_resolve import NEAR_MISS, NOW, PERSON, _propose, batch_of, load_batch, record, table

# The synthetic people's values a masked output must not hold (a postal code is shown as it is, by design).
PERSONAL = tuple(v for v in (*PERSON.values(), "Kalle", "Koekatu 9", "+358401112222", "+358409998877", CODE,
                             *SUBJECT.values()) if v != PERSON["postal_code"])


def _leaks(said: str) -> list[str]:
    """Which synthetic personal values (name, address, phone, code, e-mail) the output holds: a count is reported."""
    return [v for v in PERSONAL if v in said]


def _said(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


class Terminal(io.StringIO):
    """Standard input as a terminal would be: a person types the lines."""

    def isatty(self) -> bool:
        return True


# --- 1 and 2: tables, --json, "N of M" and paging ----------------------------------------------------

def _many_reviews(engine, n: int) -> list[int]:
    """`n` open reviews of the near-miss pair (the matcher would propose it once; the list does not care)."""
    first = _propose(engine, ("phone", "P-1"), ("mail", "M-1"))
    with engine.begin() as conn:
        row = conn.execute(sa.select(review_queue).where(review_queue.c.review_id == first)).mappings().one()
        copy = {k: v for k, v in row.items() if k != "review_id"}
        conn.execute(review_queue.insert(), [{**copy, "probability": round(0.81 + i / 1000, 4)} for i in range(n - 1)])
        return conn.execute(sa.select(review_queue.c.review_id).order_by(review_queue.c.probability.desc(),
                                                                           review_queue.c.review_id)).scalars().all()


def test_review_list_is_a_table_that_says_how_many_and_pages(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    ordered = _many_reviews(register_engine, 60)
    url = _url(register_engine)

    assert main(["--database-url", url, "review", "list"]) == 0
    out, _ = _said(capsys)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["review", "probability", "reason"], "no header line"
    assert set(lines[1].replace(" ", "")) == {"-"}, "no rule under the header"
    assert len(lines) == 2 + 50 + 1, "not 50 rows and a footer"
    assert lines[-1] == "showing 1-50 of 60 open reviews; next: --offset 50"
    assert [int(line.split()[0]) for line in lines[2:52]] == ordered[:50]
    column = lines[0].index("reason")
    assert all(line[column - 1] == " " and line[column] != " " for line in lines[2:52]), "columns not aligned"
    assert not any(line.lstrip().startswith(("{", "[")) for line in lines), "JSON, not a table"
    assert _leaks(out) == []

    assert main(["--database-url", url, "review", "list", "--offset", "50"]) == 0
    out, _ = _said(capsys)
    assert out.splitlines()[-1] == "showing 51-60 of 60 open reviews"
    assert [int(line.split()[0]) for line in out.splitlines()[2:-1]] == ordered[50:]

    assert main(["--database-url", url, "review", "list", "--limit", "25", "--page", "2", "--json"]) == 0
    page = json.loads(_said(capsys)[0])
    assert (page["total"], page["offset"], page["limit"]) == (60, 25, 25)
    assert [r["review_id"] for r in page["items"]] == ordered[25:50]

    assert main(["--database-url", url, "review", "list", "--offset", "100"]) == 0
    assert _said(capsys)[0].strip() == "showing none of 60 open reviews: --offset 100 is past the last one"
    assert main(["--database-url", url, "review", "list", "--status", "accepted"]) == 0
    assert _said(capsys)[0].strip() == "no accepted reviews"
    for wrong in (["--limit", "0"], ["--offset", "-1"], ["--page", "1", "--offset", "3"]):
        with pytest.raises(SystemExit) as exit_:
            main(["--database-url", url, "review", "list", *wrong])
        assert exit_.value.code == 2


def test_review_show_is_two_records_side_by_side_masked_unless_asked(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    url = _url(register_engine)

    assert main(["--database-url", url, "review", "show", str(review_id)]) == 0
    out, _ = _said(capsys)
    assert re.match(rf"review {review_id}: open, probability 0\.\d{{4}} \(uncertain\)\ncomparisons:\n", out)
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert rows["last name"].split()[2:] == ["M*******n", "M*******n"], "the last names are not masked side by side"
    assert "values masked; --unmask shows them" in out
    assert _leaks(out) == [], f"{len(_leaks(out))} personal values in the masked review"

    assert main(["--database-url", url, "review", "show", str(review_id), "--unmask"]) == 0
    out, _ = _said(capsys)
    assert PERSON["last_name"] in out and "+358401112222" in out

    assert main(["--database-url", url, "review", "show", str(review_id), "--json"]) == 0
    shown = json.loads(_said(capsys)[0])
    assert shown["left"]["last_name"] == "M*******n" and _leaks(json.dumps(shown)) == []


def _quarantined(engine, n: int = 1) -> tuple[int, str]:
    """`n` entries held from the first intake file; returns the file's id and name."""
    with engine.begin() as conn:
        file_id, name = conn.execute(sa.text("SELECT intake_file_id, file_name FROM intake_file "
                                             "ORDER BY intake_file_id")).first()
        conn.execute(quarantine.insert(), [dict(
            channel="mail", source_record_id=f"M-{9 + i}", intake_file_id=file_id, record_number=9 + i,
            reasons="no_identity", detail=f"line {9 + i}: no identity code, name or address",
            raw_values=json.dumps({"phone": "+358409998877", "city": "Tampere", "product": "electricity"}),
            quarantined_at=NOW) for i in range(n)])
    return file_id, name


def test_quarantine_entries_name_their_file_in_a_table(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    file_id, name = _quarantined(register_engine, 3)
    url = _url(register_engine)

    assert main(["--database-url", url, "quarantine", "list", "--limit", "2"]) == 0
    out, _ = _said(capsys)
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["entry", "channel", "record", "id", "line", "file"]
    assert len(lines) == 2 + 2 + 1 and all(name in line for line in lines[2:4]), "the rows do not name the file"
    assert lines[-1] == "showing 1-2 of 3 open quarantine entries; next: --offset 2"
    assert _leaks(out) == []

    assert main(["--database-url", url, "quarantine", "list", "--json", "--offset", "2"]) == 0
    listed = json.loads(_said(capsys)[0])
    assert listed["total"] == 3 and [q["source_record_id"] for q in listed["items"]] == ["M-11"]
    assert listed["items"][0]["file_name"] == name and listed["items"][0]["intake_file_id"] == file_id

    entry = listed["items"][0]["quarantine_id"]
    assert main(["--database-url", url, "quarantine", "show", str(entry)]) == 0
    out, _ = _said(capsys)
    assert out.startswith(f"quarantine entry {entry}: open")
    assert f"mail/{name} (intake file {file_id})" in out, "the entry does not name its file"
    assert "raw values (masked; --unmask shows them):" in out and mask("+358409998877") in out
    assert _leaks(out) == [], f"{len(_leaks(out))} personal values in the masked entry"
    assert main(["--database-url", url, "quarantine", "show", str(entry), "--json"]) == 0
    shown = json.loads(_said(capsys)[0])
    assert shown["file_name"] == name and _leaks(json.dumps(shown)) == []
    assert main(["--database-url", url, "quarantine", "show", str(entry), "--unmask"]) == 0
    assert "+358409998877" in _said(capsys)[0]


# --- 3: a register that is missing or cannot be reached ---------------------------------------------

def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every command path of the parser (("review", "list"), ...) with its parser, walked, not listed."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
        return
    for name, child in subparsers[0].choices.items():
        yield from _leaves(child, (*path, name))


# A runnable argument list for each command; checked against the parser so that a new command needs one.
INVOCATIONS = {
    ("summary",): [], ("review", "list"): [], ("review", "show"): ["1"],
    ("review", "accept"): ["1", "--by", "s"], ("review", "reject"): ["1", "--by", "s"],
    ("explain",): ["--customer", "1"], ("model", "train"): ["--out-dir", "{tmp}/models"],
    ("quarantine", "list"): [], ("quarantine", "show"): ["1"],
    ("disclosures", "list"): [], ("disclosures", "show"): ["1"],
    ("subject", "access"): ["--customer-id", "1"],
    ("subject", "rectify"): ["--customer-id", "1", "--attribute", "city", "--value", "Espoo", "--reason", "r"],
    ("subject", "erase"): ["--customer-id", "1", "--reason", "r", "--yes"],
    ("describe",): ["--lang", "fi", "--out", "{tmp}/description.md"],
    ("user", "add"): ["aino", "--role", "steward"], ("user", "disable"): ["aino"], ("user", "list"): [],
    ("access-log",): ["--customer", "1"], ("web",): ["--dev"],
}


def _one_line_error(capsys) -> str:
    out, err = _said(capsys)
    assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("register: ")
    return err


def test_no_command_creates_a_missing_sqlite_file_and_each_says_so_in_one_line(tmp_path, capsys):
    commands = {path for path, _ in _leaves(build_parser())}
    assert commands - {("migrate",)} == set(INVOCATIONS), "a command without an invocation in this test"
    missing = tmp_path / "no-such-folder" / "register.db"
    for path, arguments in INVOCATIONS.items():
        status = main(["--database-url", f"sqlite:///{missing}", *path,
                       *[a.replace("{tmp}", str(tmp_path)) for a in arguments]])
        err = _one_line_error(capsys)
        assert status == 3, f"{' '.join(path)}: exit {status}"
        assert "no register database" in err and "does not exist" in err and str(missing) in err
        assert not missing.parent.exists(), f"{' '.join(path)} created the folder or file"

    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["--database-url", f"sqlite:///{empty}", "summary"]) == 3
    assert "holds no register schema (run `register migrate`)" in _one_line_error(capsys)

    # migrate creates it; then the read commands work.
    assert main(["--database-url", f"sqlite:///{missing}", "migrate"]) == 0 and missing.is_file()
    capsys.readouterr()
    assert main(["--database-url", f"sqlite:///{missing}", "quarantine", "list"]) == 0
    assert _said(capsys)[0].strip() == "no open quarantine entries"


@pytest.mark.postgres
def test_an_unreachable_or_missing_postgresql_is_one_line_without_the_password(postgres_register_url, capsys):
    server = sa.engine.make_url(postgres_register_url)
    password = "Salasana-7QX"
    refused = server.set(password=password, port=1)  # nothing listens on port 1
    missing = server.set(password=password, database="register_no_such_database")
    for url, says in ((refused, "refused"), (missing, "does not exist")):
        for command in (["summary"], ["review", "list"], ["quarantine", "show", "1"], ["subject", "erase",
                                                                                         "--customer-id", "1",
                                                                                         "--reason", "r", "--yes"]):
            status = main(["--database-url", url.render_as_string(hide_password=False), *command])
            err = _one_line_error(capsys)
            assert status == 3 and "cannot connect to the database" in err and says in err.lower(), err
            assert password not in err and ":***@" in err, "the password is printed or the URL not shown"
    # A password given as a query option is hidden too.
    query_password = server.set(port=1).update_query_dict({"password": password})
    assert main(["--database-url", query_password.render_as_string(hide_password=False), "summary"]) == 3
    err = _one_line_error(capsys)
    assert password not in err and "password=***" in err


# --- 5: --help on every subcommand ------------------------------------------------------------------

def test_every_subcommand_has_help_and_a_description(capsys):
    parser = build_parser()
    walked = 0

    def walk(node: argparse.ArgumentParser, path: tuple[str, ...]):
        nonlocal walked
        for action in node._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                here = (*path, name)
                assert listed.get(name), f"`register {' '.join(here)}` has no help line in its parent's list"
                assert child.description and len(child.description) > 20, f"`{' '.join(here)}` has no description"
                with pytest.raises(SystemExit) as exit_:
                    main([*here, "--help"])
                out, _ = _said(capsys)
                assert exit_.value.code == 0 and out.startswith(f"usage: register {' '.join(here)}")
                assert " ".join(child.description.split()[:4]) in " ".join(out.split())
                for option in child._actions:
                    if option.option_strings and option.dest != "help":
                        assert option.help, f"`{' '.join(here)} {option.option_strings[0]}` has no help"
                walked += 1
                walk(child, here)

    walk(parser, ())
    assert walked >= 17, f"only {walked} subcommands found"


# --- 6: erasure asks first, and knows when it is done ----------------------------------------------

def _erase(url, *who, extra=()) -> list[str]:
    return ["--database-url", url, "subject", "erase", *who, "--reason", "erasure request 2026-121", "--by", "s6",
            *extra]


def test_erasure_asks_on_a_terminal_and_refuses_without_one(register_engine, capsys, monkeypatch):
    customer_id = _load_subject(register_engine)
    url = _url(register_engine)
    held = "SELECT (SELECT COUNT(*) FROM source_record), (SELECT COUNT(*) FROM rights_request)"
    before = table(register_engine, held)

    # No terminal and no --yes: refused before anything is read or done.
    monkeypatch.setattr("sys.stdin", io.StringIO(CODE + "\n"))
    assert main(_erase(url, "--personal-id", "-")) == 2
    out, err = _said(capsys)
    assert "confirmation" in err and "--yes" in err and "Traceback" not in err
    assert table(register_engine, held) == before, "a refused erasure changed or recorded something"

    # On a terminal: what would go, then y/N; anything but yes erases nothing.
    for answer in ("n\n", "\n", "maybe\n", ""):
        monkeypatch.setattr("sys.stdin", Terminal(CODE + "\n" + answer))
        assert main(_erase(url, "--personal-id", "-")) == 1
        out, err = _said(capsys)
        assert f"would erase customer {customer_id}: everything (no contract)" in out
        assert "would delete: " in out and "source_record 2" in out
        assert "erase this? [y/N]" in err and "nothing erased" in err
        assert _leaks(out + err) == [], f"{len(_leaks(out + err))} personal values in the preview"
        assert table(register_engine, held) == before, f"answer {answer!r} erased something"

    monkeypatch.setattr("sys.stdin", Terminal(CODE + "\ny\n"))
    assert main(_erase(url, "--personal-id", "-")) == 0
    out, err = _said(capsys)
    assert f"\nerased customer {customer_id}: everything (no contract)" in out
    assert _leaks(out + err) == [], f"{len(_leaks(out + err))} personal values in the output"
    assert table(register_engine, held) == [(before[0][0] - 2, before[0][1] + 1)]

    # --dry-run neither asks nor changes anything, on a terminal or not.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    other = table(register_engine, "SELECT MIN(customer_id) FROM customer")[0][0]
    assert main(_erase(url, "--customer-id", str(other), extra=["--dry-run"])) == 0
    out, err = _said(capsys)
    assert out.startswith("dry run, nothing changed: would erase") and err == ""
    with pytest.raises(SystemExit):
        main(_erase(url, "--customer-id", str(other), extra=["--dry-run", "--yes"]))


def test_a_second_erasure_says_it_was_already_done(register_engine, capsys, monkeypatch):
    customer_id = _load_subject(register_engine)
    url = _url(register_engine)
    assert main(_erase(url, "--customer-id", str(customer_id), extra=["--yes"])) == 0
    first, _ = _said(capsys)
    assert f"erased customer {customer_id}" in first
    when = table(register_engine, "SELECT request_id FROM rights_request WHERE action = 'erasure'")
    assert len(when) == 1

    # By id: the prospect's row is gone, its request is not.
    monkeypatch.setattr("sys.stdin", Terminal(""))  # nothing to confirm: it must not ask
    assert main(_erase(url, "--customer-id", str(customer_id))) == 0
    out, err = _said(capsys)
    assert out.startswith(f"customer {customer_id} was already erased on ") and err == ""
    assert f"(request {when[0][0]}): nothing more to erase" in out and "deleted: ;" not in out

    # By code: an erased prospect's code is not kept, so the command says what it can tell.
    monkeypatch.setattr("sys.stdin", io.StringIO(CODE + "\n"))
    assert main(_erase(url, "--personal-id", "-", extra=["--yes"])) == 0
    out, err = _said(capsys)
    assert out.startswith("nothing is held under this identity code: nothing to erase (already erased")
    assert "deleted: ;" not in out and _leaks(out + err) == []


def test_a_customer_with_a_contract_erased_twice(register_engine, capsys, monkeypatch):
    """A customer keeps the billing identity: a second erasure finds it, and says it was done."""
    contract = dict(SUBJECT, personal_id=CODE, product="electricity", metering_point="643007572999999999")
    load_batch(register_engine, batch_of("contract-d1", [record("web", "W-C1", "2026-11-01T10:00", **contract),
                                                         *NEAR_MISS]))
    customer_id = table(register_engine, "SELECT customer_id FROM source_record WHERE source_record_id = 'W-C1'")[0][0]
    assert table(register_engine, f"SELECT COUNT(*) FROM service WHERE customer_id = {customer_id}") == [(1,)]
    url = _url(register_engine)
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert main(_erase(url, "--customer-id", str(customer_id))) == 0
    out, _ = _said(capsys)
    assert f"erased customer {customer_id}: all but the billing identity and services" in out

    for who, stdin in ((["--customer-id", str(customer_id)], ""), (["--personal-id", "-"], CODE + "\n")):
        monkeypatch.setattr("sys.stdin", Terminal(stdin))  # nothing left to confirm: no question
        assert main(_erase(url, *who)) == 0
        out, err = _said(capsys)
        assert out.startswith(f"customer {customer_id} was already erased on "), out
        assert "nothing more to erase" in out and err == "" and _leaks(out + err) == []
    assert table(register_engine, f"SELECT COUNT(*) FROM customer WHERE customer_id = {customer_id} "
                                  "AND erased_at IS NOT NULL") == [(1,)]
    assert table(register_engine, "SELECT COUNT(*) FROM rights_request WHERE action = 'erasure'") == [(3,)]
