"""The witnesses' cosignatures of the log's checkpoints (schema/0019_witness_cosignatures.sql).

Guarantees: every read sees committed rows only; ``store_cosignature`` is durable on
return and keeps the first line stored for a (size, witness), whoever stored it. Reads
take the witnesses' verifier keys, in the configured order, and answer in that order:
a witness no longer configured is never counted or served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from registry.db.types import Db


@dataclass(frozen=True)
class Cosigned:
    """A witness's newest stored cosignature: the tree size, its line, when it arrived."""

    size: int
    line: str
    received_at: datetime


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A signed checkpoint (the note as the log signed it) and its cosignature lines."""

    size: int
    checkpoint: str
    lines: tuple[str, ...]

    def note(self) -> str:
        """The checkpoint with the cosignatures as further signature lines of the note."""
        return self.checkpoint + "".join(line + "\n" for line in self.lines)


async def store_cosignature(
    db: Db, size: int, witness_key: str, line: str, timestamp: int
) -> Cosigned:
    """Store ``line`` for (``size``, ``witness_key``) unless one is stored; the row kept.

    The checkpoint of ``size`` must be stored (foreign key): the log signed it.
    """
    # DO UPDATE to itself, not DO NOTHING: then RETURNING gives the row already there.
    row = await db.fetchrow(
        "INSERT INTO tlog_cosignatures (tree_size, witness_key, signature, cosigned_at)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tree_size, witness_key)"
        " DO UPDATE SET signature = tlog_cosignatures.signature"
        " RETURNING signature, received_at",
        size, witness_key, line, datetime.fromtimestamp(timestamp, UTC),
    )
    assert row is not None  # an upsert always returns its row
    return Cosigned(size, row["signature"], row["received_at"])


async def newest_cosigned(db: Db, witness_keys: Sequence[str]) -> dict[str, Cosigned]:
    """Each witness's newest stored cosignature (witnesses without one are left out).

    One index probe per witness (tlog_cosignatures_by_witness), however long the history.
    """
    rows = await db.fetch(
        "SELECT k.key, c.tree_size, c.signature, c.received_at FROM unnest($1::text[]) AS k(key)"
        " JOIN LATERAL (SELECT tree_size, signature, received_at FROM tlog_cosignatures"
        "   WHERE witness_key = k.key ORDER BY tree_size DESC LIMIT 1) c ON true",
        list(witness_keys),
    )
    return {r["key"]: Cosigned(r["tree_size"], r["signature"], r["received_at"]) for r in rows}


async def head_with_cosignatures(
    db: Db, witness_keys: Sequence[str]
) -> CosignedCheckpoint | None:
    """The tree head's checkpoint and the cosignatures stored for it, in one read."""
    row = await db.fetchrow(
        "SELECT h.size, h.checkpoint, ARRAY(SELECT c.signature FROM tlog_cosignatures c"
        "   WHERE c.tree_size = h.size AND c.witness_key = ANY($1::text[])"
        "   ORDER BY array_position($1::text[], c.witness_key)) AS lines"
        " FROM tlog_head h",
        list(witness_keys),
    )
    if row is None:
        return None
    return CosignedCheckpoint(row["size"], row["checkpoint"], tuple(row["lines"]))


async def newest_witnessed(
    db: Db, witness_keys: Sequence[str], quorum: int
) -> CosignedCheckpoint | None:
    """The largest checkpoint cosigned by at least ``quorum`` of the witnesses, or None.

    Walks the sizes down the primary key from the largest and stops at the first that
    has its quorum: cheap while recent checkpoints reach it, but after a long outage of
    the quorum it reads every cosignature since. So it is read once at start
    (tlog/witnessing.py), never per request.
    """
    row = await db.fetchrow(
        "WITH w AS (SELECT tree_size FROM tlog_cosignatures WHERE witness_key = ANY($1::text[])"
        "   GROUP BY tree_size HAVING count(*) >= $2 ORDER BY tree_size DESC LIMIT 1)"
        " SELECT p.size, p.checkpoint, ARRAY(SELECT c.signature FROM tlog_cosignatures c"
        "   WHERE c.tree_size = p.size AND c.witness_key = ANY($1::text[])"
        "   ORDER BY array_position($1::text[], c.witness_key)) AS lines"
        " FROM w JOIN tlog_checkpoints p ON p.size = w.tree_size",
        list(witness_keys), quorum,
    )
    if row is None:
        return None
    return CosignedCheckpoint(row["size"], row["checkpoint"], tuple(row["lines"]))
