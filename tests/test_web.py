"""The workbench through Flask's test client, on SQLite and PostgreSQL (issue 11).

Security: a POST without a CSRF token is refused (every POST route); an analyst gets 403
on every personal page (every route but the aggregate ones, enumerated from the app's
URL map); wrong passwords are throttled per account and per client; session cookies are
HttpOnly, SameSite=Lax and Secure under TLS; sessions expire and end when the account is
disabled; no personal value reaches the server's log or an error page.
Pages: masked by default, reveal logs one row naming the user, decisions and views are
logged, a merged id redirects to its survivor, unmerge, quarantine release, rights.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.register import steward, users
from pipeline.web import WebConfigError, create_app, serve
from schemas.register import customer, intake_file, quarantine
from pii_scan import PERSONAL_ID, Needles, scan_bytes
from test_register_helpers import personal_id
from test_register_resolve import (NEAR_MISS, NOW, PERSON, TIE, _propose, batch_of, customer_of, load_batch, record,
                                   table)
from web_helpers import PASSWORD, SECRET, add_users, log_in, make_app, post, token

# The personal values of NEAR_MISS (synthetic, from the resolver's tests) as the register holds them.
PERSONAL = ["Merkkinen", "Kalle Johannes", "Koekatu 7 A 2", "Koekatu 9", "+358401112222", "Tampere"]
AGGREGATE_ENDPOINTS = {"pages.home", "pages.overview", "auth.login", "auth.logout", "static"}


@pytest.fixture
def workbench(register_engine):
    load_batch(register_engine, batch_of("d1", NEAR_MISS))
    add_users(register_engine)
    review_id = _propose(register_engine, ("phone", "P-1"), ("mail", "M-1"))
    app = make_app(register_engine)
    return app, register_engine, review_id


def _ids(engine, review_id) -> dict:
    owners = customer_of(engine)
    with engine.begin() as connection:
        file_id = connection.execute(sa.text("SELECT MIN(intake_file_id) FROM intake_file")).scalar()
        entry = connection.execute(quarantine.insert().returning(quarantine.c.quarantine_id).values(
            channel="mail", source_record_id="M-9", intake_file_id=file_id, record_number=9,
            reasons="invalid_timestamp", raw_values=json.dumps({"phone": "040 111 2222", "last_name": "Merkkinen"}),
            quarantined_at=NOW)).scalar_one()
        pk = connection.execute(sa.text("SELECT MIN(source_record_pk) FROM source_record")).scalar()
    return {"customer_id": owners[("phone", "P-1")], "review_id": review_id, "quarantine_id": entry, "pk": pk,
            "name": "steward.one"}


def _path(rule, ids: dict) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = path.replace(f"<int:{argument}>", str(ids[argument])).replace(f"<{argument}>", str(ids[argument]))
    return path


def _routes(app, method: str) -> list:
    return [rule for rule in app.url_map.iter_rules() if method in rule.methods and rule.endpoint != "static"]


# --- security ---------------------------------------------------------------------------------------

def test_every_post_without_a_csrf_token_is_refused(workbench):
    app, engine, review_id = workbench
    ids = _ids(engine, review_id)
    client = app.test_client()
    assert client.post("/login", data={"name": "steward.one", "password": PASSWORD}).status_code == 400
    assert log_in(client, "admin.one").status_code == 302
    posts = _routes(app, "POST")
    assert len(posts) >= 12
    for rule in posts:
        response = client.post(_path(rule, ids), data={"reason": "ticket 1", "action": "accept", "record_pk": ids["pk"]})
        assert response.status_code == 400, f"{rule.rule} accepted a POST without a CSRF token"
    assert table(engine, f"SELECT status FROM review_queue WHERE review_id = {review_id}") == [("open",)]


def test_an_analyst_gets_403_on_every_personal_page(workbench):
    app, engine, review_id = workbench
    ids = _ids(engine, review_id)
    client = app.test_client()
    assert log_in(client, "analyst.one").status_code == 302
    assert client.get("/overview").status_code == 200
    personal = [r for r in _routes(app, "GET") if r.endpoint not in AGGREGATE_ENDPOINTS]
    assert {"/customers/<int:customer_id>", "/reviews/<int:review_id>", "/quarantine/<int:quarantine_id>",
            "/reviews", "/quarantine", "/access-log", "/users"} <= {r.rule for r in personal}
    for rule in personal:
        assert client.get(_path(rule, ids)).status_code == 403, f"an analyst reached {rule.rule}"
    csrf = token(client, "/overview")
    for rule in _routes(app, "POST"):
        if rule.endpoint in AGGREGATE_ENDPOINTS:
            continue
        response = client.post(_path(rule, ids), data={"csrf_token": csrf, "reason": "ticket 1", "action": "accept",
                                                       "record_pk": ids["pk"], "step": "confirm", "confirm": "erase"})
        assert response.status_code == 403, f"an analyst could POST to {rule.rule}"
    assert table(engine, "SELECT COUNT(*) FROM access_log") == [(0,)]
    # A steward is not an admin.
    steward_client = app.test_client()
    log_in(steward_client, "steward.one")
    assert steward_client.get("/access-log").status_code == 403 and steward_client.get("/users").status_code == 403


def test_wrong_passwords_are_throttled_per_account_and_per_client(workbench):
    app, engine, _ = workbench
    client = app.test_client()
    for _ in range(users.MAX_FAILURES - 1):
        assert log_in(client, "steward.one", "not the password").status_code == 401
    locked = log_in(client, "steward.one", "not the password")
    assert locked.status_code == 429
    # While locked, the right password is refused too.
    assert log_in(client, "steward.one").status_code == 429
    assert client.get("/overview").status_code == 302  # not logged in
    # Per client: after 10 attempts a minute from one address, whatever the names, 429.
    other = make_app(engine).test_client()
    statuses = [log_in(other, f"nobody{i}", "not the password").status_code for i in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


def test_session_cookies_are_httponly_samesite_and_secure_under_tls(workbench):
    app, engine, _ = workbench
    plain = app.test_client()
    cookie = log_in(plain, "steward.one").headers.get("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Expires=" in cookie  # a permanent session: it expires
    assert app.permanent_session_lifetime.total_seconds() == 30 * 60
    tls = make_app(engine, secure_cookies=True).test_client()
    base = "https://workbench.example"
    page = tls.get("/login", base_url=base).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = tls.post("/login", base_url=base, headers={"Referer": f"{base}/login"},
                        data={"name": "steward.one", "password": PASSWORD, "csrf_token": csrf})
    cookie = response.headers.get("Set-Cookie")
    assert response.status_code == 302
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "max-age" in response.headers.get("Strict-Transport-Security", "")


def test_sessions_expire_end_at_logout_and_when_the_account_is_disabled(workbench):
    app, engine, _ = workbench
    client = app.test_client()
    log_in(client, "steward.one")
    assert client.get("/reviews").status_code == 200
    with client.session_transaction() as session:
        session["login_at"] = time.time() - 11 * 3600  # past the longest session
    assert client.get("/reviews").status_code == 302
    log_in(client, "steward.one")
    assert client.get("/reviews").status_code == 200
    assert post(client, "/logout", {}).status_code == 302
    assert client.get("/reviews").status_code == 302
    log_in(client, "steward.one")
    users.disable_user(engine, "steward.one")
    assert client.get("/reviews").status_code == 302


def test_no_personal_value_in_the_server_log_or_an_error_page(workbench, caplog, monkeypatch):
    app, engine, review_id = workbench
    ids = _ids(engine, review_id)
    client = app.test_client()
    log_in(client, "steward.one")
    caplog.set_level(logging.DEBUG)
    pages = {}
    for rule in _routes(app, "GET"):
        pages[rule.rule] = client.get(_path(rule, ids), follow_redirects=True)
    # An error whose text quotes a personal value: the page and the log say the status and the class only.
    def broken(*args, **kwargs):
        raise ValueError(f"cannot show {PERSON['last_name']} at +358401112222")
    monkeypatch.setattr(steward, "show_review", broken)
    failed = client.get(f"/reviews/{review_id}")
    assert failed.status_code == 500
    pages["500"] = failed
    assert client.get("/customers/999999").status_code == 404
    texts = {path: response.get_data(as_text=True) for path, response in pages.items()}
    shown = sorted(path for path, text in texts.items() if any(v in text for v in PERSONAL))
    assert shown == [], f"personal values on masked pages: {shown}"
    assert "ValueError" in caplog.text
    leaked = sum(1 for v in PERSONAL if v in caplog.text)
    assert leaked == 0, f"{leaked} personal values in the server log"


def test_the_secret_key_is_required_outside_dev(register_engine, monkeypatch):
    monkeypatch.delenv("REGISTER_WEB_SECRET_KEY", raising=False)
    with pytest.raises(WebConfigError, match="REGISTER_WEB_SECRET_KEY"):
        serve(register_engine)
    with pytest.raises(WebConfigError):
        create_app(register_engine, secret_key="short")
    monkeypatch.setenv("REGISTER_WEB_SECRET_KEY", SECRET)
    with pytest.raises(WebConfigError, match="TLS"):
        serve(register_engine, host="0.0.0.0")
    with pytest.raises(WebConfigError, match="both"):
        serve(register_engine, certfile="cert.pem")


def test_the_workbench_runs_under_a_production_server(register_engine):
    """`register web` serves through gunicorn (not werkzeug's development server): pages with
    their security headers, CSRF enforced, an access log of method, path and status only (no
    query string, no form field), a clean stop on SIGTERM."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "REGISTER_DATABASE_URL": register_engine.url.render_as_string(hide_password=False),
           "REGISTER_WEB_SECRET_KEY": SECRET}
    command = [str(Path(sys.executable).with_name("register")), "web", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        page = None
        for _ in range(120):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/login?next=%2Fqueue", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read().decode(errors="replace")[-2000:]
                time.sleep(0.25)
        assert page is not None and page.status == 200
        assert page.headers["X-Frame-Options"] == "DENY" and "csrf_token" in page.read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:  # a form without its CSRF token
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/login", method="POST",
                                                          data=b"username=steward.one&password=x"), timeout=5)
        assert refused.value.code == 400
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0].decode(errors="replace")
    assert server.returncode == 0, output[-2000:]
    assert "register web: http://127.0.0.1" in output and "development server" not in output.lower()
    assert '"GET /login" 200' in output and '"POST /login" 400' in output
    assert "next=" not in output and "steward.one" not in output


