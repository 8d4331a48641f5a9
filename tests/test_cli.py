"""The `registry` command, run as a user runs it (a subprocess), against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from registry.keys import load_log_key
from registry.settings import Settings
from registry.tlog.note import open_checkpoint, parse_verifier_key
from registry.tokens import authenticate


def run(args: list[str], home: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGISTRY_HOME": str(home), "DATABASE_URL": url, "REGISTRY_LOG_FORMAT": "json"}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "registry", *args], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_help_explains_each_command(home: Path, database_url: str) -> None:
    result = run(["--help"], home, database_url)
    assert result.returncode == 0
    for command in ("serve", "migrate", "keys", "log"):
        assert command in result.stdout
    keys = run(["keys", "--help"], home, database_url)
    for action in ("generate", "rotate", "issue", "revoke", "list"):
        assert action in keys.stdout


async def test_issue_prints_token_last_and_revoke_stops_it(home: Path, database_url: str) -> None:
    assert run(["migrate"], home, database_url).returncode == 0
    issued = run(["keys", "issue", "--role", "bureau", "--name", "征信甲"], home, database_url)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("vcr_bureau_")
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        principal = await authenticate(pool, token)
        assert principal is not None and principal.role == "bureau" and principal.name == "征信甲"
        listed = run(["keys", "list"], home, database_url)
        assert "征信甲" in listed.stdout and token not in listed.stdout
        revoked = run(["keys", "revoke", str(principal.token_id)], home, database_url)
        assert revoked.returncode == 0, revoked.stderr
        assert await authenticate(pool, token) is None
        again = run(["keys", "revoke", str(principal.token_id)], home, database_url)
        assert again.returncode == 2 and "already revoked" in again.stderr
    finally:
        await pool.close()
    bad_role = run(["keys", "issue", "--role", "king", "--name", "x"], home, database_url)
    assert bad_role.returncode == 2


async def test_rotation_publishes_new_key_and_logs_it(home: Path, database_url: str) -> None:
    assert run(["migrate"], home, database_url).returncode == 0
    settings = Settings.from_env({"REGISTRY_HOME": str(home)})
    old = load_log_key(settings)
    rotated = run(["keys", "rotate"], home, database_url)
    assert rotated.returncode == 0, rotated.stderr
    new = load_log_key(settings)
    assert new.verifier != old.verifier and new.verifier == rotated.stdout.strip().splitlines()[-1]
    conn = await asyncpg.connect(database_url)
    try:
        keys = await conn.fetch("SELECT verifier_key, valid_until FROM tlog_keys ORDER BY valid_from")
        assert [k["verifier_key"] for k in keys] == [old.verifier, new.verifier]
        assert keys[0]["valid_until"] is not None and keys[1]["valid_until"] is None
        leaf = await conn.fetchval("SELECT leaf FROM tlog_leaves ORDER BY idx DESC LIMIT 1")
        assert b'"action":"key.rotate"' in leaf
        note = await conn.fetchval("SELECT checkpoint FROM tlog_head")
        checkpoint, signers = open_checkpoint(note, [parse_verifier_key(new.verifier)])
        assert checkpoint.size >= 1 and signers
    finally:
        await conn.close()
    assert list(home.joinpath("keys").glob("log-signing.pem.retired-*"))
