"""The house's rules that a reader relies on: what the pure modules do not pull in."""

from __future__ import annotations

import subprocess
import sys


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_the_intake_loads_no_database_driver_and_no_dagster():
    loaded = _modules_loaded_by("import pipeline.intake")
    assert "pipeline.intake" in loaded
    assert not {"sqlalchemy", "psycopg", "dagster"} & loaded, sorted({"sqlalchemy", "psycopg", "dagster"} & loaded)


def test_the_batch_is_plain_data():
    loaded = _modules_loaded_by("import pipeline.batch")
    assert not {"sqlalchemy", "psycopg", "dagster"} & loaded
