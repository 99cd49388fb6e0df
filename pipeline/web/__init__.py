"""The stewards' workbench in the browser: `register web` (issue 11).

A server-rendered Flask app over the register database (SQLite or PostgreSQL), with
pages a steward can bookmark: `/customers/<id>`, `/reviews/<id>`, `/quarantine/<id>`.
The domain work is `pipeline.register`'s (steward, explain, release, rights, users,
access_log); this package only reads requests and renders pages.

Security is built from well-kept libraries, nothing hand-rolled:

- accounts and passwords: `pipeline.register.users` (argon2-cffi), sessions with
  Flask-Login on Flask's signed session cookie: HttpOnly, SameSite=Lax, Secure under
  TLS (or behind a TLS proxy), expiring after `SESSION_MINUTES` idle and
  `SESSION_MAX_HOURS` in all; a disabled account's sessions end at its next request;
- CSRF: Flask-WTF's CSRFProtect on every POST;
- throttling: wrong passwords per account in the database (`users.authenticate`),
  and per client address with Flask-Limiter on the login form;
- roles: an analyst sees the aggregate pages only (403 on every personal page), a
  steward works reviews, customers, quarantine and rights, an admin also users and
  the access log;
- masked by default: personal values are masked until the steward presses "reveal"
  for that record (a reason asked); every reveal, view of a person, decision and
  export goes to the access log;
- no personal value in the server's log or an error page: errors are logged by
  class and path only, error pages say the status alone.

The secret key comes from `REGISTER_WEB_SECRET_KEY`; `serve` refuses to start
without one unless `dev` (a developer's machine: a random key, gone at restart).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets

import sqlalchemy as sa
from flask import Flask, render_template, request
from flask_login import LoginManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect

__all__ = ["SECRET_KEY_VARIABLE", "WebConfigError", "create_app", "serve"]

SECRET_KEY_VARIABLE = "REGISTER_WEB_SECRET_KEY"
SESSION_MINUTES = 30
SESSION_MAX_HOURS = 10
LOGIN_LIMIT = "10 per minute"  # per client address, on top of the per-account lock
MIN_SECRET_KEY_LENGTH = 32

log = logging.getLogger(__name__)


class WebConfigError(Exception):
    """The workbench cannot start as configured (the message names the setting, never its value)."""


def create_app(engine: sa.Engine, *, secret_key: str, secure_cookies: bool = True, behind_proxy: bool = False,
               testing: bool = False, login_limit: str = LOGIN_LIMIT, screenshots: bool = False) -> Flask:
    """The workbench over `engine`."""
    if not secret_key or len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise WebConfigError(f"{SECRET_KEY_VARIABLE} must hold at least {MIN_SECRET_KEY_LENGTH} characters")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        TESTING=testing,
        SESSION_COOKIE_NAME="register_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=secure_cookies,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=SESSION_MINUTES),
        SESSION_REFRESH_EACH_REQUEST=True,
        WTF_CSRF_TIME_LIMIT=SESSION_MAX_HOURS * 3600,
        WTF_CSRF_SSL_STRICT=True,
        MAX_CONTENT_LENGTH=1024 * 1024,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    app.extensions["register_engine"] = engine
    if behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    CSRFProtect(app)
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", default_limits=[],
                      headers_enabled=False)
    app.extensions["register_login_limit"] = limiter.limit(login_limit, methods=["POST"])
    login = LoginManager(app)
    login.login_view = "auth.login"
    login.session_protection = "strong"
    login.login_message = "Log in to continue."

    from pipeline.web import auth, pages

    auth.install(app, login)
    pages.install(app)
    _errors(app)

    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")  # CSRF checks the referrer under TLS
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                    "script-src 'self'; form-action 'self'; frame-ancestors 'none'")
        if request.endpoint not in ("static",):
            response.headers["Cache-Control"] = "no-store"
        if secure_cookies:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return app


def _errors(app: Flask) -> None:
    """Error pages with the status alone; the log gets the exception's class and the path, never its text."""

    def page(status: int, title: str):
        return render_template("error.html", status=status, title=title), status

    app.register_error_handler(400, lambda e: page(400, "Bad request"))
    app.register_error_handler(403, lambda e: page(403, "Not allowed for your role"))
    app.register_error_handler(404, lambda e: page(404, "Not found"))
    app.register_error_handler(405, lambda e: page(405, "Method not allowed"))
    app.register_error_handler(413, lambda e: page(413, "Too large"))
    app.register_error_handler(429, lambda e: page(429, "Too many attempts: wait a minute"))
    app.register_error_handler(CSRFError, lambda e: page(400, "The form expired or was not sent by this site: "
                                                              "reload the page and try again"))
    app.register_error_handler(500, lambda e: page(500, "Something went wrong"))

    def log_exception(exc_info) -> None:  # Flask's own would write the traceback, with any value it quotes
        kind = exc_info[0].__name__ if exc_info and exc_info[0] else "error"
        log.error("%s on %s %s", kind, request.method, request.url_rule.rule if request.url_rule else "?")

    app.log_exception = log_exception  # type: ignore[method-assign]


WORKBENCH_THREADS = 8  # requests served at once; one worker process keeps the login limit in one place
ACCESS_LOG_FORMAT = '%(t)s "%(m)s %(U)s" %(s)s'  # time, method, path without its query, status


def serve(engine: sa.Engine, *, host: str = "127.0.0.1", port: int = 8000, certfile: str | None = None,
          keyfile: str | None = None, behind_proxy: bool = False, dev: bool = False) -> None:
    """Run the workbench under gunicorn (a production WSGI server; werkzeug's own is for
    development only): one worker process of `WORKBENCH_THREADS` threads, TLS with a
    certificate and key. Its access log (standard output) holds each request's time, method,
    path and status: never the query string, the body or the client's headers."""
    from gunicorn.app.base import BaseApplication

    secret = os.environ.get(SECRET_KEY_VARIABLE, "")
    if not secret:
        if not dev:
            raise WebConfigError(f"{SECRET_KEY_VARIABLE} is not set: give the workbench a long random secret key "
                                 "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                                 "or --dev on a developer's machine")
        secret = secrets.token_urlsafe(48)
    if bool(certfile) != bool(keyfile):
        raise WebConfigError("TLS needs both --certfile and --keyfile")
    tls = bool(certfile)
    if not tls and not behind_proxy and not dev and host not in ("127.0.0.1", "localhost", "::1"):
        raise WebConfigError("without TLS the workbench listens on this machine only: give --certfile and "
                             "--keyfile, or --behind-proxy when a proxy terminates TLS")
    app = create_app(engine, secret_key=secret, secure_cookies=tls or behind_proxy, behind_proxy=behind_proxy)

    def after_fork(_server, _worker) -> None:
        engine.dispose(close=False)  # the worker opens its own connections, never the parent's

    options = {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "workers": 1,
               "worker_class": "gthread", "threads": WORKBENCH_THREADS, "accesslog": "-",
               "access_log_format": ACCESS_LOG_FORMAT, "errorlog": "-",
               "loglevel": "warning", "post_fork": after_fork, "proc_name": "register-web",
               "certfile": certfile, "keyfile": keyfile}

    class Workbench(BaseApplication):
        def load_config(self) -> None:
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self):
            return app

    scheme = "https" if tls else "http"
    print(f"register web: {scheme}://{host}:{port}/ (Ctrl-C stops)", flush=True)
    Workbench().run()
