"""Golden records and services: each attribute from the right record, whatever the load order.

All values are synthetic: computed codes and IBANs, example.fi addresses, common name words.
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.matching.survivorship import (
    GOLDEN_ATTRIBUTES,
    PROVENANCE_COLUMNS,
    SERVICE_COLUMNS,
    golden_records,
    services,
)
from synth.identifiers import fi_bban, iban_from_bban, make_hetu
from schemas.canonical import CHANNEL_ORDER, CHANNELS

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CODE = make_hetu(datetime.date(1980, 3, 12), 234)
OTHER_CODE = make_hetu(datetime.date(1975, 11, 2), 118)
IBAN_1 = iban_from_bban(fi_bban("123456", "785"))
IBAN_2 = iban_from_bban(fi_bban("800012", "70123"))

COLUMNS = ("record_key", "channel", "source_record_id", "observed_at", "personal_id", "birth_date",
           "first_names", "last_name", "street_address", "postal_code", "city", "phone", "email",
           "iban", "bic", "product", "metering_point", "marketing_prohibited", "identity_verified")
STRING_COLUMNS = ("channel", "source_record_id", "personal_id", "first_names", "last_name", "street_address",
                  "postal_code", "city", "phone", "email", "iban", "bic", "product", "metering_point")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def record(key: int, when: str, channel: str = "web", **values) -> dict:
    row = {column: None for column in COLUMNS}
    row.update(record_key=key, channel=channel, source_record_id=values.pop("source_record_id", f"{channel}-{key}"),
               observed_at=ts(when), identity_verified=False)
    row.update(values)
    return row


def frame(*rows: dict) -> pd.DataFrame:
    data = pd.DataFrame(list(rows), columns=list(COLUMNS))
    for column in STRING_COLUMNS:
        data[column] = data[column].astype("string[pyarrow]")
    data["record_key"] = data["record_key"].astype("int64")
    data["observed_at"] = pd.to_datetime(data["observed_at"], utc=True)
    data["birth_date"] = pd.to_datetime(data["birth_date"])
    data["marketing_prohibited"] = data["marketing_prohibited"].astype("boolean")
    data["identity_verified"] = data["identity_verified"].astype(bool)
    return data


def one_cluster(data: pd.DataFrame) -> pd.Series:
    key = int(data["record_key"].min())
    return pd.Series(key, index=data["record_key"].to_numpy())


def golden_of(data: pd.DataFrame, cluster_of: pd.Series | None = None) -> tuple[dict, dict]:
    """The single cluster's golden row, and attribute -> source record_key."""
    golden, provenance = golden_records(data, one_cluster(data) if cluster_of is None else cluster_of)
    assert len(golden) == 1
    assert golden.index.tolist() == provenance["cluster"].unique().tolist()
    return golden.iloc[0].to_dict(), provenance.set_index("attribute")["record_key"].to_dict()


# --- the rules, one case each -------------------------------------------------------------

def test_moved_house_latest_address_wins_as_one_unit() -> None:
    data = frame(
        record(1, "2024-05-01", street_address="Rautatienkatu 5 B 12", postal_code="49400", city="Hamina"),
        record(2, "2026-02-01", "phone", street_address="Koulukatu 3", postal_code="00100", city="Helsinki"),
        record(3, "2026-06-01", "email", phone="+358401234567"),  # latest, but says nothing of the address
    )
    golden, source = golden_of(data)
    assert (golden["street_address"], golden["postal_code"], golden["city"]) == ("Koulukatu 3", "00100", "Helsinki")
    assert source["street_address"] == source["postal_code"] == source["city"] == 2


def test_address_parts_never_mix_records() -> None:
    data = frame(
        record(1, "2024-05-01", street_address="Rautatienkatu 5", postal_code="49400", city="Hamina"),
        record(2, "2026-02-01", street_address="Koulukatu 3", city="Helsinki"),  # newer, postal code missing
    )
    golden, source = golden_of(data)
    assert source["street_address"] == source["postal_code"] == source["city"] == 1
    # a complete address beats a partial newer one; never the old postal code under the new street
    assert (golden["street_address"], golden["postal_code"], golden["city"]) == ("Rautatienkatu 5", "49400", "Hamina")
    partial_only = frame(record(1, "2024-05-01", city="Hamina"), record(2, "2026-02-01", street_address="Koulukatu 3"))
    golden, source = golden_of(partial_only)
    assert golden["street_address"] == "Koulukatu 3" and pd.isna(golden["postal_code"]) and pd.isna(golden["city"])
    assert source == {"street_address": 2, "identity_verified": 2}


