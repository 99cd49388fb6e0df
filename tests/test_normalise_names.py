"""Names: Finnish casing, particles, apostrophes, full-name splitting; column path equals scalar path.

The names are common name words and well-known surname patterns used as
examples only; no record pairs a name with any other personal value.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalise import names
from pipeline.normalise.names import GIVEN_FIRST, SURNAME_FIRST

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("typed", "expected"), [
    ("MÄKINEN", "Mäkinen"), ("mäkinen", "Mäkinen"), ("  virtanen ", "Virtanen"), ("ÅBERG", "Åberg"),
    ("ÖSTERLUND", "Österlund"), ("hägg-öhman", "Hägg-Öhman"), ("VON HALLEN", "von Hallen"),
    ("af forselles", "af Forselles"), ("De la Chapelle", "de la Chapelle"), ("o'brien", "O'Brien"),
    ("D'ANGELO", "D'Angelo"), ("McDonald", "McDonald"), ("MCDONALD", "Mcdonald"), ("MÜLLER", "Müller"),
    ("BJÖRKÉN", "Björkén"), ("Von", "Von"), ("mäkinen - virtanen", "Mäkinen-Virtanen"),
])
def test_surname_casing(typed: str, expected: str) -> None:
    assert names.normalise_surname(typed) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("anna-liisa", "Anna-Liisa"), ("aino maria", "Aino Maria"), ("AINO   MARIA", "Aino Maria"),
    ("jean-éric", "Jean-Éric"), ("MÄRTA", "Märta"), ("eeva\tkaarina", "Eeva Kaarina"), ("   ", None),
])
def test_given_name_casing(typed: str, expected: str | None) -> None:
    assert names.normalise_given_names(typed) == expected


@pytest.mark.parametrize(("full", "order", "expected"), [
    ("Mäkinen Aino Maria", SURNAME_FIRST, ("Aino Maria", "Mäkinen")),
    ("MÄKINEN AINO MARIA", SURNAME_FIRST, ("Aino Maria", "Mäkinen")),
    ("Aino Maria Mäkinen", GIVEN_FIRST, ("Aino Maria", "Mäkinen")),
    ("aino  maria   mäkinen-virtanen", GIVEN_FIRST, ("Aino Maria", "Mäkinen-Virtanen")),
    ("von Hallen Aino Maria", SURNAME_FIRST, ("Aino Maria", "von Hallen")),
    ("Aino Maria von Hallen", GIVEN_FIRST, ("Aino Maria", "von Hallen")),
    ("Anna de la Chapelle", GIVEN_FIRST, ("Anna", "de la Chapelle")),
    ("Mäkinen, Aino Maria", GIVEN_FIRST, ("Aino Maria", "Mäkinen")),
    ("Mäkinen", GIVEN_FIRST, (None, "Mäkinen")),
    ("Mäkinen", SURNAME_FIRST, (None, "Mäkinen")),
    ("von Hallen", GIVEN_FIRST, (None, "von Hallen")),
    ("   ", GIVEN_FIRST, (None, None)),
])
def test_split_full_name(full: str, order: str, expected: tuple[str | None, str | None]) -> None:
    assert names.split_full_name(full, order) == expected


def test_one_token_full_name_is_incomplete_in_the_frame() -> None:
    frame = names.normalise_names(pd.Series([None], dtype="string"), pd.Series([None], dtype="string"),
                                  pd.Series(["VIRTANEN"], dtype="string"), pd.Series([GIVEN_FIRST], dtype="string"))
    assert pd.isna(frame["first_names"].iloc[0]) and frame["last_name"].iloc[0] == "Virtanen"


def test_separate_fields_win_over_the_full_name() -> None:
    frame = names.normalise_names(pd.Series(["aino"], dtype="string"), pd.Series([None], dtype="string"),
                                  pd.Series(["Other Person"], dtype="string"), pd.Series([GIVEN_FIRST], dtype="string"))
    assert frame["first_names"].iloc[0] == "Aino" and pd.isna(frame["last_name"].iloc[0])


letters = "abcdefghijklmnopqrstuvwxyzåäöéüABCDEFGHIJKLMNOPQRSTUVWXYZÅÄÖÉÜ"
word = st.text(alphabet=letters, min_size=1, max_size=8)
token = st.one_of(word, st.builds(lambda a, b: f"{a}-{b}", word, word), st.builds(lambda a, b: f"{a}'{b}", word, word),
                  st.sampled_from(["von", "VON", "af", "de", "La", "McDonald", "O'Brien"]))
name_text = st.lists(token, min_size=1, max_size=4).map(" ".join)
messy = st.builds(lambda t, pad: f"{pad}{t.replace(' ', pad or ' ')}{pad}", name_text,
                  st.sampled_from(["", " ", "  ", "\t"]))
maybe = st.none() | messy | st.just("  ") | st.builds(lambda a, b: f"{a}, {b}", name_text, name_text)


@FAST
@given(messy)
def test_casing_is_idempotent(value: str) -> None:
    for surname in (False, True):
        once = names.case_name(value, surname=surname)
        assert names.case_name(once, surname=surname) == once


@FAST
@given(name_text, st.sampled_from([SURNAME_FIRST, GIVEN_FIRST]))
def test_split_then_rejoin_keeps_every_token(value: str, order: str) -> None:
    given_names, surname = names.split_full_name(value, order)
    parts = [p for p in (given_names, surname) if p]
    assert sum(len(p.split(" ")) for p in parts) == len(value.split(" "))
    assert surname is not None


@FAST
@given(st.lists(st.tuples(maybe, maybe, maybe, st.sampled_from([SURNAME_FIRST, GIVEN_FIRST, None])), max_size=25))
def test_column_path_equals_scalar_path(rows: list[tuple]) -> None:
    first, last, full, order = (pd.Series([r[i] for r in rows], dtype="string[pyarrow]") for i in range(4))
    frame = names.normalise_names(first, last, full, order)
    for i, (f, l, whole, o) in enumerate(rows):
        given_names, surname = names.normalise_given_names(f), names.normalise_surname(l)
        if given_names is None and surname is None and whole is not None:
            given_names, surname = names.split_full_name(whole, o or GIVEN_FIRST)
        got_first, got_last = frame["first_names"].iloc[i], frame["last_name"].iloc[i]
        assert (None if pd.isna(got_first) else got_first) == given_names
        assert (None if pd.isna(got_last) else got_last) == surname
