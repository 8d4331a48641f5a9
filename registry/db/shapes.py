"""What the catalog says about an audited table's columns, and a row as PostgreSQL will store it.

``audited_insert`` (db/audit.py) commits to a new row's body before the database has
returned the row, so it must know, from the values it sends, exactly what the database
will hand back: every column present (a column left to its default would be missing
from the body) and each value in the form asyncpg returns it (a ``numeric(18, 6)`` comes
back with six decimals). ``stored_form`` does that from the column types, read once per
table per running app (``TableShapes``, on ``Services``), and refuses a type whose
stored form it cannot predict.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from registry.db.types import Db
from registry.tlog.leaf import DERIVED_COLUMNS, LATE_COLUMNS

# Types whose value comes back from PostgreSQL exactly as sent (given the Python type
# asyncpg encodes it from), besides numeric, uuid, date and timestamptz handled below.
_AS_SENT = {"text", "boolean", "smallint", "integer", "bigint", "bytea", "text[]"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): "numeric(18,6)", "timestamp with time zone", "text[]", …
    scale: int | None  # a numeric column's scale, when it has one


@dataclass
class TableShapes:
    """Column lists of audited tables, read from the catalog on first use."""

    known: dict[str, tuple[Column, ...]] = field(default_factory=dict)

    async def of(self, db: Db, table: str) -> tuple[Column, ...]:
        shape = self.known.get(table)
        if shape is None:
            rows = await db.fetch(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type,"
                # numeric's typmod is ((precision << 16) | scale) + 4; -1 without one.
                " CASE WHEN a.atttypid = 'numeric'::regtype AND a.atttypmod >= 4"
                " THEN (a.atttypmod - 4) & 65535 END AS scale"
                " FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0"
                " AND NOT a.attisdropped ORDER BY a.attnum",
                table,
            )
            shape = tuple(Column(r["attname"], r["type"], r["scale"]) for r in rows)
            self.known[table] = shape
        return shape


def stored_form(table: str, shape: tuple[Column, ...], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` for a new row of ``table`` as the database will return them.

    Every column but ``log_index`` must be given, except derived and late columns (left
    NULL, they are not in the body). Raises ``RuntimeError`` for a missing or unknown
    column or a type whose stored form is not predictable: a programming error.
    """
    names = {column.name for column in shape}
    unknown = set(values) - names
    if unknown:
        raise RuntimeError(f"{table} has no column {sorted(unknown)}")
    stored: dict[str, Any] = {}
    for column in shape:
        if column.name == "log_index":
            continue
        if column.name not in values:
            if column.name in DERIVED_COLUMNS or column.name in LATE_COLUMNS:
                continue
            raise RuntimeError(f"a new {table} row needs {column.name} (no default is assumed)")
        stored[column.name] = _stored_value(table, column, values[column.name])
    return stored


def _stored_value(table: str, column: Column, value: Any) -> Any:
    if value is None:
        return None
    kind = column.type
    if kind.startswith("numeric"):
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if column.scale is None:
            return number
        # PostgreSQL rounds half away from zero to the column's scale.
        return number.quantize(Decimal(1).scaleb(-column.scale), rounding=ROUND_HALF_UP)
    if kind == "uuid":
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    if kind == "timestamp with time zone":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise RuntimeError(f"{table}.{column.name} needs a timezone-aware datetime")
        return value
    if kind == "date":
        if isinstance(value, datetime) or not isinstance(value, date):
            raise RuntimeError(f"{table}.{column.name} needs a date")
        return value
    if kind in _AS_SENT:
        if isinstance(value, float):
            raise RuntimeError(f"{table}.{column.name}: floats are not audited")
        return list(value) if kind.endswith("[]") else value
    raise RuntimeError(
        f"{table}.{column.name} is {kind}, whose stored form audited_insert cannot predict: "
        "write it with audited_write"
    )