# --- the pages ------------------------------------------------------------------------------------

def test_values_are_masked_until_revealed_and_each_reveal_is_logged(workbench):
    app, engine, review_id = workbench
    owner = customer_of(engine)[("phone", "P-1")]
    client = app.test_client()
    log_in(client, "steward.one")
    page = client.get(f"/customers/{owner}").get_data(as_text=True)
    assert "Merkkinen" not in page and "M*******n" in page
    before = table(engine, "SELECT COUNT(*) FROM access_log WHERE action = 'reveal'")[0][0]
    pk = table(engine, "SELECT source_record_pk FROM source_record WHERE source_record_id = 'P-1'")[0][0]
    assert post(client, f"/records/{pk}/reveal", {"reason": ""}, token_from=f"/customers/{owner}").status_code == 400
    response = post(client, f"/records/{pk}/reveal", {"reason": "ticket 4711", "next": f"/customers/{owner}"},
                    token_from=f"/customers/{owner}")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/customers/{owner}")
    rows = table(engine, "SELECT user_name, via, source_record_pk, customer_id, reason FROM access_log "
                         "WHERE action = 'reveal'")
    assert len(rows) == before + 1 and rows[-1] == ("steward.one", "web", pk, owner, "ticket 4711")
    page = client.get(f"/customers/{owner}").get_data(as_text=True)
    assert "Merkkinen" in page and "+358401112222" in page
    # A reason shaped like a personal value is refused and nothing is revealed.
    other = table(engine, "SELECT source_record_pk FROM source_record WHERE source_record_id = 'M-1'")[0][0]
    post(client, f"/records/{other}/reveal", {"reason": "called +358401112222"}, token_from=f"/customers/{owner}")
    assert table(engine, "SELECT COUNT(*) FROM access_log WHERE action = 'reveal'")[0][0] == before + 1
    views = table(engine, f"SELECT COUNT(*) FROM access_log WHERE action = 'view_customer' AND customer_id = {owner}")
    assert views[0][0] >= 2


