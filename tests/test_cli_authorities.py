"""`registry authorities …`, `registry keys issue --authority` and the development token,
run as a user runs them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from registry.authorities import DEVELOPMENT_AUTHORITY
from registry.cli import _dev_regulator_token
from registry.settings import Settings
from registry.tokens import authenticate
from tests.test_cli import run

CODE, NAME = "11630100MB1234567J", "西寧市發展和改革委員會"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


async def test_authorities_and_regulator_tokens(home: Path, database_url: str) -> None:
    assert run(["migrate"], home, database_url).returncode == 0
    no_authority = run(["keys", "issue", "--role", "regulator", "--name", "窗口"], home, database_url)
    assert no_authority.returncode == 2 and "authority_code" in no_authority.stderr
    unknown = run(["keys", "issue", "--role", "regulator", "--name", "窗口", "--authority", CODE],
                  home, database_url)
    assert unknown.returncode == 2 and f"no authority with code {CODE}" in unknown.stderr
    company = run(["authorities", "add", "--code", "91630100MA752LKX1M", "--name", "某公司"],
                  home, database_url)
    assert company.returncode == 2 and "government" in company.stderr
    added = run(["authorities", "add", "--code", CODE, "--name", NAME], home, database_url)
    assert added.returncode == 0, added.stderr
    issued = run(["keys", "issue", "--role", "regulator", "--name", "窗口", "--authority", CODE],
                 home, database_url)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    clash = run(["keys", "issue", "--role", "regulator", "--name", "窗口", "--authority", CODE],
                home, database_url)
    assert clash.returncode == 2 and "already named" in clash.stderr
    listed = run(["authorities", "list"], home, database_url)
    assert CODE in listed.stdout and NAME in listed.stdout and "1 tokens" in listed.stdout
    assert CODE in run(["keys", "list"], home, database_url).stdout
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        principal = await authenticate(pool, token)
        assert principal is not None and principal.authority_code == CODE
        deactivated = run(["authorities", "deactivate", "--code", CODE], home, database_url)
        assert deactivated.returncode == 0, deactivated.stderr
        assert "1 regulator token(s) refused" in deactivated.stdout
        after = await authenticate(pool, token)
        assert after is not None and after.authority_active is False
    finally:
        await pool.close()


async def test_development_token_only_on_a_database_without_tokens(
    settings: Settings, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Printed once, for a development authority; a revoked one is never minted again."""
    # Its own home: a log key of its own for this database's log.
    mine = replace(settings, home=tmp_path, database_url=database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        assert await _dev_regulator_token(mine, pool) == 0
        token = capsys.readouterr().out.strip().splitlines()[-1]
        principal = await authenticate(pool, token)
        assert principal is not None and principal.authority_code == DEVELOPMENT_AUTHORITY[0]
        await pool.execute("UPDATE api_tokens SET revoked_at = now()")
        assert await _dev_regulator_token(mine, pool) == 0
        assert "Tokens exist already" in capsys.readouterr().out
        assert await pool.fetchval("SELECT count(*) FROM api_tokens") == 1
        assert await pool.fetchval("SELECT count(*) FROM authorities") == 1
    finally:
        await pool.close()
