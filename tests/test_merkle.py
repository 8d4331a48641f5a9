"""RFC 6962 hashing, the storage model and proof verification.

Checked against the shared vectors and against the naive RFC recursion for every size up to 300.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.tlog.merkle import (
    EMPTY_ROOT,
    NodeID,
    ProofError,
    consistency_proof_naive,
    consistency_proof_plan,
    inclusion_proof_naive,
    inclusion_proof_plan,
    leaf_hash,
    new_complete_nodes,
    node_hash,
    root_from_nodes,
    root_naive,
    root_node_ids,
    verify_consistency,
    verify_inclusion,
)
from tests import vectors

MAX_SIZE = 300
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]


def _store(leaves: list[bytes]) -> dict[NodeID, bytes]:
    """Every complete node of a tree over ``leaves``, built by new_complete_nodes in one batch."""
    store: dict[NodeID, bytes] = {}
    for level, index, digest in new_complete_nodes(0, leaves, _no_fetch):
        store[level, index] = digest
    return store


def _no_fetch(level: int, index: int) -> bytes:
    raise AssertionError(f"appending to an empty tree must not read node ({level}, {index})")


STORE = _store(LEAVES)
# Complete nodes never change as the tree grows, so one store serves every size;
# the naive roots come from the RFC recursion only.
ROOTS = [root_naive(LEAVES[:n]) for n in range(MAX_SIZE + 1)]


def h(value: str) -> bytes:
    return bytes.fromhex(value)


# --- Vectors ------------------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root_naive([]) == EMPTY_ROOT
    assert root_from_nodes(0, {}) == EMPTY_ROOT


def test_tree_vector_leaf_and_node_hashes() -> None:
    """Every complete-subtree hash of the CT reference tree, from raw leaf inputs."""
    data = vectors.tree()
    leaves = [leaf_hash(h(entry)) for entry in data["leaf_inputs_hex"]]
    store = _store(leaves)
    for level, row in enumerate(data["node_hashes_hex"]):
        for index, want in enumerate(row):
            assert store[level, index] == h(want), (level, index)
    assert len(store) == sum(len(row) for row in data["node_hashes_hex"])


@pytest.mark.parametrize("size", range(9))
def test_tree_vector_roots(size: int) -> None:
    data = vectors.tree()
    leaves = [leaf_hash(h(entry)) for entry in data["leaf_inputs_hex"]]
    want = h(data["roots_by_size_hex"][size])
    assert root_naive(leaves[:size]) == want
    assert root_from_nodes(size, _store(leaves)) == want


def _tree_leaves() -> list[bytes]:
    return [leaf_hash(h(entry)) for entry in vectors.tree()["leaf_inputs_hex"]]


@pytest.mark.parametrize(
    "case", vectors.proofs()["inclusion"], ids=lambda c: f"{c['leaf_index']}@{c['tree_size']}"
)
def test_rfc6962_inclusion_vectors(case: dict[str, Any]) -> None:
    index, size = case["leaf_index"], case["tree_size"]
    want = [h(x) for x in case["proof_hex"]]
    leaves = _tree_leaves()[:size]
    assert inclusion_proof_naive(index, leaves) == want
    assert inclusion_proof_plan(index, size).build(_store(leaves)) == want
    verify_inclusion(h(case["leaf_hash_hex"]), index, size, want, h(case["root_hex"]))


@pytest.mark.parametrize(
    "case", vectors.proofs()["consistency"], ids=lambda c: f"{c['size1']}-{c['size2']}"
)
def test_rfc6962_consistency_vectors(case: dict[str, Any]) -> None:
    old, new = case["size1"], case["size2"]
    want = [h(x) for x in case["proof_hex"]]
    leaves = _tree_leaves()[:new]
    assert consistency_proof_naive(old, leaves) == want
    assert consistency_proof_plan(old, new).build(_store(leaves)) == want
    if old:
        verify_consistency(old, new, want, h(case["root1_hex"]), h(case["root2_hex"]))


# One probe carries 12-byte "roots" (b"don't care 2") and expects success for
# equal sizes with an empty proof. Our verifier requires every hash to be 32
# bytes, so a malformed root can never be accepted by accident; it rejects this
# probe on purpose.
REJECTED_ON_PURPOSE = {"additional/sizes-are-equal-one-and-proof-is-empty.json"}


@pytest.mark.parametrize("probe", vectors.merkle_probes("inclusion"), ids=lambda p: p.id)
def test_inclusion_probe(probe: vectors.Probe) -> None:
    def run() -> None:
        verify_inclusion(
            probe.b64("leafHash"),
            probe.data["leafIdx"],
            probe.data["treeSize"],
            probe.proof(),
            probe.b64("root"),
        )

    _expect(run, want_err=probe.want_err)


@pytest.mark.parametrize("probe", vectors.merkle_probes("consistency"), ids=lambda p: p.id)
def test_consistency_probe(probe: vectors.Probe) -> None:
    def run() -> None:
        verify_consistency(
            probe.data["size1"],
            probe.data["size2"],
            probe.proof(),
            probe.b64("root1"),
            probe.b64("root2"),
        )

    _expect(run, want_err=probe.want_err or probe.id in REJECTED_ON_PURPOSE)


def test_probe_count() -> None:
    """All 196 probes are found, so a moved directory cannot silently shrink the suite."""
    assert (
        len(vectors.merkle_probes("inclusion")) + len(vectors.merkle_probes("consistency")) == 196
    )


def test_short_root_probe_is_rejected_only_for_its_length() -> None:
    """The one deviation from the probes: the same case with 32-byte roots succeeds."""
    with pytest.raises(ProofError, match="32"):
        verify_consistency(1, 1, [], b"don't care 2", b"don't care 2")
    verify_consistency(1, 1, [], ROOTS[1], ROOTS[1])


def _expect(run: Callable[[], None], *, want_err: bool) -> None:
    if want_err:
        with pytest.raises(ProofError):
            run()
    else:
        run()


# --- Storage model against the naive reference ----------------------------------------------


@pytest.mark.parametrize("size", range(MAX_SIZE + 1))
def test_root_from_nodes_matches_naive(size: int) -> None:
    ids = root_node_ids(size)
    assert len(ids) == size.bit_count()
    assert root_from_nodes(size, {node: STORE[node] for node in ids}) == ROOTS[size]


def test_every_inclusion_proof_matches_naive_up_to_64() -> None:
    for size in range(1, 65):
        for index in range(size):
            plan = inclusion_proof_plan(index, size)
            assert plan.build(STORE) == inclusion_proof_naive(index, LEAVES[:size]), (index, size)


def test_every_inclusion_proof_verifies_up_to_300() -> None:
    """Every plan verifies against the naive root (the verifier fixes the proof's shape)."""
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            plan = inclusion_proof_plan(index, size)
            assert len(plan.node_ids) <= 2 * size.bit_length()
            verify_inclusion(LEAVES[index], index, size, plan.build(STORE), ROOTS[size])


def test_sampled_inclusion_proofs_match_naive_beyond_64() -> None:
    rng = random.Random(6962)
    for size in range(65, MAX_SIZE + 1):
        index = rng.randrange(size)
        for i in {0, index, size - 1}:
            assert inclusion_proof_plan(i, size).build(STORE) == inclusion_proof_naive(
                i, LEAVES[:size]
            )


def test_every_consistency_proof_matches_naive_up_to_64() -> None:
    for new in range(65):
        for old in range(new + 1):
            plan = consistency_proof_plan(old, new)
            proof = plan.build(STORE)
            assert proof == consistency_proof_naive(old, LEAVES[:new]), (old, new)
            if old:
                verify_consistency(old, new, proof, ROOTS[old], ROOTS[new])


def test_sampled_consistency_proofs_beyond_64() -> None:
    rng = random.Random(9162)
    for new in range(65, MAX_SIZE + 1):
        for old in {1, rng.randrange(1, new + 1), new - 1, new, 1 << (new.bit_length() - 1)}:
            plan = consistency_proof_plan(old, new)
            assert len(plan.node_ids) <= 2 * new.bit_length()
            proof = plan.build(STORE)
            assert proof == consistency_proof_naive(old, LEAVES[:new]), (old, new)
            verify_consistency(old, new, proof, ROOTS[old], ROOTS[new])


def test_consistency_from_zero_or_same_size_is_empty() -> None:
    for size in (0, 1, 5, 300):
        assert consistency_proof_plan(0, size).build(STORE) == []
        assert consistency_proof_plan(size, size).build(STORE) == []


@pytest.mark.parametrize("seed", range(20))
def test_new_complete_nodes_in_random_batches(seed: int) -> None:
    """Appending in any batch split yields every complete node, reading only the old frontier."""
    rng = random.Random(seed)
    store: dict[NodeID, bytes] = {}
    size = 0
    while size < MAX_SIZE:
        batch = LEAVES[size : size + rng.choice([1, 1, 2, 3, 7, 16, 31, 64, 100])]
        frontier = set(root_node_ids(size))
        reads: list[NodeID] = []

        def get_node(
            level: int,
            index: int,
            frontier: set[NodeID] = frontier,
            reads: list[NodeID] = reads,
        ) -> bytes:
            assert (level, index) in frontier, "read outside the old tree's frontier"
            reads.append((level, index))
            return store[level, index]

        created = new_complete_nodes(size, batch, get_node)
        assert len(reads) == len(set(reads)) <= size.bit_count()
        for level, index, digest in created:
            assert (level, index) not in store, "node created twice"
            store[level, index] = digest
        size += len(batch)
        assert root_from_nodes(size, store) == ROOTS[size]
    assert store == STORE


def test_plan_node_ids_are_what_build_needs() -> None:
    plan = consistency_proof_plan(37, 300)
    needed = {node: STORE[node] for node in plan.node_ids}
    assert len(needed) == len(plan.node_ids)
    assert plan.build(needed) == consistency_proof_naive(37, LEAVES)
    missing = dict(needed)
    missing.pop(plan.node_ids[0])
    with pytest.raises(ValueError, match="missing hash"):
        plan.build(missing)


# --- Input validation -----------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (6, 5), (-1, 5)])
def test_inclusion_plan_rejects_index_outside_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="outside a tree of size"):
        inclusion_proof_plan(index, size)
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], index, size, [], ROOTS[1])


