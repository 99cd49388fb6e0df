"""Telling the operator a run failed: one e-mail (SMTP) and/or one webhook POST.

No Dagster here: `pipeline.orchestration.sensors.run_failure_alert` turns a failed
run into a `RunFailure` and calls `notify`. Everything is the standard library
(`smtplib`, `email.message`, `urllib.request`).

What a notice says, and what it never says: the job's name, the run id, the time,
the keys of the failed steps, the class names of their errors (`Failure`,
`OperationalError`) and Dagster's failure reason (`STEP_FAILURE`), with a fixed
sentence. Never an error's message or a run's metadata: those may quote the data
that broke the step (a personal value). The place to read them is the run's own
log, which only operators see. Class names and step keys come from code, not
data, and are cut to a plain identifier shape anyway (`plain_name`).

Settings come from the environment (docs/operations.md, "Alerts when a run fails"):

    REGISTER_ALERT_SMTP_HOST, REGISTER_ALERT_SMTP_PORT (default 587 with STARTTLS, else 25),
    REGISTER_ALERT_SMTP_STARTTLS (true/false), REGISTER_ALERT_SMTP_USER, REGISTER_ALERT_SMTP_PASSWORD,
    REGISTER_ALERT_EMAIL_FROM, REGISTER_ALERT_EMAIL_TO (comma-separated),
    REGISTER_ALERT_WEBHOOK_URL (http or https)

A password is only ever sent inside STARTTLS. What goes wrong while sending is
reported as the channel and the error's class name: never the server's reply
(it may echo the user name), the password, or the webhook's URL (a chat
webhook's URL is itself a credential).

>>> plain_name("DagsterExecutionStepExecutionError")
'DagsterExecutionStepExecutionError'
>>> plain_name("raw_web; DROP TABLE")
'raw_web_DROP_TABLE'
>>> parse_flag("yes"), parse_flag(""), parse_flag("0")
(True, False, False)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import smtplib
import ssl
import textwrap
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pipeline.finland import HELSINKI

ENV_SMTP_HOST = "REGISTER_ALERT_SMTP_HOST"
ENV_SMTP_PORT = "REGISTER_ALERT_SMTP_PORT"
ENV_SMTP_STARTTLS = "REGISTER_ALERT_SMTP_STARTTLS"
ENV_SMTP_USER = "REGISTER_ALERT_SMTP_USER"
ENV_SMTP_PASSWORD = "REGISTER_ALERT_SMTP_PASSWORD"
ENV_EMAIL_FROM = "REGISTER_ALERT_EMAIL_FROM"
ENV_EMAIL_TO = "REGISTER_ALERT_EMAIL_TO"
ENV_WEBHOOK_URL = "REGISTER_ALERT_WEBHOOK_URL"
ALERT_VARIABLES = (ENV_SMTP_HOST, ENV_SMTP_PORT, ENV_SMTP_STARTTLS, ENV_SMTP_USER, ENV_SMTP_PASSWORD,
                   ENV_EMAIL_FROM, ENV_EMAIL_TO, ENV_WEBHOOK_URL)

TIMEOUT_SECONDS = 10.0
# The one sentence every notice carries instead of the error's text.
FIXED_SENTENCE = ("A run of the customer register failed. The error's text is not repeated here, as it may "
                  "quote personal data: read it in the run's log in Dagster.")
_MAX_NAME = 80


def plain_name(text: str) -> str:
    """An identifier-shaped copy of a class name or step key: letters, digits, `_` and `.`."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_.]", "_", text)).strip("_")[:_MAX_NAME] or "unknown"