def test_a_review_is_accepted_the_old_id_redirects_and_unmerge_gives_it_back(workbench):
    app, engine, review_id = workbench
    before = customer_of(engine)
    client = app.test_client()
    log_in(client, "steward.one")
    listing = client.get("/reviews?kind=uncertain&sort=oldest").get_data(as_text=True)
    assert f"review {review_id}" in listing and "1-1 of 1 open reviews" in listing
    assert "0 of" not in client.get("/reviews?kind=ambiguous").get_data(as_text=True)
    page = client.get(f"/reviews/{review_id}").get_data(as_text=True)
    assert "differs" in page and "Accepting merges the two customers" in page and "first name" in page
    assert post(client, f"/reviews/{review_id}/decide", {"action": "accept", "reason": "ticket 9"},
                token_from=f"/reviews/{review_id}").status_code == 302
    survivor, gone = min(before.values()), max(before.values())
    assert set(customer_of(engine).values()) == {survivor}
    assert client.get(f"/customers/{gone}").headers["Location"].endswith(f"/customers/{survivor}")
    page = client.get(f"/customers/{survivor}").get_data(as_text=True)
    assert f"Unmerge {gone} (its old id back)" in page
    assert post(client, f"/customers/{survivor}/unmerge", {"merged_customer_id": gone, "reason": "ticket 10"},
                token_from=f"/customers/{survivor}").status_code == 302
    assert customer_of(engine) == before
    decided = table(engine, f"SELECT action, reason FROM access_log WHERE review_id = {review_id} "
                            "AND action = 'decide_review'")
    assert decided and all(reason == "accepted: ticket 9" for _, reason in decided)


