"""The add-checkpoint request of c2sp.org/tlog-witness and the checks it must pass. Pure.

A request body is ``old <size>\\n``, up to 63 base64 consistency-proof lines, a
blank line, then the signed checkpoint. Each refusal is an exception carrying the
HTTP status the spec requires, in the spec's order:

- 400 the body is malformed, or ``old`` is larger than the checkpoint's size;
- 404 the checkpoint's origin is not a log this witness follows;
- 403 no signature by a key trusted for that origin, or such a signature is invalid;
- 409 ``old`` is not the size this witness last cosigned (the answer carries that size);
- 422 a size-0 checkpoint without the empty root, a proof from size 0, a proof that
  does not verify, or another root at the size last cosigned. The last two are
  possible forks: ``Inconsistent.fork`` is set, and the witness keeps the evidence.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from registry.tlog.merkle import EMPTY_ROOT, HASH_SIZE, ProofError, verify_consistency
from registry.tlog.note import (
    Checkpoint,
    InvalidSignatureError,
    NoteError,
    UnverifiedNoteError,
    Verifier,
    open_note,
    parse_checkpoint,
)

MAX_PROOF_LINES = 63
_MAX_SIZE = (1 << 64) - 1
_OLD_RE = re.compile(r"old (0|[1-9][0-9]{0,19})")


class Refused(Exception):
    """The witness does not cosign; ``status`` is the HTTP status, the message says why."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Malformed(Refused):
    status = 400


class SignatureRefused(Refused):
    status = 403


class UnknownLog(Refused):
    status = 404


class Conflict(Refused):
    """``old`` is not the size last cosigned: the client should retry from ``known_size``."""

    status = 409

    def __init__(self, known_size: int, old_size: int) -> None:
        super().__init__(
            f"old size {old_size} is not the size this witness last cosigned, {known_size}"
        )
        self.known_size = known_size


class Inconsistent(Refused):
    """The checkpoint is not shown to extend the last one cosigned. ``fork``: it may be a fork."""

    status = 422

    def __init__(self, message: str, *, fork: bool = False) -> None:
        super().__init__(message)
        self.fork = fork


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed request: the client's idea of the size last cosigned, its proof, the note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def parse_request(body: bytes) -> AddCheckpoint:
    """Split and check the request's framing; the note itself is checked by ``open_submitted``."""
    # The proof lines hold no blank line, so the first one ends them.
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise Malformed("the request has no blank line between the old size and the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise Malformed("the old size and proof lines must be ASCII") from None
    match = _OLD_RE.fullmatch(lines[0])
    if match is None or int(match.group(1)) > _MAX_SIZE:
        raise Malformed(
            f"the first line must be 'old <size>', a decimal without leading zeros, "
            f"got {lines[0][:40]!r}"
        )
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise Malformed(f"{len(proof_lines)} proof lines, at most {MAX_PROOF_LINES} are allowed")
    proof = []
    for number, line in enumerate(proof_lines, start=1):
        try:
            node = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            node = b""
        if len(node) != HASH_SIZE or base64.b64encode(node).decode() != line:
            raise Malformed(f"proof line {number} is not a base64 SHA-256 hash: {line[:60]!r}")
        proof.append(node)
    return AddCheckpoint(int(match.group(1)), tuple(proof), note)


def open_submitted(
    note: bytes, logs: Mapping[str, Sequence[Verifier]]
) -> tuple[Checkpoint, str]:
    """The checkpoint and its text, if its origin is known and a trusted key signed it."""
    try:
        origin = note[: note.find(b"\n")].decode("utf-8") if b"\n" in note else ""
    except UnicodeDecodeError:
        raise Malformed("the checkpoint is not valid UTF-8") from None
    verifiers = logs.get(origin)
    if verifiers is None:
        raise UnknownLog(f"this witness does not follow a log with origin {origin[:100]!r}")
    try:
        text, _ = open_note(note, verifiers)
    except (UnverifiedNoteError, InvalidSignatureError) as error:
        raise SignatureRefused(f"the checkpoint's signature does not verify: {error}") from None
    except NoteError as error:
        raise Malformed(f"the checkpoint is not a signed note: {error}") from None
    try:
        checkpoint = parse_checkpoint(text)
    except NoteError as error:
        raise Malformed(f"the note is not a checkpoint: {error}") from None
    return checkpoint, text


def check_extends(
    old_size: int, proof: Sequence[bytes], new: Checkpoint, latest: Checkpoint | None
) -> None:
    """Raise unless ``new`` may be cosigned after ``latest`` (None: nothing cosigned yet)."""
    if old_size > new.size:
        raise Malformed(f"old size {old_size} is larger than the checkpoint's size {new.size}")
    known = latest.size if latest is not None else 0
    if old_size != known:
        raise Conflict(known, old_size)
    if new.size == 0 and new.root_hash != EMPTY_ROOT:
        raise Inconsistent("a checkpoint of size 0 must have the empty tree's root hash")
    if latest is None or old_size == 0:
        # The empty tree is a prefix of every tree: nothing to prove.
        if proof:
            raise Inconsistent("from old size 0 the consistency proof must be empty")
        return
    try:
        verify_consistency(old_size, new.size, proof, latest.root_hash, new.root_hash)
    except ProofError as error:
        if new.size == old_size:
            raise Inconsistent(
                f"this witness cosigned another root at size {old_size}: {error}", fork=True
            ) from None
        raise Inconsistent(
            f"the consistency proof from size {old_size} to {new.size} does not verify: {error}",
            fork=True,
        ) from None
