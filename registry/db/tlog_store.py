"""Reads of the audit log's storage: leaves, nodes, head, checkpoints, keys.

Guarantees: every read sees committed data only. Node reads return exactly the
requested complete subtrees or raise ``MissingNodes`` (a proof must never be
built from a partial answer).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from registry.db.types import Db

NodeId = tuple[int, int]


class MissingNodes(LookupError):
    """Stored nodes the tree should have are absent: the store is damaged or not integrated."""


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes
    checkpoint: str


async def read_head(conn: Db, *, for_update: bool = False) -> Head | None:
    sql = "SELECT size, root, checkpoint FROM tlog_head"
    if for_update:
        sql += " FOR UPDATE"
    row = await conn.fetchrow(sql)
    if row is None:
        return None
    return Head(row["size"], bytes(row["root"]), row["checkpoint"])


async def read_nodes(conn: Db, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT n.level, n.idx, n.hash FROM tlog_nodes n"
        " JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx)"
        " ON n.level = w.level AND n.idx = w.idx",
        [level for level, _ in wanted],
        [idx for _, idx in wanted],
    )
    found = {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}
    if len(found) != len(wanted):
        missing = [node for node in wanted if node not in found]
        raise MissingNodes(f"tree nodes missing from storage: {missing[:5]}")
    return found


async def read_node_range(conn: Db, level: int, start: int, end: int) -> list[bytes]:
    rows = await conn.fetch(
        "SELECT hash FROM tlog_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
        level,
        start,
        end,
    )
    return [bytes(r["hash"]) for r in rows]


async def read_leaves(conn: Db, start: int, end: int) -> list[bytes]:
    rows = await conn.fetch(
        "SELECT idx, leaf FROM tlog_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx", start, end
    )
    leaves = [bytes(r["leaf"]) for r in rows]
    if [r["idx"] for r in rows] != list(range(start, start + len(rows))):
        raise MissingNodes(f"leaves between {start} and {end} are not contiguous")
    return leaves


async def committed_leaf_count(conn: Db) -> int:
    # Leaves commit in index order (see db/audit.py), so max + 1 is the count.
    value = await conn.fetchval("SELECT coalesce(max(idx) + 1, 0) FROM tlog_leaves")
    return int(value)


async def checkpoint_at(conn: Db, size: int) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT checkpoint FROM tlog_checkpoints WHERE size = $1", size
    )
    return value


async def verifier_keys(conn: Db) -> list[asyncpg.Record]:
    """Published verifier keys, current first, then newest retired first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT verifier_key, key_name, public_key, valid_from, valid_until FROM tlog_keys"
        " ORDER BY valid_until IS NOT NULL, valid_from DESC"
    )
    return rows


def node_rows(nodes: Sequence[tuple[int, int, bytes]]) -> tuple[list[int], list[int], list[bytes]]:
    return [n[0] for n in nodes], [n[1] for n in nodes], [n[2] for n in nodes]
