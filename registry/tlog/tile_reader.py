"""Roots and proofs of one tree size, computed from its C2SP hash tiles alone. Pure.

A client holding a checkpoint and any tlog-tiles server (the registry, a mirror, a
directory behind a static web server) can prove everything the registry's
``/log/proof/*`` endpoints prove. Every complete node of the tree is found in exactly
one tile: a node at level 8*L + r (r < 8) is the Merkle root of 2^r consecutive hashes
of one tile at level L. Where the tiles come from is the caller's ``source``; nothing
here does I/O, and only ``registry.tlog.{merkle,tiles}`` are imported, so a bureau's
``--no-deps`` install can use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from registry.tlog.merkle import (
    HASH_SIZE,
    NodeID,
    consistency_proof_plan,
    inclusion_proof_plan,
    root_from_nodes,
    root_naive,
    root_node_ids,
)
from registry.tlog.tiles import TILE_HEIGHT, TILE_WIDTH, TileState, tile_extent, tile_path

TileSource = Callable[[int, int, int | None], bytes]
"""``source(level, index, width)``: the bytes of hash tile (level, index); width None when full.

It may return anything: ``TreeTiles`` checks the length, and a wrong hash shows up as a
root or proof that does not verify."""


class TileError(ValueError):
    """A tile has the wrong length, or a node or tile lies outside the tree."""


def split_hashes(tile: bytes) -> list[bytes]:
    """The 32-byte hashes of a tile, in order."""
    if len(tile) % HASH_SIZE:
        raise TileError(f"a tile of {len(tile)} bytes is not a whole number of hashes")
    return [tile[i : i + HASH_SIZE] for i in range(0, len(tile), HASH_SIZE)]


def full_tile_hash(tile: bytes) -> bytes:
    """The Merkle root of a full tile: the hash its parent tile holds for it."""
    hashes = split_hashes(tile)
    if len(hashes) != TILE_WIDTH:
        raise TileError(f"a full tile holds {TILE_WIDTH} hashes, this one {len(hashes)}")
    return root_naive(hashes)


def tile_width(level: int, index: int, size: int) -> int | None:
    """Tile (level, index) in a tree of ``size``: None when full, else its partial width.

    Raises TileError for a tile the tree does not have (it must not be fetched)."""
    extent = tile_extent(level, index, size)
    if extent.state is TileState.BEYOND:
        raise TileError(f"a tree of size {size} has no tile {level}/{index}")
    return None if extent.state is TileState.FULL else extent.width


class TreeTiles:
    """The hash tiles of one tree size, fetched once each through ``source`` and kept.

    Nothing fetched is trusted by itself: compare ``root()`` with a signed checkpoint
    before believing any proof built from the same tiles.
    """

    def __init__(self, size: int, source: TileSource) -> None:
        if size < 0:
            raise TileError(f"tree size {size} must not be negative")
        self.size = size
        self._source = source
        self._tiles: dict[tuple[int, int], bytes] = {}

    def tile(self, level: int, index: int) -> bytes:
        """Tile (level, index) at its width in this tree; TileError if its length is wrong."""
        key = (level, index)
        data = self._tiles.get(key)
        if data is None:
            width = tile_width(level, index, self.size)
            data = self._source(level, index, width)
            want = (width or TILE_WIDTH) * HASH_SIZE
            if len(data) != want:
                raise TileError(
                    f"{tile_path(level, index, width)} is {len(data)} bytes, want {want}"
                )
            self._tiles[key] = data
        return data

    def kept(self) -> list[tuple[int, int]]:
        """The (level, index) of every tile fetched and kept so far."""
        return list(self._tiles)

    def forget(self, level: int, index: int) -> None:
        """Drop a kept tile (a caller streaming level 0 bounds its memory this way)."""
        self._tiles.pop((level, index), None)

    def tile_hash(self, level: int, index: int, position: int) -> bytes:
        """Hash number ``position`` (0..255) of tile (level, index)."""
        data = self.tile(level, index)
        offset = position * HASH_SIZE
        if not 0 <= offset < len(data):
            raise TileError(f"tile {level}/{index} has no hash {position} in a tree of {self.size}")
        return data[offset : offset + HASH_SIZE]

    def node(self, node: NodeID) -> bytes:
        """The hash of a complete node (level, index) of this tree."""
        level, index = node
        if level < 0 or index < 0 or (index + 1) << level > self.size:
            raise TileError(f"node (level {level}, index {index}) is not complete at {self.size}")
        tile_level, rise = divmod(level, TILE_HEIGHT)
        # The node spans 2^rise hashes of one tile: nodes are aligned and 2^rise <= 128.
        first = index << rise
        data = self.tile(tile_level, first // TILE_WIDTH)
        offset = (first % TILE_WIDTH) * HASH_SIZE
        return root_naive(split_hashes(data[offset : offset + (HASH_SIZE << rise)]))

    def nodes(self, ids: Iterable[NodeID]) -> dict[NodeID, bytes]:
        return {node: self.node(node) for node in ids}

    def root(self) -> bytes:
        """The tree's root, from the right edge of each level (its partial tiles)."""
        return root_from_nodes(self.size, self.nodes(root_node_ids(self.size)))

    def leaf_hash(self, index: int) -> bytes:
        return self.node((0, index))

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[size])."""
        plan = inclusion_proof_plan(index, self.size)
        return plan.build(self.nodes(plan.node_ids))

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 6962 PROOF(old_size, D[size]), from this (the newer) tree's tiles only."""
        plan = consistency_proof_plan(old_size, self.size)
        return plan.build(self.nodes(plan.node_ids))