def test_a_weak_match_to_a_no_marketing_record_is_its_own_kind_and_says_what_it_holds(register_engine):
    """A `marketing_doubt` review (rule 5: a weak pair with a prohibiting record) can be listed
    on its own, and its page tells the steward that deciding it is what lets the other customer
    back on the marketing list."""
    from test_marketing_doubt import ADULT, WEAK_PROHIBITING_CALL

    load_batch(register_engine, batch_of("d1", [ADULT, WEAK_PROHIBITING_CALL]))
    add_users(register_engine)
    [(review_id,)] = table(register_engine, "SELECT review_id FROM review_queue WHERE status = 'open'")
    client = make_app(register_engine).test_client()
    log_in(client, "steward.one")
    listing = client.get("/reviews?kind=marketing_doubt").get_data(as_text=True)
    assert f"review {review_id}" in listing and "1-1 of 1 open reviews" in listing
    assert f"review {review_id}" not in client.get("/reviews?kind=uncertain").get_data(as_text=True)
    page = client.get(f"/reviews/{review_id}").get_data(as_text=True)
    assert "does not want direct marketing" in page and "kept off the marketing list until you decide" in page


def test_quarantine_release_and_rights_from_the_browser_side(workbench):
    app, engine, review_id = workbench
    ids = _ids(engine, review_id)
    client = app.test_client()
    log_in(client, "steward.one")
    entry = ids["quarantine_id"]
    listing = client.get("/quarantine?channel=mail").get_data(as_text=True)
    assert f"entry {entry}" in listing and "1-1 of 1 open entries" in listing
    page = client.get(f"/quarantine/{entry}").get_data(as_text=True)
    assert "Merkkinen" not in page and "Correct and release" in page
    response = post(client, f"/quarantine/{entry}/release",
                    {"reason": "ticket 20", "field_observed_at": "2026-11-02T10:00:00+02:00",
                     "field_first_names": "Kalle"}, token_from=f"/quarantine/{entry}")
    assert response.status_code == 302, response.get_data(as_text=True)[:200]
    released = customer_of(engine)[("mail", "M-9")]
    assert response.headers["Location"].endswith(f"/customers/{released}")
    customer_id = ids["customer_id"]
    report = post(client, f"/customers/{customer_id}/access", {"reason": "SAR 2026-1", "lang": "fi"},
                  token_from=f"/customers/{customer_id}/rights")
    assert report.status_code == 200 and "TARKASTUSPYYNNÖN VASTAUS" in report.get_data(as_text=True)
    assert "attachment" in report.headers["Content-Disposition"]
    as_json = post(client, f"/customers/{customer_id}/access", {"reason": "SAR 2026-1", "format": "json"},
                   token_from=f"/customers/{customer_id}/rights")
    assert "access_log" in json.loads(as_json.get_data(as_text=True))
    dry = post(client, f"/customers/{customer_id}/erase", {"reason": "erasure 2026-2", "step": "dry_run"},
               token_from=f"/customers/{customer_id}/rights")
    assert "Dry run: nothing erased yet" in dry.get_data(as_text=True)
    assert table(engine, f"SELECT erased_at FROM customer WHERE customer_id = {customer_id}") != []
    # Without the explicit confirmation a "confirm" step erases nothing.
    post(client, f"/customers/{customer_id}/erase", {"reason": "erasure 2026-2", "step": "confirm"},
         token_from=f"/customers/{customer_id}/rights")
    assert table(engine, "SELECT COUNT(*) FROM rights_request WHERE action = 'erasure'") == [(0,)]
    done = post(client, f"/customers/{customer_id}/erase",
                {"reason": "erasure 2026-2", "step": "confirm", "confirm": "erase"},
                token_from=f"/customers/{customer_id}/rights")
    assert "Erased" in done.get_data(as_text=True)
    assert table(engine, "SELECT COUNT(*) FROM rights_request WHERE action = 'erasure'")[0][0] >= 1
    actions = {a for (a,) in table(engine, "SELECT DISTINCT action FROM access_log")}
    assert {"view_quarantine", "release", "export", "erase_dry_run", "erase"} <= actions


