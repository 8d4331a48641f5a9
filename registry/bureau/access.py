"""Accounting of bureau queries on practitioners: who, when, which subject, why.

``AccessRecorder`` buffers rows in memory and writes them with one ``COPY`` every
``interval`` seconds, or as soon as ``batch`` rows are waiting, so a lookup costs
an append to a list instead of a transaction. Started and stopped with the
service (registry/bootstrap.py); ``stop`` flushes everything still buffered.

Guarantee and its limit: a row appended before a clean shutdown is written. If
the process dies, up to one interval of rows (default 100 ms) is lost; a failed
COPY keeps its rows and retries at the next tick (the buffer is capped at
``max_buffer`` rows, beyond which the oldest are dropped and counted in the
``bureau_access_dropped`` log event rather than blocking lookups).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)

COLUMNS = ("at", "token_id", "token_name", "subject_id", "purpose", "channel")
CHANNELS = ("profile", "lookup", "bulk")


class AccessRecorder:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval: float = 0.1,
        batch: int = 500,
        max_buffer: int = 1_000_000,
    ) -> None:
        if interval <= 0 or batch < 1:
            raise ValueError("access recorder needs interval > 0 and batch >= 1")
        self._pool = pool
        self._interval = interval
        self._batch = batch
        self._max_buffer = max_buffer
        self._buffer: list[tuple[Any, ...]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.written = 0

    def add(
        self,
        *,
        at: datetime,
        token_id: uuid.UUID,
        token_name: str,
        subject_id: uuid.UUID,
        purpose: str,
        channel: str,
    ) -> None:
        self._buffer.append((at, token_id, token_name, subject_id, purpose, channel))
        if len(self._buffer) > self._max_buffer:
            dropped = len(self._buffer) - self._max_buffer
            del self._buffer[:dropped]
            log.error("bureau_access_dropped", rows=dropped)
        if len(self._buffer) >= self._batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="registry-bureau-access")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> int:
        """Write every buffered row now; the number written. Raises if the COPY fails
        (the rows stay buffered)."""
        async with self._lock:
            rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            try:
                async with self._pool.acquire() as conn:
                    await conn.copy_records_to_table("bureau_access", records=rows, columns=COLUMNS)
            except BaseException:
                self._buffer[:0] = rows
                raise
            self.written += len(rows)
            return len(rows)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("bureau_access_flush_failed", error=type(error).__name__)


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
