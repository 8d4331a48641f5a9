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
import msgspec

from registry.db.types import Conn
from registry.errors import LogIntegrityError
from registry.tlog.leaf import SALT_BYTES, commitment, encode_leaf, object_body

# Object type named in leaves -> the table holding its current version. Each table
# has a uuid ``id`` and a ``log_index`` naming the leaf of its current version.
# A new audited table is one line here (verification reads this too).
TABLE_OF: dict[str, str] = {
    "subject": "subjects",
    "token": "api_tokens",
    "affiliation": "affiliations",
    "fund_manager": "fund_managers",
    "credit_record": "credit_records",
    "blacklist_entry": "blacklist_entries",
    "objection": "objections",
    "repair": "repairs",
    "authority": "authorities",
}

# Every statement that takes indexes waits at most 5 s for the sequence lock: under
# overload or behind a stuck writer the caller gets LockNotAvailableError (503 +
# Retry-After) instead of hanging. Set in the statement itself (the WHERE is evaluated
# before the row lock is waited for), for the rest of the transaction like SET LOCAL,
# without a round trip of its own.
_TAKE = "WHERE set_config('lock_timeout', '5s', true) IS NOT NULL"

# What a writer stores in ``log_index`` before ``record`` knows the real index.
PENDING_INDEX = -1
_INDEX_MARK = b'"index":0,'
_APPEND_SQL = (
    "WITH s AS (UPDATE tlog_sequence SET next_index = next_index + 1 " + _TAKE +  # noqa: S608 - fixed text
    "           RETURNING next_index - 1 AS idx),"
    " l AS (INSERT INTO tlog_leaves (idx, leaf, created_at)"
    "       SELECT idx, $1::bytea || convert_to(idx::text, 'UTF8') || $2::bytea, $3 FROM s"
    "       RETURNING idx, leaf),"
    " o AS (INSERT INTO tlog_objects (log_index, object_type, object_id, body, salt)"
    "       SELECT idx, $4, $5, $6, $7 FROM l RETURNING log_index) "
)


def _leaf_parts(
    time: datetime, actor: str, action: str, object_ref: str, row: Any
) -> tuple[bytes, bytes, bytes, bytes]:
    """(body, salt, leaf head, leaf tail) of the leaf committing to ``row``: the leaf is
    ``head + str(index) + tail``, so the database can put in the index it hands out."""
    body = object_body(row)
    salt = os.urandom(SALT_BYTES)
    template = encode_leaf(
        index=0,
        time=time,
        actor=actor,
        action=action,
        object_ref=object_ref,
        commit=commitment(salt, body),
    )
    # Keys are sorted and JSON escapes every quote inside values, so the unescaped
    # key `"index":0,` occurs exactly once; the database puts the real index there.
    head, tail = template.split(_INDEX_MARK)
    return body, salt, head + b'"index":', b"," + tail


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
    body, salt, head, tail = _leaf_parts(time, actor, action, f"{object_type}/{object_id}", row)
    table = TABLE_OF.get(object_type)
    stamp = (
        f"UPDATE {table} t SET log_index = o.log_index FROM o WHERE t.id = $8 RETURNING t.*"  # noqa: S608 - names from TABLE_OF
        if table
        else "SELECT o.log_index FROM o WHERE $8::text IS NOT NULL"
    )
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


# ``record`` and the row's INSERT in one statement (``insert_with_leaf``): the index is taken
# first, so the row is inserted with it; the leaf and the stored body follow.
_INSERT_WITH_LEAF_SQL = (
    "WITH s AS (UPDATE tlog_sequence SET next_index = next_index + 1 " + _TAKE +  # noqa: S608 - fixed text
    "           RETURNING next_index - 1 AS idx),"
    " r AS (INSERT INTO {table} ({columns}, log_index) VALUES ({values}, (SELECT idx FROM s))"
    "       RETURNING *),"
    " l AS (INSERT INTO tlog_leaves (idx, leaf, created_at)"
    "       SELECT log_index, ${n1}::bytea || convert_to(log_index::text, 'UTF8') || ${n2}::bytea,"
    "       ${n3} FROM r RETURNING idx),"
    " o AS (INSERT INTO tlog_objects (log_index, object_type, object_id, body, salt)"
    "       SELECT idx, ${n4}, ${n5}, ${n6}, ${n7} FROM l RETURNING log_index)"
    " SELECT r.* FROM r JOIN o ON o.log_index = r.log_index"
)


async def insert_with_leaf(
    conn: Conn,
    *,
    time: datetime,
    actor: str,
    action: str,
    object_type: str,
    stored: dict[str, Any],
) -> Appended:
    """INSERT a new row of ``object_type``'s table with its leaf and body: one statement.

    ``stored`` is the row as the database will return it, every column but ``log_index``
    (registry/db/shapes.py ``stored_form``): the body is committed to from it, before the
    database has the row. In autocommit the statement is the whole write, atomic, and
    holds the sequence lock only inside PostgreSQL, from the index to the commit; in a
    transaction it is ``record`` after the row's INSERT. The row the database returns is
    checked against the body committed to (``_checked``).
    """
    table = TABLE_OF[object_type]
    object_id = str(stored["id"])
    body, salt, head, tail = _leaf_parts(time, actor, action, f"{object_type}/{object_id}", stored)
    columns = list(stored)
    n = len(columns)
    sql = _INSERT_WITH_LEAF_SQL.format(
        table=table,
        columns=", ".join(columns),
        values=", ".join(f"${i + 1}" for i in range(n)),
        n1=n + 1, n2=n + 2, n3=n + 3, n4=n + 4, n5=n + 5, n6=n + 6, n7=n + 7,
    )
    row = await conn.fetchrow(
        sql, *stored.values(), head, tail, time, object_type, object_id, body, salt
    )
    if row is None:
        raise RuntimeError(f"couldn't insert {object_type}/{object_id} with its leaf")
    return _checked(object_type, row, body, head, tail)


