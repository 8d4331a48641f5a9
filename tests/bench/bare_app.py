"""The baseline for bench_bureau.py: a bare Litestar + asyncpg app doing one indexed point SELECT.

Run with ``uvicorn tests.bench.bare_app:create_app --factory`` and ``DATABASE_URL`` set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException


@get("/subjects/{code:str}", sync_to_thread=False)
async def subject(code: str, state: State) -> dict[str, Any]:
    row = await state.pool.fetchrow(
        "SELECT id, kind, name, status, credit_code, version, log_index FROM subjects"
        " WHERE credit_code = $1",
        code,
    )
    if row is None:
        raise NotFoundException()
    return dict(row)


def create_app() -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool_max = int(os.environ.get("REGISTRY_POOL_MAX", "10"))
        app.state.pool = await asyncpg.create_pool(
            os.environ["DATABASE_URL"], min_size=2, max_size=pool_max
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    return Litestar(route_handlers=[subject], lifespan=[lifespan], logging_config=None)
