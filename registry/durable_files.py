"""Files written whole and durably: the one way this project writes a file that must survive.

Keys, a verifier's last checkpoint, a witness's state and evidence, a mirror's tiles
all need the same two guarantees: a reader (or a restart after a power cut) finds
either the old content or the new, never a part; and once the call returns, the new
content is on disk. Both come from the same steps, kept here once:

1. the data goes to a temporary file in the target's own directory (a rename works
   only within one file system), which is fsynced;
2. it takes the target's name: ``os.replace`` to replace whatever was there, or
   ``os.link`` to create a name that must not exist yet (``link`` fails where a
   rename would silently replace a file another process created meanwhile);
3. the directory is fsynced: a new name is durable only then.

Standard library only: the bureau's verifier commands use it (registry/tlog/check.py,
registry/tlog/mirror.py, registry/witness/).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# Temporary files start with this; a process that dies before step 2 leaves one behind,
# which ``remove_leftovers`` clears (it never holds the truth).
TEMPORARY_PREFIX = ".tmp-"


def sync_directory(path: Path) -> None:
    """fsync ``path`` (a directory): the names created or renamed in it become durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(directory: Path, data: bytes, mode: int) -> Path:
    """An fsynced new file holding ``data`` in ``directory``, with a name of its own."""
    tmp = directory / f"{TEMPORARY_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def replace_file(path: Path, data: bytes, *, mode: int = 0o644, sync: bool = True) -> None:
    """``path`` holds ``data``, whole, replacing what it held. With ``sync=False`` the
    directory is left for the caller to sync (``sync_directory``), once for many files."""
    tmp = _temporary(path.parent, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        sync_directory(path.parent)


def create_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """A new file ``path`` holding ``data``, whole and durable; FileExistsError if the name
    is taken (also when another process took it a moment ago)."""
    tmp = _temporary(path.parent, data, mode)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    sync_directory(path.parent)


def remove_leftovers(directory: Path) -> None:
    """Delete the temporary files a process that died mid-write left in ``directory``."""
    for leftover in directory.glob(f"{TEMPORARY_PREFIX}*"):
        leftover.unlink(missing_ok=True)
