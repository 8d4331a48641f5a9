"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, proofs and their verification. Pure.

Two implementations live here on purpose:

- the *naive* functions follow the RFC's recursive definitions (MTH, PATH,
  PROOF) over a full list of leaves. They are O(n) per call and exist as the
  reference the fast code is tested against, and for offline verification of a
  complete copy of the log;
- the *storage model* functions are what the server uses. Every COMPLETE
  subtree (2^level leaves, aligned) is stored once, keyed by ``(level,
  index)``: level 0 index i is the hash of leaf i, level l index k is the hash
  of leaves [k*2^l, (k+1)*2^l). Complete nodes never change once written, so
  storage is append-only. Incomplete subtrees on the right edge of a tree are
  never stored; they are recomputed from the O(log n) complete nodes that
  cover them (the same idea as transparency-dev/merkle's ``proof.Nodes`` and
  ``Rehash``).

Every hash is 32 bytes (SHA-256); verifiers reject anything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

# Tree sizes are uint64 on the wire (checkpoints, tiles); refuse anything larger
# rather than compute proofs no client could express.
MAX_TREE_SIZE = (1 << 64) - 1


class ProofError(ValueError):
    """A proof does not verify, or its inputs are malformed; the message says which."""


# A complete subtree as (level, index): it covers leaves [index*2^level, (index+1)*2^level).
# A plain tuple (not a NamedTuple, whose ``index`` would shadow tuple.index) so
# callers can key their own dicts with (level, idx) from the database.
NodeID: TypeAlias = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2): the RFC's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_size(name: str, size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"{name} must be between 0 and 2^64-1, got {size}")


# --- Naive reference (RFC 6962 §2.1, §2.1.1, §2.1.2) ---------------------------------


def root_naive(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (apply ``leaf_hash`` to raw entries first). O(n)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_naive(leaf_hashes[:k]), root_naive(leaf_hashes[k:]))


def inclusion_proof_naive(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) from RFC 6962 §2.1.1."""
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is outside a tree of size {len(leaf_hashes)}")

    def path(m: int, d: Sequence[bytes]) -> list[bytes]:
        n = len(d)
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, d[:k]), root_naive(d[k:])]
        return [*path(m - k, d[k:]), root_naive(d[:k])]

    return path(index, leaf_hashes)


def consistency_proof_naive(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) from RFC 6962 §2.1.2; empty when old_size is 0 or n."""
    n = len(leaf_hashes)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} is outside 0..{n}")
    if old_size in (0, n):
        return []

    def subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if complete else [root_naive(d)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, d[:k], complete), root_naive(d[k:])]
        return [*subproof(m - k, d[k:], False), root_naive(d[:k])]

    return subproof(old_size, leaf_hashes, True)


# --- Storage model --------------------------------------------------------------------


def _range_node_ids(begin: int, end: int) -> list[NodeID]:
    """The complete nodes that exactly tile leaves [begin, end), left to right.

    Each step takes the largest aligned subtree starting at ``begin`` that fits.
    For the ranges used here (``begin`` aligned to a power of two at least as
    large as the range) the sizes strictly decrease, which is what makes the
    right-to-left fold in ``_fold`` equal to the RFC's MTH of the range.
    """
    ids: list[NodeID] = []
    while begin < end:
        # Alignment of begin (begin == 0 is aligned to everything).
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length()
        while (1 << level) > end - begin:
            level -= 1
        ids.append((level, begin >> level))
        begin += 1 << level
    return ids


def _fold(ids: Sequence[NodeID], hashes_by_id: Mapping[NodeID, bytes]) -> bytes:
    """MTH of the range covered by ``ids`` (from ``_range_node_ids``): hash right to left."""
    acc = _lookup(hashes_by_id, ids[-1])
    for node in reversed(ids[:-1]):
        acc = node_hash(_lookup(hashes_by_id, node), acc)
    return acc


def _lookup(hashes_by_id: Mapping[NodeID, bytes], node: NodeID) -> bytes:
    try:
        return hashes_by_id[node]
    except KeyError:
        raise ValueError(f"missing hash for node (level {node[0]}, index {node[1]})") from None


def root_node_ids(size: int) -> list[NodeID]:
    """The complete subtrees whose fold is the root of a tree of ``size``: one per set bit.

    These are also the tree's *left frontier*: exactly the nodes that
    ``new_complete_nodes`` may ask for when appending to a tree of this size.
    """
    _check_size("tree size", size)
    return _range_node_ids(0, size)


def root_from_nodes(size: int, hashes_by_id: Mapping[NodeID, bytes]) -> bytes:
    """The root of a tree of ``size`` from the hashes of ``root_node_ids(size)``."""
    ids = root_node_ids(size)
    if not ids:
        return EMPTY_ROOT
    return _fold(ids, hashes_by_id)


