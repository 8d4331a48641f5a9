"""Connection pool creation: the one place that knows how we talk to PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

# How long a request waits for a pooled connection before it is told to come back
# (TimeoutError, an OSError, which the error mapping answers 503 + Retry-After).
# asyncpg waits forever by default: under overload every request would queue
# behind the pool and the service would hang instead of shedding load.
ACQUIRE_TIMEOUT = 2.0

if TYPE_CHECKING:
    _PoolBase = asyncpg.Pool[asyncpg.Record]
else:
    _PoolBase = asyncpg.Pool


class BoundedPool(_PoolBase):
    """An asyncpg pool whose ``acquire`` (and so ``fetch``/``execute``…) waits a bounded time.

    An explicit ``timeout=`` still wins; ``None`` means the pool's default.
    """

    def __init__(self, *args: Any, acquire_timeout: float | None, **kwargs: Any) -> None:
        self._acquire_timeout = acquire_timeout
        super().__init__(*args, **kwargs)

    def acquire(
        self, *, timeout: float | None = None
    ) -> asyncpg.pool.PoolAcquireContext[asyncpg.Record]:
        return super().acquire(timeout=self._acquire_timeout if timeout is None else timeout)


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
        # Keep statements short-lived; a stuck query must not hold a worker forever.
        command_timeout=30,
        server_settings={"application_name": "vc-credit-registry", "timezone": "UTC"},
    )
    await pool
    return pool