def test_admin_pages_list_users_and_the_access_log(workbench):
    app, engine, review_id = workbench
    client = app.test_client()
    log_in(client, "admin.one")
    owner = customer_of(engine)[("phone", "P-1")]
    client.get(f"/customers/{owner}")
    page = client.get(f"/access-log?customer={owner}").get_data(as_text=True)
    assert "view_customer" in page and "admin.one" in page
    response = post(client, "/users", {"name": "new.steward", "role": "steward", "password": PASSWORD,
                                       "again": PASSWORD}, token_from="/users")
    assert response.status_code == 302
    assert "new.steward" in client.get("/users").get_data(as_text=True)
    post(client, "/users/new.steward/disable", {}, token_from="/users")
    with pytest.raises(users.LoginRefused):
        users.authenticate(engine, "new.steward", PASSWORD)


def test_a_deferred_review_shows_as_deferred_is_filterable_and_can_be_decided_later(workbench):
    app, engine, review_id = workbench
    client = app.test_client()
    log_in(client, "steward.one")
    assert "no deferred reviews" in client.get("/reviews?status=deferred").get_data(as_text=True)
    response = post(client, f"/reviews/{review_id}/decide", {"action": "defer", "reason": "ticket 31: call back"},
                    token_from=f"/reviews/{review_id}")
    assert response.status_code == 302
    assert table(engine, f"SELECT status FROM review_queue WHERE review_id = {review_id}") == [("open",)]
    deferred = client.get("/reviews?status=deferred").get_data(as_text=True)
    assert f"review {review_id}" in deferred and "1-1 of 1 deferred reviews" in deferred
    assert "deferred</span> by steward.one on" in deferred and "ticket 31: call back" in deferred
    listing = client.get("/reviews").get_data(as_text=True)  # the open queue names it deferred too
    assert f"review {review_id}" in listing and "ticket 31: call back" in listing
    page = client.get(f"/reviews/{review_id}").get_data(as_text=True)
    assert "deferred by steward.one on" in page and "Accept: one person" in page
    assert client.get("/reviews?status=postponed").status_code == 400
    # Decided later: out of the deferred list.
    assert post(client, f"/reviews/{review_id}/decide", {"action": "reject", "reason": "ticket 31: two people"},
                token_from=f"/reviews/{review_id}").status_code == 302
    assert "no deferred reviews" in client.get("/reviews?status=deferred").get_data(as_text=True)
    assert f'/reviews/{review_id}">review {review_id}' in client.get("/reviews?status=rejected").get_data(as_text=True)


