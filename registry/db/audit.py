"""Appending to the audit log inside the caller's transaction.

The only way the registry changes state: reserve the next leaf index, write the
row, then ``record`` its leaf and stored body, all in one transaction. If the
transaction rolls back, the index, the row and the leaf vanish together, so the
log never has a gap and never holds a leaf for a change that did not happen.

Reserving locks the single ``tlog_sequence`` row until commit. Indexes are
therefore handed out in commit order, and the committed leaves always form a
prefix 0..n-1 of the log, in every process — the integrator relies on that.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from registry.db.types import Conn
from registry.tlog.leaf import SALT_BYTES, commitment, encode_leaf, object_body


@dataclass(frozen=True)
class Appended:
    """What a writer gets back after ``record``: enough to wait for a receipt."""

    index: int
    leaf: bytes


async def reserve_index(conn: Conn) -> int:
    """Next leaf index; the caller must be inside a transaction (the lock lasts until commit)."""
    if not conn.is_in_transaction():
        raise RuntimeError("reserve_index must run inside a transaction")
    # Bounded wait for the sequence lock: under overload or a stuck writer the caller
    # gets an error it can turn into 503 + Retry-After instead of hanging.
    await conn.execute("SET LOCAL lock_timeout = '5s'")
    index: int = await conn.fetchval(
        "UPDATE tlog_sequence SET next_index = next_index + 1 RETURNING next_index - 1"
    )
    return index


async def record(
    conn: Conn,
    index: int,
    *,
    time: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    row: Mapping[str, Any] | asyncpg.Record,
) -> Appended:
    """Write leaf ``index`` committing to ``row`` (as returned by the database)."""
    body = object_body(row)
    salt = os.urandom(SALT_BYTES)
    leaf = encode_leaf(
        index=index,
        time=time,
        actor=actor,
        action=action,
        object_ref=f"{object_type}/{object_id}",
        commit=commitment(salt, body),
    )
    await conn.execute(
        "INSERT INTO tlog_leaves (idx, leaf, created_at) VALUES ($1, $2, $3)", index, leaf, time
    )
    await conn.execute(
        "INSERT INTO tlog_objects (log_index, object_type, object_id, body, salt)"
        " VALUES ($1, $2, $3, $4, $5)",
        index,
        object_type,
        object_id,
        body,
        salt,
    )
    return Appended(index=index, leaf=leaf)
