"""The workbench in a real browser: Debian's chromium through Playwright's Python API (issue 11).

Never `playwright install`: the browser is /usr/bin/chromium (`apt-get install chromium`,
which .ci/run does). The register is loaded from the generator's synthetic people, plus
the resolver tests' near-miss pair for a review to work. One steward logs in; works a
review to a merge and unmerges it again; reveals a value (the access log grows by one
row naming the user); corrects and releases a quarantined record and sees it in the
register; runs an erasure with its dry run first. The server's log is scanned for the
landing zone's personal values as the pipeline's PII scan does. Screenshots go to
$REGISTER_SCREENSHOTS (docs/screenshots refreshes the README's), else a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from pii_scan import needles_from_landing, scan_file
from pipeline.intake import build_batch, discover, read_all
from pipeline.matching.settings import MatchSettings
from pipeline.register.database import make_engine, migrate
from pipeline.register.load import load_intake
from pipeline.register.resolve import resolve_identities
from schemas.register import quarantine
from synth import generate
from test_register_resolve import NEAR_MISS, NOW, _propose, batch_of, customer_of, load_batch, table
from test_web import PERSONAL
from web_helpers import PASSWORD, add_users, make_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow


def _browser_or_fail():
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright
    return sync_playwright


@pytest.fixture
def served(tmp_path):
    """A register loaded from synthetic people, served on a free port; the server's log in a file."""
    from werkzeug.serving import make_server

    out = tmp_path / "zone"
    generate(out, people=60, days=2, seed=17)
    engine = make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    migrate(engine)
    batch = build_batch(read_all(discover(out / "landing")), NOW.date())
    load_intake(engine, batch, run_id="browser", now=NOW,
                after_load=lambda c: resolve_identities(c, now=NOW, run_id="browser", settings=MatchSettings()))
    load_batch(engine, batch_of("browser", NEAR_MISS))
    review_id = _propose(engine, ("phone", "P-1"), ("mail", "M-1"))
    add_users(engine)
    with engine.begin() as connection:
        file_id = connection.execute(sa.text("SELECT MIN(intake_file_id) FROM intake_file")).scalar()
        entry = connection.execute(quarantine.insert().returning(quarantine.c.quarantine_id).values(
            channel="mail", source_record_id="M-BROWSER-1", intake_file_id=file_id, record_number=1,
            reasons="invalid_timestamp",
            raw_values=json.dumps({"full_name": "Merkkinen Kalle", "name_order": "surname_first",
                                   "phone": "040 111 2222"}),
            quarantined_at=NOW)).scalar_one()
    server_log = tmp_path / "server.log"
    handler = logging.FileHandler(server_log, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    server = make_server("127.0.0.1", 0, make_app(engine), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}", "engine": engine, "review_id": review_id,
               "quarantine_id": entry, "landing": out / "landing", "ground_truth": out / "ground_truth.csv.gz",
               "log": server_log}
    finally:
        server.shutdown()
        thread.join(timeout=10)
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
        engine.dispose()


