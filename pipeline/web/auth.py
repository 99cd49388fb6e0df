"""Logging in and out, the session, and who may see what.

Flask-Login keeps the user's id in Flask's signed session cookie; every request
reloads the account from the database, so a disabled account's session ends at its
next request. A session lasts `SESSION_MINUTES` idle and `SESSION_MAX_HOURS` at most.
"""

from __future__ import annotations

import datetime as dt
import functools
import time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import UserMixin, current_user, login_required, login_user, logout_user

from pipeline.register import users
from pipeline.web import SESSION_MAX_HOURS

blueprint = Blueprint("auth", __name__)


class WebUser(UserMixin):
    def __init__(self, user: users.User):
        self.user = user
        self.id = str(user.user_id)
        self.name = user.name
        self.role = user.role

    @property
    def is_steward(self) -> bool:
        return self.user.is_steward

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin


def engine():
    return current_app.extensions["register_engine"]


def install(app, login) -> None:
    @login.user_loader
    def load(user_id: str):
        started = session.get("login_at")
        if started is None or time.time() - float(started) > SESSION_MAX_HOURS * 3600:
            return None
        try:
            with engine().connect() as connection:
                found = users.get_user(connection, int(user_id))
        except ValueError:
            return None
        if found is None or found.disabled:
            return None
        return WebUser(found)

    # The login form, limited per client address (Flask-Limiter) on top of the per-account lock.
    app.add_url_rule("/login", "auth.login", app.extensions["register_login_limit"](_login), methods=["GET", "POST"])
    app.register_blueprint(blueprint)


def _login():
    if request.method == "GET":
        return render_template("login.html")
    name = request.form.get("name", "")
    password = request.form.get("password", "")
    try:
        user = users.authenticate(engine(), name, password)
    except users.LoginRefused as refused:
        status = 429 if refused.locked_until else 401
        return render_template("login.html", error=str(refused)), status
    session.clear()
    session["login_at"] = time.time()
    session.permanent = True
    login_user(WebUser(user))
    return redirect(url_for("pages.home"))


@blueprint.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    session.clear()
    flash("Logged out.")
    return redirect(url_for("auth.login"))


def steward_required(view):
    """Personal pages: stewards and admins; an analyst gets 403."""
    @functools.wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_steward:
            abort(403)
        return view(*args, **kwargs)
    return wrapped


def admin_required(view):
    @functools.wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)
    return wrapped


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
