"""The code list stays documented; the landing-zone sensor sees new content once."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipeline import codes
from pipeline.orchestration.definitions import defs
from pipeline.orchestration.sensors import changes_since, run_key_for

ROOT = Path(__file__).resolve().parents[1]


def test_every_code_is_described_and_docs_are_current():
    assert set(codes.FLAG_DESCRIPTIONS) == set(codes.Flag)
    assert set(codes.REASON_DESCRIPTIONS) == set(codes.Reason)
    assert (ROOT / "docs" / "codes.md").read_text(encoding="utf-8") == codes.markdown(), \
        "docs/codes.md is stale: run `python -m pipeline.codes > docs/codes.md`"


def test_changes_since_moves_the_cursor_past_seen_files(tmp_path):
    (tmp_path / "web").mkdir()
    first = tmp_path / "web" / "web_20261101.jsonl"
    first.write_text("{}\n", encoding="utf-8")
    os.utime(first, ns=(1_000, 1_000))
    hidden = tmp_path / "web" / ".web_20261102.jsonl.part"
    hidden.write_text("{}\n", encoding="utf-8")

    changed, cursor = changes_since(tmp_path, 0)
    assert changed == [first] and cursor == 1_000
    assert changes_since(tmp_path, cursor) == ([], cursor)

    second = tmp_path / "web" / "web_20261102.jsonl"
    second.write_text('{"id": "x"}\n', encoding="utf-8")
    os.utime(second, ns=(2_000, 2_000))
    assert changes_since(tmp_path, cursor) == ([second], 2_000)


def test_run_key_depends_on_content_not_name(tmp_path):
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert run_key_for([a]) == run_key_for([b])
    b.write_bytes(b"other")
    assert run_key_for([a]) != run_key_for([b])


def test_sensor_requests_one_run_then_skips(tmp_path):
    (tmp_path / "phone").mkdir()
    (tmp_path / "phone" / "phone_20261101.csv").write_bytes(b"x")
    (tmp_path / "phone" / "phone_20261101.csv.ready").write_bytes(b"")  # the export has finished
    sensor = defs.resolve_sensor_def("landing_zone_sensor")
    from pipeline.orchestration.resources import LandingZone
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"landing_zone": LandingZone(path=str(tmp_path))})
        first = sensor(context)
        assert isinstance(first, dg.RunRequest) and first.run_key.startswith("landing-")
        context = dg.build_sensor_context(instance=instance, cursor=context.cursor,
                                          resources={"landing_zone": LandingZone(path=str(tmp_path))})
        assert isinstance(sensor(context), dg.SkipReason)


def test_schedule_is_nightly_in_helsinki_time():
    schedule = defs.resolve_schedule_def("nightly_register_load")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/Helsinki"
    assert schedule.job_name == "register_load"