@pytest.mark.parametrize(("old", "new"), [(6, 5), (-1, 5), (1, 0)])
def test_consistency_plan_rejects_bad_sizes(old: int, new: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        consistency_proof_plan(old, new)


def test_sizes_beyond_uint64_are_rejected() -> None:
    with pytest.raises(ValueError, match="2\\^64"):
        root_node_ids(1 << 64)
    with pytest.raises(ValueError, match="2\\^64"):
        inclusion_proof_plan(0, 1 << 64)


def test_naive_functions_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof_naive(3, LEAVES[:3])
    with pytest.raises(ValueError, match="outside"):
        consistency_proof_naive(4, LEAVES[:3])


def test_new_complete_nodes_rejects_short_leaf_hash() -> None:
    with pytest.raises(ValueError, match="32"):
        new_complete_nodes(0, [b"\x00" * 31], _no_fetch)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_verifiers_reject_wrong_hash_lengths(length: int) -> None:
    bad = b"\x00" * length
    proof = inclusion_proof_plan(2, 5).build(STORE)
    with pytest.raises(ProofError, match="32"):
        verify_inclusion(bad, 2, 5, proof, ROOTS[5])
    with pytest.raises(ProofError, match="32"):
        verify_inclusion(LEAVES[2], 2, 5, proof, bad)
    with pytest.raises(ProofError, match="32"):
        verify_inclusion(LEAVES[2], 2, 5, [*proof[:-1], bad], ROOTS[5])
    cproof = consistency_proof_plan(3, 5).build(STORE)
    with pytest.raises(ProofError, match="32"):
        verify_consistency(3, 5, cproof, bad, ROOTS[5])
    with pytest.raises(ProofError, match="32"):
        verify_consistency(3, 5, [bad, *cproof[1:]], ROOTS[3], ROOTS[5])


def test_node_hash_is_domain_separated_from_leaf_hash() -> None:
    a, b = LEAVES[0], LEAVES[1]
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)


