"""Background tasks of the service: stopping one the same way everywhere."""

from __future__ import annotations

import asyncio
import contextlib

# How long one cancellation is given before it is sent again.
_RECANCEL_S = 0.5


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has really stopped.

    A cancellation can be lost: on Python 3.11, ``asyncio.wait_for`` (and
    ``asyncio.timeout``) swallow a cancel that arrives as the awaited thing completes,
    and the task's loop then carries on as if nothing happened. Waiting once for the task
    would then wait forever (a test run hung in ``TokenCache.close``), so the cancel is
    repeated until the task is done.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_RECANCEL_S)
    with contextlib.suppress(asyncio.CancelledError):
        await task
