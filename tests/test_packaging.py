"""What an installed registry carries: its migrations above all (issue 18).

A non-editable install (`pip install .`, what the Dockerfile runs) once shipped no
migrations, and the service started on a database without tables, silently.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from registry.db.migrate import MigrationError, load_migrations

ROOT = Path(__file__).resolve().parents[1]


def test_no_migrations_at_all_is_an_error_not_an_empty_schema(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no migrations found"):
        load_migrations(tmp_path)


def test_the_migrations_read_are_the_top_level_schema_folder() -> None:
    assert [m.name for m in load_migrations()] == sorted(
        path.name for path in (ROOT / "schema").glob("*.sql")
    )


def test_a_built_wheel_carries_every_migration(tmp_path: Path) -> None:
    """Build the wheel as `pip install .` does (from a copy: a build writes into the tree)
    and look inside: every schema/*.sql is there, as registry/schema/*.sql."""
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
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name.removeprefix("registry/schema/") for name in archive.namelist()
                   if name.startswith("registry/schema/")}
        first = archive.read("registry/schema/0001_foundation.sql").decode("utf-8")
    assert shipped == {path.name for path in (ROOT / "schema").glob("*.sql")}
    assert first == (ROOT / "schema" / "0001_foundation.sql").read_text("utf-8")