def _checked(object_type: str, row: asyncpg.Record, body: bytes, head: bytes, tail: bytes) -> Appended:
    """The ``Appended`` of a row inserted with its leaf, once the body of the row as the
    database returned it is the one the leaf commits to. A difference means ``stored_form``
    predicted wrong, a bug: ``LogIntegrityError`` (``registry log verify`` would report
    that entry), and the caller's transaction must not commit."""
    index: int = row["log_index"]
    if object_body(row) != body:
        raise LogIntegrityError(
            f"{object_type}/{row['id']} was stored otherwise than committed to at log entry "
            f"{index}: registry/db/shapes.py mispredicted a column"
        )
    return Appended(index=index, leaf=head + str(index).encode() + tail, row=row)


# ``insert_with_leaf`` for many new rows of one table: one statement takes ``$1`` consecutive
# indexes, inserts every row with its index (from JSON, which PostgreSQL converts with each
# column's own input function, arrays included), every leaf and every stored body.
_INSERT_MANY_WITH_LEAVES_SQL = (
    "WITH s AS (UPDATE tlog_sequence SET next_index = next_index + $1 " + _TAKE +  # noqa: S608 - fixed text
    "           RETURNING next_index - $1 AS first),"
    " r AS (INSERT INTO {table} ({columns}, log_index)"
    "       SELECT {columns}, s.first + v.ordinality - 1 FROM s,"
    "       jsonb_populate_recordset(NULL::{table}, $2::jsonb) WITH ORDINALITY AS v"
    "       RETURNING *),"
    " p AS (SELECT s.first + p.ord - 1 AS idx, p.* FROM s, unnest($3::bytea[], $4::bytea[],"
    "       $5::text[], $6::bytea[], $7::bytea[]) WITH ORDINALITY"
    "       AS p(head, tail, object_id, body, salt, ord)),"
    " l AS (INSERT INTO tlog_leaves (idx, leaf, created_at)"
    "       SELECT idx, head || convert_to(idx::text, 'UTF8') || tail, $8 FROM p RETURNING idx),"
    " o AS (INSERT INTO tlog_objects (log_index, object_type, object_id, body, salt)"
    "       SELECT p.idx, $9, p.object_id, p.body, p.salt FROM p JOIN l ON l.idx = p.idx"
    "       RETURNING log_index)"
    " SELECT r.* FROM r JOIN o ON o.log_index = r.log_index"
)


def _json_value(value: Any) -> Any:
    # bytea's input function reads the hex form; everything else msgspec writes as the
    # column's input function reads it (uuid, ISO dates and times, Decimal as a string).
    return "\\x" + value.hex() if isinstance(value, bytes) else value


async def insert_many_with_leaves(
    conn: Conn,
    *,
    time: datetime,
    actor: str,
    action: str,
    object_type: str,
    stored: list[dict[str, Any]],
) -> list[Appended]:
    """``insert_with_leaf`` for several new rows of one table, in one statement: their leaves
    take consecutive indexes in the order of ``stored`` (an import's batch). Every row of
    ``stored`` names the same columns. Returns each row's ``Appended``, in that order.

    The statement is all or nothing: a row the database refuses (a unique key taken, a
    value out of range) fails it, with nothing written and no index taken.
    """
    if not stored:
        return []
    table = TABLE_OF[object_type]
    columns = list(stored[0])
    if any(list(row) != columns for row in stored):
        raise RuntimeError(f"insert_many_with_leaves: the {table} rows name different columns")
    parts = [
        _leaf_parts(time, actor, action, f"{object_type}/{row['id']}", row) for row in stored
    ]
    as_json = msgspec.json.encode([{k: _json_value(v) for k, v in row.items()} for row in stored])
    rows = await conn.fetch(
        _INSERT_MANY_WITH_LEAVES_SQL.format(table=table, columns=", ".join(columns)),
        len(stored),
        as_json.decode(),
        [head for _, _, head, _ in parts],
        [tail for _, _, _, tail in parts],
        [str(row["id"]) for row in stored],
        [body for body, _, _, _ in parts],
        [salt for _, salt, _, _ in parts],
        time,
        object_type,
    )
    by_id = {row["id"]: row for row in rows}
    if len(by_id) != len(stored):
        raise RuntimeError(f"inserted {len(by_id)} of {len(stored)} {table} rows with their leaves")
    return [
        _checked(object_type, by_id[row["id"]], body, head, tail)
        for row, (body, _, head, tail) in zip(stored, parts, strict=True)
    ]
