"""Each process remembers the profiles it last sent, so a repeat costs a small row.

A profile is ~10 KB; moving its lists from PostgreSQL and encoding it again for
every request was the larger part of a cached profile's cost. The memo keeps, per
identifier, the profile exactly as sent, with what it was built from: the cache
generation of its lists, the subject row's version, and the days the lists hold
for. The lookup first asks PostgreSQL for the subject's current generation and
version (one small statement, registry/bureau/profile_sql.py ``CURRENT``); when the
identifier still finds the same subject and they are still those, the memo's profile
is sent and nothing else is read. That is exact for the same reason the shared cache
is (generations never go back: cache rows cannot be deleted, schema 0006): every
write to what a profile shows bumps the generation in the writer's transaction
(schema/0005_bureau_profile_cache.sql) or the subject's version (every
subject write does, with its audit-log index), and lists of one generation differ
by day only at ``valid_until``, which the memo checks before offering a profile.
The subject part depends on the day only through the minor rule, and a profile
shown once (an adult) stays shown on every later day.

A profile checked (or built) since the last change this process learnt of is sent
without asking PostgreSQL at all (``trusted``): each entry keeps the change epoch
(registry/db/changes.py) its last read began in, and is trusted only while that is
still the epoch, no write of this process is open, and the change listener is
connected. Writes this process makes are seen by the next read without delay;
writes made elsewhere when their notice arrives.

Bounded by the bytes it holds (least recently used first out).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date

from registry.db.changes import ChangeEpoch

# The change epoch of a read that may lack changes already heard of (one from a read
# replica): epochs count up from 0, so an entry read in it is never ``trusted``.
NEVER_TRUSTED = -1


@dataclass(frozen=True)
class Shown:
    """A profile as sent (UTF-8 JSON), built from lists of ``generation`` and the subject
    row at ``version``; the same on days [as_of, valid_until)."""

    subject_id: uuid.UUID
    kind: str
    generation: int
    version: int
    as_of: date
    valid_until: date | None
    body: bytes

    def holds_on(self, on: date) -> bool:
        return self.as_of <= on and (self.valid_until is None or on < self.valid_until)


class _Held:
    __slots__ = ("read_in", "shown")

    def __init__(self, shown: Shown, read_in: int) -> None:
        self.shown = shown
        self.read_in = read_in  # the change epoch the last read that confirmed it began in


class ProfileMemo:
    def __init__(self, changes: ChangeEpoch, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._changes = changes
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[Hashable, _Held] = OrderedDict()
        # For tests and the metrics: profiles sent without asking PostgreSQL; sent after one
        # small statement said they were still current; built (a miss, or changed).
        self.trusted_hits = 0
        self.confirmed = 0
        self.built = 0

    def usable(self, key: Hashable, on: date) -> Shown | None:
        """The profile held for ``key`` if it may still be sent on ``on``, once confirmed."""
        held = self._entries.get(key)
        if held is None or not held.shown.holds_on(on):
            return None
        self._entries.move_to_end(key)
        return held.shown

    def trusted(self, key: Hashable, on: date, listening: bool) -> Shown | None:
        """The profile held for ``key`` if it may be sent on ``on`` with no read at all:
        nothing has changed since it was last read (``listening``: whether changes made
        elsewhere can be heard now)."""
        held = self._entries.get(key)
        if (
            held is None
            or not listening
            or not self._changes.quiet_since(held.read_in)
            or not held.shown.holds_on(on)
        ):
            return None
        self._entries.move_to_end(key)
        self.trusted_hits += 1
        return held.shown

    def confirm(self, key: Hashable, shown: Shown, read_in: int) -> None:
        """A read that began in change epoch ``read_in`` found ``shown`` still current."""
        self.confirmed += 1
        held = self._entries.get(key)
        if held is not None and held.shown is shown and read_in > held.read_in:
            held.read_in = read_in

    def put(self, key: Hashable, shown: Shown, read_in: int) -> None:
        """``shown`` as built by a read that began in change epoch ``read_in``."""
        self.built += 1
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.shown.body)
        if len(shown.body) > self._max_bytes:
            return
        self._entries[key] = _Held(shown, read_in)
        self._bytes += len(shown.body)
        while self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.shown.body)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held_bytes(self) -> int:
        return self._bytes
