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
  ``PROFILES_CHANNEL`` (schema/0006_profile_change_notices.sql); the app's database
  listener (registry/db/listener.py, ``hear_changes``) calls ``heard``. Those are seen when the notice
  arrives, a few milliseconds after the commit (docs/architecture.md), like a token revocation.

The listener going off or coming back also moves the epoch: notices may have been
missed meanwhile. The counter is process-wide on purpose, not one per app: writes
reach it through the pool-only write functions (registry/db/writes.py), which know
no app. Sharing can only make a memo check more often (a change heard by one app
makes every app's memo check again: a read, never a wrong answer); whether an app
can trust the notices at all is its own listener's state, asked per app.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

from registry.db.listener import DatabaseListener

PROFILES_CHANNEL = "registry_profiles_changed"


class ChangeEpoch:
    """A count of changes learnt of, and how many writes of this process are open.

    Touched only from the event loop's thread: no locks.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.writes_open = 0
        # When (time.monotonic()) the epoch last moved. Every change learnt of so far was
        # committed (and flushed) before then: a read replica fresh as of this moment holds
        # them all (registry/bureau/profiles.py).
        self.heard_at = -math.inf

    def heard(self) -> None:
        """Something may have changed: whatever was read before must be read again."""
        self.epoch += 1
        self.heard_at = time.monotonic()

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


def hear_changes(listener: DatabaseListener, changes: ChangeEpoch = CHANGES) -> None:
    """Move ``changes`` on at each notice of a change made elsewhere, and whenever the
    listener starts or stops listening (notices may have been missed)."""
    listener.subscribe(
        PROFILES_CHANNEL,
        lambda _payload: changes.heard(),
        on_up=changes.heard,
        on_down=lambda _reason: changes.heard(),
    )
