"""The resolution's writes, a part of whole groups at a time (pipeline/register/resolve.py,
`write_parts`), on SQLite and PostgreSQL.

What could go wrong: a customer's records, a merge's two customers or a review's two records
fall into two parts, and a part then writes a customer from half its records, misses a merge,
or withdraws a review the other part still proposes; a waiting record is written twice or not
at all. So the register written in parts of 40 records must be, row for row, the register
written at once: the same customers with the same ids, merges, provenance, services, reviews.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.intake import build_batch, discover, read_all
from pipeline.matching.settings import MatchSettings
from pipeline.register.load import load_intake
from pipeline.register.resolve import resolve_identities
from schemas.register import PROVENANCE_UNITS
from synth import generate

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 11, 25)
SMALL_PARTS = 40


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> list[Path]:
    """Landing zones of days 1-3, then days 1-6: the second load meets held customers (seed 23: and
    merges two of them, and withdraws a review)."""
    out = tmp_path_factory.mktemp("parts-zone")
    generate(out, people=1200, days=6, seed=23, noise_profile="varied")
    landing = out / "landing"
    day_of = {path: path.name.rsplit("_", 1)[-1].split(".")[0] for path in landing.rglob("*_*.*")}
    calendar = sorted(set(day_of.values()))
    zones = []
    for last in (3, 6):
        zone = out / f"through-{last}"
        for path, day in day_of.items():
            if calendar.index(day) < last:
                target = zone / path.parent.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
        zones.append(zone)
    return zones


def _load(engine, zone: Path, part_records: int) -> list:
    summaries = []

    def resolve(connection):
        summaries.append(resolve_identities(connection, now=NOW, run_id="parts",
                                            settings=MatchSettings(resolve_part_records=part_records)))

    load_intake(engine, build_batch(read_all(discover(zone)), TODAY), run_id="parts", now=NOW, after_load=resolve)
    return summaries


def _contents(engine) -> dict[str, list]:
    """The register's rows, by what identifies them (not by keys handed out in write order)."""
    record = "(SELECT s.channel || ':' || s.source_record_id FROM source_record AS s WHERE s.source_record_pk = o.{})"
    queries = {
        "records": "SELECT channel, source_record_id, customer_id, match_method, "
                   "match_probability FROM source_record",
        "customers": "SELECT customer_id, merged_into, personal_id, first_names, last_name, street_address, "
                     "postal_code, city, phone, email, iban, marketing_prohibited, identity_verified FROM customer",
        "merges": "SELECT merged_customer_id, surviving_customer_id, reason FROM customer_merge",
        "merged records": "SELECT m.merged_customer_id, " + record.format("source_record_pk")
                          + " FROM merge_record AS o JOIN customer_merge AS m ON m.merge_id = o.merge_id",
        "provenance": "SELECT customer_id, " + ", ".join(
            record.format(f"{unit}_record_pk") for unit in PROVENANCE_UNITS)
            + " FROM golden_provenance AS o",
        "services": "SELECT customer_id, product, metering_point FROM service",
        "reviews": f"SELECT {record.format('left_source_record_pk')}, {record.format('right_source_record_pk')}, "
                   "left_customer_id, right_customer_id, status, probability FROM review_queue AS o",
        "match keys": "SELECT blocking_key, " + record.format("source_record_pk") + " FROM match_key AS o",
    }
    with engine.connect() as connection:
        return {name: sorted((tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                              for row in connection.execute(sa.text(sql)).all()), key=repr)
                for name, sql in queries.items()}


def test_a_register_written_in_parts_is_the_register_written_at_once(days, register_engine, second_register_engine):
    at_once = [summary for zone in days for summary in _load(register_engine, zone, 1_000_000)]
    in_parts = [summary for zone in days for summary in _load(second_register_engine, zone, SMALL_PARTS)]
    assert [s.write_parts for s in at_once] == [1, 1]
    assert all(s.write_parts > 5 for s in in_parts), "the case needs many parts"
    # The case needs what a part could split: held customers re-resolved, merges, reviews.
    second = in_parts[1]
    assert second.affected_records > second.records_resolved > 0
    assert second.merges > 0 and second.reviews_withdrawn > 0
    assert [s.metadata() | {"write_parts": 0} for s in in_parts] == \
        [s.metadata() | {"write_parts": 0} for s in at_once]

    expected, got = _contents(register_engine), _contents(second_register_engine)
    assert {name: len(rows) for name, rows in got.items()} == {name: len(rows) for name, rows in expected.items()}
    for name in expected:  # counts only: the rows hold (synthetic) personal values
        rows_got, rows_expected = Counter(got[name]), Counter(expected[name])
        differing = sum((rows_got - rows_expected).values()) + sum((rows_expected - rows_got).values())
        assert differing == 0, f"{name}: {differing} rows differ"
    assert len(expected["merged records"]) > 0 and len(expected["reviews"]) > 0