# --- Properties -----------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=MAX_SIZE)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=sizes)
def test_any_bit_flip_breaks_inclusion(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof_plan(index, size).build(STORE)
    verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])
    # Flip one bit in one of: the leaf hash, the root, or one proof element.
    target = data.draw(st.integers(0, len(proof) + 1))
    bit = data.draw(st.integers(0, 255))
    leaf, root, mutated = LEAVES[index], ROOTS[size], list(proof)
    if target == 0:
        leaf = _flip(leaf, bit)
    elif target == 1:
        root = _flip(root, bit)
    else:
        mutated[target - 2] = _flip(mutated[target - 2], bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, mutated, root)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), size=sizes)
def test_wrong_index_or_size_breaks_inclusion(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof_plan(index, size).build(STORE)
    # Any other index (possibly outside the tree) and any other size must fail.
    other_index = data.draw(st.integers(0, size).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], other_index, size, proof, ROOTS[size])
    # A size is only caught when it changes the proof's shape: leaf 0's proof in
    # a tree of 129 is also its proof in a tree of 130 under the same root. The
    # signed checkpoint, not the proof, binds the size to the root.
    other_size = data.draw(
        st.integers(index + 1, MAX_SIZE + 1).filter(
            lambda s: len(inclusion_proof_plan(index, s).parts) != len(proof)
        )
    )
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], index, other_size, proof, ROOTS[size])


@settings(max_examples=150, deadline=None)
@given(data=st.data(), new=st.integers(2, MAX_SIZE))
def test_any_bit_flip_breaks_consistency(data: st.DataObject, new: int) -> None:
    old = data.draw(st.integers(1, new - 1))
    proof = consistency_proof_plan(old, new).build(STORE)
    verify_consistency(old, new, proof, ROOTS[old], ROOTS[new])
    target = data.draw(st.integers(0, len(proof) + 1))
    bit = data.draw(st.integers(0, 255))
    old_root, new_root, mutated = ROOTS[old], ROOTS[new], list(proof)
    if target == 0:
        old_root = _flip(old_root, bit)
    elif target == 1:
        new_root = _flip(new_root, bit)
    else:
        mutated[target - 2] = _flip(mutated[target - 2], bit)
    with pytest.raises(ProofError):
        verify_consistency(old, new, mutated, old_root, new_root)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), new=st.integers(2, MAX_SIZE))
def test_truncated_or_extended_consistency_proof_fails(data: st.DataObject, new: int) -> None:
    old = data.draw(st.integers(1, new - 1))
    proof = consistency_proof_plan(old, new).build(STORE)
    with pytest.raises(ProofError):
        verify_consistency(old, new, proof[:-1], ROOTS[old], ROOTS[new])
    with pytest.raises(ProofError):
        verify_consistency(old, new, [*proof, ROOTS[new]], ROOTS[old], ROOTS[new])
