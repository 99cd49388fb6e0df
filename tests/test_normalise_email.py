"""E-mail addresses: strip, lower case, a sound syntactic check; column path equals scalar path."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalise import email
from pipeline.normalise.status import Status
from pipeline.normalise.errors import NormaliseError

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("typed", "expected"), [
    ("  Aino.Makinen@Example.FI ", "aino.makinen@example.fi"),
    ("AINO+sahko@sub.example.fi", "aino+sahko@sub.example.fi"),
    ("a_b-c@example-site.com", "a_b-c@example-site.com"),
    ("x@example.xn--p1ai", "x@example.xn--p1ai"),
])
def test_valid_addresses(typed: str, expected: str) -> None:
    assert email.validate(typed) == expected


@pytest.mark.parametrize("typed", [
    "aino.makinen", "aino@", "@example.fi", "aino@example", "aino@@example.fi", "aino..m@example.fi",
    ".aino@example.fi", "aino.@example.fi", "aino makinen@example.fi", "aino@-example.fi", "aino@example-.fi",
    "aino@example.f", "aino@example.123", "äiti@example.fi", "aino@exa_mple.fi", "a" * 65 + "@example.fi",
    "a@" + "b" * 250 + ".fi",
])
def test_invalid_addresses(typed: str) -> None:
    with pytest.raises(NormaliseError) as caught:
        email.validate(typed)
    assert typed not in str(caught.value)


local = st.text(alphabet="abcXYZ09._+-'", min_size=1, max_size=12)
domain = st.lists(st.text(alphabet="abc09-", min_size=1, max_size=8), min_size=1, max_size=3).map(".".join)
addresses = st.builds(lambda l, d, t: f"{l}@{d}.{t}", local, domain, st.sampled_from(["fi", "FI", "com", "x", "se1"]))
email_like = (st.none() | addresses | st.text(alphabet="ab@. \tÄ", max_size=12)
              | addresses.map(lambda a: f"  {a.upper()} "))


@FAST
@given(st.lists(email_like, max_size=30))
def test_column_path_equals_scalar_path(values: list[str | None]) -> None:
    frame = email.normalise_series(pd.Series(values, dtype="string[pyarrow]"))
    for i, value in enumerate(values):
        got = frame["email"].iloc[i]
        got = None if pd.isna(got) else got
        if value is None or not value.strip():
            assert frame["status"].iloc[i] == Status.MISSING and got is None
        elif email.is_valid(value):
            assert frame["status"].iloc[i] == Status.VALID and got == email.validate(value)
        else:
            assert frame["status"].iloc[i] == Status.INVALID and got is None


@FAST
@given(addresses)
def test_validate_is_idempotent(value: str) -> None:
    if email.is_valid(value):
        once = email.validate(value)
        assert email.validate(once) == once
