"""The marketing extract: exactly the customers who may be marketed to, per product,
private files published whole, and refused outright when the view is wrong.

On SQLite and PostgreSQL. Who may be marketed to is decided independently here
in Python from the customer and service tables; assertion messages carry counts.
"""

from __future__ import annotations

import csv
import datetime as dt
import stat
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from assets.marketing import marketing_extract, marketing_extract_respects_prohibitions
from pipeline.orchestration.definitions import defs
from pipeline.orchestration.io_manager import RunMemoryIOManager
from pipeline.register.marketing import (
    EXTRACT_COLUMNS,
    ExtractRefused,
    adult_born_on_or_before,
    file_name,
    latest_extract,
    write_extract,
)
from pipeline.orchestration.resources import ExtractDirectory, LandingZone, MatchingConfig, RegisterDatabase
from synth import generate
from schemas.canonical import PRODUCTS
from schemas.register import customer, service
from test_asset_checks import (
    NOW,
    customers,
    database_today,
    eligible_ids,
    insert_customer,
    load_sample_register,
    update_customer,
    wrong_marketing_view,
)


def _products_of(engine: sa.Engine) -> dict[str, set[int]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(service.c.product, service.c.customer_id)).all()
    out: dict[str, set[int]] = {p: set() for p in PRODUCTS}
    for product, customer_id in rows:
        out[product].add(int(customer_id))
    return out


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _erase_one_merge_one(engine: sa.Engine, today: dt.date) -> tuple[int, int]:
    first, second, *_ = sorted(eligible_ids(engine, today))
    update_customer(engine, first, erased_at=NOW)
    update_customer(engine, second, merged_into=first)
    return first, second


def _personal_values(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(customer.c.personal_id, customer.c.first_names, customer.c.last_name,
                                            customer.c.email, customer.c.phone, customer.c.street_address)).all()
    return {str(v) for row in rows for v in row if v}


def test_extract_lists_exactly_the_eligible_customers_of_each_product(register_engine, tmp_path):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    erased, merged = _erase_one_merge_one(register_engine, today)
    summary = write_extract(register_engine, tmp_path, today=today)

    eligible = eligible_ids(register_engine, today)
    holders = _products_of(register_engine)
    folder = tmp_path / today.isoformat()
    assert summary.folder == folder and latest_extract(tmp_path) == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(file_name(p) for p in PRODUCTS)
    golden = {r.customer_id: r for r in customers(register_engine)}
    with register_engine.connect() as connection:
        contact = {r.customer_id: r for r in connection.execute(sa.select(
            customer.c.customer_id, *[customer.c[c] for c in EXTRACT_COLUMNS[1:]]))}
    non_empty = 0
    for product in PRODUCTS:
        header, rows = _read(folder / file_name(product))
        assert header == list(EXTRACT_COLUMNS)
        ids = [int(r["customer_id"]) for r in rows]
        assert ids == sorted(set(ids)), f"{product}: rows not one per customer in id order"
        assert set(ids) == eligible & holders[product], \
            f"{product}: {len(set(ids) ^ (eligible & holders[product]))} customers differ from the eligible set"
        assert summary.rows[product] == len(ids)
        assert erased not in ids and merged not in ids
        assert not any(golden[i].marketing_prohibited for i in ids)
        mismatched = sum(1 for r in rows for c in EXTRACT_COLUMNS[1:]
                         if (r[c] or None) != getattr(contact[int(r["customer_id"])], c))
        assert mismatched == 0, f"{product}: {mismatched} values differ from the customer table"
        non_empty += bool(ids)
    assert non_empty >= 3, "the sample should give several products someone to market to"


def test_age_is_judged_on_the_day_eighteen_today_is_in_one_day_short_is_out(register_engine, tmp_path):
    today = database_today(register_engine)
    cutoff = adult_born_on_or_before(today)
    came_of_age = insert_customer(register_engine, birth_date=cutoff, first_names="Testi", last_name="Täysi-Ikäinen")
    one_day_short = insert_customer(register_engine, birth_date=cutoff + dt.timedelta(days=1),
                                    first_names="Testi", last_name="Alaikäinen")
    unknown_age = insert_customer(register_engine, first_names="Testi", last_name="Tuntematon")
    with register_engine.begin() as connection:
        connection.execute(service.insert(), [
            {"customer_id": c, "product": "broadband", "metering_point": None, "first_seen": NOW, "last_seen": NOW}
            for c in (came_of_age, one_day_short, unknown_age)])
    write_extract(register_engine, tmp_path, today=today)
    _, rows = _read(tmp_path / today.isoformat() / file_name("broadband"))
    assert [int(r["customer_id"]) for r in rows] == [came_of_age]


