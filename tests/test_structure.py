"""The house's rules that a reader relies on: what the pure modules do not pull in."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


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


ROOT = Path(__file__).resolve().parents[1]
ORCHESTRATION = ROOT / "pipeline" / "orchestration"


def _imports_dagster(source: Path) -> list[str]:
    """The Dagster modules a source file imports anywhere (a lazy import inside a function too)."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.split(".")[0] == "dagster" or name.startswith("dagster_")]
    return found


def test_only_the_orchestration_folder_knows_dagster():
    # Dagster is imported by pipeline/orchestration/ and the top-level assets/ package, nowhere else.
    domain = [p for p in sorted((ROOT / "pipeline").rglob("*.py")) if ORCHESTRATION not in p.parents]
    domain += sorted((ROOT / "schemas").rglob("*.py"))
    importing = {str(p.relative_to(ROOT)): names for p in domain if (names := _imports_dagster(p))}
    assert importing == {}
    # The scan sees what it looks for: the code location itself imports Dagster.
    assert len(domain) > 50 and _imports_dagster(ORCHESTRATION / "definitions.py")
