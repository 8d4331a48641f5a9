"""What an installed registry carries: its migrations above all (issue 18).

A non-editable install (`pip install .`, what the Dockerfile runs) once shipped no
migrations, and the service started on a database without tables, silently.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from registry.db.migrate import MigrationError, load_migrations

ROOT = Path(__file__).resolve().parents[1]


def test_no_migrations_at_all_is_an_error_not_an_empty_schema(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no migrations found"):
        load_migrations(tmp_path)


def test_the_migrations_read_are_the_top_level_schema_folder() -> None:
    assert [m.name for m in load_migrations()] == sorted(
        path.name for path in (ROOT / "schema").glob("*.sql")
    )


def build_wheel(tmp_path: Path) -> Path:
    """The project's wheel, built as `pip install .` does (from a copy: a build writes
    into the tree)."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
        ".ruff_cache", ".pytest_cache"))
    built = subprocess.run(  # noqa: S603 - our own interpreter, our own tree
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--quiet",
         "--wheel-dir", str(tmp_path / "dist")],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    return wheel


def test_a_built_wheel_carries_every_migration(tmp_path: Path) -> None:
    """Look inside the wheel: every schema/*.sql is there, as registry/schema/*.sql."""
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name.removeprefix("registry/schema/") for name in archive.namelist()
                   if name.startswith("registry/schema/")}
        first = archive.read("registry/schema/0001_foundation.sql").decode("utf-8")
    assert shipped == {path.name for path in (ROOT / "schema").glob("*.sql")}
    assert first == (ROOT / "schema" / "0001_foundation.sql").read_text("utf-8")


def _locked() -> dict[str, str]:
    """constraints.txt: package name (canonical) -> the version CI installs."""
    locked: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not name==version"
            locked[canonicalize_name(name)] = version
    return locked


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    """What pyproject.toml declares (run time and tests) is in the lock, at a version its
    range admits: the lock is what was tested, the ranges what is supported."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    locked = _locked()
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is declared but not in constraints.txt"
        assert locked[name] in requirement.specifier, (
            f"constraints.txt has {requirement.name} {locked[name]}, outside {text!r}")


def test_this_environment_is_the_locked_one() -> None:
    """The suite runs on exactly the locked versions (.ci/run installs with -c
    constraints.txt): a different one means the lock no longer says what was tested."""
    differ = {}
    for name, version in _locked().items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            differ[name] = (version, installed)
    assert not differ, f"locked vs installed: {differ}"


def test_the_image_runs_unprivileged_with_development_keys_off_and_a_health_check() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    assert any("REGISTRY_DEV_KEYS=0" in line for line in lines if not line.startswith("#"))
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert "/readyz" in (ROOT / "Dockerfile").read_text()