def test_an_age_past_belief_is_no_known_adult_age_115_today_is_in_a_day_older_is_out(register_engine, tmp_path):
    # A child's `A` typed as the classic `-` reads 2009 as 1909: a valid code, a
    # 117-year-old "adult". Past 115 the age is not believed, like an unknown one.
    today = database_today(register_engine)
    oldest = dt.date(today.year - 115, today.month, 28 if (today.month, today.day) == (2, 29) else today.day)
    believable = insert_customer(register_engine, birth_date=oldest, first_names="Testi", last_name="Vanha")
    past_belief = insert_customer(register_engine, birth_date=oldest - dt.timedelta(days=1),
                                  first_names="Testi", last_name="Vuosisata")
    with register_engine.begin() as connection:
        connection.execute(service.insert(), [
            {"customer_id": c, "product": "broadband", "metering_point": None, "first_seen": NOW, "last_seen": NOW}
            for c in (believable, past_belief)])
        in_view = {r[0] for r in connection.exec_driver_sql("SELECT customer_id FROM marketing_contacts")}
    assert in_view == {believable}
    write_extract(register_engine, tmp_path, today=today)
    _, rows = _read(tmp_path / today.isoformat() / file_name("broadband"))
    assert [int(r["customer_id"]) for r in rows] == [believable]
    # The extract's own check holds the rule too: a view that forgets it is refused.
    with wrong_marketing_view(register_engine):
        with pytest.raises(ExtractRefused) as refused:
            write_extract(register_engine, tmp_path / "again", today=today)
    assert refused.value.counts["minor_or_unknown_age"] == 1
    assert not (tmp_path / "again" / today.isoformat()).exists()


def test_an_age_of_this_century_read_from_a_failed_code_is_no_known_adult_age(register_engine, tmp_path):
    """The check character covers the date digits, not the century sign: a child born in 2009
    whose code was typed with one wrong digit reads as born in 2001. Without a valid code such an
    age is not believed (0017); a 1900s date from a failed code stays in the 1900s, and a valid
    code of 2001 is an adult's."""
    from test_register_helpers import personal_id
    from test_register_resolve import batch_of, customer_of, load_batch, record

    failed = "personal_id_invalid birth_date_from_invalid_code"
    people = [
        record("web", "W-1", "2026-11-01T10:00", first_names="Testi", last_name="Lapsi", birth_date="2001-03-04",
               quality_flags=failed, email="lapsi@example.fi", product="broadband", marketing_prohibited=False),
        record("web", "W-2", "2026-11-01T10:00", first_names="Testi", last_name="Aikuinen", birth_date="1975-03-04",
               quality_flags=failed, email="aikuinen@example.fi", product="broadband", marketing_prohibited=False),
        record("web", "W-3", "2026-11-01T10:00", first_names="Testi", last_name="Nuori",
               personal_id=personal_id(4, 3, 2001, 222), email="nuori@example.fi", product="broadband",
               marketing_prohibited=False),
    ]
    load_batch(register_engine, batch_of("d1", people))
    owners = customer_of(register_engine)
    child, adult_1975, adult_2001 = (owners[("web", f"W-{n}")] for n in (1, 2, 3))
    today = database_today(register_engine)
    with register_engine.connect() as connection:
        in_view = {r[0] for r in connection.exec_driver_sql("SELECT customer_id FROM marketing_contacts")}
    assert in_view == {adult_1975, adult_2001}
    write_extract(register_engine, tmp_path, today=today)
    _, rows = _read(tmp_path / today.isoformat() / file_name("broadband"))
    assert sorted(int(r["customer_id"]) for r in rows) == sorted([adult_1975, adult_2001])
    # The extract's own check holds the rule too: a view that forgets it is refused.
    with wrong_marketing_view(register_engine):
        with pytest.raises(ExtractRefused) as refused:
            write_extract(register_engine, tmp_path / "again", today=today)
    assert refused.value.counts["minor_or_unknown_age"] == 1 and refused.value.counts["ineligible_customers"] == 1


def test_extract_files_are_private_and_replaced_whole(register_engine, tmp_path):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    root = tmp_path / "extract"
    write_extract(register_engine, root, today=today)
    folder = root / today.isoformat()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}

    # A second run the same day replaces the files (new inodes: renamed over, never rewritten
    # in place) and clears what an interrupted run left behind.
    stale = folder / ".marketing_interrupted.csv.tmp"
    stale.write_text("half a file", encoding="utf-8")
    before = {p.name: (p.stat().st_ino, p.read_bytes()) for p in folder.iterdir() if p != stale}
    write_extract(register_engine, root, today=today)
    after = {p.name: (p.stat().st_ino, p.read_bytes()) for p in folder.iterdir()}
    assert set(after) == set(before), "only the product files remain"
    assert all(after[n][1] == before[n][1] for n in before), "same register, same content"
    assert all(after[n][0] != before[n][0] for n in before), "files were rewritten in place"