def new_complete_nodes(
    old_size: int,
    leaf_hashes: Sequence[bytes],
    get_node: Callable[[int, int], bytes],
) -> list[tuple[int, int, bytes]]:
    """Every complete node created by appending ``leaf_hashes`` to a tree of ``old_size``.

    Returns ``(level, index, hash)`` records, level-0 ones included, in creation
    order. ``get_node(level, index)`` is called only for nodes of
    ``root_node_ids(old_size)`` (each at most once), because a new complete node
    can only have a left sibling from the old tree if that sibling is on the old
    tree's left frontier.
    """
    _check_size("old size", old_size)
    _check_size("new size", old_size + len(leaf_hashes))
    created: list[tuple[int, int, bytes]] = []
    # Left children still waiting for their right sibling, by NodeID. Starts
    # empty and is filled from get_node lazily, so appending a leaf that
    # completes nothing fetches nothing.
    waiting: dict[NodeID, bytes] = {}
    for offset, digest in enumerate(leaf_hashes):
        if len(digest) != HASH_SIZE:
            raise ValueError(f"leaf hash {offset} is {len(digest)} bytes, want {HASH_SIZE}")
        level, index = 0, old_size + offset
        created.append((level, index, digest))
        while index & 1:
            left = waiting.pop((level, index - 1), None)
            if left is None:
                left = get_node(level, index - 1)
            digest = node_hash(left, digest)
            level, index = level + 1, index >> 1
            created.append((level, index, digest))
        waiting[level, index] = digest
    return created


@dataclass(frozen=True)
class ProofPlan:
    """Which complete nodes a proof needs, and how to turn their hashes into the proof.

    ``parts[i]`` lists the complete nodes covering the i-th proof element; a
    single node is used as is, several (only on the right edge of the tree)
    are folded into the incomplete subtree's hash.
    """

    parts: tuple[tuple[NodeID, ...], ...]

    @property
    def node_ids(self) -> list[NodeID]:
        """Distinct nodes to fetch, in first-use order."""
        return list(dict.fromkeys(node for part in self.parts for node in part))

    def build(self, hashes_by_id: Mapping[NodeID, bytes]) -> list[bytes]:
        """The RFC 6962 proof; ValueError if a needed hash is missing."""
        return [_fold(part, hashes_by_id) for part in self.parts]


def inclusion_proof_plan(index: int, size: int) -> ProofPlan:
    """Plan for PATH(index, D[size]); the same recursion as the naive one, over NodeIDs."""
    _check_size("tree size", size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    parts: list[tuple[NodeID, ...]] = []
    begin, end = 0, size
    # Walk down from the root; each step's sibling subtree is a proof element.
    # Elements are produced root-first, the proof is leaf-first: reverse at the end.
    while end - begin > 1:
        k = _split(end - begin)
        if index < begin + k:
            parts.append(tuple(_range_node_ids(begin + k, end)))
            end = begin + k
        else:
            parts.append(tuple(_range_node_ids(begin, begin + k)))
            begin += k
    parts.reverse()
    return ProofPlan(tuple(parts))


def consistency_proof_plan(old_size: int, new_size: int) -> ProofPlan:
    """Plan for PROOF(old_size, D[new_size]); empty when old_size is 0 or new_size."""
    _check_size("new size", new_size)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is outside 0..{new_size}")
    if old_size in (0, new_size):
        return ProofPlan(())
    parts: list[tuple[NodeID, ...]] = []
    m, begin, end, complete = old_size, 0, new_size, True
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            parts.append(tuple(_range_node_ids(begin + k, end)))
            end = begin + k
        else:
            parts.append(tuple(_range_node_ids(begin, begin + k)))
            m -= k
            begin += k
            complete = False
    if not complete:
        parts.append(tuple(_range_node_ids(begin, end)))
    parts.reverse()
    return ProofPlan(tuple(parts))


# --- Verification (RFC 9162 §2.1.3.2, §2.1.4.2) ---------------------------------------


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, want {HASH_SIZE}")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless ``proof`` shows leaf ``index`` with ``leaf_hash`` is in ``root``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    for i, element in enumerate(proof):
        _check_hash(f"proof element {i}", element)
    fn, sn, r = index, size - 1, leaf_hash
    for element in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof has too many elements ({len(proof)})")
        if fn & 1 or fn == sn:
            r = node_hash(element, r)
            # A right-edge node with no right sibling: skip the levels where it
            # is carried up unchanged.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"inclusion proof has too few elements ({len(proof)})")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    old_size: int,
    new_size: int,
    proof: Sequence[bytes],
    old_root: bytes,
    new_root: bytes,
) -> None:
    """Raise ProofError unless ``proof`` shows the tree ``old_root`` is a prefix of ``new_root``.

    A proof from size 0 is an error here, as in transparency-dev/merkle: every
    tree extends the empty one, so such a "proof" proves nothing and asking for
    it is a caller bug. Protocols that accept old size 0 (tlog-witness) must
    special-case it before calling.
    """
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes must not be negative, got {old_size} and {new_size}")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    for i, element in enumerate(proof):
        _check_hash(f"proof element {i}", element)
    if old_size == new_size:
        if proof:
            raise ProofError("sizes are equal, so the proof must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if not proof:
        raise ProofError("consistency proof is empty")

    path = list(proof)
    # If the old tree is a complete subtree of the new one, its root is the
    # proof's implicit first element.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for element in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof has too many elements ({len(proof)})")
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"consistency proof has too few elements ({len(proof)})")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root at size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root at size {new_size}")