def parse_flag(text: str | None) -> bool:
    return (text or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class RunFailure:
    """What a notice says about a failed run: names and codes only, no error text."""

    job_name: str
    run_id: str
    failed_at: dt.datetime  # aware
    failed_steps: tuple[str, ...] = ()
    error_classes: tuple[str, ...] = ()  # one per failed step, in the same order, or fewer
    failure_reason: str = ""  # Dagster's RunFailureReason, e.g. STEP_FAILURE, RUN_EXCEPTION

    def __post_init__(self) -> None:
        object.__setattr__(self, "job_name", plain_name(self.job_name))
        object.__setattr__(self, "run_id", re.sub(r"[^0-9A-Za-z-]", "", self.run_id)[:_MAX_NAME] or "unknown")
        object.__setattr__(self, "failed_steps", tuple(plain_name(s) for s in self.failed_steps))
        object.__setattr__(self, "error_classes", tuple(plain_name(c) for c in self.error_classes))
        object.__setattr__(self, "failure_reason", plain_name(self.failure_reason) if self.failure_reason else "")

    @property
    def short_run_id(self) -> str:
        return self.run_id[:8]

    def summary(self) -> str:
        """One line: `register_load failed at landed_files (Failure)`."""
        steps = ", ".join(self.failed_steps) or "no step recorded"
        classes = ", ".join(dict.fromkeys(self.error_classes)) or self.failure_reason or "unknown error"
        return f"{self.job_name} failed at {steps} ({classes})"


@dataclass(frozen=True)
class EmailChannel:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    user: str = ""
    password: str = field(default="", repr=False)

    def __repr__(self) -> str:  # never the password, nor the addresses, in a log line
        return (f"EmailChannel(port={self.port}, starttls={self.starttls}, login={bool(self.user)}, "
                f"recipients={len(self.recipients)})")


@dataclass(frozen=True)
class WebhookChannel:
    url: str = field(repr=False)

    def __repr__(self) -> str:  # a webhook URL is a credential
        return "WebhookChannel(***)"


@dataclass(frozen=True)
class AlertSettings:
    """The channels configured, and what is wrong with the configuration (variable names only)."""

    email: EmailChannel | None = None
    webhook: WebhookChannel | None = None
    problems: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return self.email is not None or self.webhook is not None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AlertSettings:
        """Settings from `REGISTER_ALERT_*` variables (`os.environ`, or the resource's values).

        A half-configured channel is left out and named in `problems`, by its variables'
        names: never their values.
        """
        value = {name: (environ.get(name) or "").strip() for name in ALERT_VARIABLES}
        problems: list[str] = []
        email = None
        if any(value[n] for n in (ENV_SMTP_HOST, ENV_EMAIL_FROM, ENV_EMAIL_TO)):
            missing = [n for n in (ENV_SMTP_HOST, ENV_EMAIL_FROM, ENV_EMAIL_TO) if not value[n]]
            starttls = parse_flag(value[ENV_SMTP_STARTTLS])
            recipients = tuple(a.strip() for a in value[ENV_EMAIL_TO].split(",") if a.strip())
            port = 587 if starttls else 25
            if value[ENV_SMTP_PORT]:
                try:
                    port = int(value[ENV_SMTP_PORT])
                except ValueError:
                    missing.append(f"{ENV_SMTP_PORT} (not a number)")
            if missing:
                problems.append(f"e-mail alerts are off: {', '.join(missing)} not set")
            elif value[ENV_SMTP_USER] and not starttls:
                problems.append(f"e-mail alerts are off: {ENV_SMTP_USER} is set, and a password is only sent "
                                f"inside STARTTLS ({ENV_SMTP_STARTTLS}=true)")
            elif value[ENV_SMTP_USER] and not value[ENV_SMTP_PASSWORD]:
                problems.append(f"e-mail alerts are off: {ENV_SMTP_USER} is set without {ENV_SMTP_PASSWORD}")
            else:
                email = EmailChannel(host=value[ENV_SMTP_HOST], port=port, sender=value[ENV_EMAIL_FROM],
                                     recipients=recipients, starttls=starttls, user=value[ENV_SMTP_USER],
                                     password=value[ENV_SMTP_PASSWORD] if value[ENV_SMTP_USER] else "")
        webhook = None
        if value[ENV_WEBHOOK_URL]:
            if urllib.parse.urlsplit(value[ENV_WEBHOOK_URL]).scheme in ("http", "https"):
                webhook = WebhookChannel(url=value[ENV_WEBHOOK_URL])
            else:
                problems.append(f"webhook alerts are off: {ENV_WEBHOOK_URL} is not an http(s) URL")
        return cls(email=email, webhook=webhook, problems=tuple(problems))


# --- the notice ------------------------------------------------------------------------------------

def notice_lines(failure: RunFailure) -> list[str]:
    local = failure.failed_at.astimezone(HELSINKI)
    utc = failure.failed_at.astimezone(dt.timezone.utc)
    return [
        *textwrap.wrap(FIXED_SENTENCE, 72),
        "",
        f"Job:          {failure.job_name}",
        f"Run id:       {failure.run_id}",
        f"Failed at:    {local:%Y-%m-%d %H:%M:%S %Z} ({utc:%Y-%m-%dT%H:%M:%SZ})",
        f"Failed steps: {', '.join(failure.failed_steps) or 'none recorded'}",
        f"Error class:  {', '.join(dict.fromkeys(failure.error_classes)) or 'none recorded'}",
        f"Reason:       {failure.failure_reason or 'unknown'}",
        "",
        "What to do: docs/operations.md, 'Alerts when a run fails'.",
    ]


def build_email(failure: RunFailure, channel: EmailChannel) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[customer register] run failed: {failure.job_name} ({failure.short_run_id})"
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.recipients)
    message["Date"] = formatdate(failure.failed_at.timestamp(), localtime=False)
    message["Message-ID"] = make_msgid(domain="customer-register.invalid")
    message.set_content("\n".join(notice_lines(failure)) + "\n")
    return message