def test_changed_surname_verified_record_wins_over_a_newer_unverified_one() -> None:
    verified = record(1, "2024-01-10", "in_person", first_names="Aino Maria", last_name="Mäkinen",
                      identity_verified=True)
    newer = record(2, "2026-03-01", "mail", first_names="Aino", last_name="Virtanen")
    golden, source = golden_of(frame(verified, newer))
    assert (golden["first_names"], golden["last_name"]) == ("Aino Maria", "Mäkinen")
    assert source["first_names"] == source["last_name"] == 1
    assert golden["identity_verified"] == True  # noqa: E712
    assert source["identity_verified"] == 1
    # without a verified record the latest wins
    golden, source = golden_of(frame({**verified, "identity_verified": False}, newer))
    assert (golden["first_names"], golden["last_name"]) == ("Aino", "Virtanen")
    assert not golden["identity_verified"] and source["identity_verified"] == 2


def test_names_prefer_a_complete_name() -> None:
    data = frame(record(1, "2024-01-10", first_names="Aino", last_name="Mäkinen"),
                 record(2, "2026-03-01", last_name="Virtanen"))
    golden, source = golden_of(data)
    assert (golden["first_names"], golden["last_name"]) == ("Aino", "Mäkinen")
    golden, source = golden_of(frame(record(2, "2026-03-01", last_name="Virtanen")))
    assert pd.isna(golden["first_names"]) and golden["last_name"] == "Virtanen"
    assert "first_names" not in source and source["last_name"] == 2


def test_withdrawn_marketing_prohibition_latest_explicit_answer_wins() -> None:
    data = frame(record(1, "2024-01-01", marketing_prohibited=True),
                 record(2, "2025-01-01", "phone", marketing_prohibited=False),
                 record(3, "2026-01-01", "mail", marketing_prohibited=None))  # an empty answer states nothing
    golden, source = golden_of(data)
    assert golden["marketing_prohibited"] == False  # noqa: E712
    assert source["marketing_prohibited"] == 2
    golden, _ = golden_of(frame(record(3, "2026-01-01")))
    assert pd.isna(golden["marketing_prohibited"])


def test_ties_on_time_go_by_channel_order_then_record_id() -> None:
    same_time = "2026-01-01T10:00:00"
    data = frame(record(1, same_time, "in_person", phone="+358401111111"),
                 record(2, same_time, "phone", phone="+358402222222"),
                 record(3, same_time, "mail", phone="+358403333333"))
    golden, source = golden_of(data)
    assert CHANNEL_ORDER["phone"] < CHANNEL_ORDER["mail"] < CHANNEL_ORDER["in_person"]
    assert (golden["phone"], source["phone"]) == ("+358402222222", 2)
    data = frame(record(5, same_time, "email", source_record_id="<b@example.fi>", email="b@example.fi"),
                 record(4, same_time, "email", source_record_id="<a@example.fi>", email="a@example.fi"),
                 record(6, same_time, "email", source_record_id="<c@example.fi>", email="c@example.fi"))
    golden, source = golden_of(data)
    assert (golden["email"], source["email"]) == ("a@example.fi", 4)


def test_code_and_birth_date_come_from_the_coded_record() -> None:
    data = frame(record(1, "2024-01-01", personal_id=CODE, birth_date="1980-03-12"),
                 record(2, "2026-01-01", birth_date="1980-12-03"))  # from a mistyped code: flagged, not used
    golden, source = golden_of(data)
    assert golden["personal_id"] == CODE and golden["birth_date"] == pd.Timestamp("1980-03-12")
    assert source["personal_id"] == source["birth_date"] == 1
    golden, source = golden_of(frame(record(2, "2026-01-01", birth_date="1980-12-03")))
    assert pd.isna(golden["personal_id"]) and golden["birth_date"] == pd.Timestamp("1980-12-03")
    assert "personal_id" not in source and source["birth_date"] == 2


def test_bank_account_iban_and_bic_together() -> None:
    data = frame(record(1, "2024-01-01", iban=IBAN_1, bic="HELSFIHH"),
                 record(2, "2026-01-01", iban=IBAN_2))  # a bank with no known BIC
    golden, source = golden_of(data)
    assert golden["iban"] == IBAN_2 and pd.isna(golden["bic"])
    assert source["iban"] == 2 and "bic" not in source


def test_phone_and_email_each_from_the_latest_that_has_it() -> None:
    data = frame(record(1, "2024-01-01", phone="+358401111111", email="old@example.fi"),
                 record(2, "2025-01-01", email="new@example.fi"),
                 record(3, "2026-01-01", "phone"))
    golden, source = golden_of(data)
    assert (golden["phone"], golden["email"]) == ("+358401111111", "new@example.fi")
    assert (source["phone"], source["email"]) == (1, 2)


