"""`register user add|disable|list`, `register access-log`, and the access log of the CLI's --unmask
(issue 11), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json

import pytest

from pipeline.cli import main
from pipeline.register import users
from test_register_resolve import NEAR_MISS, PERSON, _propose, batch_of, customer_of, load_batch, table
from web_helpers import PASSWORD


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_user_add_reads_the_password_from_a_pipe_disable_and_list(register_engine, capsys, monkeypatch):
    url = _url(register_engine)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["--database-url", url, "user", "add", "aino", "--role", "admin"]) == 0
    out = capsys.readouterr()
    assert "user aino added (admin)" in out.out and PASSWORD not in out.out + out.err
    assert users.authenticate(register_engine, "aino", PASSWORD).role == "admin"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--database-url", url, "user", "add", "eero", "--role", "steward"]) == 2
    assert "at least" in capsys.readouterr().err
    assert main(["--database-url", url, "user", "list"]) == 0
    listed = capsys.readouterr().out
    assert "aino" in listed and "$argon2" not in listed
    assert main(["--database-url", url, "user", "disable", "aino"]) == 0
    with pytest.raises(users.LoginRefused):
        users.authenticate(register_engine, "aino", PASSWORD)
    assert main(["--database-url", url, "user", "disable", "nobody"]) == 2


def test_unmask_is_logged_and_access_log_answers_who_looked(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    owner = customer_of(register_engine)[("phone", "P-1")]
    url = _url(register_engine)
    assert main(["--database-url", url, "review", "show", str(review_id)]) == 0
    assert table(register_engine, "SELECT COUNT(*) FROM access_log") == [(0,)]  # masked: not a look at values
    assert main(["--database-url", url, "review", "show", str(review_id), "--unmask", "--as", "aino"]) == 0
    assert main(["--database-url", url, "explain", "--customer", str(owner), "--unmask", "--as", "eero"]) == 0
    capsys.readouterr()
    rows = table(register_engine, "SELECT user_name, via, action, review_id FROM access_log ORDER BY access_id")
    assert ("aino", "cli", "cli_unmask", review_id) in rows and ("eero", "cli", "cli_unmask", None) in rows
    assert main(["--database-url", url, "access-log", "--customer", str(owner), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["user_name"] for r in listed["items"]} == {"aino", "eero"} and listed["total"] == 2
    assert main(["--database-url", url, "access-log", "--user", "aino"]) == 0
    out = capsys.readouterr().out
    assert "cli_unmask" in out and "showing 1-2 of 2 access log rows" in out  # one row per customer of the review
    assert PERSON["last_name"] not in out
