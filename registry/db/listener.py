"""One connection of the process's own that LISTENs for the registry's notices.

Several parts of the running app learn of committed changes through PostgreSQL's
NOTIFY: the token cache (revocations, registry/token_cache.py) and the change
epoch the profile memo trusts (registry/db/changes.py). They share this one
listener. What they must know besides the notices themselves is whether they can
be sure of hearing them: a notice sent while nobody listened is lost for good. So
the listener says when it starts listening (``on_up``) and when it can no longer
be trusted to (``on_down``): not yet connected, connection lost, a ping
unanswered. Whoever relies on notices trusts what it holds only in between.

If the connection dies without the socket closing (a dropped route, a firewall
forgetting the idle connection), nothing tells us; the ping finds out within
``ping_interval`` + ``ping_timeout`` (4 s by default), the worst case for that failure.

Touched only from the event loop's thread: no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import asyncpg
import structlog

from registry.tasks import stop_task

log = structlog.get_logger(__name__)

# How the listener shows in pg_stat_activity (operators, and tests that kill it).
LISTENER_APPLICATION_NAME = "vc-credit-registry-listener"
# Connecting and LISTEN together; ``start`` waits for the first attempt, so a server
# that accepts the socket and then says nothing must not hold up the service's start.
LISTEN_TIMEOUT_S = 5.0

Listener: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
Connect: TypeAlias = Callable[[], Awaitable[Listener]]
# Called with a notice's payload (asyncpg's callback without the connection, pid, channel).
Notice: TypeAlias = Callable[[str], None]


async def connect_listener(url: str) -> Listener:
    """A connection of its own, outside the pool: LISTEN lasts as long as the connection."""
    return await asyncpg.connect(
        url,
        timeout=LISTEN_TIMEOUT_S,
        server_settings={"application_name": LISTENER_APPLICATION_NAME},
    )


class DatabaseListener:
    """Keeps one connection LISTENing on every subscribed channel, and says when it is."""

    def __init__(
        self,
        url: str,
        *,
        backoff_start: float = 0.1,
        backoff_max: float = 5.0,
        ping_interval: float = 2.0,
        ping_timeout: float = 2.0,
        connect: Connect | None = None,
    ) -> None:
        if not 0 < backoff_start <= backoff_max:
            raise ValueError(
                f"listener backoff must satisfy 0 < start <= max, got {backoff_start}, {backoff_max}"
            )
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ValueError("listener ping interval and timeout must be > 0 seconds")
        self._connect = connect or functools.partial(connect_listener, url)
        self._backoff_start = backoff_start
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._channels: dict[str, list[Notice]] = {}
        self._on_up: list[Callable[[], None]] = []
        self._on_down: list[Callable[[str], None]] = []
        self._listening = False
        self._conn: Listener | None = None
        self._task: asyncio.Task[None] | None = None
        # For tests and operators: how often trust was lost, and notices heard.
        self.losses = 0
        self.heard = 0

    # ---- what the listener's users call -----------------------------------------------

    def subscribe(
        self,
        channel: str,
        notice: Notice,
        *,
        on_up: Callable[[], None] | None = None,
        on_down: Callable[[str], None] | None = None,
    ) -> None:
        """Call ``notice(payload)`` for each notice on ``channel``; ``on_up`` when the listener
        starts listening (everything before may have gone unheard), ``on_down(reason)``
        when it can no longer be sure to hear. Subscribe before ``start``."""
        if self._task is not None:
            raise RuntimeError("subscribe before the listener starts: LISTEN runs on connect")
        self._channels.setdefault(channel, []).append(notice)
        if on_up is not None:
            self._on_up.append(on_up)
        if on_down is not None:
            self._on_down.append(on_down)

    @property
    def listening(self) -> bool:
        """Connected and LISTENing, as far as anyone can tell: notices sent now are heard."""
        return self._listening

    @property
    def pid(self) -> int | None:
        """The listener's backend pid (``pg_stat_activity.pid``) while it is connected."""
        return self._conn.get_server_pid() if self._conn is not None else None

    async def start(self) -> None:
        """Start listening; returns after the first attempt, listening if it succeeded.

        A failed attempt is not fatal: the listener's users act as if they heard
        nothing (each asks the database) and a background task retries with backoff.
        """
        if self._task is not None:
            raise RuntimeError("listener already started")
        first = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(first), name="registry-db-listener")
        await first.wait()

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        self._down("closed")

    # ---- up and down ------------------------------------------------------------------

    def _up(self, conn: Listener) -> None:
        self._conn = conn
        self._listening = True
        for callback in self._on_up:
            callback()
        log.info("db_listener_listening", listener_pid=conn.get_server_pid(),
                 channels=sorted(self._channels))

    def _down(self, reason: str) -> None:
        was_listening = self._listening
        self._listening = False
        # Told even when it was not listening: a user may have started to rely on a
        # state that began before the first ``_up`` (nothing is lost by being told twice).
        for callback in self._on_down:
            callback(reason)
        if not was_listening:
            return
        self.losses += 1
        if reason == "closed":
            log.info("db_listener_stopped", reason=reason)
        else:
            log.warning("db_listener_lost", reason=reason)

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: object) -> None:
        self.heard += 1
        for notice in self._channels.get(channel, ()):
            notice(str(payload))

    # ---- the connection ---------------------------------------------------------------

    async def _supervise(self, first: asyncio.Event) -> None:
        """Keep one listener connected; ``listening`` exactly while it is."""
        loop = asyncio.get_running_loop()
        delay = self._backoff_start
        while True:
            lost = asyncio.Event()
            try:
                async with asyncio.timeout(LISTEN_TIMEOUT_S):
                    conn = await self._listen(lost)
            except Exception as error:
                # Whatever failed (refused, auth, timeout, server gone), the answer is the
                # same: stay down, try again later. The service is correct meanwhile.
                log.warning(
                    "db_listener_connect_failed",
                    error=f"{type(error).__name__}: {error}",
                    retry_in_s=delay,
                )
                first.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            self._up(conn)
            first.set()
            since = loop.time()
            reason = "closed"
            try:
                reason = await self._watch(conn, lost)
            finally:
                self._down(reason)
                self._conn = None
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
                # Down at once, not when the supervisor next runs; only for the current
                # connection (a discarded one reports its end too, later).
                if self._conn is conn:
                    self._down("connection_lost")

            conn.add_termination_listener(on_terminated)
            for channel in self._channels:
                await conn.add_listener(channel, self._dispatch)
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
                log.warning("db_listener_ping_failed", error=f"{type(error).__name__}: {error}")
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