def test_a_steward_works_the_register_in_a_real_browser(served, tmp_path):
    sync_playwright = _browser_or_fail()
    shots = Path(os.environ.get("REGISTER_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    url, engine, review_id = served["url"], served["engine"], served["review_id"]
    before = customer_of(engine)
    left, right = before[("phone", "P-1")], before[("mail", "M-1")]
    survivor, gone = min(left, right), max(left, right)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)

        # Log in.
        page.goto(f"{url}/overview")
        assert "/login" in page.url
        page.screenshot(path=str(shots / "login.png"))
        page.fill("input[name=name]", "steward.one")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/overview")
        assert page.inner_text("#queue") == "1"
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        # Work a review to a merge.
        page.click("text=Reviews")
        assert "1-1 of 1 open reviews" in page.inner_text("main")
        page.screenshot(path=str(shots / "reviews.png"))
        page.click(f"text=review {review_id}")
        assert page.locator("tr.differs").count() >= 1  # the differences highlighted
        page.screenshot(path=str(shots / "review.png"), full_page=True)
        page.fill("form.decide input[name=reason]", "ticket 2026-200: one person")
        page.click("button[value=accept]")
        assert "accepted" in page.inner_text("main")
        merged = customer_of(engine)
        assert merged[("phone", "P-1")] == merged[("mail", "M-1")] == survivor

        # A merged id redirects to its survivor; unmerge it again (its old id back).
        page.goto(f"{url}/customers/{gone}")
        assert page.url.endswith(f"/customers/{survivor}")
        page.screenshot(path=str(shots / "customer.png"), full_page=True)
        unmerge = page.locator("#merges form.unmerge")
        unmerge.locator("input[name=reason]").fill("ticket 2026-201: two people after all")
        unmerge.locator("button").click()
        assert "its old id back" in page.inner_text("main")
        assert customer_of(engine) == before

        # Reveal a value: the access log grows by one row naming the user.
        reveals = table(engine, "SELECT COUNT(*) FROM access_log WHERE action = 'reveal'")[0][0]
        record = page.locator("section.record").first
        masked = record.locator("dl").inner_text()
        record.locator("input[name=reason]").fill("ticket 2026-202")
        record.locator("button.reveal-button").click()
        page.wait_for_load_state()
        rows = table(engine, "SELECT user_name, action FROM access_log WHERE action = 'reveal' ORDER BY access_id")
        assert len(rows) == reveals + 1 and rows[-1] == ("steward.one", "reveal")
        assert page.locator("section.record").first.locator("dl").inner_text() != masked

        # Correct and release a quarantined record; see it in the register.
        entry = served["quarantine_id"]
        page.goto(f"{url}/quarantine/{entry}")
        page.screenshot(path=str(shots / "quarantine_entry.png"), full_page=True)
        form = page.locator("#release-form")
        form.locator("input[name=field_observed_at]").fill("2026-11-20T09:30:00+02:00")
        form.locator("input[name=reason]").fill("ticket 2026-203: the time was cut off")
        form.locator("button[type=submit]").click()
        assert "released into customer" in page.inner_text("main")
        assert "mail:M-BROWSER-1" in page.inner_text("main")
        released = customer_of(engine)[("mail", "M-BROWSER-1")]
        assert page.url.endswith(f"/customers/{released}")

        # An erasure, its dry run shown first.
        victim = max(c for c in customer_of(engine).values() if c not in (survivor, gone, released))
        page.goto(f"{url}/customers/{victim}/rights")
        page.locator("#erase-form input[name=reason]").fill("erasure request 2026-204")
        page.locator("#erase-form button").click()
        assert "Dry run: nothing erased yet" in page.inner_text("main")
        page.screenshot(path=str(shots / "erasure_dry_run.png"), full_page=True)
        assert table(engine, "SELECT COUNT(*) FROM rights_request WHERE action = 'erasure'") == [(0,)]
        page.check("#confirm-form input[name=confirm]")
        page.click("#confirm-form button")
        assert page.inner_text("h1") == "Erased"
        assert table(engine, f"SELECT COUNT(*) FROM rights_request WHERE action = 'erasure' "
                             f"AND customer_id = {victim}") == [(1,)]

        page.click("text=Log out")
        page.goto(f"{url}/reviews")
        assert "/login" in page.url
        browser.close()

    # No personal value in the server's log (the landing zone's values, as the pipeline's PII scan finds them).
    needles, _ = needles_from_landing(served["landing"], served["ground_truth"])
    hits = scan_file(served["log"], needles)
    assert served["log"].stat().st_size > 0
    assert not hits, f"personal values in the server log: {[str(h) for h in hits]}"
    text = served["log"].read_text(encoding="utf-8")
    assert sum(v in text for v in PERSONAL) == 0
    assert "GET /customers/" in text  # the log does hold the requests (ids only)
