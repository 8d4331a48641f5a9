"""When this process last learnt of a change to what bureau profiles show.

The profile memo (registry/bureau/profile_memo.py) sends a profile it holds without
asking PostgreSQL only while it can be sure nothing it shows has changed since it
was last read. It learns of changes two ways, and this counter joins them:

- writes made by this process: ``writing`` marks every write transaction from
  before it begins until after it ends (committed or not). While any is open the
  memo asks PostgreSQL; when one ends the epoch moves on, so everything read before
  is checked again. No notification delay is involved, so a write this process has
  answered is seen by every read after the answer.
- writes made anywhere else (another server, the CLI, an operator's SQL): triggers
  on the tables profiles are made of announce each committed transaction on
  ``PROFILES_CHANNEL`` (schema/0006_profile_change_notices.sql); the listener
  (registry/token_cache.py) calls ``heard``. Those are seen when the notice
  arrives, a few milliseconds after the commit (docs/architecture.md), like a token revocation.

The listener going off or coming back also moves the epoch: notices may have been
missed meanwhile. The counter is process-wide, not per database: a change heard for
one database makes the memo of another check again, which costs a read, never
correctness.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

PROFILES_CHANNEL = "registry_profiles_changed"


class ChangeEpoch:
    """A count of changes learnt of, and how many writes of this process are open.

    Touched only from the event loop's thread: no locks.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.writes_open = 0

    def heard(self) -> None:
        """Something may have changed: whatever was read before must be read again."""
        self.epoch += 1

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around one write transaction of this process (nesting is fine)."""
        self.writes_open += 1
        try:
            yield
        finally:
            self.writes_open -= 1
            self.heard()

    def quiet_since(self, epoch: int) -> bool:
        """Nothing learnt of since ``epoch`` and no write of this process open."""
        return epoch == self.epoch and self.writes_open == 0


CHANGES = ChangeEpoch()
