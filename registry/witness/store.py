"""The witness's state directory: the latest cosigned checkpoint per log, and evidence.

Layout of the directory given to ``registry witness serve --state DIR``:

    lock                          held (flock) while a witness runs on DIR
    logs/<sha256(origin)>.note    per log: the checkpoint last cosigned, with the log's
                                  signatures and this witness's cosignature
    evidence/<time>-<size>.txt    refused conflicting pairs (``evidence.py``)

Guarantees:
- ``save_latest`` is durable on return: the file and its directory entry are fsynced
  before it returns, and the witness answers only after that (the spec requires the
  checkpoint persisted before the cosignature leaves).
- A crash at any line leaves each ``.note`` file whole, old or new, never a mix:
  the new content goes to a temporary file that is fsynced, then renamed over the old
  one (atomic on POSIX). Temporary files a crash left behind are removed at open.
- ``keep_evidence`` never overwrites: each refusal gets a file of its own.
- One witness per directory: a second ``open`` fails while the lock is held, since two
  processes could each cosign one side of a fork.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

from registry.durable_files import create_file, remove_leftovers, replace_file


class StateError(Exception):
    """The state directory is missing, locked or unreadable; the message says what to do."""


def origin_hash(origin: str) -> str:
    """Lowercase hex SHA-256 of the origin: the log's name in paths (as tlog-witness's URLs)."""
    return hashlib.sha256(origin.encode()).hexdigest()


class StateDir:
    """An open, locked state directory. Use ``StateDir.open``; ``close`` releases the lock."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self.logs = path / "logs"
        self.evidence = path / "evidence"
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: Path) -> StateDir:
        # The directory must exist: created silently after a typo in --state, it would
        # make the witness forget every checkpoint it cosigned, and cosign a fork.
        if not path.is_dir():
            raise StateError(
                f"the state directory {path} does not exist: create it (mkdir -m 700 {path}) "
                "for a new witness, or pass the directory of the running one"
            )
        try:
            lock_fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StateError(f"couldn't open {path / 'lock'}: {error}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise StateError(
                f"another witness is running on {path} (it holds {path / 'lock'})"
            ) from None
        state = cls(path, lock_fd)
        try:
            for sub in (state.logs, state.evidence):
                sub.mkdir(mode=0o700, exist_ok=True)
                # Written by a process that died before its rename: never the truth.
                remove_leftovers(sub)
        except OSError as error:
            state.close()
            raise StateError(f"couldn't prepare {path}: {error}") from None
        return state

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)  # closing releases the flock

    def latest_path(self, origin: str) -> Path:
        return self.logs / f"{origin_hash(origin)}.note"

    def load_latest(self, origin: str) -> str | None:
        """The note last saved for ``origin``, or None if the witness never cosigned for it."""
        try:
            return self.latest_path(origin).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def save_latest(self, origin: str, note: str) -> None:
        """Replace the log's note atomically; durable on return (see the module docstring).
        A crash before it returns: after a restart either note is found, both whole."""
        replace_file(self.latest_path(origin), note.encode(), mode=0o600)

    def keep_evidence(self, data: bytes, time: int, size: int) -> Path:
        """Write a new evidence file (never replacing one); durable on return. Its path."""
        for attempt in range(1000):
            suffix = f"-{attempt}" if attempt else ""
            path = self.evidence / f"{time}-{size}{suffix}.txt"
            try:
                create_file(path, data, mode=0o600)
            except FileExistsError:
                continue
            return path
        raise StateError(f"couldn't name an evidence file in {self.evidence}")
