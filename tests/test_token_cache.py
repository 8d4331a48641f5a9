"""The token cache: live tokens answered from memory, revocations effective at once.

Two levels: through the app (``client``; the app runs in its own event loop and
pool, so a revocation through the test's ``db`` pool comes from "another process"
as far as the app can tell; one test uses the real ``registry keys revoke``), and
on a ``TokenCache`` built in the test's loop over the test's database with a
listener of its own (``ListenedCache``), where failures are injected at the
listener's steps. Every database is real.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar

from registry.clock import SystemClock
from registry.db.listener import (
    LISTENER_APPLICATION_NAME,
    DatabaseListener,
    Listener,
    connect_listener,
)
from registry.token_cache import Lookup, TokenCache
from registry.tokens import Principal, authenticate, hash_token, revoke_token
from tests.conftest import bearer, issue
from tests.credit_helpers import Client

# The promise for a revocation made by another process (README): heard within this.
CROSS_PROCESS_BOUND_S = 2.0
_ROOT = Path(__file__).resolve().parent.parent


async def eventually(check: Callable[[], bool], what: str, within: float = 5.0) -> float:
    """Seconds until ``check()`` holds; fails the test naming ``what`` after ``within`` s."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


class ListenedCache(TokenCache):
    """A token cache with a database listener of its own, started and closed with it
    (in the app, bootstrap does this and the listener has other users too)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        url: str,
        *,
        max_entries: int = 10_000,
        lookup: Lookup = authenticate,
        **listener_options: Any,
    ) -> None:
        self.listener = DatabaseListener(url, **listener_options)
        super().__init__(pool, self.listener, max_entries=max_entries, lookup=lookup)

    @property
    def listener_pid(self) -> int | None:
        return self.listener.pid

    async def start(self) -> None:
        await self.listener.start()

    async def close(self) -> None:
        await self.listener.close()


def cache_of(app: Litestar) -> TokenCache:
    cache: TokenCache = app.state.services.tokens
    return cache


async def token_id_of(db: asyncpg.Pool, token: str) -> uuid.UUID:
    principal = await authenticate(db, token)
    assert principal is not None
    return principal.token_id


async def revoke_elsewhere(db: asyncpg.Pool, token_id: uuid.UUID) -> None:
    await revoke_token(db, SystemClock(), token_id=token_id, actor="admin:elsewhere")


async def warm(client: Client, cache: TokenCache, token: str) -> None:
    """Two requests with ``token``: the first asks the database, the second must not."""
    misses, hits = cache.misses, cache.hits
    for _ in range(2):
        answer = await client.get("/v1/subjects", headers=bearer(token))
        assert answer.status_code == 200, answer.text
    assert (cache.misses - misses, cache.hits - hits) == (1, 1)


async def first_refusal(client: Client, token: str) -> float:
    """Seconds until the app answers 401 to ``token`` (polled every 5 ms), at most the bound."""
    start = time.monotonic()
    while True:
        answer = await client.get("/v1/subjects", headers=bearer(token))
        elapsed = time.monotonic() - start
        if answer.status_code == 401:
            return elapsed
        assert answer.status_code == 200, answer.text
        if elapsed > CROSS_PROCESS_BOUND_S:
            pytest.fail(f"revoked token still accepted {elapsed:.3f} s after the commit")
        await asyncio.sleep(0.005)


# ---- through the app --------------------------------------------------------------------


async def test_second_request_is_answered_from_memory(
    client: Client, app: Litestar, db: asyncpg.Pool
) -> None:
    cache = cache_of(app)
    assert cache.enabled
    await warm(client, cache, await issue(db, "regulator"))
    await warm(client, cache, await issue(db, "regulator", "second holder"))
    assert len(cache) == 2


async def test_unknown_token_is_asked_every_time_so_a_new_token_works_at_once(
    client: Client, app: Litestar, db: asyncpg.Pool
) -> None:
    cache = cache_of(app)
    misses = cache.misses
    for _ in range(2):
        assert (
            await client.get("/v1/subjects", headers=bearer("vcr_regulator_x"))
        ).status_code == 401
    assert cache.misses == misses + 2 and len(cache) == 0
    await warm(client, cache, await issue(db, "regulator"))


async def test_revoke_through_the_api_refuses_the_very_next_request(
    client: Client, app: Litestar, db: asyncpg.Pool, admin: dict[str, str]
) -> None:
    """The revoking process forgets the token itself, not when its notification comes back."""
    cache = cache_of(app)
    token = await issue(db, "regulator", "to be revoked")
    await warm(client, cache, token)
    forgotten = cache.forgotten
    token_id = await token_id_of(db, token)
    revoked = await client.post(f"/v1/admin/tokens/{token_id}/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert cache.forgotten == forgotten + 1
    after = await client.get("/v1/subjects", headers=bearer(token))
    assert after.status_code == 401, after.text


async def test_revocation_by_another_process_reaches_the_server(
    client: Client, app: Litestar, db: asyncpg.Pool
) -> None:
    cache = cache_of(app)
    token = await issue(db, "regulator")
    await warm(client, cache, token)
    heard = cache.heard
    await revoke_elsewhere(db, await token_id_of(db, token))
    delay = await first_refusal(client, token)
    print(f"revocation by another connection refused after {delay * 1000:.1f} ms")
    # Refused because the notification was heard, not because the cache went off.
    assert cache.heard == heard + 1 and cache.enabled and cache.disables == 0


async def test_cli_revoke_reaches_the_running_server(
    client: Client, app: Litestar, db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    cache = cache_of(app)
    token = await issue(db, "regulator", "征信甲")
    await warm(client, cache, token)
    env = {
        **os.environ,
        "REGISTRY_HOME": str(tmp_path / "home"),
        "DATABASE_URL": database_url,
        "REGISTRY_LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "registry", "keys", "revoke", str(await token_id_of(db, token)),
        env=env, cwd=_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert b"revoked token" in out
    delay = await first_refusal(client, token)
    print(f"`registry keys revoke` refused {delay * 1000:.1f} ms after the command exited")
    assert cache.heard >= 1 and cache.disables == 0


async def test_killed_listener_turns_the_cache_off_until_it_reconnects(
    client: Client, app: Litestar, db: asyncpg.Pool
) -> None:
    cache = cache_of(app)
    listener = app.state.services.listener
    token = await issue(db, "regulator")
    await warm(client, cache, token)
    old_pid = listener.pid
    assert old_pid is not None
    listed = await db.fetchval(
        "SELECT pid FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        LISTENER_APPLICATION_NAME,
    )
    assert listed == old_pid
    assert await db.fetchval("SELECT pg_terminate_backend($1)", old_pid)
    await eventually(
        lambda: cache.enabled and listener.pid not in (None, old_pid),
        "the listener reconnects and the cache is back on",
    )
    assert cache.disables == 1
    # Entries from before the loss are gone: the next request asks the database again.
    await warm(client, cache, token)
    # And the new listener hears revocations.
    await revoke_elsewhere(db, await token_id_of(db, token))
    await first_refusal(client, token)


# ---- a TokenCache on the test's database ------------------------------------------------


@pytest.fixture
async def cache(db: asyncpg.Pool, database_url: str) -> AsyncIterator[ListenedCache]:
    cache = ListenedCache(db, database_url)
    await cache.start()
    assert cache.enabled
    yield cache
    await cache.close()


# The cache's log events. Matched in the text, whatever the renderer: logging may be
# configured (and loggers cached) by whichever test ran first, so reconfiguring here
# would neither be sure to take effect nor leave the others alone.
_EVENTS = re.compile(
    r"\b(?:token_cache_enabled|token_cache_disabled|db_listener_connect_failed"
    r"|db_listener_ping_failed)\b"
)


async def test_a_hit_does_not_ask_the_database(cache: TokenCache, db: asyncpg.Pool) -> None:
    """Proof by contradiction: the database says revoked, memory still says live.

    The revocation here is written behind the registry's back (no notification):
    that is exactly why every revocation must go through ``revoke_token``.
    """
    token = await issue(db, "regulator")
    live = await cache.authenticate(token)
    assert live is not None and (cache.misses, cache.hits) == (1, 0)
    await db.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", live.token_id)
    assert await authenticate(db, token) is None
    assert await cache.authenticate(token) == live
    assert (cache.misses, cache.hits) == (1, 1)


async def test_revocation_while_the_listener_is_down_is_effective_at_once(
    db: asyncpg.Pool, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """While no revocation can be heard, nothing is served from memory or kept in it."""
    refuse = False
    attempts = 0

    async def connect() -> Listener:
        nonlocal attempts
        attempts += 1
        if refuse:
            raise OSError("injected: the database refuses the listener")
        return await connect_listener(database_url)

    cache = ListenedCache(db, database_url, connect=connect, backoff_start=0.02, backoff_max=0.1)
    await cache.start()
    try:
        assert cache.enabled
        doomed, other = await issue(db, "regulator", "doomed"), await issue(db, "bureau", "other")
        assert await cache.authenticate(doomed) is not None
        assert await cache.authenticate(doomed) is not None and cache.hits == 1
        refuse = True
        pid = cache.listener_pid
        assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
        await eventually(lambda: not cache.enabled, "the cache turns off")
        assert len(cache) == 0 and cache.listener_pid is None
        await eventually(lambda: attempts >= 3, "the listener retries")
        assert not cache.enabled
        # Revoked while nobody listens: the next check already refuses it.
        await revoke_elsewhere(db, await token_id_of(db, doomed))
        assert await cache.authenticate(doomed) is None
        # A live token is asked of the database every time and never kept.
        hits, misses = cache.hits, cache.misses
        for _ in range(2):
            assert await cache.authenticate(other) is not None
        assert (cache.hits - hits, cache.misses - misses, len(cache)) == (0, 2, 0)
        refuse = False
        await eventually(lambda: cache.enabled, "the cache is back on after reconnecting")
        assert await cache.authenticate(other) is not None
        assert await cache.authenticate(other) is not None
        assert cache.hits == hits + 1
    finally:
        await cache.close()
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    names = _EVENTS.findall(logged)
    assert names[0] == "token_cache_enabled"
    assert names[1:3] == ["token_cache_disabled", "db_listener_connect_failed"]
    assert [n for n in names if n == "token_cache_enabled"] == ["token_cache_enabled"] * 2
    assert names[-1] == "token_cache_disabled"
    for secret in (doomed, other):
        assert secret not in logged and hash_token(secret).hex() not in logged


def _is_local_postgres(pid: int) -> bool:
    # TEST_DATABASE_URL may name a server elsewhere: never signal a stranger's process.
    command = Path(f"/proc/{pid}/cmdline")
    return command.exists() and b"postgres" in command.read_bytes()


async def test_listener_that_stops_answering_turns_the_cache_off(
    db: asyncpg.Pool, database_url: str
) -> None:
    """A connection can die without its socket closing; the unanswered ping turns the cache off.

    The listener's server process is frozen (SIGSTOP): nothing closes, nothing answers.
    """
    cache = ListenedCache(db, database_url, ping_interval=0.1, ping_timeout=0.3)
    await cache.start()
    pid = cache.listener_pid
    assert pid is not None
    if not _is_local_postgres(pid):
        pytest.skip("needs the test database server on this machine (the embedded one)")
    token = await issue(db, "regulator")
    os.kill(pid, signal.SIGSTOP)
    try:
        assert await cache.authenticate(token) is not None
        assert await cache.authenticate(token) is not None and cache.hits == 1
        await eventually(lambda: not cache.enabled, "the unanswered ping turns the cache off")
        assert len(cache) == 0 and cache.disables == 1
        await eventually(
            lambda: cache.enabled and cache.listener_pid not in (None, pid),
            "a new listener takes over",
        )
    finally:
        os.kill(pid, signal.SIGCONT)
        await cache.close()


@pytest.mark.parametrize("via", ["notification", "forget"])
async def test_an_answer_read_before_a_revocation_is_not_kept(
    db: asyncpg.Pool, database_url: str, via: str
) -> None:
    """The race: the database says live, the revocation lands while that answer travels back.

    The answer still serves the request in flight (as it would without a cache), but
    it must not be cached, or the revoked token would keep working afterwards.
    """
    armed = True
    cache: ListenedCache  # bound below; declared here so racing_lookup's use is not the fixture

    async def racing_lookup(pool: asyncpg.Pool, token: str) -> Principal | None:
        nonlocal armed
        principal = await authenticate(pool, token)
        if armed and principal is not None:
            armed = False
            if via == "notification":
                heard = cache.heard
                await revoke_elsewhere(db, principal.token_id)
                await eventually(lambda: cache.heard == heard + 1, "the notification arrives")
            else:
                cache.forget(principal.token_id)
        return principal

    cache = ListenedCache(db, database_url, lookup=racing_lookup)
    await cache.start()
    try:
        token = await issue(db, "regulator")
        assert await cache.authenticate(token) is not None
        assert len(cache) == 0
        again = await cache.authenticate(token)
        assert cache.misses == 2 and cache.hits == 0
        assert (again is None) == (via == "notification")
    finally:
        await cache.close()


async def test_rolled_back_revocation_forgets_nothing(
    cache: TokenCache, db: asyncpg.Pool, database_url: str
) -> None:
    """NOTIFY is transactional: a revocation that failed after its UPDATE announces nothing."""
    kept, revoked = await issue(db, "regulator", "kept"), await issue(db, "regulator", "revoked")
    for token in (kept, revoked):
        assert await cache.authenticate(token) is not None
    heard = cache.heard
    impatient = await asyncpg.create_pool(
        database_url, min_size=1, max_size=1, server_settings={"lock_timeout": "200ms"}
    )
    assert impatient is not None
    blocker = await asyncpg.connect(database_url)
    try:
        # Hold the log's sequence row: the revoke's UPDATE and NOTIFY run, then appending
        # its leaf times out and the whole transaction rolls back.
        async with blocker.transaction():
            await blocker.execute("SELECT 1 FROM tlog_sequence FOR UPDATE")
            with pytest.raises(asyncpg.LockNotAvailableError):
                await revoke_elsewhere(impatient, await token_id_of(db, kept))
    finally:
        await blocker.close()
        await impatient.close()
    # Notifications arrive in commit order: once the later one is heard, an earlier one
    # would have been too.
    await revoke_elsewhere(db, await token_id_of(db, revoked))
    await eventually(lambda: cache.heard > heard, "the committed revocation is heard")
    assert cache.heard == heard + 1
    hits = cache.hits
    assert await cache.authenticate(kept) is not None and cache.hits == hits + 1
    assert await authenticate(db, kept) is not None
    assert await cache.authenticate(revoked) is None


async def test_full_cache_drops_the_entry_cached_first(db: asyncpg.Pool, database_url: str) -> None:
    cache = ListenedCache(db, database_url, max_entries=2)
    await cache.start()
    try:
        first, second, third = [await issue(db, "bureau", f"holder {i}") for i in range(3)]
        for token in (first, second, third):
            assert await cache.authenticate(token) is not None
        assert len(cache) == 2 and cache.misses == 3
        assert await cache.authenticate(third) is not None and cache.hits == 1
        assert await cache.authenticate(second) is not None and cache.hits == 2
        assert await cache.authenticate(first) is not None and cache.misses == 4
        # Back in, `first` pushed out `second` (now the oldest); its id went with it.
        cache.forget(await token_id_of(db, second))
        assert len(cache) == 2
        cache.forget(await token_id_of(db, first))
        assert len(cache) == 1
        assert await cache.authenticate(third) is not None and cache.hits == 3
    finally:
        await cache.close()


async def test_unreadable_notification_clears_everything(
    cache: TokenCache, db: asyncpg.Pool
) -> None:
    token = await issue(db, "regulator")
    assert await cache.authenticate(token) is not None and len(cache) == 1
    heard = cache.heard
    await db.execute("SELECT pg_notify('registry_token_revoked', 'not a uuid')")
    await eventually(lambda: cache.heard > heard, "the notification arrives")
    assert len(cache) == 0 and cache.enabled


async def test_cache_off_before_start_and_after_close(db: asyncpg.Pool, database_url: str) -> None:
    cache = ListenedCache(db, database_url)
    token = await issue(db, "regulator")
    for _ in range(2):
        assert await cache.authenticate(token) is not None
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 0)
    await cache.start()
    assert await cache.authenticate(token) is not None and len(cache) == 1
    await cache.close()
    assert not cache.enabled and len(cache) == 0 and cache.listener_pid is None
    assert await cache.authenticate(token) is not None and cache.hits == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_entries": 0}, "max_entries"),
        ({"backoff_start": 0}, "backoff"),
        ({"backoff_start": 6, "backoff_max": 5}, "backoff"),
        ({"ping_interval": 0}, "ping"),
        ({"ping_timeout": -1}, "ping"),
    ],
)
def test_bad_options_are_refused_when_built(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ListenedCache(None, "postgresql://unused", **options)  # type: ignore[arg-type]
