"""The audited write path: a change, its leaf and its stored body in one transaction.

Every state change in the registry goes through ``audited_write``. The callback
writes the row (it gets the reserved log index to store beside it) and returns
the row exactly as the database returned it; that row is what the leaf commits to.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from registry.clock import Clock
from registry.db.audit import PENDING_INDEX, record
from registry.db.changes import CHANGES
from registry.db.types import Conn

# Set while a task is inside an audited write. A second audited write on another
# connection from inside the first would wait forever for the sequence lock the
# first one holds (PostgreSQL cannot see that deadlock: one side is in Python).
_INSIDE_WRITE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "inside_audited_write", default=False
)

# Set inside ``write_transaction``. Joining (``conn=``) any other open transaction would
# count the write as ended at its savepoint, before the outer commit: a profile read in
# between could be trusted with what it read before that commit (registry/db/changes.py).
_IN_COUNTED_TRANSACTION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "in_counted_write_transaction", default=False
)

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

    Guarantee: on return both are committed; on any exception neither exists. With
    ``conn=`` they join that connection's transaction (from ``write_transaction``) and
    commit with it.
    """
    if conn is not None:
        if conn.is_in_transaction() and not _IN_COUNTED_TRANSACTION.get():
            raise RuntimeError(
                "audited_write joined a transaction not opened by write_transaction: "
                "open it with write_transaction so the process counts the write until it commits"
            )
        return await _write_in(conn, clock, actor, action, object_type, write)
    if _INSIDE_WRITE.get():
        raise RuntimeError(
            "audited_write called inside another audited write on a new connection: "
            "pass conn= to join the outer transaction"
        )
    async with pool.acquire() as own:
        token = _INSIDE_WRITE.set(True)
        try:
            return await _write_in(own, clock, actor, action, object_type, write)
        finally:
            _INSIDE_WRITE.reset(token)


@asynccontextmanager
async def write_transaction(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A connection in a transaction for several audited writes (``conn=``) that commit
    together; the process knows a write is open until it ends (registry/db/changes.py)."""
    async with pool.acquire() as conn:
        with CHANGES.writing():
            async with conn.transaction():
                counted = _IN_COUNTED_TRANSACTION.set(True)
                try:
                    yield conn
                finally:
                    _IN_COUNTED_TRANSACTION.reset(counted)


async def _write_in(
    conn: Conn,
    clock: Clock,
    actor: str,
    action: str,
    object_type: str,
    write: RowWriter,
) -> Written:
    with CHANGES.writing():
        async with conn.transaction():
            now = clock.now()
            # The row is written first with a placeholder index, outside the sequence
            # lock; ``record`` then takes the index and stamps it in one statement.
            row = await write(conn, PENDING_INDEX, now)
            appended = await record(
                conn,
                time=now,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=str(row["id"]),
                row=row,
            )
    return Written(row=appended.row or row, log_index=appended.index)
