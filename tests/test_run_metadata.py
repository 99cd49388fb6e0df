"""Metadata people read: the `register` materialisation leads with ten headline numbers,
the breakdowns are one table each, a night with nothing new draws no false rate, the
catalogue knows the row count and the column schema, the kinds name the backend in use,
and the load's own summary lines reach the run log (dagster.yaml's `python_logs`).

On SQLite and PostgreSQL, through Dagster, on a generated landing zone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from sqlalchemy import text

from pipeline.orchestration.definitions import defs
from pipeline.orchestration.io_manager import RunMemoryIOManager
from pipeline.orchestration.resources import ExtractDirectory, LandingZone, MatchingConfig, RegisterDatabase
from schemas.canonical import CHANNELS
from schemas.register import customer
from synth import generate

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = {"records_read", "records_accepted", "records_quarantined", "records_resent", "records_linked",
            "new_customers", "merges", "to_review", "link_rate", "quarantine_rate"}


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zone")
    generate(out, people=200, days=2, seed=11)
    return out / "landing"


def _project_python_logs() -> dict:
    """The `python_logs` section of the project's own dagster.yaml."""
    return yaml.safe_load((ROOT / "dagster.yaml").read_text(encoding="utf-8"))["python_logs"]


def _run(landing: Path, url: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("register_load").execute_in_process(
        instance=instance,
        resources={"register_db": RegisterDatabase(url=url), "landing_zone": LandingZone(path=str(landing)),
                   "extract_dir": ExtractDirectory(path=str(landing.parent / "extract")),
                   "io_manager": RunMemoryIOManager(), "matching": MatchingConfig()})


def _register_metadata(result: dg.ExecuteInProcessResult) -> dict:
    # A whole load also marks each export day it covered (partitioned events); the run's own has none.
    (materialization,) = [m for m in result.asset_materializations_for_node("register") if m.partition is None]
    return materialization.metadata


def test_the_register_leads_with_ten_headline_numbers_and_nothing_new_draws_no_rate(landing, register_engine):
    url = register_engine.url.render_as_string(hide_password=False)
    with dg.instance_for_test(overrides={"python_logs": _project_python_logs()}) as instance:
        first = _run(landing, url, instance)
        assert first.success
        metadata = _register_metadata(first)
        plotted = {k for k, v in metadata.items() if isinstance(v, (dg.IntMetadataValue, dg.FloatMetadataValue))}
        assert plotted == HEADLINE | {"dagster/row_count"}, f"{len(plotted)} plotted values"
        with register_engine.connect() as conn:
            live = conn.execute(text("SELECT COUNT(*) FROM customer WHERE merged_into IS NULL "
                                     "AND erased_at IS NULL")).scalar_one()
            read, files = conn.execute(text("SELECT SUM(records_read), COUNT(*) FROM intake_file")).one()
        assert metadata["dagster/row_count"].value == live > 0
        assert 0.0 < metadata["link_rate"].value < 1.0

        # The per-channel breakdown is one table: a row per channel landed and the total.
        table = metadata["per_channel"].value
        rows = {r.data["channel"]: r.data for r in table.records}
        assert set(rows) == {"total", *CHANNELS}
        assert rows["total"]["read"] == read == metadata["records_read"].value
        assert sum(rows[c]["read"] for c in CHANNELS) == read
        assert sum(rows[c]["files_loaded"] + rows[c]["files_quarantined"] for c in CHANNELS) == files
        reasons = {r.data["reason"]: r.data["records"] for r in metadata["quarantine_by_reason"].value.records}
        assert metadata["records_quarantined"].value > 0 and reasons, "the generator's bad input is quarantined"

        # Each export day the whole load covered is marked, with that day's counts adding up to the run's.
        days = [m for m in first.asset_materializations_for_node("register") if m.partition is not None]
        assert len(days) >= 2
        assert sum(m.metadata["records_read"].value for m in days) == read

        # The load's and the resolver's summary lines are in the run log.
        messages = [e.message for e in instance.all_logs(first.run_id) if e.message]
        assert any(m.startswith("register load:") for m in messages)
        assert any(m.startswith("identity resolution:") for m in messages)

        # Nothing new: true zeros, and no rate at all rather than a false 0.0.
        again = _run(landing, url, instance)
        assert again.success
        quiet = _register_metadata(again)
        assert quiet["records_read"].value == 0 and quiet["new_customers"].value == 0
        assert "link_rate" not in quiet and "quarantine_rate" not in quiet
        assert quiet["dagster/row_count"].value == live


def test_the_catalogue_shows_the_customer_tables_columns():
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey("register"))
    schema = spec.metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == [c.name for c in customer.columns]
    merged_into = next(c for c in schema.columns if c.name == "merged_into")
    assert merged_into.description and merged_into.constraints.nullable


@pytest.mark.parametrize("url, kind, other", [
    ("postgresql+psycopg://postgres@127.0.0.1:5432/somewhere", "postgres", "sqlite"),
    ("sqlite:////tmp/somewhere/register.db", "sqlite", "postgres"),
])
def test_the_kinds_name_the_backend_in_use(url, kind, other):
    # The kinds are fixed when the code location loads: a fresh interpreter per backend.
    script = ("import dagster as dg\n"
              "from pipeline.orchestration.definitions import defs\n"
              "specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}\n"
              "print(sorted(specs['register'].kinds), sorted(specs['marketing_extract'].kinds))\n")
    env = {**os.environ, "REGISTER_DATABASE_URL": url}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.count(f"'{kind}'") == 2 and f"'{other}'" not in out
