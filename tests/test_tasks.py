"""Stopping a background task (registry/tasks.py)."""

from __future__ import annotations

import asyncio

from registry.tasks import stop_task


async def test_a_task_that_lost_its_first_cancellation_is_still_stopped() -> None:
    """As a cancel swallowed by Python 3.11's wait_for leaves a task's loop running: the
    stop must cancel again, not wait forever (a test run hung in TokenCache.close)."""
    swallowed = asyncio.Event()

    async def loses_one_cancel() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.sleep(100)

    task = asyncio.create_task(loses_one_cancel())
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(stop_task(task))
    # Not wait_for: cancelling a stop that waits on the task would cancel the task too
    # and hide the hang.
    await asyncio.wait({stopping}, timeout=3)
    assert stopping.done(), "stop_task is still waiting for a task it cancelled once"
    assert swallowed.is_set() and task.cancelled()


async def test_stopping_nothing_or_a_finished_task_returns() -> None:
    await stop_task(None)
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    await stop_task(task)
    assert task.done()
