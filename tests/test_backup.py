"""`registry backup` / `registry restore`: the round trip, checked, and what is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import PgServer, new_database
from tests.credit_helpers import log_size, penalty, record, subject

ROOT = Path(__file__).resolve().parents[1]
Client = AsyncTestClient[Litestar]


@pytest.fixture
async def empty_url(pg_server: PgServer) -> AsyncIterator[str]:
    """A new database with nothing in it (not the migrated template)."""
    async with new_database(pg_server, None) as url:
        yield url


def registry(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGISTRY_HOME": str(home), "DATABASE_URL": url}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "registry", *args], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=300, check=False)


async def test_a_backup_restores_into_an_empty_database_and_verifies(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, database_url: str,
    empty_url: str, tmp_path: Path,
) -> None:
    sid = await subject(client, regulator)
    await record(client, regulator, penalty(sid))
    size = await log_size(db)
    folder = tmp_path / "backup"

    made = registry(tmp_path, database_url, "backup", "--to", str(folder))
    assert made.returncode == 0, made.stderr
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert manifest["checkpoint"]["log_size"] == size
    assert manifest["log_keys"] and "pii" in manifest["key_fingerprints"]
    assert "password" not in json.dumps(manifest)
    head = await db.fetchval("SELECT checkpoint FROM tlog_head")
    assert (folder / "checkpoint.txt").read_text("utf-8") == head

    back = registry(tmp_path, empty_url, "restore", "--from", str(folder))
    assert back.returncode == 0, back.stderr
    assert "the log verifies" in back.stdout
    restored = await asyncpg.connect(empty_url)
    try:
        for table in ("subjects", "credit_records", "tlog_leaves", "api_tokens"):
            assert await restored.fetchval(f"SELECT count(*) FROM {table}") == (  # noqa: S608
                await db.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
    finally:
        await restored.close()

    # Into a database that holds anything: refused, nothing touched.
    again = registry(tmp_path, empty_url, "restore", "--from", str(folder))
    assert again.returncode == 1 and "empty database" in again.stderr

    # A backup folder must be new.
    twice = registry(tmp_path, database_url, "backup", "--to", str(folder))
    assert twice.returncode == 1 and "not empty" in twice.stderr


async def test_a_damaged_dump_or_a_foreign_checkpoint_is_refused(
    client: Client, regulator: dict[str, str], database_url: str, empty_url: str,
    tmp_path: Path,
) -> None:
    await subject(client, regulator)
    folder = tmp_path / "backup"
    assert registry(tmp_path, database_url, "backup", "--to", str(folder)).returncode == 0
    dump = folder / "registry.dump"
    original = dump.read_bytes()
    dump.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    damaged = registry(tmp_path, empty_url, "restore", "--from", str(folder))
    assert damaged.returncode == 1 and "not the file the manifest describes" in damaged.stderr

    dump.write_bytes(original)
    checkpoint = folder / "checkpoint.txt"
    checkpoint.write_text(checkpoint.read_text("utf-8").replace("\n", "\n\n", 1), "utf-8")
    foreign = registry(tmp_path, empty_url, "restore", "--from", str(folder))
    assert foreign.returncode == 1 and "do not belong together" in foreign.stderr
