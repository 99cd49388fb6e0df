"""The house's rules that a reader relies on: what the pure modules do not pull in, and
that production holds no synthetic-data generator."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest


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


# --- the generator is not production (generator/: its own distribution) -------------------------

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_PACKAGES = ("pipeline", "assets", "schemas")
GENERATOR_PACKAGE = "synth"
GENERATOR_ONLY_DEPENDENCIES = ("faker", "openpyxl")
# Alembic runs env.py inside a migration context; alone it cannot be imported (its
# imports are scanned below all the same). The versions are loaded by file path.
NOT_IMPORTABLE_ALONE = {"schemas.migrations.env"}


def _production_sources() -> list[Path]:
    return sorted(path for package in PRODUCTION_PACKAGES for path in (ROOT / package).rglob("*.py"))


def _production_modules() -> list[str]:
    """Every importable module of the production packages, by its dotted name."""
    modules = []
    for path in _production_sources():
        parts = path.relative_to(ROOT).with_suffix("").parts
        if not all((ROOT.joinpath(*parts[:depth]) / "__init__.py").exists() for depth in range(1, len(parts))):
            continue  # not inside a package (the migration versions)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in NOT_IMPORTABLE_ALONE:
            modules.append(name)
    return modules


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_importing_every_production_module_loads_no_generator_and_no_faker():
    modules = _production_modules()
    assert {"pipeline.intake", "pipeline.matching.train", "pipeline.orchestration.definitions", "assets.intake",
            "schemas.canonical"} <= set(modules)
    loaded = _modules_loaded_by("; ".join(f"import {module}" for module in modules))
    assert set(modules) <= loaded
    assert not {name for name in loaded if name.split(".")[0] in {GENERATOR_PACKAGE, "faker"}}


def test_no_production_source_imports_the_generator_even_lazily():
    """An import inside a function is not run by importing the module: read them all."""
    importing = []
    for path in _production_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] in {GENERATOR_PACKAGE, *GENERATOR_ONLY_DEPENDENCIES} for name in names):
                importing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not importing


def test_the_main_dependencies_name_no_faker():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    main = {_requirement_name(requirement) for requirement in project["dependencies"]}
    assert "pandas" in main
    assert not main & set(GENERATOR_ONLY_DEPENDENCIES), sorted(main & set(GENERATOR_ONLY_DEPENDENCIES))
    assert "register-synth" not in project.get("scripts", {})
    generator = tomllib.loads((ROOT / "generator" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert set(GENERATOR_ONLY_DEPENDENCIES) <= {_requirement_name(r) for r in generator["dependencies"]}
    assert generator["scripts"]["register-synth"] == "synth.cli:main"


@pytest.mark.slow
def test_the_production_wheel_holds_no_generator(tmp_path):
    """Build the wheel as a release would (pip, the project's build backend) from a copy
    of the tree, the generator's folder included, and look inside."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "data", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", "out"))
    assert (source / "generator" / GENERATOR_PACKAGE / "__init__.py").exists()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, text=True)
    (wheel,) = (tmp_path / "dist").glob("customer_register-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
        requires = [line.split(":", 1)[1] for line in archive.read(metadata).decode("utf-8").splitlines()
                    if line.startswith("Requires-Dist:")]
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == set(PRODUCTION_PACKAGES)
    assert "pipeline/matching/train.py" in names
    assert not [name for name in names if GENERATOR_PACKAGE in name.split("/")[:-1] or "generator" in name]
    main = {_requirement_name(requirement) for requirement in requires if "extra ==" not in requirement}
    assert not main & set(GENERATOR_ONLY_DEPENDENCIES)


# --- only the orchestration folder knows Dagster ------------------------------------------------

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
