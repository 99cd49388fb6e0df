"""The run-failure alert (issue 12): one e-mail and/or one webhook POST per failed run, no
personal value in either; and the nightly freshness policy on `register` and `marketing_extract`.

Runs really fail (`register_load` executed in process on a test instance), and the
sensor is evaluated as the daemon does, a tick at a time (`evaluate_tick`, its cursor
started before the run). The SMTP server and the webhook are local receivers started
here on 127.0.0.1: `SmtpReceiver` speaks just enough SMTP for `smtplib` (test scaffolding,
no aiosmtpd in the environment), `WebhookReceiver` is `http.server`.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

import assets.intake
from pii_scan import needles_from_landing, scan_bytes
from pipeline.alerts import FIXED_SENTENCE, AlertSettings
from pipeline.orchestration.definitions import defs
from pipeline.orchestration.io_manager import RunMemoryIOManager
from pipeline.orchestration.jobs import nightly_register_load
from pipeline.orchestration.resources import (
    AlertChannels,
    ExtractDirectory,
    LandingZone,
    MatchingConfig,
    RegisterDatabase,
    alert_channels_from_env,
)
from pipeline.orchestration.sensors import run_failure_alert

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cret-Pa55word-never-logged"


# --- local receivers (test scaffolding) ----------------------------------------------------------

class _SmtpHandler(socketserver.StreamRequestHandler):
    """HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; `server.refuse` makes it say no."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        server: SmtpReceiver = self.server  # type: ignore[assignment]
        server.connections += 1
        if server.refuse == "greeting":
            self.reply("554 5.3.2 no service here")
            return
        self.reply("220 localhost test ESMTP")
        sender, recipients = None, []
        while line := self.rfile.readline():
            command = line.decode("ascii", errors="replace").strip()
            server.commands.append(command)
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 localhost")
            elif verb == "MAIL":
                sender, recipients = command[10:], []
                self.reply("250 2.1.0 OK")
            elif verb == "RCPT":
                if server.refuse == "rcpt":
                    self.reply("550 5.7.1 relaying denied")
                else:
                    recipients.append(command[8:])
                    self.reply("250 2.1.5 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                server.messages.append({"from": sender, "to": recipients, "data": b"".join(lines)})
                self.reply("250 2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # AUTH, STARTTLS, ...: not spoken here
                self.reply("502 5.5.1 not implemented")


class SmtpReceiver(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, refuse: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.refuse = refuse
        self.connections = 0
        self.commands: list[str] = []
        self.messages: list[dict] = []

    @property
    def port(self) -> int:
        return self.server_address[1]


class _WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts.append({"path": self.path, "type": self.headers.get("Content-Type"), "body": body})
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


class WebhookReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int = 204) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.status = status
        self.posts: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/register"


def _serving(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def smtp():
    server = _serving(SmtpReceiver())
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook():
    server = _serving(WebhookReceiver())
    yield server
    server.shutdown()
    server.server_close()


# --- a failed run and one sensor tick ------------------------------------------------------------

class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.levelname} {r.getMessage()}" for r in self.records)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]


# A run whose error quotes records must not print them into the test's output either:
# Dagster's console logger then shows nothing below CRITICAL.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _run_load(instance, tmp_path: Path, landing: Path, *, quiet: bool = False) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("register_load").execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET if quiet else None,
        resources={
            "register_db": RegisterDatabase(url=f"sqlite:///{tmp_path / 'register.db'}"),
            "landing_zone": LandingZone(path=str(landing)),
            "extract_dir": ExtractDirectory(path=str(tmp_path / "extract")),
            "io_manager": RunMemoryIOManager(),
            "matching": MatchingConfig(),
        })


def _tick(instance, alerts: AlertChannels, cursor: str | None) -> tuple[dg.SensorExecutionData, _Lines]:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": alerts})
    lines = _Lines()
    context.log.addHandler(lines)
    return run_failure_alert.evaluate_tick(context), lines


def fail_and_alert(tmp_path: Path, alerts: AlertChannels, landing: Path | None = None, *, quiet: bool = False):
    """A failed `register_load` run (by default: its landing directory does not exist),
    then one tick of the sensor, as the daemon runs them. Returns (run result, tick, log)."""
    with dg.instance_for_test() as instance:
        started, _ = _tick(instance, alerts, None)  # the first tick only sets the cursor at "now"
        result = _run_load(instance, tmp_path, landing or tmp_path / "no-such-landing", quiet=quiet)
        assert not result.success
        tick, lines = _tick(instance, alerts, started.cursor)
    # The daemon would have recorded an error on the tick, had the sensor raised.
    assert [r.error for r in tick.dagster_run_reactions or []] == [None]
    return result, tick, lines


def _channels(smtp: SmtpReceiver | None = None, webhook: WebhookReceiver | None = None, **extra) -> AlertChannels:
    settings = {}
    if smtp is not None:
        settings |= {"smtp_host": "127.0.0.1", "smtp_port": str(smtp.port), "email_from": "register@example.invalid",
                     "email_to": "ops@example.invalid, oncall@example.invalid"}
    if webhook is not None:
        settings["webhook_url"] = webhook.url
    return AlertChannels(**(settings | extra))


def _mail(server: SmtpReceiver) -> email.message.EmailMessage:
    return email.message_from_bytes(server.messages[0]["data"], policy=email.policy.default)


# --- 1. the alert --------------------------------------------------------------------------------

def test_a_failed_run_sends_one_email_and_one_webhook_post(tmp_path, smtp, webhook):
    result, _, lines = fail_and_alert(tmp_path, _channels(smtp, webhook))
    run_id = result.run_id

    assert len(smtp.messages) == 1, smtp.messages
    sent = smtp.messages[0]
    assert sorted(sent["to"]) == ["<oncall@example.invalid>", "<ops@example.invalid>"]
    mail = _mail(smtp)
    body = mail.get_content()
    assert "register_load" in mail["Subject"] and run_id[:8] in mail["Subject"]
    assert f"Run id:       {run_id}" in body and "Job:          register_load" in body
    assert "Failed steps: landed_files" in body and "Error class:  Failure" in body
    assert "Reason:       STEP_FAILURE" in body and FIXED_SENTENCE in " ".join(body.split())
    assert mail["Content-Transfer-Encoding"] == "7bit"  # plain lines, as read on any terminal
    assert "Failed at:    20" in body and ("EET" in body or "EEST" in body)
    # The step's error text ("landing directory /tmp/... does not exist") is not repeated.
    assert "does not exist" not in body and str(tmp_path) not in body
    assert "http" not in body.lower()

    assert len(webhook.posts) == 1, webhook.posts
    post = webhook.posts[0]
    assert post["path"] == "/hooks/register" and post["type"] == "application/json"
    payload = json.loads(post["body"])
    assert payload["event"] == "run_failure" and payload["job"] == "register_load" and payload["run_id"] == run_id
    assert payload["failed_steps"] == ["landed_files"] and payload["error_classes"] == ["Failure"]
    assert payload["failure_reason"] == "STEP_FAILURE" and payload["summary"] == FIXED_SENTENCE
    assert dt.datetime.fromisoformat(payload["failed_at"]).tzinfo is not None
    assert run_id in payload["text"] and "does not exist" not in post["body"].decode()

    assert "email sent" in lines.text() and "webhook sent" in lines.text()
    assert not lines.warnings()


def test_the_next_tick_sends_nothing_again(tmp_path, smtp):
    alerts = _channels(smtp)
    with dg.instance_for_test() as instance:
        started, _ = _tick(instance, alerts, None)
        assert _run_load(instance, tmp_path, tmp_path / "missing").success is False
        first, _ = _tick(instance, alerts, started.cursor)
        _tick(instance, alerts, first.cursor)
    assert len(smtp.messages) == 1


def test_an_error_quoting_personal_values_never_reaches_the_notice(tmp_path, smtp, webhook, monkeypatch):
    """The run fails late, at `register`, with an error whose message quotes the batch's
    records (as a database error may quote a row): the notice names its class only."""
    from synth import generate

    generate(tmp_path / "zone", people=20, days=1, seed=12)
    landing = tmp_path / "zone" / "landing"
    needles, _ = needles_from_landing(landing, tmp_path / "zone" / "ground_truth.csv.gz")
    assert sum(needles.counts().values()) > 20

    class RowRejected(ValueError):
        pass

    def load_that_quotes_rows(engine, batch, **kwargs):
        raise RowRejected(f"rejected rows:\n{batch.accepted.head(5).to_string()}")

    monkeypatch.setattr(assets.intake, "load_intake", load_that_quotes_rows)
    result, _, lines = fail_and_alert(tmp_path, _channels(smtp, webhook), landing, quiet=True)

    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "register"
    # The error did carry personal values: the notice had them within reach.
    assert scan_bytes(str(failure.event_specific_data.error.cause.message).encode(), needles)

    assert len(smtp.messages) == 1 and len(webhook.posts) == 1
    assert scan_bytes(smtp.messages[0]["data"], needles) == {}, "personal values in the e-mail"
    assert scan_bytes(_mail(smtp).get_content().encode(), needles) == {}, "personal values in the e-mail"
    assert scan_bytes(webhook.posts[0]["body"], needles) == {}, "personal values in the webhook body"
    assert scan_bytes(lines.text().encode(), needles) == {}, "personal values in the sensor's log"
    body = _mail(smtp).get_content()
    # Booleans first: a failing assertion must not print the body (it would then hold values).
    named, quoted = "Failed steps: register" in body and "Error class:  RowRejected" in body, "rejected rows" in body
    assert named and not quoted, "the e-mail names the step and class, never the error's text"
    assert json.loads(webhook.posts[0]["body"])["error_classes"] == ["RowRejected"]


def test_with_nothing_configured_nothing_is_sent_and_the_tick_says_so_once(tmp_path, smtp, webhook):
    _, tick, lines = fail_and_alert(tmp_path, AlertChannels())
    assert smtp.connections == 0 and webhook.posts == []
    said = [r.getMessage() for r in lines.records if "no alert channel is configured" in r.getMessage()]
    assert len(said) == 1 and not lines.warnings()


def test_a_refusing_smtp_server_is_a_warning_without_secrets_and_the_webhook_still_goes(tmp_path, webhook):
    refusing = _serving(SmtpReceiver(refuse="rcpt"))
    try:
        _, _, lines = fail_and_alert(tmp_path, _channels(refusing, webhook))
    finally:
        refusing.shutdown()
        refusing.server_close()
    assert refusing.messages == [] and len(webhook.posts) == 1
    warnings = lines.warnings()
    assert len(warnings) == 1 and "email not sent (SMTPRecipientsRefused)" in warnings[0], warnings
    assert "relaying denied" not in lines.text() and "ops@example.invalid" not in lines.text()


def test_a_password_is_never_logged_nor_sent_outside_starttls(tmp_path):
    # The server offers no STARTTLS: the login is never tried, the password never leaves.
    server = _serving(SmtpReceiver())
    try:
        _, _, lines = fail_and_alert(tmp_path, _channels(server, smtp_starttls="true", smtp_user="alerts",
                                                          smtp_password=SECRET))
    finally:
        server.shutdown()
        server.server_close()
    assert server.messages == [] and not any(c.upper().startswith("AUTH") for c in server.commands)
    assert any("email not sent (SMTPNotSupportedError)" in w for w in lines.warnings()), lines.warnings()
    assert SECRET not in lines.text()
    assert SECRET not in repr(AlertChannels(smtp_password=SECRET).settings())
    # A login without STARTTLS is refused by the settings themselves, naming variables only.
    settings = AlertSettings.from_environ({"REGISTER_ALERT_SMTP_HOST": "127.0.0.1", "REGISTER_ALERT_EMAIL_FROM": "a@x.invalid",
                                           "REGISTER_ALERT_EMAIL_TO": "b@x.invalid", "REGISTER_ALERT_SMTP_USER": "alerts",
                                           "REGISTER_ALERT_SMTP_PASSWORD": SECRET})
    assert settings.email is None and "REGISTER_ALERT_SMTP_STARTTLS" in settings.problems[0]
    assert SECRET not in " ".join(settings.problems)


def test_an_unreachable_smtp_server_and_a_failing_webhook_do_not_stop_the_sensor(tmp_path):
    closed = SmtpReceiver()  # bound, never served, then closed: the port refuses connections
    port = closed.port
    closed.server_close()
    failing = _serving(WebhookReceiver(status=500))
    try:
        _, _, lines = fail_and_alert(tmp_path, AlertChannels(
            smtp_host="127.0.0.1", smtp_port=str(port), email_from="register@example.invalid",
            email_to="ops@example.invalid", webhook_url=failing.url))
    finally:
        failing.shutdown()
        failing.server_close()
    warnings = lines.warnings()
    assert any("email not sent (ConnectionRefusedError)" in w for w in warnings), warnings
    assert any("webhook not sent (HTTPError)" in w for w in warnings), warnings
    assert "/hooks/register" not in lines.text(), "the webhook URL is a credential"


def test_the_alert_is_configured_from_the_environment(monkeypatch):
    for name in ("REGISTER_ALERT_SMTP_HOST", "REGISTER_ALERT_SMTP_PORT", "REGISTER_ALERT_EMAIL_FROM",
                 "REGISTER_ALERT_EMAIL_TO", "REGISTER_ALERT_SMTP_STARTTLS", "REGISTER_ALERT_SMTP_USER",
                 "REGISTER_ALERT_SMTP_PASSWORD", "REGISTER_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    assert not alert_channels_from_env().settings().configured
    monkeypatch.setenv("REGISTER_ALERT_SMTP_HOST", "smtp.example.invalid")
    monkeypatch.setenv("REGISTER_ALERT_SMTP_STARTTLS", "true")
    monkeypatch.setenv("REGISTER_ALERT_SMTP_USER", "alerts")
    monkeypatch.setenv("REGISTER_ALERT_SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("REGISTER_ALERT_EMAIL_FROM", "register@example.invalid")
    monkeypatch.setenv("REGISTER_ALERT_EMAIL_TO", "ops@example.invalid,oncall@example.invalid")
    monkeypatch.setenv("REGISTER_ALERT_WEBHOOK_URL", "https://hooks.example.invalid/T0/B0/token")
    resource = alert_channels_from_env()
    # The resource holds the variables' names (EnvVar), not the password's or the URL's value.
    assert SECRET not in repr(resource.__dict__) and "token" not in repr(resource.__dict__)
    with dg.build_resources({"alerts": resource}) as built:
        settings = built.alerts.settings()
    assert settings.email.host == "smtp.example.invalid" and settings.email.port == 587
    assert settings.email.starttls and settings.email.password == SECRET
    assert settings.email.recipients == ("ops@example.invalid", "oncall@example.invalid")
    assert settings.webhook.url.endswith("/token") and not settings.problems
    assert SECRET not in repr(settings) and "token" not in repr(settings)
    # Half a configuration: no e-mail, and the missing variable named.
    half = AlertSettings.from_environ({"REGISTER_ALERT_SMTP_HOST": "smtp.example.invalid"})
    assert half.email is None and "REGISTER_ALERT_EMAIL_FROM" in half.problems[0]
    assert AlertSettings.from_environ({"REGISTER_ALERT_WEBHOOK_URL": "file:///etc/passwd"}).webhook is None


def test_the_alert_sensor_is_registered_for_the_code_location():
    sensor = defs.resolve_sensor_def("run_failure_alert")
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING  # nothing configured: it only logs
    assert "alerts" in sensor.required_resource_keys
    assert isinstance(defs.resources["alerts"], AlertChannels)


# --- 2. freshness --------------------------------------------------------------------------------

def _nightly_gaps(year: int) -> set[dt.timedelta]:
    """Real time between consecutive ticks of the nightly schedule over a year (DST included)."""
    minute, hour, *rest = nightly_register_load.cron_schedule.split()
    assert rest == ["*", "*", "*"], "the nightly schedule is no longer daily: revisit NIGHTLY_FRESHNESS"
    zone = ZoneInfo(nightly_register_load.execution_timezone)
    day = dt.date(year, 1, 1)
    ticks = [dt.datetime.combine(day + dt.timedelta(days=n), dt.time(int(hour), int(minute)), zone)
             for n in range(366)]
    return {b.astimezone(dt.timezone.utc) - a.astimezone(dt.timezone.utc) for a, b in zip(ticks, ticks[1:])}


def test_register_and_marketing_extract_are_fresh_within_26_hours_of_the_nightly_load():
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for name in ("register", "marketing_extract"):
        policy = specs[name].freshness_policy
        assert isinstance(policy, dg.FreshnessPolicy), f"{name} has no (current) freshness policy"
        assert policy == dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26),
                                                        warn_window=dt.timedelta(hours=25)), name
        fail, warn = policy.fail_window.to_timedelta(), policy.warn_window.to_timedelta()
        # Never failing a punctual night, the autumn's 25-hour night included, and failing the
        # morning after a missed night.
        assert max(_nightly_gaps(2026)) == dt.timedelta(hours=25)
        assert max(_nightly_gaps(2026)) < fail <= dt.timedelta(hours=27) and warn < fail
    assert {n for n, s in specs.items() if s.freshness_policy is not None} == {"register", "marketing_extract"}


def test_the_code_location_uses_nothing_dagster_deprecates():
    """Loaded fresh in a child process: no Dagster deprecation, beta or preview warning comes
    from the project's code, and no superseded API is named in it."""
    probe = (
        "import json, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from pipeline.orchestration.definitions import defs\n"
        "    defs.resolve_all_asset_specs(); defs.resolve_job_def('register_load'); defs.get_repository_def()\n"
        "print(json.dumps([[w.category.__module__, w.category.__name__, w.filename, str(w.message)[:200]] "
        "for w in caught]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=True).stdout.strip().splitlines()[-1]
    # Dagster's own warning classes, and any deprecation raised on a line of the project's code
    # (Dagster attributes a deprecated parameter's warning to its caller).
    dagster_warnings = [w for w in json.loads(out)
                        if w[1] in ("BetaWarning", "PreviewWarning", "SupersessionWarning")
                        or ("Deprecation" in w[1] and str(ROOT) in w[2] and "site-packages" not in w[2])]
    assert dagster_warnings == []
    deprecated = ("compute_kind", "AutoMaterializePolicy", "LegacyFreshnessPolicy", "maximum_lag_minutes",
                  "SchemaModel", "legacy_freshness_policy")
    sources = [*ROOT.joinpath("assets").rglob("*.py"), *ROOT.joinpath("pipeline", "orchestration").rglob("*.py"),
               *ROOT.joinpath("schemas").glob("*.py")]
    named = {f"{p.relative_to(ROOT)}: {word}" for p in sources for word in deprecated if word in p.read_text()}
    assert named == set()
