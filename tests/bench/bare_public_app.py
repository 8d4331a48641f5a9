"""A bare Litestar + asyncpg app serving pages like the public feed and export: the baseline.

No selection rule beyond the status/date test, no masking, no minors check, no
signatures, no conditional GET: what the same data costs with nothing on top.
Run: ``python tests/bench/bare_public_app.py PORT DATABASE_URL``.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

import asyncpg
import msgspec
import uvicorn
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.response import Stream

_FEED = (
    "SELECT r.id, r.log_index, r.decision_number, r.facts, r.penalty_content, r.decision_date,"
    " r.publicity_start, r.publicity_end, r.authority_name, s.name, s.credit_code"
    " FROM credit_records r JOIN subjects s ON s.id = r.subject_id"
    " WHERE r.status = 'published' AND r.publicity_start <= $1"
    " AND (r.publicity_end IS NULL OR $1 < r.publicity_end)"
)


@get("/feed")
async def feed(state: State, before: int = 2**62) -> Response[bytes]:
    rows = await state.pool.fetch(_FEED + " AND r.log_index < $2 ORDER BY r.log_index DESC LIMIT 50",
                                  date.today(), before)
    items = [{k: (str(v) if v is not None else None) for k, v in r.items()} for r in rows]
    return Response(msgspec.json.encode({"entries": items}), media_type="application/json")


async def _csv(pool: asyncpg.Pool) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(_FEED + " AND r.record_kind = 'penalty'", date.today())
        while True:
            chunk = await cursor.fetch(2000)
            if not chunk:
                return
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([list(r.values()) for r in chunk])
            yield buffer.getvalue().encode()


@get("/export.csv")
async def export(state: State) -> Stream:
    return Stream(_csv(state.pool), media_type="text/csv")


def create(url: str) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(url, min_size=2, max_size=10)
        try:
            yield
        finally:
            await app.state.pool.close()

    return Litestar([feed, export], lifespan=[lifespan], logging_config=None)


if __name__ == "__main__":
    uvicorn.run(create(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning", access_log=False)
