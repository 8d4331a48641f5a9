"""Rows written in batches by a background task, so a request only appends to a list.

``BatchWriter`` buffers rows and hands them to ``write`` (one statement for the
whole batch) every ``interval`` seconds, or as soon as ``batch`` rows wait.

Two kinds of rows:

* ``add``: fire and forget (profile cache fills). The buffer is capped at
  ``max_buffer`` rows; beyond it the oldest are dropped and counted in a
  ``<name>_dropped`` log event rather than blocking requests. ``keep_failed`` says
  what a failed write does with them: keep them for the next tick, or drop them
  (work that is only an optimisation).
* ``add_durable``: the caller waits for the commit (access records, which must be
  durable before the answer they account for is sent). The writer is woken at once:
  if idle it writes now; if a write is in flight, everything that arrives meanwhile
  goes in the next write, started as soon as that one ends (group commit), so a
  waiter waits about one write, never the ``interval`` tick. A failed write fails
  every waiter of that batch and its durable rows are not retried: their callers
  were told, and answered without what the rows account for. A waiter who gives up
  (cancels its future: a timeout, a client gone) before its batch is taken withdraws
  its rows. Beyond ``max_buffer`` waiting rows, new ones are refused at once
  (``BatchError``) rather than queued without bound.

Stopping never cancels a write in flight: a cancelled ``COPY`` may already be
committed on the server, and keeping its rows for the final flush wrote them
twice (seen in CI: 50 access records for 30 lookups). The write in flight is let
finish, then what is still buffered is written; durable rows offered after that
point are refused.
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


class BatchError(Exception):
    """Durable rows were not written: their batch failed, or the writer refused them."""


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
        # Durable rows, one group per ``add_durable`` call with the future that tells
        # its caller; a group is never split between writes.
        self._groups: list[tuple[list[Row], asyncio.Future[None]]] = []
        self._group_rows = 0
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[int] | None = None
        self._lock = asyncio.Lock()
        self.written = 0

    def queued(self) -> int:
        """Rows waiting to be written (a metric)."""
        return len(self._buffer) + self._group_rows

    def add(self, row: Row) -> None:
        self._buffer.append(row)
        if len(self._buffer) > self._max_buffer:
            dropped = len(self._buffer) - self._max_buffer
            del self._buffer[:dropped]
            log.error(f"{self._name}_dropped", rows=dropped)
        if len(self._buffer) >= self._batch:
            self._wake.set()

    def add_durable(self, rows: list[Row]) -> asyncio.Future[None]:
        """Queue ``rows`` for the next write; the future is done once that write has
        committed, or fails with ``BatchError`` if it failed or the rows were refused
        (too many waiting, or the writer stopping). Cancel it to withdraw rows not yet
        taken; rows already in a write in flight may still land."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not rows:
            future.set_result(None)
        elif self._stopping:
            future.set_exception(BatchError(f"couldn't queue {self._name}: the writer stopped"))
        elif self._group_rows + len(rows) > self._max_buffer:
            log.error(f"{self._name}_refused", rows=len(rows), waiting=self._group_rows)
            future.set_exception(
                BatchError(f"couldn't queue {self._name}: {self._group_rows} rows already wait")
            )
        else:
            self._groups.append((rows, future))
            self._group_rows += len(rows)
            self._wake.set()
        return future

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
        # From here nobody would write what is offered: refuse it rather than let its
        # caller wait for nothing.
        self._stopping = True
        await self.flush()

    async def flush(self) -> int:
        """Write every buffered row now; the number written. Raises if the write fails."""
        async with self._lock:
            plain, self._buffer = self._buffer, []
            groups, self._groups, self._group_rows = self._groups, [], 0
            rows = list(plain)
            waiting: list[asyncio.Future[None]] = []
            for group, future in groups:
                # Cancelled: its caller gave up and answered without what these rows
                # account for, so they are not written.
                if not future.cancelled():
                    rows += group
                    waiting.append(future)
            if not rows:
                return 0
            try:
                async with self._pool.acquire() as conn:
                    await self._write(conn, rows)
            except BaseException as error:
                if self._keep_failed:
                    self._buffer[:0] = plain
                for future in waiting:
                    if not future.done():
                        failed = BatchError(f"couldn't write {self._name}: {type(error).__name__}")
                        failed.__cause__ = error
                        future.set_exception(failed)
                raise
            for future in waiting:
                if not future.done():
                    future.set_result(None)
            self.written += len(rows)
            return len(rows)

    async def _run(self) -> None:
        while True:
            # Returns at once if woken meanwhile, e.g. by a durable row that arrived
            # during the last write: that is the group commit.
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