def test_provenance_rows_name_record_channel_and_time() -> None:
    data = frame(record(7, "2025-01-01", "phone", phone="+358401111111", first_names="Aino", last_name="Aho"),
                 record(9, "2026-01-01", "mail", email="a@example.fi"))
    golden, provenance = golden_records(data, pd.Series([7, 7], index=[7, 9]))
    assert tuple(provenance.columns) == PROVENANCE_COLUMNS
    assert tuple(golden.columns) == GOLDEN_ATTRIBUTES and golden.index.name == "cluster"
    assert golden.index.tolist() == [7] and set(provenance["cluster"]) == {7}
    rows = provenance.set_index("attribute")
    assert rows.loc["phone", ["record_key", "channel", "observed_at"]].tolist() == [7, "phone", ts("2025-01-01")]
    assert rows.loc["email", ["record_key", "channel", "observed_at"]].tolist() == [9, "mail", ts("2026-01-01")]
    assert set(rows.index) == {"first_names", "last_name", "phone", "email", "identity_verified"}
    assert str(provenance["observed_at"].dtype) == "datetime64[ns, UTC]"


def test_several_clusters_and_a_missing_cluster() -> None:
    data = frame(record(1, "2024-01-01", personal_id=CODE), record(2, "2025-01-01", personal_id=OTHER_CODE),
                 record(3, "2026-01-01", phone="+358401111111"))
    golden, provenance = golden_records(data, pd.Series({1: 1, 2: 2, 3: 1}))
    assert golden.index.tolist() == [1, 2]
    assert golden["personal_id"].tolist() == [CODE, OTHER_CODE]
    assert golden["phone"].isna().tolist() == [False, True]
    assert provenance.groupby(["cluster", "attribute"], observed=True).size().max() == 1
    with pytest.raises(ValueError, match="1 records have no cluster"):
        golden_records(data, pd.Series({1: 1, 2: 2}))


def test_no_records() -> None:
    golden, provenance = golden_records(frame(), pd.Series(dtype="int64"))
    assert golden.empty and provenance.empty and services(frame(), pd.Series(dtype="int64")).empty
    assert tuple(golden.columns) == GOLDEN_ATTRIBUTES


def test_services_first_and_last_seen() -> None:
    point = "643007574000125688"
    data = frame(record(1, "2024-01-01", product="electricity", metering_point=point),
                 record(2, "2026-01-01", "phone", product="electricity", metering_point=point),
                 record(3, "2025-01-01", "mail", product="broadband"),
                 record(4, "2025-06-01", "mail"))
    result = services(data, one_cluster(data))
    assert tuple(result.columns) == SERVICE_COLUMNS
    assert result[["cluster", "product", "metering_point"]].astype(object).where(result.notna(), None).values.tolist() == [
        [1, "broadband", None], [1, "electricity", point]]
    electricity = result[result["product"] == "electricity"].iloc[0]
    assert (electricity["first_seen"], electricity["last_seen"]) == (ts("2024-01-01"), ts("2026-01-01"))


# --- properties -------------------------------------------------------------------------------

TIMES = ["2024-01-01", "2025-01-01", "2025-01-01T12:00", "2026-01-01"]


@st.composite
def clustered_records(draw):
    n = draw(st.integers(1, 12))
    rows = []
    for key in range(1, n + 1):
        channel = draw(st.sampled_from(CHANNELS))
        rows.append(record(
            key * 10, draw(st.sampled_from(TIMES)), channel, source_record_id=f"{channel}-{draw(st.integers(0, 3))}-{key}",
            first_names=draw(st.sampled_from([None, "Aino", "Ville"])), last_name=draw(st.sampled_from([None, "Aho", "Virta"])),
            street_address=draw(st.sampled_from([None, "Koulukatu 3", "Kirkkotie 1"])),
            postal_code=draw(st.sampled_from([None, "00100", "49400"])), city=draw(st.sampled_from([None, "Helsinki", "Hamina"])),
            phone=draw(st.sampled_from([None, "+358401111111", "+358402222222"])),
            email=draw(st.sampled_from([None, "a@example.fi", "b@example.fi"])),
            iban=draw(st.sampled_from([None, IBAN_1, IBAN_2])), bic=draw(st.sampled_from([None, "HELSFIHH"])),
            product=draw(st.sampled_from([None, "electricity", "tv"])),
            marketing_prohibited=draw(st.sampled_from([None, True, False])),
            identity_verified=draw(st.booleans())))
    data = frame(*rows)
    clusters = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    keys = data["record_key"].to_numpy()
    cluster_of = pd.Series(keys, index=keys, copy=True)  # a view would write into the records
    for group in set(clusters):
        members = keys[np.array(clusters) == group]
        cluster_of[members] = members.min()
    return data, cluster_of


