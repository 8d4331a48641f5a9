"""C2SP signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint). Pure.

Behaviour follows golang.org/x/mod/sumdb/note, the reference implementation:
signatures from unknown keys are ignored (that is how witnesses and key
rotation work), a known key whose signature fails rejects the whole note, and
at least one known signature must verify. Two signature types are verified:
Ed25519 (0x01) and Ed25519 witness cosignatures (0x04, c2sp.org/tlog-cosignature).
Anything else, such as the RFC 6962 tree-head signatures (0x05) of static-CT
logs, is simply an unknown key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04

# The spec asks verifiers to bound notes and accept at least 16 signatures.
# Checkpoints are a few hundred bytes; these limits only stop abuse.
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100

# How every signature line of a signed note starts: em dash, space.
SIGNATURE_PREFIX = "\u2014 "
_ED25519_KEY_BYTES = 32
_ED25519_SIG_BYTES = 64
_COSIGNATURE_HEADER = "cosignature/v1\n"
_MAX_TIMESTAMP = (1 << 63) - 1
_MAX_TREE_SIZE = (1 << 64) - 1
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX_DIGITS = frozenset(string.hexdigits)


class NoteError(ValueError):
    """A note, checkpoint or key is malformed or does not verify; the message says why."""


class UnverifiedNoteError(NoteError):
    """The note is well-formed, but no known key signed it."""


class InvalidSignatureError(NoteError):
    """A signature line names a known key (name and ID) but does not verify."""


def _check_name(name: str) -> None:
    # Spec: non-empty, no Unicode spaces, no '+' (it separates key string fields).
    if not name:
        raise NoteError("key name must not be empty")
    if "+" in name:
        raise NoteError(f"key name {name!r} must not contain '+'")
    if any(ch.isspace() for ch in name) or _has_control(name):
        raise NoteError(f"key name {name!r} must not contain spaces or control characters")


def _has_control(text: str) -> bool:
    return any(ch < " " and ch != "\n" for ch in text)


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """SHA-256(name || "\\n" || alg || public key)[:4]: the 4-byte ID in every signature."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def verifier_key_string(name: str, public_key: bytes, alg: int = ALG_ED25519) -> str:
    """The standard vkey ``name+hex(keyid)+base64(alg || public key)``."""
    _check_name(name)
    if len(public_key) != _ED25519_KEY_BYTES:
        raise NoteError(f"public key is {len(public_key)} bytes, want {_ED25519_KEY_BYTES}")
    encoded = base64.b64encode(bytes([alg]) + public_key).decode()
    return f"{name}+{key_id(name, public_key, alg).hex()}+{encoded}"


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not valid base64") from None


def cosignature_message(timestamp: int, text: bytes) -> bytes:
    """What a cosignature/v1 signs: ``cosignature/v1\\ntime <timestamp>\\n`` + the note text.

    The one definition, for the witness that signs and the verifiers that check.
    """
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} must be between 0 and 2^63-1")
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n".encode() + text


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: its name, 4-byte key ID, signature type and raw key."""

    name: str
    key_id: bytes
    alg: int
    public_key: bytes = field(repr=False)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """True if ``signature`` (without the key ID) is valid over the note ``text``."""
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        if self.alg == ALG_COSIGNATURE_V1:
            # timestamped_signature: u64 big-endian timestamp || Ed25519 signature
            # over "cosignature/v1\ntime <ts>\n" || note text.
            if len(signature) != 8 + _ED25519_SIG_BYTES:
                return False
            timestamp = int.from_bytes(signature[:8], "big")
            if timestamp > _MAX_TIMESTAMP:
                return False
            message = cosignature_message(timestamp, text)
            signature = signature[8:]
        else:
            if len(signature) != _ED25519_SIG_BYTES:
                return False
            message = text
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_verifier_key(vkey: str) -> Verifier:
    """Parse ``name+hexid+base64(alg||key)``; Ed25519 (0x01) and cosignature/v1 (0x04) only."""
    # Only the first two '+' separate fields: base64 keys may contain '+' themselves.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"verifier key {vkey!r} must have the form name+keyid+key")
    name, hex_id, key64 = parts
    _check_name(name)
    if len(hex_id) != 8 or not set(hex_id) <= _HEX_DIGITS:
        raise NoteError(f"verifier key {name}: key ID {hex_id!r} must be 8 hex digits")
    raw = _b64decode(key64, f"verifier key {name}: key")
    if not raw:
        raise NoteError(f"verifier key {name}: key is empty")
    alg, public_key = raw[0], raw[1:]
    if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise NoteError(
            f"verifier key {name}: signature type 0x{alg:02x} is not supported "
            "(accepted: 0x01 Ed25519, 0x04 cosignature/v1)"
        )
    if len(public_key) != _ED25519_KEY_BYTES:
        raise NoteError(
            f"verifier key {name}: public key is {len(public_key)} bytes, want {_ED25519_KEY_BYTES}"
        )
    expected = key_id(name, public_key, alg)
    if bytes.fromhex(hex_id) != expected:
        raise NoteError(
            f"verifier key {name}: key ID {hex_id} does not match the key (want {expected.hex()})"
        )
    return Verifier(name, expected, alg, public_key)


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# Spelled in two parts so that scans for committed private keys (which look for this
# prefix) do not flag the format's own definition.
_SIGNER_PREFIX = "PRIVATE" + "+KEY+"


class NoteSigner:
    """An Ed25519 note signer: a key name (usually the log origin) and its private key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = private_key
        self.public_key = _raw_public(private_key)
        self.key_id = key_id(name, self.public_key)

    def __repr__(self) -> str:
        return f"NoteSigner({self.name}+{self.key_id.hex()})"

    def verifier_key(self) -> str:
        return verifier_key_string(self.name, self.public_key)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, ALG_ED25519, self.public_key)

    def signature_line(self, text: str) -> str:
        """``— name base64(keyid || sig)`` plus newline, over the UTF-8 ``text``."""
        signature = self._key.sign(text.encode())
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(self.key_id + signature).decode()}\n"

    def private_key_string(self) -> str:
        """Go's signer-key string (``PRIVATE``, ``KEY``, name, hex key ID, base64(0x01||seed)
        joined by '+'); for key files outside git."""
        seed = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"{_SIGNER_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"


