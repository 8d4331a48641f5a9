"""Helpers shared by the credit use cases: versioned audited updates, text checks, cursors."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from registry.db.types import Conn
from registry.db.writes import Written, audited_write
from registry.errors import Conflict, InvalidInput, NotFound
from registry.services import Services
from registry.text import clean_text

# object type → table; the only tables ``update_versioned`` writes.
TABLES = {
    "credit_record": "credit_records",
    "blacklist_entry": "blacklist_entries",
    "objection": "objections",
    "repair": "repairs",
}


# Free-text fields of several lines (registry/text.py: line breaks and tabs kept);
# every other field cleaned here is one line (names, numbers, licence items).
MULTILINE_FIELDS = frozenset(
    {"facts", "legal_basis", "penalty_content", "remarks", "note", "reason", "grounds", "criterion"}
)


def clean(value: str | None, field: str, *, required: bool = False) -> str | None:
    """``field``'s text as stored (registry/text.py): trimmed, NFC, no hidden characters."""
    return clean_text(value, field, required=required, multiline=field in MULTILINE_FIELDS)


async def fetch(services: Services, object_type: str, object_id: uuid.UUID,
                conn: Conn | None = None) -> asyncpg.Record:
    table = TABLES[object_type]
    source: Any = conn or services.pool
    row: asyncpg.Record | None = await source.fetchrow(
        f"SELECT * FROM {table} WHERE id = $1", object_id  # noqa: S608 - table from TABLES
    )
    if row is None:
        raise NotFound(f"no {object_type.replace('_', ' ')} with id {object_id}")
    return row


async def update_versioned(
    services: Services,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    version: int,
    changes: dict[str, Any],
    conn: Conn | None = None,
) -> Written:
    """Apply ``changes`` if the row is still at ``version``; one audited leaf. 409 if it moved.

    Column names come from the calling module, never from the request.
    """
    table = TABLES[object_type]
    columns = list(changes)
    sets = "".join(f", {column} = ${i + 6}" for i, column in enumerate(columns))
    sql = (
        f"UPDATE {table} SET version = version + 1, updated_at = $3, updated_by = $4,"  # noqa: S608 - fixed names
        f" log_index = $5{sets} WHERE id = $1 AND version = $2 RETURNING *"
    )

    async def write(c: Conn, index: int, now: datetime) -> asyncpg.Record:
        row: asyncpg.Record | None = await c.fetchrow(
            sql, object_id, version, now, actor, index, *changes.values()
        )
        if row is None:
            raise Conflict(
                f"{object_type.replace('_', ' ')} {object_id} changed while this request ran "
                f"(no longer at version {version}); read it again and retry",
                field="version",
            )
        return row

    return await audited_write(
        services.pool, services.clock, actor=actor, action=action,
        object_type=object_type, write=write, conn=conn,
    )


def encode_cursor(*key: Any) -> str:
    """An opaque cursor: base64url of the JSON sort key of the last row of a page."""
    plain = [v.isoformat() if isinstance(v, date) else str(v) for v in key]
    return base64.urlsafe_b64encode(msgspec.json.encode(plain)).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    """The sort key of a cursor given out by ``encode_cursor``; 422 naming ``cursor`` if not."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = msgspec.json.decode(raw, type=list[str])
        if len(values) != len(types):
            raise ValueError("wrong length")
        out: list[Any] = []
        for value, kind in zip(values, types, strict=True):
            if kind is date:
                out.append(date.fromisoformat(value))
            elif kind is datetime:
                out.append(datetime.fromisoformat(value))
            elif kind is uuid.UUID:
                out.append(uuid.UUID(value))
            elif kind is int:
                out.append(int(value))
            else:
                out.append(value)
        return tuple(out)
    except (ValueError, binascii.Error, msgspec.DecodeError):
        raise InvalidInput("cursor", "not a cursor this API gave out", "next_cursor of a page") from None


async def list_keyset(
    services: Services,
    object_type: str,
    *,
    equals: dict[str, Any],
    after: uuid.UUID | None,
    limit: int,
    due_before: date | None = None,
) -> list[asyncpg.Record]:
    """One page of a table ordered by id, filtered on equality (None = no filter).

    ``due_before`` keeps rows whose ``answer_due`` is before that day (overdue objections).
    Column names come from the calling module, never from the request.
    """
    conditions: list[str] = []
    params: list[Any] = []
    if due_before is not None:
        params.append(due_before)
        conditions.append(f"answer_due < ${len(params)}")
    for column, value in equals.items():
        if value is not None:
            params.append(value)
            conditions.append(f"{column} = ${len(params)}")
    if after is not None:
        params.append(after)
        conditions.append(f"id > ${len(params)}")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    params.append(limit)
    sql = f"SELECT * FROM {TABLES[object_type]} {where} ORDER BY id LIMIT ${len(params)}"  # noqa: S608 - fixed names
    rows: list[asyncpg.Record] = await services.pool.fetch(sql, *params)
    return rows