def test_a_review_a_later_load_settles_shows_as_withdrawn_with_nothing_to_decide(workbench):
    app, engine, review_id = workbench
    load_batch(engine, batch_of("d2", [TIE]))  # ties both sides of the pair together: one person
    assert table(engine, f"SELECT status FROM review_queue WHERE review_id = {review_id}") == [("withdrawn",)]
    client = app.test_client()
    log_in(client, "steward.one")
    page = client.get(f"/reviews/{review_id}").get_data(as_text=True)
    assert 'id="withdrawn"' in page and "Accept: one person" not in page
    assert f"review {review_id}" not in client.get("/reviews").get_data(as_text=True)
    assert f'/reviews/{review_id}">review {review_id}' in client.get("/reviews?status=withdrawn").get_data(as_text=True)
    # A stale form (opened before the load) cannot decide it.
    post(client, f"/reviews/{review_id}/decide", {"action": "accept", "reason": "ticket 12"},
         token_from="/reviews?status=withdrawn")
    assert table(engine, f"SELECT status FROM review_queue WHERE review_id = {review_id}") == [("withdrawn",)]


# --- finding a person by identity code ------------------------------------------------------------------

AINO_CODE = personal_id(3, 4, 1970, 123)
AINO = record("web", "W-9", "2026-11-03T10:00", personal_id=AINO_CODE, first_names="Aino Maria",
              last_name="Testinen", street_address="Koekatu 11", postal_code="33100", city="Tampere")


def test_a_steward_finds_a_person_by_identity_code_posted_never_echoed_or_logged(workbench, caplog):
    app, engine, _ = workbench
    load_batch(engine, batch_of("d2", [AINO]))
    aino = customer_of(engine)[("web", "W-9")]
    needles = Needles()
    needles.add(PERSONAL_ID, AINO_CODE)
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    log_in(client, "steward.one")
    assert 'name="personal_id"' in client.get("/find").get_data(as_text=True)
    # Another spelling of the same code: spaces around it, the check character in lower case.
    entered = f"  {AINO_CODE[:-1]}{AINO_CODE[-1].lower()} "
    assert client.post("/find", data={"personal_id": entered, "reason": "SAR 2026-5"}).status_code == 400  # no CSRF
    found = post(client, "/find", {"personal_id": entered, "reason": "SAR 2026-5"}, token_from="/find")
    page = found.get_data(as_text=True)
    assert found.status_code == 200 and found.headers["Cache-Control"] == "no-store"
    assert f'href="/customers/{aino}/rights"' in page and "Found: 1 customer(s)" in page
    assert "T******n" in page and "1970-**-**" in page and "Testinen" not in page
    assert scan_bytes(page.encode(), needles) == {} and AINO_CODE[:6] not in page
    rows = table(engine, "SELECT user_name, via, customer_id, reason FROM access_log WHERE action = 'find_by_code'")
    assert rows == [("steward.one", "web", aino, "SAR 2026-5")]
    # A valid code nobody holds: nothing found, the look-up still logged (no customer).
    other = post(client, "/find", {"personal_id": personal_id(5, 6, 1980, 456), "reason": "SAR 2026-6"},
                 token_from="/find").get_data(as_text=True)
    assert "Found: 0 customer(s)" in other
    assert table(engine, "SELECT COUNT(*) FROM access_log WHERE action = 'find_by_code' AND customer_id IS NULL") \
        == [(1,)]
    # An invalid code (a wrong check character): the kind of fault, not the value; nothing logged.
    wrong = AINO_CODE[:-1] + ("A" if AINO_CODE[-1] != "A" else "B")
    refused = post(client, "/find", {"personal_id": wrong, "reason": "SAR 2026-7"},
                   token_from="/find").get_data(as_text=True)
    assert "not valid" in refused and wrong not in refused and "Found:" not in refused
    # A reason holding the code is refused: it would be recorded.
    post(client, "/find", {"personal_id": AINO_CODE, "reason": f"asked {AINO_CODE}"}, token_from="/find")
    assert table(engine, "SELECT COUNT(*) FROM access_log WHERE action = 'find_by_code'") == [(2,)]
    logged = " ".join(str(v) for row in table(engine, "SELECT * FROM access_log") for v in row)
    assert scan_bytes(logged.encode(), needles) == {} and wrong not in logged
    assert scan_bytes(caplog.text.encode(), needles) == {} and wrong not in caplog.text
    # An analyst: 403, nothing looked up.
    analyst = app.test_client()
    log_in(analyst, "analyst.one")
    assert analyst.get("/find").status_code == 403
    assert post(analyst, "/find", {"personal_id": AINO_CODE, "reason": "SAR 2026-8"}).status_code == 403
    assert table(engine, "SELECT COUNT(*) FROM access_log WHERE action = 'find_by_code'") == [(2,)]


