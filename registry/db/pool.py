"""Connection pool creation: the one place that knows how we talk to PostgreSQL."""

from __future__ import annotations

import asyncpg


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        # Keep statements short-lived; a stuck query must not hold a worker forever.
        command_timeout=30,
        server_settings={"application_name": "vc-credit-registry", "timezone": "UTC"},
    )
    assert pool is not None
    return pool
