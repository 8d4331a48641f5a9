"""The witness's private key file: the only code here that reads or writes one.

The file holds one line, ``PRIVATE+KEY+name+hexid+base64(0x04 ‖ seed)``
(``cosignature.py``). It is created with mode 0600 and never overwritten: a
witness that lost its key is a new witness, whose verifier key every client
must pin again.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from registry.tlog.note import NoteError
from registry.witness.cosignature import CosignatureSigner, parse_cosigner_key


class KeyFileError(Exception):
    """The key file is missing, exists already, or is not a cosigner key."""


def write_new_key(path: Path, signer: CosignatureSigner) -> None:
    """Create ``path`` (mode 0600) holding the key; refuse if it exists. Durable on return."""
    if path.exists() or path.is_symlink():
        raise KeyFileError(f"{path} exists: refusing to overwrite a key (move it away first)")
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise KeyFileError(f"couldn't create a key file in {directory}: {error}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(signer.private_key_string() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link(), not rename(): it fails if another process created ``path`` meanwhile.
            os.link(tmp, path)
        except FileExistsError:
            raise KeyFileError(f"{path} exists: refusing to overwrite a key") from None
        except OSError as error:
            raise KeyFileError(f"couldn't write {path}: {error}") from None
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


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
