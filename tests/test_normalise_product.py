"""Product text in Finnish, Swedish or English mapped to the five product codes."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalise import product
from pipeline.normalise.status import Status
from pipeline.normalise.errors import UnknownProduct
from schemas.canonical import PRODUCTS

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("typed", "expected"), [
    ("Sähkö", "electricity"), ("SÄHKÖ", "electricity"), ("sahko", "electricity"), ("el", "electricity"),
    ("electricity", "electricity"), ("sähkösopimus", "electricity"), ("Elavtal", "electricity"),
    ("sähkö (kiinteä hinta)", "electricity"), ("sähkä", "electricity"),
    ("Maakaasu", "natural_gas"), ("naturgas", "natural_gas"), ("natural gas", "natural_gas"), ("kaasu", "natural_gas"),
    ("Kaukolämpö", "district_heating"), ("kaukolampo", "district_heating"), ("fjärrvärme", "district_heating"),
    ("district heat", "district_heating"), ("District heating", "district_heating"), ("kaukolämöp", "district_heating"),
    ("Laajakaista", "broadband"), ("bredband", "broadband"), ("broadband", "broadband"), ("laajakaita", "broadband"),
    ("broadbnad", "broadband"), ("Laajakaistaliittymä", "broadband"),
    ("TV", "tv"), ("tv", "tv"), ("television", "tv"), ("tv-paketti", "tv"), ("Televisio", "tv"),
])
def test_product_mapping(typed: str, expected: str) -> None:
    assert product.to_product(typed) == expected
    assert product.validate(typed) == expected


@pytest.mark.parametrize("typed", ["vesi", "sähkö ja kaukolämpö", "xyz", "t", "en vet", "123"])
def test_unknown_products(typed: str) -> None:
    assert product.to_product(typed) is None
    with pytest.raises(UnknownProduct) as caught:
        product.validate(typed)
    assert len(typed) < 4 or typed not in str(caught.value)


@FAST
@given(st.sampled_from(PRODUCTS))
def test_codes_map_to_themselves(code: str) -> None:
    assert product.to_product(code) == code
    assert product.to_product(code.upper().replace("_", " ")) == code


words = st.sampled_from(["Sähkö", "tv", "el", "vesi", "MAAKAASU", "district heat", "  bredband ", "sopimus", "", "x"])


@FAST
@given(st.lists(st.none() | words, max_size=20))
def test_column_path_equals_scalar_path(values: list[str | None]) -> None:
    frame = product.normalise_series(pd.Series(values, dtype="string[pyarrow]"))
    for i, value in enumerate(values):
        expected = None if value is None or not value.strip() else product.to_product(value.strip())
        got = frame["product"].iloc[i]
        assert (None if pd.isna(got) else got) == expected
        missing = value is None or not value.strip()
        assert frame["status"].iloc[i] == (Status.MISSING if missing else
                                           Status.VALID if expected else Status.INVALID)
