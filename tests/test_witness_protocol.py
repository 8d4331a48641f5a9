"""The witness's pure core: request framing, the extends-check for every pair of small
sizes, and the evidence file format."""

from __future__ import annotations

import base64

import pytest

from registry.tlog.merkle import EMPTY_ROOT, consistency_proof_naive, leaf_hash, root_naive
from registry.tlog.note import Checkpoint
from registry.witness.evidence import Evidence, EvidenceError, format_evidence, parse_evidence
from registry.witness.protocol import (
    MAX_PROOF_LINES,
    Conflict,
    Inconsistent,
    Malformed,
    check_extends,
    parse_request,
)

LEAVES = [leaf_hash(f"leaf {i}".encode()) for i in range(17)]


def head(size: int, root: bytes | None = None) -> Checkpoint:
    return Checkpoint("o", size, root if root is not None else root_naive(LEAVES[:size]))


def test_request_framing() -> None:
    proof = [bytes([i]) * 32 for i in range(3)]
    body = b"old 7\n" + b"".join(base64.b64encode(p) + b"\n" for p in proof) + b"\nnote\n\nsig\n"
    request = parse_request(body)
    assert request.old_size == 7
    assert request.proof == tuple(proof)
    assert request.note == b"note\n\nsig\n"  # the note keeps its own blank line
    assert parse_request(b"old 0\n\nx").proof == ()
    limit = b"old 1\n" + b"\n".join([base64.b64encode(bytes(32))] * MAX_PROOF_LINES) + b"\n\nx"
    assert len(parse_request(limit).proof) == MAX_PROOF_LINES
    assert parse_request(b"old 18446744073709551615\n\nx").old_size == (1 << 64) - 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 0",
        b"old 0\n",
        b"old  0\n\nx",
        b"old 0 \n\nx",
        b"Old 0\n\nx",
        b"old 0x1\n\nx",
        b"old \xd9\xa1\n\nx",  # an Arabic-Indic digit one: a digit to str.isdigit, not to us
        b"old 1\n" + base64.b64encode(bytes(32))[:-1] + b"\n\nx",
        b"old 1\n" + base64.b64encode(bytes(33)) + b"\n\nx",
        b"old 1\n" + base64.b64encode(bytes(32)) + b" \n\nx",
        b"old 1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n\nx",  # not canonical
    ],
)
def test_malformed_framing(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse_request(body)


def test_every_proof_between_small_sizes_is_accepted_and_any_damage_refused() -> None:
    """For 1 <= old <= new <= 16: the naive proof passes; each flipped bit, a dropped or an
    extra element, or a wrong old root is refused as a possible fork."""
    for new in range(1, 17):
        for old in range(1, new + 1):
            proof = consistency_proof_naive(old, LEAVES[:new])
            check_extends(old, proof, head(new), head(old))
            damaged: list[list[bytes]] = [proof[:-1], [*proof, bytes(32)]]
            for i in range(len(proof)):
                flipped = bytearray(proof[i])
                flipped[i % 32] ^= 1
                damaged.append([*proof[:i], bytes(flipped), *proof[i + 1 :]])
            for bad in damaged:
                if bad == proof:
                    continue
                with pytest.raises(Inconsistent) as refused:
                    check_extends(old, bad, head(new), head(old))
                assert refused.value.fork
            with pytest.raises(Inconsistent):
                check_extends(old, proof, head(new), head(old, root=bytes(32)))


def test_the_order_of_checks() -> None:
    """old > size is 400 before anything; then 409 names the known size; then 422."""
    with pytest.raises(Malformed, match="larger than"):
        check_extends(5, [], head(4), head(5))
    with pytest.raises(Conflict) as conflict:
        check_extends(2, [], head(4), head(3))
    assert conflict.value.known_size == 3 and conflict.value.status == 409
    with pytest.raises(Conflict) as never:
        check_extends(2, [], head(4), None)
    assert never.value.known_size == 0
    with pytest.raises(Inconsistent, match="empty tree") as empty:
        check_extends(0, [], head(0, root=bytes(32)), None)
    assert not empty.value.fork
    with pytest.raises(Inconsistent, match="must be empty") as proof_from_zero:
        check_extends(0, [bytes(32)], head(3), None)
    assert not proof_from_zero.value.fork
    check_extends(0, [], head(0, root=EMPTY_ROOT), None)
    check_extends(0, [], head(3), head(0))
    with pytest.raises(Inconsistent, match="another root at size 3") as fork:
        check_extends(3, [], head(3, root=bytes(32)), head(3))
    assert fork.value.fork and fork.value.status == 422


EVIDENCE = Evidence(
    origin="registry.example/log",
    reason="this witness cosigned another root at size 3",
    time=1_700_000_000,
    old_size=3,
    proof=(bytes(32), bytes([1]) * 32),
    stored_note="registry.example/log\n3\nroot\n\n\u2014 k AAAA\n",
    # A note may hold text that looks like a field: the byte counts frame it.
    offered_note="registry.example/log\n3\nother\nstored 5\n\n\u2014 k BBBB\n",
)


def test_evidence_round_trip() -> None:
    data = format_evidence(EVIDENCE)
    assert parse_evidence(data) == EVIDENCE
    assert data.startswith(b"registry witness evidence v1\norigin registry.example/log\n")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.replace(b"evidence v1", b"evidence v2"), "first line"),
        (lambda d: d.replace(b"\norigin ", b"\norigins "), "'origin'"),
        (lambda d: d.replace(b"time 1700000000", b"time 17x"), "decimal"),
        (lambda d: d.replace(b"proof 2", b"proof 3"), "proof line 3"),
        (lambda d: d.replace(b"proof 2", b"proof 1"), "'stored'"),
        (lambda d: d[:-5], "cut short"),
        (lambda d: d + b"more", "goes on"),
        (lambda d: d.replace(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", b"!!"), "base64"),
        (lambda d: d.split(b"\n", 1)[0], "first line"),
        (lambda d: d.split(b"\norigin", 1)[0] + b"\n", "origin line"),
        (lambda d: d.replace(b"\xe2\x80\x94 k AAAA", b"\xff\xff k AAAA"), "UTF-8"),
    ],
)
def test_malformed_evidence(mutate: object, match: str) -> None:
    assert callable(mutate)
    with pytest.raises(EvidenceError, match=match):
        parse_evidence(mutate(format_evidence(EVIDENCE)))


def test_evidence_fields_must_be_one_line() -> None:
    with pytest.raises(EvidenceError, match="one line"):
        format_evidence(Evidence("o\nx", "r", 1, 1, (), "a\n", "b\n"))
