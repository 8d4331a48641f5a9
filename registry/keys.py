"""The only module that touches private keys: the log signing key and the PII master key.

Where they live (see keys/README.md):
- log signing key: a PKCS#8 PEM file outside git, ``$REGISTRY_HOME/keys/log-signing.pem``
  by default or ``REGISTRY_LOG_KEY_FILE``; encrypted with ``REGISTRY_LOG_KEY_PASSPHRASE``
  when that is set. Generated on first use only when development keys are allowed.
- PII master key: ``REGISTRY_PII_KEY`` (base64) or ``$REGISTRY_HOME/keys/pii-master.key``.
  The database remembers its fingerprint (``key_fingerprints``): ``open_pii_cipher`` refuses
  any other key, and creates one only for an empty database (no fingerprint, no numbers).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.db.types import Conn
from registry.durable_files import create_file
from registry.pii import PiiCipher, PiiDecryptError, master_key_fingerprint
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
    """Create ``path`` (mode 0600) holding ``data``; FileExistsError if it is already there.

    ``durable_files.create_file``: the name appears whole or not at all (a link, unlike a
    rename, never replaces an existing file). So of two processes creating the same key
    at once exactly one wins, and the other, told FileExistsError, reads a complete key,
    never a half-written one. The folder is synced too: a key whose fingerprint the
    database records next must survive a power cut.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    create_file(path, data, mode=0o600)


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


def _read_pii_master(settings: Settings) -> bytes | None:
    """The master key from REGISTRY_PII_KEY or the key file; None when neither exists."""
    if settings.pii_master_key is not None:
        return settings.pii_master_key
    path = settings.pii_key_path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KeyError_(f"couldn't read the personal-data key {path}: {error.strerror}") from None
    try:
        master = base64.b64decode(raw.strip())
    except binascii.Error:
        master = b""
    if len(master) != 32:
        raise KeyError_(f"couldn't load {path}: it must hold 32 bytes in base64")
    return master


def _create_pii_master(path: Path) -> tuple[bytes, bool]:
    """A new key written to ``path``, or, if another process got there first, its key.

    The second value says whether this call created the file.
    """
    try:
        _write_private(path, base64.b64encode(PiiCipher.generate_master_key()) + b"\n")
    except FileExistsError:
        created = False
    else:
        created = True
    master = base64.b64decode(path.read_bytes().strip())
    if len(master) != 32:
        raise KeyError_(f"couldn't load {path}: it must hold 32 bytes in base64")
    return master, created


def load_pii_cipher(settings: Settings, *, create_dev: bool = False) -> PiiCipher:
    """The personal-data cipher from the key alone, not checked against any database.

    The service and the CLI use ``open_pii_cipher``; this is for tools that fill a database
    themselves (tests/bench) and then start the service, which checks the key then.
    """
    master = _read_pii_master(settings)
    if master is None:
        path = settings.pii_key_path
        if not (create_dev and settings.dev_keys):
            raise KeyError_(
                f"couldn't load the personal-data key: set REGISTRY_PII_KEY or create {path} "
                "with `registry keys generate`"
            )
        master, _ = _create_pii_master(path)
    return PiiCipher.from_master_key(master)


def pii_key_given(settings: Settings) -> bool:
    """Whether a personal-data key is configured: REGISTRY_PII_KEY, or the key file exists."""
    return settings.pii_master_key is not None or settings.pii_key_path.exists()


# key_fingerprints.purpose of the personal-data master key (schema/0010_key_fingerprints.sql).
PII_PURPOSE = "pii"


@dataclass(frozen=True)
class PiiKey:
    """The personal-data cipher as ``open_pii_cipher`` checked it."""

    cipher: PiiCipher
    fingerprint: str
    # The key file this call wrote (None: the key already existed).
    created: Path | None
    # This call recorded the fingerprint (the database's first use of a key).
    recorded: bool


def _restore_hint(settings: Settings, stored: str) -> str:
    if settings.pii_master_key is not None:
        return f"set REGISTRY_PII_KEY to the key with fingerprint {stored}"
    return (
        f"put the key with fingerprint {stored} back at {settings.pii_key_path} "
        "(or set REGISTRY_PII_KEY to it)"
    )


