"""Upgrading a database of the previous release (migrations 1–7) keeps its log verifiable.

Migration 0008 adds ``api_tokens.authority_code``: the audited rows written before it
existed must still equal their audited versions (registry/tlog/leaf.py LATE_COLUMNS),
old regulator tokens must keep working for reads and record nothing, and duplicate
live token names must stop the migration with a message that says what to do.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from registry.clock import SystemClock
from registry.db.migrate import load_migrations, migrate
from registry.db.types import Conn, required
from registry.db.writes import audited_write
from registry.errors import Conflict
from registry.settings import Settings
from registry.tlog.leaf import object_body
from registry.tlog.verify import verify_log
from registry.tokens import authenticate, hash_token, issue_token, new_token, revoke_token
from tests.conftest import PgServer, new_database
from tests.logcheck import ensure_log, integrate_all

PREVIOUS_RELEASE = 7


@pytest.fixture
async def old_db(pg_server: PgServer) -> AsyncIterator[str]:
    async with new_database(pg_server, None) as url:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn, load_migrations()[:PREVIOUS_RELEASE])
        finally:
            await conn.close()
        yield url


async def _old_token(pool: asyncpg.Pool, role: str, name: str) -> str:
    """A token written as the previous release wrote it (no authority column yet)."""
    token = new_token(role)

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(await conn.fetchrow(
            "INSERT INTO api_tokens (id, name, role, token_hash, prefix, created_at, created_by,"
            " log_index) VALUES ($1, $2, $3, $4, $5, $6, 'admin:cli', $7) RETURNING *",
            uuid.uuid4(), name, role, hash_token(token), token[:12], now, index))
        return row

    await audited_write(pool, SystemClock(), actor="admin:cli", action="token.issue",
                        object_type="token", write=write)
    return token


async def _old_subject(pool: asyncpg.Pool) -> None:
    """An organisation written as the previous release wrote it (no birth-date column)."""

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(await conn.fetchrow(
            "INSERT INTO subjects (id, kind, name, status, credit_code, version, created_at,"
            " created_by, updated_at, updated_by, log_index) VALUES ($1, 'vc_firm', '舊創投',"
            " 'active', '91630100MA752LKX1M', 1, $2, 'regulator:old', $2, 'regulator:old', $3)"
            " RETURNING *", uuid.uuid4(), now, index))
        return row

    await audited_write(pool, SystemClock(), actor="regulator:old", action="subject.create",
                        object_type="subject", write=write)


async def test_an_upgraded_log_still_verifies(old_db: str, settings: Settings) -> None:
    pool = await asyncpg.create_pool(old_db, min_size=1, max_size=2)
    assert pool is not None
    try:
        key = await ensure_log(pool, settings)
        regulator = await _old_token(pool, "regulator", "old desk")
        await _old_token(pool, "bureau", "old bureau")
        await _old_subject(pool)
        conn = await pool.acquire()
        try:
            applied = await migrate(conn)
        finally:
            await pool.release(conn)
        assert [m.version for m in applied] == list(range(PREVIOUS_RELEASE + 1,
                                                          len(load_migrations()) + 1))
        assert await integrate_all(pool, key, settings.log_origin) == 3
        report = await verify_log(pool)
        assert report.ok, report.first_difference
        assert (report.rows, report.size) == (3, 3)
        principal = await authenticate(pool, regulator)
        assert principal is not None and principal.authority_code is None
    finally:
        await pool.close()


async def test_duplicate_live_token_names_survive_the_upgrade(old_db: str) -> None:
    """Clashes from before stay (the upgrade never fails on them, so `registry keys revoke`
    can resolve them); from now on a live name is unique, and revoking one is allowed."""
    old = await asyncpg.create_pool(old_db, min_size=1, max_size=2)
    assert old is not None
    try:
        await _old_token(old, "bureau", "征信甲")
        await _old_token(old, "bureau", "征信甲")
        conn = await old.acquire()
        try:
            await migrate(conn)
        finally:
            await old.release(conn)
    finally:
        await old.close()
    # The upgraded release's processes start afresh (their statements know the new columns).
    pool = await asyncpg.create_pool(old_db, min_size=1, max_size=2)
    assert pool is not None
    try:
        with pytest.raises(Conflict, match="already named"):
            await issue_token(pool, SystemClock(), role="bureau", name="征信甲", actor="admin:cli")
        first = await pool.fetchval("SELECT id FROM api_tokens ORDER BY created_at LIMIT 1")
        await revoke_token(pool, SystemClock(), token_id=first, actor="admin:cli")
        live = await pool.fetchval(
            "SELECT count(*) FROM api_tokens WHERE name = '征信甲' AND revoked_at IS NULL")
        assert live == 1
    finally:
        await pool.close()


def test_a_late_column_is_committed_only_when_set() -> None:
    """NULL: left out (rows from before the column match); a value: committed."""
    before = {"id": "t", "name": "x", "log_index": 3}
    assert object_body({**before, "authority_code": None}) == object_body(before)
    assert b"11630100MB1234567J" in object_body({**before, "authority_code": "11630100MB1234567J"})
    # Only the listed late columns: any other NULL is still committed.
    assert object_body({**before, "revoked_at": None}) != object_body(before)
