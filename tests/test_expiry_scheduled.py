"""The service expires records by itself: the scheduled task started in the app's lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from registry.clock import ManualClock
from registry.settings import Settings
from tests.credit_helpers import Client, actions, log_size, penalty, record, subject


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return replace(base_settings, expiry_interval_ms=20)


async def test_scheduled_task_expires_without_being_asked(client: Client, regulator: dict[str, str],
                                                          db: asyncpg.Pool,
                                                          clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid, grade="minor"))
    start = await log_size(db)
    clock.set(datetime(2026, 6, 3, 2, tzinfo=UTC))
    status = None
    for _ in range(250):  # the task ticks every 20 ms; allow it up to 5 s
        status = await db.fetchval("SELECT status FROM credit_records WHERE id = $1::uuid", rec["id"])
        if status == "expired":
            break
        await asyncio.sleep(0.02)
    assert status == "expired"
    assert await actions(db, start) == ["record.expire"]
    leaf_actor = await db.fetchval("SELECT leaf FROM tlog_leaves ORDER BY idx DESC LIMIT 1")
    assert b"system:expiry" in bytes(leaf_actor)