async def open_pii_cipher(
    conn: Conn, settings: Settings, *, create: bool, record: bool = True
) -> PiiKey:
    """The personal-data cipher, refused unless it is the key this database's numbers are under.

    Needs the migrated schema. The database keeps the key's fingerprint (never the key):
    - stored, and the key given differs: refused, naming both fingerprints;
    - stored, and no key at all: refused, naming the fingerprint and where the key belongs
      (a new key would leave every stored number unreadable and let duplicates in);
    - not stored yet, numbers stored (a database from before the fingerprints): the key is
      recorded only if it decrypts one of them, else refused;
    - not stored, no numbers: the key is recorded; with ``create`` (development keys, or
      `registry keys generate`) a missing key file is created first. Only here.

    ``record=False`` (commands that only check a key they happen to find): compare with a
    stored fingerprint, never store one, so a stray key on an administrator's machine
    cannot become the database's key before `serve` runs with the real one.

    Raises ``KeyError_`` with a message for the operator. Two processes starting together on
    an empty database: on one key path the file is created by exactly one of them (the other
    reads it, see ``_write_private``); with two key paths each may create a key, but the
    fingerprint is written with ON CONFLICT DO NOTHING and read back, so one key wins, the
    other process refuses and removes the file it just created (nothing was ever encrypted
    under it, and leaving it would only make the next start refuse again).
    """
    stored: str | None = await conn.fetchval(
        "SELECT fingerprint FROM key_fingerprints WHERE purpose = $1", PII_PURPOSE
    )
    # One encrypted number: its presence forbids a new key; it tests a key never recorded.
    # (A practitioner has both columns; naming document_lookup lets the partial index
    # subjects_document answer instead of a scan past every organisation.)
    sample = await conn.fetchrow(
        "SELECT document_type, document_cipher FROM subjects"
        " WHERE document_lookup IS NOT NULL AND document_cipher IS NOT NULL LIMIT 1"
    )
    path = settings.pii_key_path
    master = _read_pii_master(settings)
    created: Path | None = None
    if master is None:
        if stored is not None:
            raise KeyError_(
                f"couldn't load the personal-data key: {path} does not exist and "
                "REGISTRY_PII_KEY is not set, but this database was set up with the key with "
                f"fingerprint {stored}; put that key back at {path} or set REGISTRY_PII_KEY to "
                "it (a new key would leave its document numbers unreadable)"
            )
        if sample is not None:
            raise KeyError_(
                f"couldn't load the personal-data key: {path} does not exist and "
                "REGISTRY_PII_KEY is not set, but this database holds encrypted document "
                f"numbers; put the key they were encrypted under back at {path} or set "
                "REGISTRY_PII_KEY to it (a new key would leave them unreadable)"
            )
        if not create:
            raise KeyError_(
                f"couldn't load the personal-data key: set REGISTRY_PII_KEY or create {path} "
                "with `registry keys generate`"
            )
        master, made = _create_pii_master(path)
        created = path if made else None
    given = master_key_fingerprint(master)
    cipher = PiiCipher.from_master_key(master)
    source = "REGISTRY_PII_KEY" if settings.pii_master_key is not None else str(path)
    recorded = False
    if stored is None:
        if sample is not None:
            try:
                cipher.decrypt(sample["document_type"], sample["document_cipher"])
            except PiiDecryptError:
                raise KeyError_(
                    f"couldn't use the personal-data key from {source} (fingerprint {given}): "
                    "it does not decrypt the document numbers this database holds; put the key "
                    f"they were encrypted under back at {path} or set REGISTRY_PII_KEY to it"
                ) from None
        if not record:
            return PiiKey(cipher, given, created, False)
        recorded_now: str | None = await conn.fetchval(
            "INSERT INTO key_fingerprints (purpose, fingerprint) VALUES ($1, $2)"
            " ON CONFLICT (purpose) DO NOTHING RETURNING fingerprint",
            PII_PURPOSE,
            given,
        )
        recorded = recorded_now is not None
        # Lost the race: a statement of its own, so it sees the row the winner committed.
        stored = recorded_now or await conn.fetchval(
            "SELECT fingerprint FROM key_fingerprints WHERE purpose = $1", PII_PURPOSE
        )
    if stored != given:
        if created is not None:
            # Our fingerprint is certainly not stored (another one is), so no number can be
            # under this key: removing it cannot lose data.
            created.unlink(missing_ok=True)
        raise KeyError_(
            "couldn't use the personal-data key: this database was set up with the key with "
            f"fingerprint {stored}, but the key from {source} has fingerprint "
            f"{given}; {_restore_hint(settings, str(stored))}"
        )
    return PiiKey(cipher, given, created, recorded)
