"""Roots and proofs computed from C2SP tiles equal the RFC 6962 reference over the leaves.

``naive_tile`` builds tiles from the spec's definition (MTH of 256^L leaves per hash),
independently of registry/tlog/tile_reader.py; tests/test_log_mirror.py serves them as a
fake log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from registry.tlog.merkle import (
    consistency_proof_naive,
    inclusion_proof_naive,
    leaf_hash,
    root_naive,
    verify_consistency,
    verify_inclusion,
)
from registry.tlog.tile_reader import TileError, TreeTiles, full_tile_hash, split_hashes
from registry.tlog.tiles import TILE_WIDTH, tile_extent


def leaves_of(count: int, seed: str = "leaf") -> list[bytes]:
    return [f"{seed} {i}".encode() for i in range(count)]


def naive_tile(level_zero: Sequence[bytes], level: int, index: int, width: int) -> bytes:
    """Tile (level, index) of the given width: hash i is MTH(D[i*256^L : (i+1)*256^L])."""
    span = TILE_WIDTH**level
    first = index * TILE_WIDTH
    return b"".join(
        root_naive(level_zero[i * span : (i + 1) * span]) for i in range(first, first + width)
    )


class NaiveSource:
    """A tile source over a list of leaf hashes that counts what it was asked for."""

    def __init__(self, level_zero: Sequence[bytes]) -> None:
        self.level_zero = level_zero
        self.fetched: list[tuple[int, int, int | None]] = []

    def __call__(self, level: int, index: int, width: int | None) -> bytes:
        self.fetched.append((level, index, width))
        return naive_tile(self.level_zero, level, index, width or TILE_WIDTH)


SIZES = [1, 2, 3, 7, 8, 9, 255, 256, 257, 300, 511, 512, 513, 767, 1000]


@pytest.mark.parametrize("size", SIZES)
def test_root_and_proofs_equal_the_reference(size: int) -> None:
    """Root, every inclusion proof and every consistency proof match the naive RFC ones."""
    level_zero = [leaf_hash(x) for x in leaves_of(size)]
    tiles = TreeTiles(size, NaiveSource(level_zero))
    root = root_naive(level_zero)
    assert tiles.root() == root
    step = max(1, size // 40)  # every leaf of small trees, a spread of big ones
    for index in [*range(0, size, step), size - 1]:
        proof = tiles.inclusion_proof(index)
        assert proof == inclusion_proof_naive(index, level_zero)
        assert tiles.leaf_hash(index) == level_zero[index]
        verify_inclusion(level_zero[index], index, size, proof, root)
    for old in [*range(1, size, step), size]:
        proof = tiles.consistency_proof(old)
        assert proof == consistency_proof_naive(old, level_zero)
        verify_consistency(old, size, proof, root_naive(level_zero[:old]), root)


def test_a_tree_with_three_tile_levels() -> None:
    """At 65,536 + 300 leaves the root uses a level-2 partial tile; proofs cross three levels."""
    size = TILE_WIDTH**2 + 300
    level_zero = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    source = NaiveSource(level_zero)
    tiles = TreeTiles(size, source)
    assert tiles.root() == root_naive(level_zero)
    # The root needs only the right edge: one partial tile per level.
    assert sorted(source.fetched) == [(0, 257, 44), (1, 1, 1), (2, 0, 1)]
    for index in (0, 70_000 - 4_500, size - 1):
        assert tiles.inclusion_proof(index) == inclusion_proof_naive(index, level_zero)
    for old in (1, 256, 65_535, 65_536, 65_537):
        assert tiles.consistency_proof(old) == consistency_proof_naive(old, level_zero)


def test_each_tile_is_fetched_once_at_its_width_in_the_tree() -> None:
    level_zero = [leaf_hash(x) for x in leaves_of(300)]
    source = NaiveSource(level_zero)
    tiles = TreeTiles(300, source)
    tiles.root()
    tiles.root()
    tiles.inclusion_proof(5)
    assert source.fetched == [(1, 0, 1), (0, 1, 44), (0, 0, None)]
    tiles.forget(0, 0)
    tiles.inclusion_proof(5)
    assert source.fetched[-1] == (0, 0, None)


@pytest.mark.parametrize("length", [0, 31, 32 * 43, 32 * 45, 8192])
def test_a_tile_of_the_wrong_length_is_refused(length: int) -> None:
    tiles = TreeTiles(300, lambda level, index, width: b"\x00" * length)
    with pytest.raises(TileError, match=r"tile/0/001\.p/44 is \d+ bytes, want 1408"):
        tiles.tile(0, 1)


def test_nodes_and_tiles_outside_the_tree_are_refused() -> None:
    tiles = TreeTiles(300, NaiveSource([leaf_hash(x) for x in leaves_of(300)]))
    with pytest.raises(TileError, match="not complete"):
        tiles.node((2, 75))  # leaves 300..303
    with pytest.raises(TileError, match="not complete"):
        tiles.node((0, -1))
    with pytest.raises(TileError, match="has no tile 0/2"):
        tiles.tile(0, 2)
    with pytest.raises(TileError, match="has no hash 44"):
        tiles.tile_hash(0, 1, 44)
    with pytest.raises(TileError, match="must not be negative"):
        TreeTiles(-1, NaiveSource([]))


def test_full_tile_hash_is_the_parent_entry() -> None:
    level_zero = [leaf_hash(x) for x in leaves_of(512)]
    full = naive_tile(level_zero, 0, 1, TILE_WIDTH)
    assert full_tile_hash(full) == naive_tile(level_zero, 1, 0, 2)[32:]
    assert split_hashes(full)[3] == level_zero[259]
    with pytest.raises(TileError, match="holds 256 hashes, this one 255"):
        full_tile_hash(full[:-32])
    with pytest.raises(TileError, match="whole number of hashes"):
        split_hashes(full[:-1])
    assert tile_extent(1, 0, 512).width == 2