def test_a_wrong_view_is_refused_and_nothing_is_published(register_engine, tmp_path):
    load_sample_register(register_engine)
    today = database_today(register_engine)
    write_extract(register_engine, tmp_path, today=today)
    folder = tmp_path / today.isoformat()
    published = {p.name: p.read_bytes() for p in folder.iterdir()}
    with wrong_marketing_view(register_engine):
        with pytest.raises(ExtractRefused) as refused:
            write_extract(register_engine, tmp_path, today=today)
        with pytest.raises(ExtractRefused):
            write_extract(register_engine, tmp_path / "fresh", today=today)
    assert refused.value.counts["prohibited"] >= 1 and refused.value.counts["minor_or_unknown_age"] >= 1
    said = str(refused.value)
    assert not [v for v in _personal_values(register_engine) if v in said], "the refusal names a person"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == published, "the earlier extract was touched"
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").rglob("*.csv"))


# --- through Dagster -----------------------------------------------------------------------------

def _materialise(engine: sa.Engine, extract: Path) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [marketing_extract, marketing_extract_respects_prohibitions], instance=instance, raise_on_error=False,
            resources={"register_db": RegisterDatabase(url=engine.url.render_as_string(hide_password=False)),
                       "extract_dir": ExtractDirectory(path=str(extract))})


def test_the_asset_writes_the_extract_and_its_check_passes(register_engine, tmp_path):
    load_sample_register(register_engine)
    result = _materialise(register_engine, tmp_path)
    assert result.success
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]
    metadata = result.asset_materializations_for_node("marketing_extract")[0].metadata
    assert metadata["files_written"].value == sorted(file_name(p) for p in PRODUCTS)
    assert metadata["rows_total"].value == sum(metadata[f"rows.{p}"].value for p in PRODUCTS) > 0
    blob = repr([e.event_specific_data for e in result.all_events])
    assert not [v for v in _personal_values(register_engine) if v in blob], "personal values in run events"


def test_the_asset_fails_once_without_retry_on_a_wrong_view(register_engine, tmp_path):
    load_sample_register(register_engine)
    with wrong_marketing_view(register_engine):
        result = _materialise(register_engine, tmp_path)
    assert not result.success
    events = [e.event_type_value for e in result.all_events]
    assert events.count("STEP_FAILURE") == 1 and "STEP_UP_FOR_RETRY" not in events
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "marketing extract refused" in failure.step_failure_data.error.message
    blob = repr([e.event_specific_data for e in result.all_events])
    assert not [v for v in _personal_values(register_engine) if v in blob], "personal values in run events"
    assert not any(tmp_path.rglob("*.csv")), "a refused extract published files"


def test_a_failed_register_check_stops_the_extract_in_the_nightly_job(register_engine, tmp_path):
    """The register's checks are blocking: with a wrong view the job publishes nothing at all."""
    generate(tmp_path / "zone", people=60, days=1, seed=3)
    resources = {"register_db": RegisterDatabase(url=register_engine.url.render_as_string(hide_password=False)),
                 "landing_zone": LandingZone(path=str(tmp_path / "zone" / "landing")),
                 "extract_dir": ExtractDirectory(path=str(tmp_path / "extract")),
                 "io_manager": RunMemoryIOManager(), "matching": MatchingConfig()}
    job = defs.resolve_job_def("register_load")
    with wrong_marketing_view(register_engine), dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, resources=resources, raise_on_error=False)
    assert not result.success
    verdicts = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert verdicts["marketing_list_respects_prohibitions"] is False
    assert verdicts["intake_counts_add_up"] is True
    assert not [e for e in result.all_events
                if e.step_key == "marketing_extract" and e.event_type_value == "STEP_START"]
    assert not (tmp_path / "extract").exists()


@pytest.mark.parametrize("kept_prohibition", [True, None])
def test_a_prohibition_kept_at_erasure_keeps_the_same_code_off_the_list(register_engine, tmp_path, kept_prohibition):
    """A customer erased with a prohibition, then the same person back as a new customer
    who has said nothing about marketing: the objection still holds (and only it does)."""
    load_sample_register(register_engine)
    today = database_today(register_engine)
    with register_engine.connect() as connection:
        old = connection.execute(sa.select(customer.c.customer_id, customer.c.personal_id, customer.c.birth_date)
                                 .where(customer.c.customer_id.in_(sorted(eligible_ids(register_engine, today))),
                                        customer.c.personal_id.is_not(None))
                                 .order_by(customer.c.customer_id).limit(1)).one()
    update_customer(register_engine, old.customer_id, erased_at=NOW, marketing_prohibited=kept_prohibition,
                    phone=None, email=None)
    back = insert_customer(register_engine, personal_id=old.personal_id, birth_date=old.birth_date,
                           first_names="Testi", last_name="Palaaja", marketing_prohibited=None)
    with register_engine.begin() as connection:
        connection.execute(service.insert().values(customer_id=back, product="electricity", first_seen=NOW,
                                                   last_seen=NOW))
        listed = set(connection.execute(sa.text("SELECT customer_id FROM marketing_contacts")).scalars())
    expected = eligible_ids(register_engine, today)
    assert (back in expected) is (kept_prohibition is None)
    assert listed == expected
    summary = write_extract(register_engine, tmp_path, today=today)
    _, rows = _read(summary.folder / file_name("electricity"))
    assert (str(back) in {row["customer_id"] for row in rows}) is (kept_prohibition is None)
