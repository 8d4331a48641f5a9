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
import secrets
from pathlib import Path

_TMP_PREFIX = ".tmp-"


class StateError(Exception):
    """The state directory is missing, locked or unreadable; the message says what to do."""


def origin_hash(origin: str) -> str:
    """Lowercase hex SHA-256 of the origin: the log's name in paths (as tlog-witness's URLs)."""
    return hashlib.sha256(origin.encode()).hexdigest()


def _fsync_directory(path: Path) -> None:
    # A rename or a new link is durable only once the directory itself is synced.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temporary(directory: Path, data: bytes) -> Path:
    """A fsynced temporary file holding ``data`` in ``directory``."""
    tmp = directory / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


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
                for leftover in sub.glob(f"{_TMP_PREFIX}*"):
                    # Written by a process that died before its rename: never the truth.
                    leftover.unlink()
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
        """Replace the log's note atomically; durable on return (see the module docstring)."""
        tmp = _write_temporary(self.logs, note.encode())
        try:
            os.replace(tmp, self.latest_path(origin))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # Crash before this line: after a restart either file may be found, both whole.
        _fsync_directory(self.logs)

    def keep_evidence(self, data: bytes, time: int, size: int) -> Path:
        """Write a new evidence file (never replacing one); durable on return. Its path."""
        tmp = _write_temporary(self.evidence, data)
        try:
            for attempt in range(1000):
                suffix = f"-{attempt}" if attempt else ""
                path = self.evidence / f"{time}-{size}{suffix}.txt"
                try:
                    # link() fails if the name is taken, where rename() would replace it.
                    os.link(tmp, path)
                except FileExistsError:
                    continue
                _fsync_directory(self.evidence)
                return path
            raise StateError(f"couldn't name an evidence file in {self.evidence}")
        finally:
            tmp.unlink(missing_ok=True)