def test_the_customer_page_shows_each_records_match_evidence_in_words_and_bars(workbench):
    """As the review page does (the same partial), from `explain.explain_records`: the records a
    steward merged show their strongest pair's fields in words, weights and bars; no values."""
    app, engine, review_id = workbench
    client = app.test_client()
    log_in(client, "steward.one")
    before = customer_of(engine)
    alone = client.get(f"/customers/{before[('phone', 'P-1')]}").get_data(as_text=True)
    assert "Match evidence against" not in alone and 'class="weight"' not in alone
    post(client, f"/reviews/{review_id}/decide", {"action": "accept", "reason": "ticket 40"},
         token_from=f"/reviews/{review_id}")
    survivor = min(before.values())
    page = client.get(f"/customers/{survivor}").get_data(as_text=True)
    from pipeline.register.explain import explain_records
    with engine.connect() as connection:
        explained = explain_records(connection, survivor)
    strongest = [e.strongest for e in explained if e.strongest is not None]
    assert len(strongest) == 2  # each record against the other
    assert page.count("Match evidence against") == 2
    assert "Steward&#39;s decision: review" in page or "Steward's decision: review" in page
    for field in strongest[0].fields:
        assert f"<td>{field.field}</td><td>{field.level}</td>" in page
        assert f"{field.weight:+.1f}" in page
    bars = page.count('<svg class="weight"')
    assert bars == sum(len(s.fields) for s in strongest)
    weights = [f.weight for s in strongest for f in s.fields]
    assert 'class="for"' in page and ('class="against"' in page) == any(w < 0 for w in weights)
    assert not any(v in page for v in PERSONAL), "the evidence shows levels and weights, never a value"


def test_the_overviews_figures_are_the_plain_counts(workbench):
    """The overview counts live customers from partial indexes and new customers per night by
    range counts (migration 0013's indexes): the same figures as a plain scan of the table."""
    app, engine, review_id = workbench
    load_batch(engine, batch_of("d2", [AINO]))
    steward.decide_review(engine, review_id, accept=True, by="steward.one")  # one customer merged
    today = dt.datetime.now(dt.timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    owners = customer_of(engine)
    merged = table(engine, "SELECT customer_id FROM customer WHERE merged_into IS NOT NULL")[0][0]
    with engine.begin() as connection:
        files = connection.execute(sa.text("SELECT intake_file_id FROM intake_file ORDER BY intake_file_id")).scalars().all()
        for days, file_id in zip((2, 1), files):
            connection.execute(intake_file.update().where(intake_file.c.intake_file_id == file_id)
                               .values(loaded_at=today - dt.timedelta(days=days)))
        connection.execute(customer.update().where(customer.c.customer_id != owners[("web", "W-9")])
                           .values(created_at=today - dt.timedelta(days=2, hours=11)))  # just after midnight
        connection.execute(customer.update().where(customer.c.customer_id == owners[("web", "W-9")])
                           .values(created_at=today - dt.timedelta(days=1), erased_at=today))  # erased
        connection.execute(customer.update().where(customer.c.customer_id == merged).values(erased_at=today))
    live = table(engine, "SELECT COUNT(*) FROM customer WHERE merged_into IS NULL AND erased_at IS NULL")[0][0]
    client = app.test_client()
    log_in(client, "analyst.one")
    page = client.get("/overview").get_data(as_text=True)
    assert f'<b id="customers">{live}</b>' in page and live == 1
    expected = {}
    for (created,) in table(engine, "SELECT created_at FROM customer"):
        day = (created if isinstance(created, str) else created.astimezone(dt.timezone.utc).isoformat())[:10]
        expected[day] = expected.get(day, 0) + 1
    shown = dict(re.findall(r'<tr><td>(\d{4}-\d{2}-\d{2})</td><td class="num">\d+</td><td class="num">(\d+)</td>', page))
    assert {day: int(n) for day, n in shown.items() if int(n)} == expected and sum(expected.values()) == 3
