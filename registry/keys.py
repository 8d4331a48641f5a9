"""The only module that touches private keys: the log signing key and the PII master key.

Where they live (see keys/README.md):
- log signing key: a PKCS#8 PEM file outside git, ``$REGISTRY_HOME/keys/log-signing.pem``
  by default or ``REGISTRY_LOG_KEY_FILE``; encrypted with ``REGISTRY_LOG_KEY_PASSPHRASE``
  when that is set. Generated on first use only when development keys are allowed.
- PII master key: ``REGISTRY_PII_KEY`` (base64) or ``$REGISTRY_HOME/keys/pii-master.key``.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.pii import PiiCipher
from registry.settings import Settings
from registry.tlog.note import NoteSigner, verifier_key_string


class KeyError_(RuntimeError):
    """A key is missing or unreadable; the message names the command that fixes it."""


@dataclass(frozen=True)
class LogKey:
    signer: NoteSigner
    public_key: bytes
    verifier: str

    def __repr__(self) -> str:
        return f"LogKey({self.verifier})"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem(key: Ed25519PrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _as_log_key(name: str, key: Ed25519PrivateKey) -> LogKey:
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return LogKey(NoteSigner(name, key), public, verifier_key_string(name, public))


def generate_log_key(settings: Settings, path: Path | None = None) -> LogKey:
    """Create a new signing key file; refuses to overwrite an existing one."""
    path = path or settings.log_key_path
    key = Ed25519PrivateKey.generate()
    try:
        _write_private(path, _pem(key, settings.log_key_passphrase))
    except FileExistsError:
        raise KeyError_(f"couldn't create {path}: a key is already there") from None
    return _as_log_key(settings.log_origin, key)


def load_log_key(settings: Settings, *, create_dev: bool = False) -> LogKey:
    path = settings.log_key_path
    if not path.exists():
        if create_dev and settings.dev_keys:
            return generate_log_key(settings)
        raise KeyError_(
            f"couldn't load the log signing key: {path} does not exist; "
            "create one with `registry keys generate`"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), settings.log_key_passphrase)
    except (ValueError, TypeError) as error:
        raise KeyError_(
            f"couldn't load the log signing key from {path}: {error} "
            "(is REGISTRY_LOG_KEY_PASSPHRASE right?)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"couldn't load {path}: not an Ed25519 key")
    return _as_log_key(settings.log_origin, key)


def rotate_log_key(settings: Settings) -> tuple[LogKey, Path]:
    """Move the current key file aside (kept for the record) and create a new one."""
    path = settings.log_key_path
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    retired = path.with_name(f"{path.name}.retired-{stamp}")
    if path.exists():
        path.rename(retired)
    return generate_log_key(settings), retired


def load_pii_cipher(settings: Settings, *, create_dev: bool = False) -> PiiCipher:
    if settings.pii_master_key is not None:
        return PiiCipher.from_master_key(settings.pii_master_key)
    path = settings.pii_key_path
    if not path.exists():
        if not (create_dev and settings.dev_keys):
            raise KeyError_(
                f"couldn't load the personal-data key: set REGISTRY_PII_KEY or create {path} "
                "with `registry keys generate`"
            )
        _write_private(path, base64.b64encode(PiiCipher.generate_master_key()) + b"\n")
    master = base64.b64decode(path.read_bytes().strip())
    if len(master) != 32:
        raise KeyError_(f"couldn't load {path}: it must hold 32 bytes in base64")
    return PiiCipher.from_master_key(master)
