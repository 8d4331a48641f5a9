"""Building proofs and tiles from storage: O(log n) node reads each, never a rebuild."""

from __future__ import annotations

from registry.db.tlog_store import read_leaves, read_node_range, read_nodes
from registry.db.types import Db
from registry.tlog.merkle import consistency_proof_plan, inclusion_proof_plan
from registry.tlog.tiles import TILE_WIDTH, entry_bundle, tile_node_range

Db = Db


async def inclusion_proof(db: Db, index: int, size: int) -> list[bytes]:
    plan = inclusion_proof_plan(index, size)
    return plan.build(await read_nodes(db, plan.node_ids))


async def consistency_proof(db: Db, old: int, new: int) -> list[bytes]:
    plan = consistency_proof_plan(old, new)
    return plan.build(await read_nodes(db, plan.node_ids))


async def hash_tile(db: Db, level: int, index: int, width: int) -> bytes:
    ids = tile_node_range(level, index, width)
    hashes = await read_node_range(db, ids[0][0], ids[0][1], ids[-1][1] + 1)
    if len(hashes) != width:
        raise LookupError(f"tile {level}/{index} needs {width} stored hashes, found {len(hashes)}")
    return b"".join(hashes)


async def entries_tile(db: Db, index: int, width: int) -> bytes:
    start = index * TILE_WIDTH
    return entry_bundle(await read_leaves(db, start, start + width))
