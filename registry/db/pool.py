"""Connection pool creation: the one place that knows how we talk to PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.pool import PoolAcquireContext

# How long a request waits for a pooled connection before it is told to come back
# (TimeoutError, an OSError, which the error mapping answers 503 + Retry-After).
# asyncpg waits forever by default: under overload every request would queue
# behind the pool and the service would hang instead of shedding load.
ACQUIRE_TIMEOUT = 2.0

if TYPE_CHECKING:
    _PoolBase = asyncpg.Pool[asyncpg.Record]
    _AcquireBase = PoolAcquireContext[asyncpg.Record]
else:
    _PoolBase = asyncpg.Pool
    _AcquireBase = PoolAcquireContext


class _TimedAcquire(_AcquireBase):
    """``async with pool.acquire()`` under ``asyncio.timeout`` (none when the budget is None),
    counted while it waits.

    asyncpg's own acquire timeout runs the wait in a new task (its ``wait_for``)
    on every borrow, even when a connection is free at once; a timeout scope costs
    a timer handle instead.
    """

    def __init__(self, pool: BoundedPool, budget: float | None, *, fallback: bool) -> None:
        super().__init__(pool, None)
        self._bounded = pool
        self._budget = budget
        self._fallback = pool.fallback if fallback else None
        self._instead: Any = None  # the fallback pool's borrow, when it lent the connection

    async def __aenter__(self) -> Any:
        # Counted while it waits: the metrics' "waiting for a connection" (registry/metrics.py).
        self._bounded.waiting += 1
        try:
            async with asyncio.timeout(self._budget):
                return await super().__aenter__()
        except Exception as error:
            # Whatever kept this pool from lending a connection (server down, restarting,
            # refusing, the database missing there, the budget run out): the fallback's.
            if isinstance(error, TimeoutError):
                self._bounded.timeouts += 1
            if self._fallback is None:
                raise
            if self._bounded.on_fallback is not None:
                self._bounded.on_fallback(error)
        finally:
            self._bounded.waiting -= 1
        self._instead = self._fallback.acquire()
        return await self._instead.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        if self._instead is not None:
            await self._instead.__aexit__(*exc)
            return
        await super().__aexit__(*exc)


class BoundedPool(_PoolBase):
    """An asyncpg pool whose ``acquire`` (and so ``fetch``/``execute``…) waits a bounded time.

    An explicit ``timeout=`` still wins; ``None`` means the pool's default.
    """

    def __init__(self, *args: Any, acquire_timeout: float | None, **kwargs: Any) -> None:
        self._acquire_timeout = acquire_timeout
        # Borrowers waiting for a connection now, and those that gave up (the budget ran out).
        self.waiting = 0
        self.timeouts = 0
        # A read replica's pool (registry/db/replica.py): the primary lends the connection
        # when this pool cannot (its server down or refusing, no connection in time), and
        # ``on_fallback`` hears of it. None: the error is the borrower's.
        self.fallback: asyncpg.Pool | None = None
        self.on_fallback: Callable[[BaseException], None] | None = None
        super().__init__(*args, **kwargs)

    def acquire(
        self, *, timeout: float | None = None, fallback: bool = True
    ) -> asyncpg.pool.PoolAcquireContext[asyncpg.Record]:
        """A connection within the budget; from ``fallback`` if this pool cannot lend one
        and one is set (``fallback=False``: this pool's own or an error)."""
        budget = self._acquire_timeout if timeout is None else timeout
        return _TimedAcquire(self, budget, fallback=fallback)


async def keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool without asyncpg's reset query.

    asyncpg's default reset (advisory unlock, CLOSE ALL, UNLISTEN *, RESET ALL) is a
    second round trip on every release: about a third of the database work of a
    point read. We skip it because nothing borrowed from the pool leaves session
    state behind: settings are ``SET LOCAL``, the migration lock is released in a
    ``finally`` (registry/db/migrate.py), and LISTEN runs on the token cache's own
    connection. asyncpg still rolls back a transaction left open (``Connection._reset``
    runs before this). tests/test_pool.py checks a released connection is clean.
    """


async def create_pool(
    url: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    acquire_timeout: float | None = None,
) -> asyncpg.Pool:
    """A connected pool; with ``acquire_timeout`` no caller waits longer than that for a connection."""
    # The arguments asyncpg.create_pool passes to Pool, with its defaults; we build
    # the pool ourselves only to get the bounded ``acquire``.
    pool = BoundedPool(
        url,
        acquire_timeout=acquire_timeout,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        reset=keep_session,
        # Keep statements short-lived; a stuck query must not hold a worker forever.
        command_timeout=30,
        server_settings={"application_name": "vc-credit-registry", "timezone": "UTC"},
    )
    await pool
    return pool