def _rank(row) -> tuple:
    """The documented ranking as a plain sort key: latest first, then channel order, then id."""
    return (-row.observed_at.value, CHANNEL_ORDER[row.channel], row.source_record_id, row.record_key)


@FAST
@given(clustered_records(), st.randoms(use_true_random=False))
def test_golden_records_do_not_depend_on_load_order(problem, random) -> None:
    data, cluster_of = problem
    golden, provenance = golden_records(data, cluster_of)
    shuffled = data.sample(frac=1, random_state=random.randrange(2**32)).reset_index(drop=True)
    golden_2, provenance_2 = golden_records(shuffled, cluster_of.sample(frac=1, random_state=1))
    pd.testing.assert_frame_equal(golden, golden_2)
    pd.testing.assert_frame_equal(provenance, provenance_2)
    pd.testing.assert_frame_equal(services(data, cluster_of), services(shuffled, cluster_of))


@FAST
@given(clustered_records())
def test_golden_records_follow_the_rules_by_a_plain_reading(problem) -> None:
    """A row-by-row reading of the rules (sorted() per cluster) agrees with the column-wise one."""
    data, cluster_of = problem
    golden, provenance = golden_records(data, cluster_of)
    source = provenance.set_index(["cluster", "attribute"])["record_key"]
    for cluster_key, members in data.groupby(cluster_of.reindex(data["record_key"]).to_numpy()):
        ranked = sorted(members.itertuples(), key=_rank)
        row = golden.loc[cluster_key]

        def expect(attributes, chosen):
            for attribute in attributes:
                value = getattr(chosen, attribute) if chosen is not None else None
                if chosen is None or pd.isna(value):
                    assert pd.isna(row[attribute]) and (cluster_key, attribute) not in source.index
                else:
                    assert row[attribute] == value and source[(cluster_key, attribute)] == chosen.record_key

        def first(rows, test):
            return next((r for r in rows if test(r)), None)
        present = lambda r, c: not pd.isna(getattr(r, c))  # noqa: E731
        verified_first = sorted(ranked, key=lambda r: not r.identity_verified)  # stable: keeps the ranking
        names = (first(verified_first, lambda r: present(r, "first_names") and present(r, "last_name"))
                 or first(verified_first, lambda r: present(r, "first_names") or present(r, "last_name")))
        expect(("first_names", "last_name"), names)
        address = ("street_address", "postal_code", "city")
        expect(address, first(ranked, lambda r: all(present(r, c) for c in address))
               or first(ranked, lambda r: any(present(r, c) for c in address)))
        expect(("iban", "bic"), first(ranked, lambda r: present(r, "iban")))
        for attribute in ("phone", "email", "marketing_prohibited"):
            expect((attribute,), first(ranked, lambda r: present(r, attribute)))
        assert row["identity_verified"] == any(r.identity_verified for r in ranked)
        expected_source = first(ranked, lambda r: r.identity_verified) or ranked[0]
        assert source[(cluster_key, "identity_verified")] == expected_source.record_key


# --- speed --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_million_records_in_a_few_seconds() -> None:
    import time
    rng = np.random.default_rng(5)
    n = 1_000_000
    data = pd.DataFrame({
        "record_key": np.arange(1, n + 1, dtype=np.int64),
        "channel": pd.array(np.array(CHANNELS, dtype=object)[rng.integers(0, 5, n)], dtype="string[pyarrow]"),
        "source_record_id": pd.array([f"R-{i}" for i in range(n)], dtype="string[pyarrow]"),
        "observed_at": pd.to_datetime(rng.integers(1.7e9, 1.8e9, n), unit="s", utc=True),
        "identity_verified": rng.random(n) < 0.3,
        "marketing_prohibited": pd.array(np.where(rng.random(n) < 0.5, None, rng.random(n) < 0.2), dtype="boolean"),
    })
    for column in ("personal_id", "first_names", "last_name", "street_address", "postal_code", "city", "phone",
                   "email", "iban", "bic", "product", "metering_point"):
        values = np.array([f"{column}-{i % 1000}" for i in range(1000)], dtype=object)[rng.integers(0, 1000, n)]
        data[column] = pd.array(np.where(rng.random(n) < 0.3, None, values), dtype="string[pyarrow]")
    data["birth_date"] = pd.to_datetime(rng.integers(0, 1e9, n), unit="s")
    cluster_of = pd.Series(data["record_key"].to_numpy() // 2 * 2, index=data["record_key"].to_numpy())
    cluster_of[cluster_of == 0] = 1
    start = time.perf_counter()
    golden, provenance = golden_records(data, cluster_of)
    service_rows = services(data, cluster_of)
    elapsed = time.perf_counter() - start
    assert len(golden) == cluster_of.nunique() and len(service_rows) > 0
    assert elapsed < 20, f"golden records and services of 1M records took {elapsed:.1f} s"
