"""Varied spellings (generator/synth/spellings.py): one meaning, many spellings, one canonical record.

The same seed with `spellings="varied"` writes the same people and records, a share
of their values spelled another way (a phone as `(040) 123 4567` or
`+358 (0)40 ...`, a street as `5 b12`, an account in lower case with hyphens). The
normalisers must give every record the same canonical values either way: what
the matcher compares does not depend on how a channel happened to write it.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline.intake import build_batch, discover, read_all
from synth import generate
from synth.spellings import phone_spelling
from pipeline.normalise import phone

TODAY = dt.date(2026, 12, 6)
CANONICAL = ["personal_id", "first_names", "last_name", "street_address", "postal_code", "city", "phone",
             "email", "iban", "bic", "metering_point", "product", "marketing_prohibited", "birth_date"]


def _accepted(out, spellings: str) -> pd.DataFrame:
    generate(out, records=4000, days=3, seed=31, spellings=spellings, noise_profile="varied")
    batch = build_batch(read_all(discover(out / "landing")), TODAY)
    return batch.accepted.set_index(["channel", "source_record_id"]).sort_index()


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (_accepted(tmp_path_factory.mktemp("plain"), "default"),
            _accepted(tmp_path_factory.mktemp("respelled"), "varied"))


def test_other_spellings_give_the_same_canonical_records(both):
    plain, respelled = both
    assert plain.index.equals(respelled.index), "spellings changed which records were accepted"
    assert len(plain) > 3000
    for column in CANONICAL:
        left, right = plain[column].astype("string"), respelled[column].astype("string")
        differ = int((left.fillna("<NA>") != right.fillna("<NA>")).sum())
        assert differ == 0, f"{column}: {differ} records normalised differently when spelled otherwise"


def test_the_spellings_really_differ(tmp_path):
    """The varied zone is no copy of the plain one: its files differ, its records do not."""
    generate(tmp_path / "a", records=500, days=1, seed=3)
    generate(tmp_path / "b", records=500, days=1, seed=3, spellings="varied")
    plain = sorted(p.read_bytes() for p in (tmp_path / "a" / "landing").rglob("*_*.*") if p.suffix != ".ready")
    varied = sorted(p.read_bytes() for p in (tmp_path / "b" / "landing").rglob("*_*.*") if p.suffix != ".ready")
    assert len(plain) == len(varied) and plain != varied
    assert (tmp_path / "a" / "ground_truth.csv.gz").read_bytes() == (tmp_path / "b" / "ground_truth.csv.gz").read_bytes()


@pytest.mark.parametrize("style", range(12))
def test_each_phone_spelling_is_the_same_number(style):
    for number in ("+358401234567", "+35891234567", "+358505556677", "+358201234567"):
        written = phone_spelling(number.replace("+358", "0"), style)
        assert phone.inspect(written)[1] == number, (style, "a spelling changed the number")
