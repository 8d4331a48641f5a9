"""Appending to the audit log inside the caller's transaction.

The only way the registry changes state (see ``db/writes.py``): write the row,
then ``record`` its leaf and stored body, all in one transaction. If the
transaction rolls back, the index, the row and the leaf vanish together, so the
log never has a gap and never holds a leaf for a change that did not happen.

``record`` is one statement: it takes the next index from the single
``tlog_sequence`` row (locking it until commit), inserts the leaf and the body,
and stamps the row's ``log_index``. Indexes are therefore handed out in commit
order, and the committed leaves always form a prefix 0..n-1 of the log, in every
process — the integrator relies on that. Holding the lock for one statement and
the commit (not for the whole request) is what lets concurrent writers overlap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from registry.db.types import Conn
from registry.tlog.leaf import SALT_BYTES, commitment, encode_leaf, object_body

# Object type named in leaves -> the table holding its current version. Each table
# has a uuid ``id`` and a ``log_index`` naming the leaf of its current version.
# A new audited table is one line here (verification reads this too).
TABLE_OF: dict[str, str] = {
    "subject": "subjects",
    "token": "api_tokens",
    "affiliation": "affiliations",
    "credit_record": "credit_records",
    "blacklist_entry": "blacklist_entries",
    "objection": "objections",
    "repair": "repairs",
    "authority": "authorities",
}

# What a writer stores in ``log_index`` before ``record`` knows the real index.
PENDING_INDEX = -1
_INDEX_MARK = b'"index":0,'
_APPEND_SQL = (
    "WITH s AS (UPDATE tlog_sequence SET next_index = next_index + 1"
    "           RETURNING next_index - 1 AS idx),"
    " l AS (INSERT INTO tlog_leaves (idx, leaf, created_at)"
    "       SELECT idx, $1::bytea || convert_to(idx::text, 'UTF8') || $2::bytea, $3 FROM s"
    "       RETURNING idx, leaf),"
    " o AS (INSERT INTO tlog_objects (log_index, object_type, object_id, body, salt)"
    "       SELECT idx, $4, $5, $6, $7 FROM l RETURNING log_index) "
)


@dataclass(frozen=True)
class Appended:
    """What a writer gets back: the leaf index, the leaf, and the row as finally stored."""

    index: int
    leaf: bytes
    row: asyncpg.Record | None


async def record(
    conn: Conn,
    *,
    time: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    row: Any,
) -> Appended:
    """Append the leaf committing to ``row`` (as the database returned it) and stamp its index.

    Must run inside the caller's transaction. The body leaves out ``log_index``
    (the leaf's own index binds it), so it can be computed before the index exists.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("record must run inside a transaction")
    body = object_body(row)
    salt = os.urandom(SALT_BYTES)
    template = encode_leaf(
        index=0,
        time=time,
        actor=actor,
        action=action,
        object_ref=f"{object_type}/{object_id}",
        commit=commitment(salt, body),
    )
    # Keys are sorted and JSON escapes every quote inside values, so the unescaped
    # key `"index":0,` occurs exactly once; the database puts the real index there.
    head, tail = template.split(_INDEX_MARK)
    head += b'"index":'
    tail = b"," + tail
    table = TABLE_OF.get(object_type)
    stamp = (
        f"UPDATE {table} t SET log_index = o.log_index FROM o WHERE t.id = $8 RETURNING t.*"  # noqa: S608 - names from TABLE_OF
        if table
        else "SELECT o.log_index FROM o WHERE $8::text IS NOT NULL"
    )
    # Bounded wait for the sequence lock: under overload or a stuck writer the caller
    # gets an error it can turn into 503 + Retry-After instead of hanging.
    await conn.execute("SET LOCAL lock_timeout = '5s'")
    sql = _APPEND_SQL + stamp
    stored = await conn.fetchrow(
        sql,
        head,
        tail,
        time,
        object_type,
        object_id,
        body,
        salt,
        row["id"] if table else object_id,
    )
    if stored is None:
        raise RuntimeError(f"couldn't stamp the log index on {object_type}/{object_id}")
    index: int = stored["log_index"]
    return Appended(
        index=index,
        leaf=head + str(index).encode() + tail,
        row=stored if table else None,
    )
