"""Helpers for the workbench's tests: an app over a register, users, a logged-in test client."""

from __future__ import annotations

import re

from pipeline.register import users
from pipeline.web import create_app

PASSWORD = "correct horse battery staple"
SECRET = "test-secret-key-" + "k" * 40
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(engine, **options):
    options.setdefault("secure_cookies", False)
    return create_app(engine, secret_key=SECRET, testing=True, **options)


def add_users(engine) -> None:
    for name, role in (("steward.one", "steward"), ("analyst.one", "analyst"), ("admin.one", "admin")):
        users.add_user(engine, name, role, PASSWORD)


def token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = _TOKEN.search(page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def log_in(client, name: str, password: str = PASSWORD):
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token(client)})


def post(client, path: str, data: dict, *, token_from: str = "/overview"):
    return client.post(path, data={**data, "csrf_token": token(client, token_from)})
