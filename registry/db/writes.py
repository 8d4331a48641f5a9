"""The audited write path: a change, its leaf and its stored body in one transaction.

Every state change in the registry goes through ``audited_write``. The callback
writes the row (it gets the reserved log index to store beside it) and returns
the row exactly as the database returned it; that row is what the leaf commits to.

One change is one leaf. A use case made of several changes (a subject and its
affiliations, an objection and the item it marks) opens ``write_transaction`` and
passes its connection to each ``audited_write`` (``conn=``): each change still gets
its own leaf, the leaves take consecutive indexes (the first one locks the sequence
row until the commit, so no other writer can take an index in between), and all of
them commit together or not at all. Checkpoints are not written here: the integrator
signs one for whatever is committed, and ``last_leaf`` names the index a receipt for
the whole transaction must wait for.

``audited_insert`` is the same for a new row given whole: on a connection of its own it
is one autocommit statement (db/audit.py ``insert_with_leaf``), so its crash points are
before the statement (nothing written) and after it (everything committed).

Crash points (the process dies, the connection drops, or the code raises):
- before ``record`` took an index: the rollback drops the row; nothing is reserved;
- after ``record``, before the commit: the rollback drops the row, its leaf, its
  stored body and the index (the next writer takes the same index), for every change
  of the transaction at once;
- after the commit, before the answer is sent: every change and leaf stands; the
  integrator signs it (at start, or on the next write), and the caller's retry finds
  it (a duplicate answers 409, or an ``Idempotency-Key`` replays the answer stored in
  the same transaction: registry/credit/idempotency.py).
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from registry.clock import Clock
from registry.db.audit import PENDING_INDEX, TABLE_OF, insert_with_leaf, record
from registry.db.changes import CHANGES
from registry.db.shapes import TableShapes, stored_form
from registry.db.types import Conn, required

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

# The connection of a ``write_transaction(..., ambient=True)`` open in this task: every
# audited write and nested ``write_transaction`` of the task joins it, also those that
# do not pass ``conn=`` (a use case written for its own transaction can then commit with
# something else, e.g. the stored answer of an Idempotency-Key).
_AMBIENT: contextvars.ContextVar[Conn | None] = contextvars.ContextVar(
    "ambient_write_transaction", default=None
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
    ``conn=`` (or inside an ambient ``write_transaction`` of this task) they join that
    transaction instead: on return both are written in it and commit with it; on an
    exception neither is (the savepoint is rolled back), and the caller's transaction
    decides the rest.
    """
    joined = _joined_transaction(conn)
    if joined is not None:
        return await _write_in(joined, clock, actor, action, object_type, write)
    async with pool.acquire() as own:
        token = _INSIDE_WRITE.set(True)
        try:
            return await _write_in(own, clock, actor, action, object_type, write)
        finally:
            _INSIDE_WRITE.reset(token)


async def audited_insert(
    pool: asyncpg.Pool,
    clock: Clock,
    shapes: TableShapes,
    *,
    actor: str,
    action: str,
    object_type: str,
    values: Callable[[datetime], dict[str, Any]],
    conn: Conn | None = None,
) -> Written:
    """``audited_write`` of a new row given whole: ``values(now)`` names every column but
    ``log_index`` (registry/db/shapes.py). Same guarantees, joins the same transactions.

    On its own connection it is one autocommit statement (db/audit.py
    ``insert_with_leaf``): one round trip instead of five, and the log's sequence lock is
    held inside PostgreSQL only, never across a round trip to this process.
    """
    table = TABLE_OF[object_type]
    joined = _joined_transaction(conn)
    if joined is not None:
        shape = await shapes.of(joined, table)
        with CHANGES.writing():
            async with joined.transaction():
                now = clock.now()
                appended = await insert_with_leaf(
                    joined, time=now, actor=actor, action=action, object_type=object_type,
                    stored=stored_form(table, shape, values(now)),
                )
    else:
        async with pool.acquire() as own:
            shape = await shapes.of(own, table)
            now = clock.now()
            stored = stored_form(table, shape, values(now))
            with CHANGES.writing():
                appended = await insert_with_leaf(
                    own, time=now, actor=actor, action=action, object_type=object_type,
                    stored=stored,
                )
    return Written(row=required(appended.row, "inserted row"), log_index=appended.index)


def _joined_transaction(conn: Conn | None) -> Conn | None:
    """The transaction an audited write joins: ``conn``, else this task's ambient one;
    None when it runs on a connection of its own (refused inside another audited write)."""
    if conn is None:
        conn = _AMBIENT.get()
    if conn is not None:
        if conn.is_in_transaction() and not _IN_COUNTED_TRANSACTION.get():
            raise RuntimeError(
                "audited_write joined a transaction not opened by write_transaction: "
                "open it with write_transaction so the process counts the write until it commits"
            )
        return conn
    if _INSIDE_WRITE.get():
        raise RuntimeError(
            "audited_write called inside another audited write on a new connection: "
            "pass conn= to join the outer transaction"
        )
    return None


@asynccontextmanager
async def write_transaction(pool: asyncpg.Pool, *, ambient: bool = False) -> AsyncIterator[Conn]:
    """A connection in a transaction for several audited writes (``conn=``) that commit
    together; the process knows a write is open until it ends (registry/db/changes.py).

    Guarantee: if the block returns, every change written in it and every leaf commit
    together (consecutive indexes); if it raises, none does.

    ``ambient=True``: until the block ends, every ``audited_write`` of this task joins
    this transaction even without ``conn=``, and so does every ``write_transaction``
    opened inside it (as a savepoint). Only this task may use the connection meanwhile:
    do not run writes of the block concurrently (one asyncpg connection, one statement
    at a time).
    """
    outer = _AMBIENT.get()
    if outer is not None:
        # Nested in an ambient transaction: a savepoint of it, committed with it.
        async with outer.transaction():
            yield outer
        return
    async with pool.acquire() as conn:
        with CHANGES.writing():
            async with conn.transaction():
                counted = _IN_COUNTED_TRANSACTION.set(True)
                joined = _AMBIENT.set(conn) if ambient else None
                try:
                    yield conn
                finally:
                    if joined is not None:
                        _AMBIENT.reset(joined)
                    _IN_COUNTED_TRANSACTION.reset(counted)


async def last_leaf(conn: Conn) -> int:
    """The index of the newest leaf the open write transaction on ``conn`` appended.

    Exact once the transaction has appended a leaf: from its first leaf to its end it
    holds the sequence row's lock, so nobody else can have moved the sequence, and a
    savepoint rolled back takes its indexes with it. A receipt for the whole transaction
    waits for a checkpoint that includes this index. Before the first leaf it would name
    another writer's: callers ask only after an audited write.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("last_leaf must run inside the write transaction")
    value = await conn.fetchval("SELECT next_index - 1 FROM tlog_sequence")
    return int(value)


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
