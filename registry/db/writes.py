"""The audited write path: a change, its leaf and its stored body in one transaction.

Every state change in the registry goes through ``audited_write``. The callback
writes the row (it gets the reserved log index to store beside it) and returns
the row exactly as the database returned it; that row is what the leaf commits to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from registry.clock import Clock
from registry.db.audit import record, reserve_index
from registry.db.types import Conn

RowWriter = Callable[[Conn, int, datetime], Awaitable[asyncpg.Record]]


@dataclass(frozen=True)
class Written:
    row: asyncpg.Record
    log_index: int


async def audited_write(
    pool: asyncpg.Pool,
    clock: Clock,
    *,
    actor: str,
    action: str,
    object_type: str,
    write: RowWriter,
    conn: Conn | None = None,
) -> Written:
    """Run ``write`` and append its leaf atomically; returns the stored row and its index.

    Guarantee: on return both are committed; on any exception neither exists.
    """
    if conn is not None:
        return await _write_in(conn, clock, actor, action, object_type, write)
    async with pool.acquire() as own:
        return await _write_in(own, clock, actor, action, object_type, write)


async def _write_in(
    conn: Conn,
    clock: Clock,
    actor: str,
    action: str,
    object_type: str,
    write: RowWriter,
) -> Written:
    async with conn.transaction():
        index = await reserve_index(conn)
        now = clock.now()
        row = await write(conn, index, now)
        await record(
            conn,
            index,
            time=now,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(row["id"]),
            row=row,
        )
    return Written(row=row, log_index=index)
