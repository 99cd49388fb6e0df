"""Personal accounts of the stewards' workbench (`register web`) and their logins.

`register user add NAME --role steward|analyst|admin` makes an account, the
password read from standard input and kept as an argon2id hash (argon2-cffi, its
defaults: RFC 9106's low-memory profile, a salt of its own per hash); never the
password. `register user disable NAME` closes one.

Logins fail closed. `authenticate` refuses a disabled or unknown account the same
way a wrong password is refused (one message, and an argon2 verification all the
same, so timing does not tell which); after `MAX_FAILURES` wrong passwords in a
row an account is locked for `LOCK_SECONDS`, doubling with every further failure
up to `MAX_LOCK_SECONDS`, and while locked no password is even tried. The web app
throttles per client address too (Flask-Limiter). Messages name the account and
counts, never a password.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from schemas.register import USER_ROLES, app_user

__all__ = ["LOCK_SECONDS", "MAX_FAILURES", "MIN_PASSWORD_LENGTH", "LoginRefused", "User", "UserError",
           "add_user", "authenticate", "disable_user", "get_user", "list_users"]

MIN_PASSWORD_LENGTH = 12
MAX_FAILURES = 5
LOCK_SECONDS = 60
MAX_LOCK_SECONDS = 3600
_hasher = PasswordHasher()
# Verified against when the account does not exist, so an unknown name costs the same time.
_DUMMY_HASH = _hasher.hash("not a password of anyone's")


class UserError(Exception):
    """An account request that cannot be carried out (no password in the message)."""


class LoginRefused(Exception):
    """A login refused. `locked_until` is set when the account is throttled."""

    def __init__(self, message: str, locked_until: dt.datetime | None = None):
        super().__init__(message)
        self.locked_until = locked_until


@dataclass(frozen=True)
class User:
    user_id: int
    name: str
    role: str
    disabled: bool

    @property
    def is_steward(self) -> bool:
        return self.role in ("steward", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)


def _user(row) -> User:
    return User(int(row["user_id"]), row["name"], row["role"], bool(row["disabled"]))


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name) or not name.isprintable():
        raise UserError("a user name is 1-100 printable characters without spaces")
    return name


def add_user(engine: sa.Engine, name: str, role: str, password: str, *, now: dt.datetime | None = None) -> User:
    """A new account; the password kept as an argon2id hash."""
    name = check_name(name)
    if role not in USER_ROLES:
        raise UserError(f"a role is one of {', '.join(USER_ROLES)}")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    with engine.begin() as connection:
        if connection.execute(sa.select(app_user.c.user_id).where(app_user.c.name == name)).first():
            raise UserError(f"user {name} exists already")
        user_id = connection.execute(app_user.insert().returning(app_user.c.user_id).values(
            name=name, role=role, password_hash=_hasher.hash(password), disabled=False,
            created_at=_now(now), failed_logins=0)).scalar_one()
    return User(int(user_id), name, role, False)


def disable_user(engine: sa.Engine, name: str) -> User:
    """Close an account: no login, and its open sessions end at their next request."""
    with engine.begin() as connection:
        done = connection.execute(app_user.update().where(app_user.c.name == name).values(disabled=True))
        if not done.rowcount:
            raise UserError(f"no user {name}")
        row = connection.execute(sa.select(app_user).where(app_user.c.name == name)).mappings().one()
    return _user(row)


def get_user(connection: sa.Connection, user_id: int) -> User | None:
    row = connection.execute(sa.select(app_user).where(app_user.c.user_id == user_id)).mappings().first()
    return _user(row) if row else None


def list_users(connection: sa.Connection) -> list[dict]:
    """Every account: name, role, disabled, created, last login, failures. No hash."""
    rows = connection.execute(sa.select(app_user.c.user_id, app_user.c.name, app_user.c.role, app_user.c.disabled,
                                        app_user.c.created_at, app_user.c.last_login_at, app_user.c.failed_logins,
                                        app_user.c.locked_until).order_by(app_user.c.name)).mappings().all()
    return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items()} for r in rows]


def _lock_seconds(failures: int) -> int:
    """How long an account stays locked after `failures` wrong passwords in a row.

    >>> [_lock_seconds(n) for n in (4, 5, 6, 7, 20)]
    [0, 60, 120, 240, 3600]
    """
    if failures < MAX_FAILURES:
        return 0
    return min(LOCK_SECONDS * 2 ** (failures - MAX_FAILURES), MAX_LOCK_SECONDS)


def authenticate(engine: sa.Engine, name: str, password: str, *, now: dt.datetime | None = None) -> User:
    """The account if `password` is its password; else LoginRefused (one message whatever the cause)."""
    now = _now(now)
    refused = "wrong user name or password, or the account is closed"
    with engine.begin() as connection:
        query = sa.select(app_user).where(app_user.c.name == (name or "").strip())
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        row = connection.execute(query).mappings().first()
        if row is None:
            _verify(_DUMMY_HASH, password)
            raise LoginRefused(refused)
        if row["locked_until"] is not None and row["locked_until"] > now:
            raise LoginRefused("too many wrong passwords: try again later", row["locked_until"])
        if not _verify(row["password_hash"], password) or row["disabled"]:
            if row["disabled"]:
                raise LoginRefused(refused)
            failures = int(row["failed_logins"]) + 1
            seconds = _lock_seconds(failures)
            locked = now + dt.timedelta(seconds=seconds) if seconds else None
            connection.execute(app_user.update().where(app_user.c.user_id == row["user_id"]).values(
                failed_logins=failures, last_failed_at=now, locked_until=locked))
            if locked is not None:
                # Committed with the failure: the exception below must not roll it back.
                connection.commit()
                raise LoginRefused("too many wrong passwords: try again later", locked)
            connection.commit()
            raise LoginRefused(refused)
        values = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if _hasher.check_needs_rehash(row["password_hash"]):
            values["password_hash"] = _hasher.hash(password)
        connection.execute(app_user.update().where(app_user.c.user_id == row["user_id"]).values(**values))
    return _user(row)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
