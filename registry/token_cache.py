"""Live bearer tokens kept in memory, each dropped the moment its revocation is heard.

Invariant: entries are served only while this process is LISTENing on
``tokens.REVOKED_CHANNEL``, where ``revoke_token`` announces every committed
revocation (and only committed ones). Whenever the listener is not known to be
listening (not yet connected, connection lost, a ping unanswered) the cache is
empty and off, and every request asks the database as it did before the cache
existed: slower, never wrong.

What "revoked at once" means with the cache:
- in the process that revokes: the next request (the handler calls ``forget``
  after the commit, before it answers; it does not wait for its own notification);
- in any other process: when the notification arrives, a few milliseconds
  after the commit (docs/architecture.md). If the listener's connection dies without the
  socket closing (a dropped route, a firewall forgetting the idle connection),
  nothing tells us; the ping turns the cache off within ``ping_interval`` +
  ``ping_timeout`` (4 s by default), the worst case for that failure.

The same listener hears ``changes.PROFILES_CHANNEL`` for the profile memo: on each
notice, and whenever the listener comes or goes, it moves ``changes.CHANGES`` on
(registry/db/changes.py); the memo trusts what it holds only while ``enabled``.

Only positive answers are cached: an unknown token is asked of the database
every time, so a token issued a moment ago, in any process, works at once.

All state is touched only from the event loop's thread, so no locks: a check
and the write after it cannot interleave unless there is an ``await`` between.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import asyncpg
import structlog

from registry.db.changes import CHANGES, PROFILES_CHANNEL
from registry.tasks import stop_task
from registry.tokens import REVOKED_CHANNEL, Principal, authenticate, hash_token

log = structlog.get_logger(__name__)

# How the listener shows in pg_stat_activity (operators, and tests that kill it).
LISTENER_APPLICATION_NAME = "vc-credit-registry-token-listener"
# Connecting and LISTEN together; ``start`` waits for the first attempt, so a server
# that accepts the socket and then says nothing must not hold up the service's start.
LISTEN_TIMEOUT_S = 5.0

Listener: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
Connect: TypeAlias = Callable[[], Awaitable[Listener]]
Lookup: TypeAlias = Callable[[asyncpg.Pool, str], Awaitable[Principal | None]]


async def connect_listener(url: str) -> Listener:
    """A connection of its own, outside the pool: LISTEN lasts as long as the connection."""
    return await asyncpg.connect(
        url,
        timeout=LISTEN_TIMEOUT_S,
        server_settings={"application_name": LISTENER_APPLICATION_NAME},
    )


class TokenCache:
    """token hash → ``Principal`` of live tokens, for as long as revocations can be heard.

    Bounded by ``max_entries``; when full, the entry cached first is dropped (insertion
    order, not recency). Only live tokens get in, so the bound is never reached by
    guessing: it is a backstop, and the simplest eviction that stays O(1) is enough.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        url: str,
        *,
        max_entries: int = 10_000,
        backoff_start: float = 0.1,
        backoff_max: float = 5.0,
        ping_interval: float = 2.0,
        ping_timeout: float = 2.0,
        connect: Connect | None = None,
        lookup: Lookup = authenticate,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"token cache max_entries must be >= 1, got {max_entries}")
        if not 0 < backoff_start <= backoff_max:
            raise ValueError(
                f"token cache backoff must satisfy 0 < start <= max, got {backoff_start}, {backoff_max}"
            )
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ValueError("token cache ping interval and timeout must be > 0 seconds")
        self._pool = pool
        self._connect = connect or functools.partial(connect_listener, url)
        self._lookup = lookup
        self._max_entries = max_entries
        self._backoff_start = backoff_start
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._entries: dict[bytes, Principal] = {}
        self._hash_of: dict[uuid.UUID, bytes] = {}
        # Bumped by everything that drops entries (a revocation, a clear, off, on). A
        # database answer is cached only if it is unchanged since before the read: a
        # revocation heard while the read was in flight may concern that very answer.
        self._generation = 0
        self._enabled = False
        self._listener: Listener | None = None
        self._task: asyncio.Task[None] | None = None
        # Counters for tests and operators; none of them carries token material.
        self.hits = 0
        self.misses = 0
        self.heard = 0
        self.forgotten = 0
        self.disables = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def listener_pid(self) -> int | None:
        """The listener's backend pid (``pg_stat_activity.pid``) while it is connected."""
        return self._listener.get_server_pid() if self._listener is not None else None

    def __len__(self) -> int:
        return len(self._entries)

    async def authenticate(self, token: str) -> Principal | None:
        """The holder of a live token, or None: from memory when it may, else the database."""
        key = hash_token(token)
        if self._enabled:
            cached = self._entries.get(key)
            if cached is not None:
                self.hits += 1
                return cached
        self.misses += 1
        generation = self._generation
        principal = await self._lookup(self._pool, token)
        # A changed generation: something was revoked (or the listener came or went)
        # during the read. The answer still serves this request, which began before,
        # exactly as without a cache; it is not kept for the next one.
        if principal is not None and self._enabled and generation == self._generation:
            self._store(key, principal)
        return principal

    def forget(self, token_id: uuid.UUID) -> None:
        """Drop ``token_id`` now. Called by whoever revoked it in this process, after the commit."""
        self.forgotten += 1
        self._drop(token_id)

    async def start(self) -> None:
        """Start listening; returns after the first attempt, with the cache on if it succeeded.

        A failed attempt is not fatal: the cache stays off (every request asks the
        database) and a background task retries with backoff.
        """
        if self._task is not None:
            raise RuntimeError("token cache already started")
        first = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(first), name="registry-token-listener")
        await first.wait()

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        self._disable("closed")

    # ---- entries ---------------------------------------------------------------------

    def _store(self, key: bytes, principal: Principal) -> None:
        if key not in self._entries and len(self._entries) >= self._max_entries:
            oldest = next(iter(self._entries))
            del self._hash_of[self._entries.pop(oldest).token_id]
        self._entries[key] = principal
        self._hash_of[principal.token_id] = key

    def _drop(self, token_id: uuid.UUID) -> None:
        self._generation += 1
        key = self._hash_of.pop(token_id, None)
        if key is not None:
            del self._entries[key]

    def _clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._hash_of.clear()

    def _enable(self, pid: int) -> None:
        # Entries from before are not trusted: revocations may have gone unheard meanwhile.
        self._clear()
        self._enabled = True
        CHANGES.heard()
        log.info("token_cache_enabled", listener_pid=pid)

    def _disable(self, reason: str) -> None:
        was_enabled = self._enabled
        self._enabled = False
        self._clear()
        CHANGES.heard()
        if not was_enabled:
            return
        self.disables += 1
        if reason == "closed":
            log.info("token_cache_disabled", reason=reason)
        else:
            log.warning("token_cache_disabled", reason=reason)

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        self.heard += 1
        try:
            token_id = uuid.UUID(str(payload))
        except ValueError:
            # Not a token id (someone else's NOTIFY?): forgetting everything is always safe.
            log.warning("token_revocation_unreadable", payload_chars=len(str(payload)))
            self._clear()
            return
        self._drop(token_id)

    @staticmethod
    def _on_profiles_changed(_conn: Any, _pid: int, _channel: str, _payload: object) -> None:
        CHANGES.heard()

    # ---- the listener ----------------------------------------------------------------

    async def _supervise(self, first: asyncio.Event) -> None:
        """Keep one listener connected; the cache is on exactly while it is."""
        loop = asyncio.get_running_loop()
        delay = self._backoff_start
        while True:
            lost = asyncio.Event()
            try:
                async with asyncio.timeout(LISTEN_TIMEOUT_S):
                    conn = await self._listen(lost)
            except Exception as error:
                # Whatever failed (refused, auth, timeout, server gone), the answer is the
                # same: stay off, try again later. The service is correct meanwhile.
                log.warning(
                    "token_listener_connect_failed",
                    error=f"{type(error).__name__}: {error}",
                    retry_in_s=delay,
                )
                first.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            self._listener = conn
            self._enable(conn.get_server_pid())
            first.set()
            since = loop.time()
            reason = "closed"
            try:
                reason = await self._watch(conn, lost)
            finally:
                self._disable(reason)
                self._listener = None
                await self._discard(conn, graceful=reason == "closed")
            if loop.time() - since >= self._backoff_max:
                delay = self._backoff_start  # it was healthy: a single loss starts afresh
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _listen(self, lost: asyncio.Event) -> Listener:
        conn = await self._connect()
        try:

            def on_terminated(_: Any) -> None:
                lost.set()
                # Off at once, not when the supervisor next runs; only for the current
                # listener (a discarded one reports its end too, later).
                if self._listener is conn:
                    self._disable("connection_lost")

            conn.add_termination_listener(on_terminated)
            await conn.add_listener(REVOKED_CHANNEL, self._on_notification)
            await conn.add_listener(PROFILES_CHANNEL, self._on_profiles_changed)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _watch(self, conn: Listener, lost: asyncio.Event) -> str:
        """Return why the listener can no longer be trusted."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._ping_interval)
                return "connection_lost"
            # A connection can die without its socket closing; only an answer proves it alive.
            try:
                await conn.fetchval("SELECT 1", timeout=self._ping_timeout)
            except Exception as error:
                log.warning("token_listener_ping_failed", error=f"{type(error).__name__}: {error}")
                return "ping_failed"

    @staticmethod
    async def _discard(conn: Listener, *, graceful: bool) -> None:
        if conn.is_closed():
            return
        if graceful:
            try:
                await conn.close(timeout=2)
            except Exception:  # closing is best effort; terminate below frees the socket
                conn.terminate()
        else:
            conn.terminate()
