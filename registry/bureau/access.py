"""Accounting of bureau queries on practitioners: who, when, which subject, why.

``AccessRecorder`` buffers rows in memory and writes them with one ``COPY`` every
``interval`` seconds, or as soon as ``batch`` rows are waiting (registry/db/batches.py),
so a lookup costs an append to a list instead of a transaction. Started and stopped with the
service (registry/bootstrap.py); ``stop`` flushes everything still buffered.

Guarantee and its limit: a row appended before a clean shutdown is written. If
the process dies, up to one interval of rows (default 100 ms) is lost; a failed
COPY keeps its rows and retries at the next tick (the buffer is capped at
``max_buffer`` rows, beyond which the oldest are dropped and counted in the
``bureau_access_dropped`` log event rather than blocking lookups).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from registry.db.batches import BatchWriter, Row
from registry.db.types import Conn

COLUMNS = ("at", "token_id", "token_name", "subject_id", "purpose", "channel")
CHANNELS = ("profile", "lookup", "bulk")


async def _copy(conn: Conn, rows: list[Row]) -> None:
    await conn.copy_records_to_table("bureau_access", records=rows, columns=COLUMNS)


class AccessRecorder(BatchWriter):
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval: float = 0.1,
        batch: int = 500,
        max_buffer: int = 1_000_000,
    ) -> None:
        super().__init__(
            pool,
            _copy,
            name="bureau_access",
            keep_failed=True,
            interval=interval,
            batch=batch,
            max_buffer=max_buffer,
        )

    def record(
        self,
        *,
        at: datetime,
        token_id: uuid.UUID,
        token_name: str,
        subject_id: uuid.UUID,
        purpose: str,
        channel: str,
    ) -> None:
        self.add((at, token_id, token_name, subject_id, purpose, channel))


async def list_access(
    pool: asyncpg.Pool,
    *,
    token_id: uuid.UUID | None,
    subject_id: uuid.UUID | None,
    after: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM bureau_access WHERE ($1::uuid IS NULL OR token_id = $1)"
        " AND ($2::uuid IS NULL OR subject_id = $2) AND ($3::bigint IS NULL OR id > $3)"
        " ORDER BY id LIMIT $4",
        token_id,
        subject_id,
        after,
        limit,
    )
    return rows
