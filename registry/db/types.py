"""Connection types: a pooled connection proxy is as good as a connection to our queries."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
Db: TypeAlias = "Conn | asyncpg.Pool[asyncpg.Record]"


def required(row: asyncpg.Record | None, what: str = "row") -> asyncpg.Record:
    """A row a statement with RETURNING always yields; None means the statement matched nothing."""
    if row is None:
        raise LookupError(f"couldn't read back the {what}: the statement returned no row")
    return row
