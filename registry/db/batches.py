"""Rows written in batches by a background task, so a request only appends to a list.

``BatchWriter`` buffers rows and hands them to ``write`` (one statement for the
whole batch) every ``interval`` seconds, or as soon as ``batch`` rows wait. The
buffer is capped at ``max_buffer`` rows; beyond it the oldest are dropped and
counted in a ``<name>_dropped`` log event rather than blocking requests.

``keep_failed`` says what a failed write does with its rows: keep them for the
next tick (records that must not be lost: bureau access records) or drop them
(work that is only an optimisation: profile cache fills).

Stopping never cancels a write in flight: a cancelled ``COPY`` may already be
committed on the server, and keeping its rows for the final flush wrote them
twice (seen in CI: 50 access records for 30 lookups). The write in flight is let
finish, then what is still buffered is written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from registry.db.types import Conn
from registry.tasks import stop_task

log = structlog.get_logger(__name__)

Row = tuple[Any, ...]


class BatchWriter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        write: Callable[[Conn, list[Row]], Awaitable[None]],
        *,
        name: str,
        keep_failed: bool,
        interval: float = 0.1,
        batch: int = 500,
        max_buffer: int = 1_000_000,
    ) -> None:
        if interval <= 0 or batch < 1:
            raise ValueError(f"{name} needs interval > 0 and batch >= 1")
        self._pool = pool
        self._write = write
        self._name = name
        self._keep_failed = keep_failed
        self._interval = interval
        self._batch = batch
        self._max_buffer = max_buffer
        self._buffer: list[Row] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[int] | None = None
        self._lock = asyncio.Lock()
        self.written = 0

    def add(self, row: Row) -> None:
        self._buffer.append(row)
        if len(self._buffer) > self._max_buffer:
            dropped = len(self._buffer) - self._max_buffer
            del self._buffer[:dropped]
            log.error(f"{self._name}_dropped", rows=dropped)
        if len(self._buffer) >= self._batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"registry-{self._name}")

    async def stop(self) -> None:
        """Stop the task, then write what is still buffered."""
        await stop_task(self._task)
        self._task = None
        if self._in_flight is not None:
            # A failed write kept its rows (or dropped them, by ``keep_failed``): the
            # flush below deals with what is left either way.
            with contextlib.suppress(Exception):
                await self._in_flight
            self._in_flight = None
        await self.flush()

    async def flush(self) -> int:
        """Write every buffered row now; the number written. Raises if the write fails."""
        async with self._lock:
            rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            try:
                async with self._pool.acquire() as conn:
                    await self._write(conn, rows)
            except BaseException:
                if self._keep_failed:
                    self._buffer[:0] = rows
                raise
            self.written += len(rows)
            return len(rows)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            self._in_flight = asyncio.ensure_future(self.flush())
            try:
                # Shielded: cancelling this task (``stop``) must not cancel the write.
                await asyncio.shield(self._in_flight)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(f"{self._name}_flush_failed", error=type(error).__name__)
