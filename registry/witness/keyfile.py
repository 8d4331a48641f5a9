"""The witness's private key file: the only code here that reads or writes one.

The file holds one line, ``PRIVATE+KEY+name+hexid+base64(0x04 ‖ seed)``
(``cosignature.py``). It is created with mode 0600 and never overwritten: a
witness that lost its key is a new witness, whose verifier key every client
must pin again.
"""

from __future__ import annotations

from pathlib import Path

from registry.durable_files import create_file
from registry.tlog.note import NoteError
from registry.witness.cosignature import CosignatureSigner, parse_cosigner_key


class KeyFileError(Exception):
    """The key file is missing, exists already, or is not a cosigner key."""


def write_new_key(path: Path, signer: CosignatureSigner) -> None:
    """Create ``path`` (mode 0600) holding the key; refuse if it exists. Durable on return."""
    if path.exists() or path.is_symlink():
        raise KeyFileError(f"{path} exists: refusing to overwrite a key (move it away first)")
    try:
        # A link, not a rename (durable_files.create_file): it fails if another process
        # created ``path`` meanwhile.
        create_file(path, (signer.private_key_string() + "\n").encode("ascii"), mode=0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists: refusing to overwrite a key") from None
    except OSError as error:
        raise KeyFileError(f"couldn't write {path}: {error}") from None


def read_key(path: Path) -> CosignatureSigner:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(
            f"couldn't read the witness key {path}: {error} "
            "(create one with `registry witness keygen --name NAME --out FILE`)"
        ) from None
    try:
        return parse_cosigner_key(text)
    except NoteError as error:
        raise KeyFileError(f"{path}: {error}") from None


def readable_by_others(path: Path) -> bool:
    """True if group or others may read the key file (it should be 0600)."""
    return bool(path.stat().st_mode & 0o077)
