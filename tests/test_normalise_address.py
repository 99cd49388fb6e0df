"""Addresses: street casing, postal code padding, city casing, one-line splitting; column equals scalar."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalise import address
from pipeline.normalise.status import Status
from pipeline.normalise.errors import InvalidFormat

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("typed", "expected"), [
    ("RAUTATIENKATU 5 B 12", "Rautatienkatu 5 B 12"),
    ("rautatienkatu  5 b 12", "Rautatienkatu 5 B 12"),
    ("Rautatienkatu 5 as 12", "Rautatienkatu 5 as 12"),
    ("RAUTATIENKATU 5 AS. 12", "Rautatienkatu 5 as. 12"),
    ("Rautatienkatu 5 A 12", "Rautatienkatu 5 A 12"),
    ("kotikatu 12a", "Kotikatu 12a"),
    ("kotikatu 12 b12", "Kotikatu 12 B 12"),
    ("Kotikatu 12, B 12", "Kotikatu 12 B 12"),
    ("ALEKSIS KIVEN KATU 3", "Aleksis Kiven katu 3"),
    ("ETELÄINEN RAUTATIEKATU 14", "Eteläinen Rautatiekatu 14"),
    ("STORGATAN 7 BST 3", "Storgatan 7 bst 3"),
    ("kirkko-oja 3", "Kirkko-oja 3"),
    ("itä-pakilan tie 4", "Itä-Pakilan tie 4"),
    ("pl 123", "PL 123"),
    ("c/o virtanen mäkikatu 2", "c/o Virtanen Mäkikatu 2"),
    ("5 B 12", "5 B 12"),
    ("   ", None),
])
def test_street_casing(typed: str, expected: str | None) -> None:
    assert address.normalise_street(typed) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("49400", ("49400", False)), (" 49400 ", ("49400", False)), ("100", ("00100", True)), ("5", ("00005", True)),
    ("4940", ("04940", True)), ("100.0", ("00100", True)), ("49 400", ("49400", False)),
])
def test_postal_code(typed: str, expected: tuple[str, bool]) -> None:
    assert address.normalise_postal_code(typed) == expected


@pytest.mark.parametrize("typed", ["494000", "4940O", "FI-49400", "abc", "-100"])
def test_postal_code_invalid(typed: str) -> None:
    with pytest.raises(InvalidFormat) as caught:
        address.normalise_postal_code(typed)
    assert typed not in str(caught.value)
    assert address.postal_code_status(typed) == (Status.INVALID, None)


@pytest.mark.parametrize(("typed", "expected"), [
    ("HAMINA", "Hamina"), ("hämeenlinna", "Hämeenlinna"), ("PEDERSÖRE", "Pedersöre"), ("Jakobstad", "Jakobstad"),
    ("MÄNTTÄ-VILPPULA", "Mänttä-Vilppula"), ("koski  tl", "Koski Tl"),
])
def test_city_casing(typed: str, expected: str) -> None:
    assert address.normalise_city(typed) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("49400 HAMINA", ("49400", "HAMINA")), ("49400, Hamina", ("49400", "Hamina")), ("49400", ("49400", None)),
    ("HAMINA", (None, "HAMINA")), ("Hamina 49400", ("49400", "Hamina")), ("4940O HAMINA", ("4940O", "HAMINA")),
    ("  ", (None, None)),
])
def test_split_postal_code_and_city(typed: str, expected: tuple) -> None:
    assert address.split_postal_code_and_city(typed) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("Rautatienkatu 5 B 12, 49400 Hamina", ("Rautatienkatu 5 B 12", "49400", "Hamina")),
    ("Rautatienkatu 5 B 12 49400 Hamina", ("Rautatienkatu 5 B 12", "49400", "Hamina")),
    ("Rautatienkatu 5 B 12,49400 HAMINA", ("Rautatienkatu 5 B 12", "49400", "HAMINA")),
    ("Rautatienkatu 5 B 12, 49400, Hamina", ("Rautatienkatu 5 B 12", "49400", "Hamina")),
    ("Rautatienkatu 5 B 12, 49400", ("Rautatienkatu 5 B 12", "49400", None)),
    ("Rautatienkatu 5 B 12, Hamina", ("Rautatienkatu 5 B 12", None, "Hamina")),
    ("Rautatienkatu 5 B 12", ("Rautatienkatu 5 B 12", None, None)),
    ("Storgatan 7 bst 3 68600 Jakobstad", ("Storgatan 7 bst 3", "68600", "Jakobstad")),
])
def test_split_address_line(typed: str, expected: tuple) -> None:
    assert address.split_address_line(typed) == expected


def test_frame_takes_each_part_from_the_first_source_that_has_it() -> None:
    s = lambda values: pd.Series(values, dtype="string[pyarrow]")  # noqa: E731
    frame = address.normalise_addresses(
        street_address=s(["RAUTATIENKATU 5 B 12", None, None, None]),
        postal_code=s(["100", None, None, "12"]),
        city=s(["HAMINA", None, None, None]),
        address_line=s([None, "Kauppakatu 1, 49400 HAMINA", None, None]),
        postal_code_and_city=s([None, None, "4940O PEDERSÖRE", None]),
    )
    assert frame["street_address"].tolist()[:2] == ["Rautatienkatu 5 B 12", "Kauppakatu 1"]
    assert frame["postal_code"].tolist()[:2] == ["00100", "49400"] and frame["postal_code"].iloc[2:3].isna().all()
    assert frame["city"].tolist()[:3] == ["Hamina", "Hamina", "Pedersöre"]
    assert frame["postal_status"].tolist() == [Status.PADDED, Status.VALID, Status.INVALID, Status.PADDED]


words = st.sampled_from(["RAUTATIENKATU", "kauppakatu", "Aleksis", "Kiven", "katu", "as", "B", "bst", "Kirkko-oja",
                         "storgatan", "PL", "c/o", "Itä-Pakilan", "tie", "x", "12a", "b12", "5", "49400", "Hamina"])
line = st.lists(words, min_size=1, max_size=7).map(" ".join)
seps = st.sampled_from([" ", ", ", ",", "  "])
one_line = st.builds(lambda a, sep, p, sep2, c: f"{a}{sep}{p}{sep2}{c}", line, seps,
                     st.sampled_from(["49400", "00100", "4940", ""]), seps,
                     st.sampled_from(["HAMINA", "Pedersöre", ""]))
maybe = st.none() | st.just(" ") | line | one_line


@FAST
@given(st.lists(st.tuples(maybe, st.none() | st.sampled_from(["100", "49400", " 4940 ", "x1", ""]), maybe, maybe,
                          maybe), max_size=20))
def test_column_path_equals_scalar_path(rows: list[tuple]) -> None:
    columns = [pd.Series([r[i] for r in rows], dtype="string[pyarrow]") for i in range(5)]
    frame = address.normalise_addresses(*columns)
    for i, (street, postal, city, line_text, postal_city) in enumerate(rows):
        line_street, line_postal, line_city = address.split_address_line(line_text)
        pc_postal, pc_city = address.split_postal_code_and_city(postal_city)
        street_raw = street if street is not None and street.strip() else line_street
        postal_raw = next((p for p in (postal, pc_postal, line_postal) if p is not None and p.strip()), None)
        city_raw = next((c for c in (city, pc_city, line_city) if c is not None and c.strip()), None)
        status, code = address.postal_code_status(postal_raw)
        row = frame.iloc[i]
        got_street = None if pd.isna(row["street_address"]) else row["street_address"]
        assert got_street == address.normalise_street(street_raw)
        assert (None if pd.isna(row["postal_code"]) else row["postal_code"]) == code
        assert row["postal_status"] == status
        assert (None if pd.isna(row["city"]) else row["city"]) == address.normalise_city(city_raw)


@FAST
@given(line)
def test_street_and_city_casing_is_idempotent(value: str) -> None:
    once = address.normalise_street(value)
    assert address.normalise_street(once) == once
    city = address.normalise_city(value)
    assert address.normalise_city(city) == city


def test_an_address_line_without_a_street_is_postal_code_and_city():
    from pipeline.normalise.address import split_address_line

    assert split_address_line("11120 Mänttä-Vilppula") == (None, "11120", "Mänttä-Vilppula")
    assert split_address_line("Koekatu 7 A 2, 33100 Tampere") == ("Koekatu 7 A 2", "33100", "Tampere")