def parse_signer_key(skey: str) -> NoteSigner:
    """Parse Go's signer-key string (see ``NoteSigner.private_key_string``); the ID must match."""
    # Only the first four '+' separate fields: the base64 key may contain '+'.
    # Never echo the input: it is a private key.
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError(f"signer key must have the form {_SIGNER_PREFIX}name+keyid+key")
    _, _, name, hex_id, key64 = parts
    _check_name(name)
    if len(hex_id) != 8 or not set(hex_id) <= _HEX_DIGITS:
        raise NoteError(f"signer key {name}: key ID must be 8 hex digits")
    raw = _b64decode(key64, f"signer key {name}: key")
    if len(raw) != 1 + _ED25519_KEY_BYTES or raw[0] != ALG_ED25519:
        raise NoteError(f"signer key {name}: want type 0x01 and a 32-byte Ed25519 seed")
    signer = NoteSigner(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if bytes.fromhex(hex_id) != signer.key_id:
        raise NoteError(f"signer key {name}: key ID {hex_id} does not match the key")
    return signer


def generate_signer_key(name: str) -> tuple[str, str]:
    """A fresh Ed25519 key as (private key string, verifier key string), like Go's GenerateKey."""
    signer = NoteSigner(name, Ed25519PrivateKey.generate())
    return signer.private_key_string(), signer.verifier_key()


def _utf8(text: str, what: str) -> bytes:
    # A str can hold lone surrogates, which have no UTF-8 encoding.
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not valid Unicode text") from None


def _check_text(text: str) -> None:
    _utf8(text, "note text")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if _has_control(text):
        raise NoteError("note text must not contain control characters other than newline")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """``text`` + blank line + one signature line per signer."""
    _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    return text + "\n" + "".join(signer.signature_line(text) for signer in signers)


def open_note(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[str, list[str]]:
    """Verify ``note``; return its text and the names of the known keys that signed it.

    Raises NoteError if the note is malformed, if any known key's signature is
    invalid, or if no known key signed it. Repeated signatures by one key count once.
    """
    by_id: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        other = by_id.setdefault((verifier.name, verifier.key_id), verifier)
        if other != verifier:
            raise NoteError(
                f"two different verifier keys for {verifier.name}+{verifier.key_id.hex()}"
            )

    if isinstance(note, str):
        note = _utf8(note, "note")
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
    try:
        note = note.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note is not valid UTF-8") from None
    if _has_control(note):
        raise NoteError("note must not contain control characters other than newline")
    # Signatures never contain a blank line, so the last one separates them from the text.
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("note must end with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")

    text_bytes = text.encode()
    verified: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(
                f"signature line {line[:40]!r} does not start with an em dash and space"
            )
        name, sep, sig64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep:
            raise NoteError(f"signature line {line[:40]!r} has no signature")
        _check_name(name)
        raw = _b64decode(sig64, f"signature by {name}")
        if len(raw) < 5:
            raise NoteError(f"signature by {name} is too short")
        kid, signature = raw[:4], raw[4:]
        known = by_id.get((name, kid))
        if known is None:
            continue  # unknown key (other log key, witness we don't track): ignored by spec
        if (name, kid) in seen:
            continue
        seen.add((name, kid))
        if not known.verify(text_bytes, signature):
            raise InvalidSignatureError(f"signature by known key {name}+{kid.hex()} is invalid")
        verified.append(name)
    if not verified:
        raise UnverifiedNoteError("note has no valid signature from a known key")
    return text, verified


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _has_control(self.origin):
            raise NoteError(f"checkpoint origin {self.origin!r} must be one non-empty line")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size} must be between 0 and 2^64-1")
        if len(self.root_hash) != 32:
            raise NoteError(f"checkpoint root hash is {len(self.root_hash)} bytes, want 32")
        for line in self.extensions:
            if not line or "\n" in line or _has_control(line):
                raise NoteError(f"checkpoint extension line {line!r} must be one non-empty line")

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, already verified), strictly."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(f"checkpoint has {len(lines)} lines, want at least 3")
    origin, size_line, root_line, *extensions = lines
    if len(size_line) > len(str(_MAX_TREE_SIZE)) or not _SIZE_RE.fullmatch(size_line):
        raise NoteError(
            f"checkpoint size {size_line[:30]!r} must be a decimal number without leading zeros"
        )
    size = int(size_line)
    root = _b64decode(root_line, "checkpoint root hash")
    if base64.b64encode(root).decode() != root_line:
        raise NoteError("checkpoint root hash is not canonical base64")
    return Checkpoint(origin, size, root, tuple(extensions))


def open_checkpoint(
    note: str | bytes, verifiers: Iterable[Verifier]
) -> tuple[Checkpoint, list[str]]:
    """``open_note`` then ``parse_checkpoint``: the checkpoint and its verified signers."""
    text, signers = open_note(note, verifiers)
    return parse_checkpoint(text), signers
