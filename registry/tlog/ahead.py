"""Reading a stream one batch ahead of the code that checks it (used by verify.py).

A checking loop is CPU-bound: while it runs, a query it awaits does not move. So
the query for the next batch is issued by a task before the current batch is
checked; PostgreSQL computes it meanwhile on another core, and the answer is
received whenever the loop lets the event loop run (every YIELD_EVERY rows).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Ahead(Generic[T]):
    """Runs an async generator one item ahead of its consumer, in a task.

    ``stop`` must be awaited before the consumer uses the generator's connection
    itself: it lets a query in flight finish (cancelling it would abort the
    snapshot's transaction) and closes the generator.
    """

    def __init__(self, source: AsyncGenerator[T, None]) -> None:
        self._queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(1)
        self._source = source
        self._stopping = False
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for item in self._source:
                await self._queue.put((True, item))
                if self._stopping:
                    return
        except Exception as error:  # handed to the consumer, raised there
            await self._queue.put((False, error))
            return
        finally:
            await self._source.aclose()
        await self._queue.put((False, None))

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        more, item = await self._queue.get()
        if more:
            return item  # type: ignore[no-any-return] # (True, T) or (False, error or None)
        if item is not None:
            raise item
        raise StopAsyncIteration

    async def stop(self) -> None:
        self._stopping = True
        while not self._task.done():
            taking = asyncio.ensure_future(self._queue.get())
            await asyncio.wait({taking, self._task}, return_when=asyncio.FIRST_COMPLETED)
            taking.cancel()