def webhook_body(failure: RunFailure) -> dict[str, object]:
    """A small JSON body; `text` is what chat webhooks (Slack, Mattermost) show."""
    return {
        "event": "run_failure",
        "job": failure.job_name,
        "run_id": failure.run_id,
        "failed_at": failure.failed_at.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        "failed_steps": list(failure.failed_steps),
        "error_classes": list(dict.fromkeys(failure.error_classes)),
        "failure_reason": failure.failure_reason,
        "summary": FIXED_SENTENCE,
        "text": f"Customer register: {failure.summary()}, run {failure.run_id}.",
    }


# --- sending ---------------------------------------------------------------------------------------

def send_email(message: EmailMessage, channel: EmailChannel, *, timeout: float = TIMEOUT_SECONDS) -> None:
    with smtplib.SMTP(channel.host, channel.port, timeout=timeout) as smtp:
        smtp.ehlo()
        if channel.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if channel.user:
            smtp.login(channel.user, channel.password)
        smtp.send_message(message)


def post_webhook(body: Mapping[str, object], channel: WebhookChannel, *, timeout: float = TIMEOUT_SECONDS) -> int:
    request = urllib.request.Request(
        channel.url, data=json.dumps(body).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "customer-register-alerts"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
        return response.status


@dataclass(frozen=True)
class Outcome:
    channel: str  # "email" or "webhook"
    sent: bool
    error_class: str = ""  # the class name only, never its message

    def describe(self) -> str:
        return f"{self.channel} sent" if self.sent else f"{self.channel} not sent ({self.error_class})"


def notify(failure: RunFailure, settings: AlertSettings, *, timeout: float = TIMEOUT_SECONDS) -> list[Outcome]:
    """Send one notice per configured channel. Never raises: a channel that fails is an
    `Outcome` with the error's class name, and the other channel is still tried."""
    outcomes: list[Outcome] = []
    if settings.email is not None:
        try:
            send_email(build_email(failure, settings.email), settings.email, timeout=timeout)
            outcomes.append(Outcome("email", True))
        except Exception as error:  # noqa: BLE001 - an alert must never stop the sensor
            outcomes.append(Outcome("email", False, plain_name(type(error).__name__)))
    if settings.webhook is not None:
        try:
            post_webhook(webhook_body(failure), settings.webhook, timeout=timeout)
            outcomes.append(Outcome("webhook", True))
        except Exception as error:  # noqa: BLE001
            outcomes.append(Outcome("webhook", False, plain_name(type(error).__name__)))
    return outcomes


def error_class_of(chain: Sequence[str]) -> str:
    """The error to name from a chain of class names, outermost first: the first that is not
    one of Dagster's wrappers (`DagsterExecutionStepExecutionError` around the user's error).

    >>> error_class_of(["DagsterExecutionStepExecutionError", "OperationalError", "OperationalError"])
    'OperationalError'
    >>> error_class_of(["Failure"])
    'Failure'
    >>> error_class_of([])
    ''
    """
    for name in chain:
        if not name.startswith("Dagster"):
            return name
    return chain[0] if chain else ""
