"""The pool skips asyncpg's reset query, so nothing we run may leave session state behind.

Each check borrows the only connection of a one-connection pool, runs a code path
that takes locks or changes settings, gives the connection back, and borrows the
same connection again to look at its session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.clock import SystemClock
from registry.db.migrate import migrate
from registry.db.pool import BoundedPool, create_pool
from registry.tokens import issue_token


@pytest.fixture
async def one(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    yield pool
    await pool.close()


async def _session_state(pool: asyncpg.Pool) -> dict[str, object]:
    async with pool.acquire() as conn:
        return {
            "advisory locks": await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid()"
            ),
            "session settings": await conn.fetch(
                "SELECT name FROM pg_settings WHERE source = 'session'"
            ),
            "listening": await conn.fetch("SELECT pg_listening_channels()"),
            "cursors": await conn.fetchval("SELECT count(*) FROM pg_cursors WHERE name <> ''"),
            "in transaction": conn.is_in_transaction(),
            "pid": conn.get_server_pid(),
        }


CLEAN = {
    "advisory locks": 0,
    "session settings": [],
    "listening": [],
    "cursors": 0,
    "in transaction": False,
}


async def test_migration_and_audited_write_leave_the_session_clean(one: asyncpg.Pool) -> None:
    before = await _session_state(one)
    async with one.acquire() as conn:
        await migrate(conn)  # takes and releases the session-level migration lock
    # SET LOCAL lock_timeout and the log's sequence row lock, in one transaction.
    await issue_token(one, SystemClock(), role="bureau", name="pool", actor="admin:test")
    after = await _session_state(one)
    assert after["pid"] == before["pid"], "the pool replaced its connection"
    assert {k: v for k, v in after.items() if k != "pid"} == CLEAN


async def test_a_transaction_left_open_is_rolled_back_on_release(one: asyncpg.Pool) -> None:
    async with one.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("CREATE TEMP TABLE left_open (n int)")
    state = await _session_state(one)
    assert state["in transaction"] is False
    async with one.acquire() as conn:
        assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None


async def test_after_traffic_no_service_connection_holds_an_advisory_lock(
    client: AsyncTestClient[Litestar],
    regulator: dict[str, str],
    bureau: dict[str, str],
    db: asyncpg.Pool,
) -> None:
    for n in range(5):
        response = await client.post(
            "/v1/subjects",
            headers=regulator,
            json={"kind": "vc_firm", "name": f"池{n}", "credit_code": "91350100M000100Y43"},
        )
        assert response.status_code in (201, 409), response.text
        profile = await client.get("/v1/bureau/profiles/91350100M000100Y43", headers=bureau)
        assert profile.status_code == 200, profile.text
    rows = await db.fetch(
        "SELECT a.pid, a.state, count(l.pid) AS advisory FROM pg_stat_activity a"
        " LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory'"
        " WHERE a.application_name = 'vc-credit-registry' AND a.datname = current_database()"
        " GROUP BY a.pid, a.state"
    )
    assert rows, "the service holds no connections"
    assert all(r["advisory"] == 0 for r in rows), rows
    assert all(r["state"] != "idle in transaction" for r in rows), rows


async def test_the_pool_counts_who_waits_for_a_connection_and_who_gives_up(
    one: asyncpg.Pool,
) -> None:
    assert isinstance(one, BoundedPool)
    async with one.acquire():
        waiter = asyncio.create_task(one.fetchval("SELECT 1"))
        for _ in range(200):
            if one.waiting == 1:
                break
            await asyncio.sleep(0.005)
        assert one.waiting == 1
        with pytest.raises(TimeoutError):
            async with one.acquire(timeout=0.05):
                pass
        assert (one.waiting, one.timeouts) == (1, 1)
    assert await waiter == 1
    assert (one.waiting, one.timeouts) == (0, 1)
