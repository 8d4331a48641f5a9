"""Concurrent appends (connections and OS processes) and crashes at each step of an append
or an integration: afterwards the log is gap-free, fork-free and verifies, and no
half-written change exists."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import registry.db.audit as audit
import registry.db.writes as writes
import registry.tlog.integrator as integrator
from registry.bootstrap import close_services, open_services
from registry.clock import SystemClock
from registry.db.types import Conn
from registry.db.writes import audited_write
from registry.keys import LogKey
from registry.settings import Settings
from registry.tokens import hash_token, issue_token
from tests.logcheck import append_tokens, assert_log_consistent, ensure_log, integrate_all

_ROOT = Path(__file__).resolve().parent.parent

# Appends ``count`` leaves as one OS process, then integrates once (racing the
# other processes for the head), then optionally dies without any cleanup.
_WORKER = textwrap.dedent(
    """
    import asyncio, os, sys
    import asyncpg
    from registry.clock import SystemClock
    from registry.keys import load_log_key
    from registry.settings import Settings
    from registry.tlog.integrator import integrate_once
    from registry.tokens import issue_token

    async def main(url, name, count, mode):
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        for i in range(count):
            await issue_token(pool, SystemClock(), role="bureau", name=f"{name} {i}",
                              actor="admin:" + name)
        if mode == "die":
            os._exit(3)  # committed, never integrated, nobody told
        settings = Settings.from_env()
        async with pool.acquire() as conn:
            await integrate_once(conn, load_log_key(settings), settings.log_origin)
        await pool.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    """
)


async def run_workers(
    url: str, settings: Settings, count: int, names: list[str], mode: str = "integrate"
) -> list[int]:
    env = {**os.environ, "REGISTRY_HOME": str(settings.home)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WORKER, url, name, str(count), mode,
            cwd=_ROOT, env=env, stderr=asyncio.subprocess.PIPE,
        )
        for name in names
    ]
    codes = []
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode in (0, 3), err.decode()[-2000:]
        codes.append(proc.returncode)
    return codes


@pytest.fixture
async def key(db: asyncpg.Pool, settings: Settings) -> LogKey:
    return await ensure_log(db, settings)


async def counts(db: asyncpg.Pool) -> tuple[int, int, int, int]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM tlog_leaves) AS leaves,"
        " (SELECT count(*) FROM tlog_objects) AS objects,"
        " (SELECT count(*) FROM api_tokens) AS tokens,"
        " (SELECT next_index FROM tlog_sequence) AS next"
    )
    assert row is not None
    return row["leaves"], row["objects"], row["tokens"], row["next"]


async def test_concurrent_appends_from_many_connections(
    db: asyncpg.Pool, key: LogKey, settings: Settings
) -> None:
    """60 writers racing over 4 connections, integrations interleaved, get 60 distinct indexes."""

    async def one(i: int) -> int:
        _, written = await issue_token(
            db, SystemClock(), role="bureau", name=f"c {i}", actor="admin:test"
        )
        return written.log_index

    async def integrate_while_writing() -> None:
        for _ in range(5):
            async with db.acquire() as conn:
                await integrator.integrate_once(conn, key, settings.log_origin, max_batch=7)
            await asyncio.sleep(0.005)

    *results, _ = await asyncio.gather(*(one(i) for i in range(60)), integrate_while_writing())
    # gather types every result as int | None (the integrator's None is the discarded last one).
    indexes = [i for i in results if i is not None]
    assert sorted(indexes) == list(range(60))
    await integrate_all(db, key, settings.log_origin)
    report = await assert_log_consistent(db, integrated=True, min_size=60)
    assert report.rows == 60


async def test_concurrent_appends_and_integrations_from_processes(
    db: asyncpg.Pool, key: LogKey, settings: Settings, database_url: str
) -> None:
    """Three OS processes append 30 leaves each and race to integrate: one log, no gap, no fork."""
    writer = asyncio.create_task(append_tokens(db, 10, prefix="parent"))
    await run_workers(database_url, settings, 30, ["p1", "p2", "p3"])
    await writer
    await integrate_all(db, key, settings.log_origin)
    report = await assert_log_consistent(db, integrated=True, min_size=100)
    assert report.leaves == 100
    # Every signed size has exactly one checkpoint and one root: no fork.
    sizes = await db.fetch("SELECT size FROM tlog_checkpoints ORDER BY size")
    assert sizes[-1]["size"] == 100


# ---- crash injection on the append path ---------------------------------------------------


class Injected(RuntimeError):
    pass


Writer = Callable[[Conn, int, datetime], Awaitable[asyncpg.Record]]


def token_writer(name: str, *, then: Callable[[Conn], Awaitable[None]] | None = None) -> Writer:
    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = await conn.fetchrow(
            "INSERT INTO api_tokens (id, name, role, token_hash, prefix, created_at, created_by,"
            " log_index) VALUES (gen_random_uuid(), $1, 'bureau', $2, 'vcr_bureau_', $3,"
            " 'admin:test', $4) RETURNING *",
            name, hash_token(name), now, index,
        )
        assert row is not None  # INSERT ... RETURNING always yields the row
        if then is not None:
            await then(conn)
        return row

    return write


async def raise_now(conn: Conn) -> None:
    raise Injected("crash")


async def lose_connection(conn: Conn) -> None:
    await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")


async def before_row(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
    raise Injected("crash after reserve_index, before the row")


@pytest.mark.parametrize(
    "step",
    ["after reserve_index", "after the row", "connection lost after the row", "after record"],
)
async def test_crash_during_an_append_leaves_nothing(
    step: str, db: asyncpg.Pool, key: LogKey, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure at any step before commit leaves no row, no leaf, no object, no used index."""
    await append_tokens(db, 3)
    await integrate_all(db, key, settings.log_origin)
    before = await counts(db)
    write: Writer
    if step == "after reserve_index":
        write = before_row
    elif step == "after the row":
        write = token_writer("crash", then=raise_now)
    elif step == "connection lost after the row":
        write = token_writer("crash", then=lose_connection)
    else:
        real = audit.record  # the function registry.db.writes imported as its ``record``

        async def record_then_crash(*args: Any, **kwargs: Any) -> Any:
            await real(*args, **kwargs)
            raise Injected("crash after record, before commit")

        monkeypatch.setattr(writes, "record", record_then_crash)
        write = token_writer("crash")
    expected: tuple[type[BaseException], ...] = (
        (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
        if step.startswith("connection") else (Injected,)
    )
    with pytest.raises(expected):
        await audited_write(
            db, SystemClock(), actor="admin:test", action="token.issue", object_type="token",
            write=write,
        )
    monkeypatch.undo()
    assert await counts(db) == before
    assert await db.fetchval("SELECT count(*) FROM api_tokens WHERE name = 'crash'") == 0
    # "Restart": the next append takes the index the failed one had reserved.
    (index,) = await append_tokens(db, 1, prefix="after")
    assert index == before[0]
    await integrate_all(db, key, settings.log_origin)
    await assert_log_consistent(db, integrated=True, min_size=4)


async def test_process_dies_after_commit_before_integration(
    db: asyncpg.Pool, key: LogKey, settings: Settings, database_url: str
) -> None:
    """Writes committed by a process that died before its integrator ran are integrated by
    the next one to start (the app's integrator integrates the backlog at start)."""
    await run_workers(database_url, settings, 5, ["dying"], mode="die")
    leaves, objects, tokens, _ = await counts(db)
    assert (leaves, objects, tokens) == (5, 5, 5)
    await assert_log_consistent(db)  # committed, verifiable, not yet signed
    services = await open_services(settings, url=database_url)
    try:
        head = await services.integrator.wait_for(4, 10)
        assert head.size == 5
    finally:
        await close_services(services)
    await assert_log_consistent(db, integrated=True, min_size=5)


# ---- crash injection on the integration path ----------------------------------------------


@pytest.mark.parametrize("point", ["sign_checkpoint", "connection_lost"])
async def test_crash_during_integration_is_redone(
    point: str, db: asyncpg.Pool, key: LogKey, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed integration (nodes copied, head not yet moved) stores nothing; the next one,
    on a fresh connection, redoes it and the log verifies."""
    await append_tokens(db, 5)
    await integrate_all(db, key, settings.log_origin)
    await append_tokens(db, 6)
    nodes_before = await db.fetchval("SELECT count(*) FROM tlog_nodes")
    checkpoints_before = await db.fetchval("SELECT count(*) FROM tlog_checkpoints")
    real_sign = integrator.sign_checkpoint

    def crash_sign(*args: Any) -> str:
        raise Injected("crash after the nodes were copied, before the head moved")

    async with db.acquire() as conn:
        if point == "sign_checkpoint":
            monkeypatch.setattr(integrator, "sign_checkpoint", crash_sign)
            expected: tuple[type[BaseException], ...] = (Injected,)
        else:
            pid = conn.get_server_pid()
            url = db._connect_args[0]  # type: ignore[attr-defined]

            async def kill() -> None:
                other = await asyncpg.connect(url)
                await other.execute("SELECT pg_terminate_backend($1)", pid)
                await other.close()

            def kill_sign(*args: Any) -> str:
                # Kill our backend from outside (own thread and loop: this is sync code)
                # while the integrating transaction is open, nodes copied, head not moved.
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(asyncio.run, kill()).result()
                return real_sign(*args)

            monkeypatch.setattr(integrator, "sign_checkpoint", kill_sign)
            expected = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
        with pytest.raises(expected):
            await integrator.integrate_once(conn, key, settings.log_origin)
        monkeypatch.undo()
    assert await db.fetchval("SELECT count(*) FROM tlog_nodes") == nodes_before
    assert await db.fetchval("SELECT count(*) FROM tlog_checkpoints") == checkpoints_before
    head = await db.fetchval("SELECT size FROM tlog_head")
    assert head == 5
    await assert_log_consistent(db)
    # Restart: a new connection integrates everything.
    assert await integrate_all(db, key, settings.log_origin) == 11
    await assert_log_consistent(db, integrated=True, min_size=11)


async def test_integration_that_landed_but_was_not_acknowledged(
    db: asyncpg.Pool, key: LogKey, settings: Settings
) -> None:
    """If the integrating connection dies after commit, the head is complete: re-running finds
    nothing to do and signs nothing twice."""
    await append_tokens(db, 3)
    async with db.acquire() as conn:
        await integrator.integrate_once(conn, key, settings.log_origin)
        await conn.execute("SELECT 1")
    signed = await db.fetchval("SELECT count(*) FROM tlog_checkpoints")
    async with db.acquire() as conn:
        head = await integrator.integrate_once(conn, key, settings.log_origin)
    assert head.size == 3
    assert await db.fetchval("SELECT count(*) FROM tlog_checkpoints") == signed
    await assert_log_consistent(db, integrated=True, min_size=3)
