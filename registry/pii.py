"""Protecting practitioners' document numbers at rest.

A document number is stored twice, never in clear:
- ``encrypt``: AES-256-GCM under the encryption key, for showing it to a
  regulator. Blob = version byte 0x01 ‖ 12-byte random nonce ‖ ciphertext ‖
  16-byte tag. The associated data binds the version and the document type, so
  a blob copied into a row of another type does not decrypt.
- ``lookup_hash``: HMAC-SHA256 under a separate index key, the equality index
  used to find a practitioner by number without decrypting every row.

Both keys come from one master key through HKDF-SHA256 with distinct labels.
``master_key_fingerprint`` names a master key without revealing it, so a database
can remember which key its numbers are under (registry/keys.py).
Nothing here logs, and nothing here puts key material or numbers into a repr
or an exception message.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import date
from hashlib import sha256
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from registry.identifiers import normalise_identifier, parse_document_type

__all__ = [
    "KEY_SIZE",
    "PiiCipher",
    "PiiDecryptError",
    "generate_master_key",
    "master_key_fingerprint",
]

KEY_SIZE: Final = 32
_VERSION: Final = 0x01
_NONCE_SIZE: Final = 12
_TAG_SIZE: Final = 16
_HEADER_SIZE: Final = 1 + _NONCE_SIZE

# Domain-separation labels. Changing any of them makes every stored blob or
# index entry unreadable or unfindable: they are part of the storage format.
_HKDF_SALT: Final = b"xining-vc-registry/pii/hkdf-salt/v1"
_INFO_ENC: Final = b"xining-vc-registry/pii/encryption-key/v1"
_INFO_INDEX: Final = b"xining-vc-registry/pii/index-key/v1"
_AAD_LABEL: Final = b"xining-vc-registry/pii/document-number"
_INDEX_LABEL: Final = b"xining-vc-registry/pii/lookup-hash/v1"
_BIRTH_DATE_LABEL: Final = b"/birth-date"
# Changing this one makes every stored fingerprint disagree with its key: starts refuse.
_FINGERPRINT_LABEL: Final = b"xining-vc-registry/pii/fingerprint/v1"
_FINGERPRINT_SIZE: Final = 16


class PiiDecryptError(Exception):
    """A stored document number could not be decrypted.

    The blob was altered, was encrypted under another key or for another
    document type, or is not a blob of this format. The message never contains
    the blob or the key.
    """


def generate_master_key() -> bytes:
    """A fresh random master key of ``KEY_SIZE`` bytes."""
    return secrets.token_bytes(KEY_SIZE)


def _length_prefixed(data: bytes) -> bytes:
    """4-byte big-endian length, then the bytes: concatenations stay unambiguous."""
    return len(data).to_bytes(4, "big") + data


def _check_key(name: str, key: object) -> bytes:
    if not isinstance(key, bytes):
        raise TypeError(f"{name} must be bytes, not {type(key).__name__}")
    if len(key) != KEY_SIZE:
        raise ValueError(f"{name} must be {KEY_SIZE} bytes long, got {len(key)}")
    return key


def master_key_fingerprint(master: bytes) -> str:
    """A public name for a master key: 32 hex digits, the first 16 bytes of
    HMAC-SHA256(master, a fixed label).

    Safe to store beside the data: HMAC is a PRF, so the value tells keys apart and says
    nothing about the key, and it is none of the derived keys (another construction and
    label). 128 bits make an accidental match between two random keys out of reach.
    """
    master = _check_key("master key", master)
    digest = hmac.new(master, _FINGERPRINT_LABEL, sha256).digest()
    return digest[:_FINGERPRINT_SIZE].hex()


class PiiCipher:
    """Encrypts document numbers and computes their lookup hashes.

    ``doc_type`` arguments must name a ``DocumentType`` (else ``InvalidInput``
    for ``document_type``); the canonical type value is what gets bound, so
    ``"resident_id"`` and ``DocumentType.RESIDENT_ID`` are the same type.
    """

    __slots__ = ("_aead", "_index_key")

    def __init__(self, enc_key: bytes, index_key: bytes) -> None:
        enc_key = _check_key("enc_key", enc_key)
        index_key = _check_key("index_key", index_key)
        if hmac.compare_digest(enc_key, index_key):
            raise ValueError("enc_key and index_key must be different keys")
        self._aead = AESGCM(enc_key)
        self._index_key = index_key

    @classmethod
    def from_master_key(cls, master: bytes) -> PiiCipher:
        """Derive the encryption and index keys from one master key (HKDF-SHA256)."""
        master = _check_key("master key", master)

        def derive(info: bytes) -> bytes:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=_HKDF_SALT, info=info)
            return hkdf.derive(master)

        return cls(derive(_INFO_ENC), derive(_INFO_INDEX))

    generate_master_key = staticmethod(generate_master_key)

    def __repr__(self) -> str:
        return "PiiCipher(<keys hidden>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would write both keys wherever the pickle goes.
        raise TypeError("PiiCipher holds key material and cannot be pickled")

    @staticmethod
    def _aad(doc_type: str) -> bytes:
        kind = parse_document_type(doc_type)
        return _AAD_LABEL + bytes([_VERSION]) + _length_prefixed(kind.value.encode("ascii"))

    def encrypt(self, doc_type: str, number: str) -> bytes:
        """Encrypt ``number`` as given (validate and normalise it first) for ``doc_type``."""
        return self._seal(self._aad(doc_type), number)

    def decrypt(self, doc_type: str, blob: bytes | bytearray | memoryview) -> str:
        """The number ``encrypt(doc_type, number)`` sealed, or ``PiiDecryptError``."""
        return self._open(self._aad(doc_type), blob)

    def encrypt_birth_date(self, doc_type: str, born: date) -> bytes:
        """A practitioner's birth date, sealed like the number but under its own associated
        data: a birth-date blob put in place of a number (or back) does not decrypt."""
        return self._seal(self._aad(doc_type) + _BIRTH_DATE_LABEL, born.isoformat())

    def decrypt_birth_date(self, doc_type: str, blob: bytes | bytearray | memoryview) -> date:
        text = self._open(self._aad(doc_type) + _BIRTH_DATE_LABEL, blob)
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise PiiDecryptError("couldn't decrypt birth date: not a date") from None

    def _seal(self, aad: bytes, text: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), aad)
        return bytes([_VERSION]) + nonce + sealed

    def _open(self, aad: bytes, blob: bytes | bytearray | memoryview) -> str:
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise PiiDecryptError(f"couldn't decrypt document number: not bytes but {type(blob)}")
        data = bytes(blob)
        if len(data) < _HEADER_SIZE + _TAG_SIZE:
            raise PiiDecryptError("couldn't decrypt document number: blob is too short")
        if data[0] != _VERSION:
            raise PiiDecryptError(
                f"couldn't decrypt document number: unknown format version {data[0]}"
            )
        nonce, sealed = data[1:_HEADER_SIZE], data[_HEADER_SIZE:]
        try:
            plain = self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise PiiDecryptError(
                "couldn't decrypt document number: authentication failed "
                "(altered blob, wrong key or wrong document type)"
            ) from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            # Authenticated but not UTF-8: only possible if something other than
            # encrypt() produced it under our key.
            raise PiiDecryptError(
                "couldn't decrypt document number: plaintext is not UTF-8"
            ) from None

    def lookup_hash(self, doc_type: str, number: str) -> bytes:
        """HMAC-SHA256 of the type and the normalised number: 32 bytes, deterministic.

        The number is normalised with ``normalise_identifier`` (NFKC, trimmed,
        upper case), so any input form of one number gives the same hash.
        """
        kind = parse_document_type(doc_type)
        message = (
            _INDEX_LABEL
            + _length_prefixed(kind.value.encode("ascii"))
            + _length_prefixed(normalise_identifier(number).encode("utf-8"))
        )
        return hmac.new(self._index_key, message, sha256).digest()
