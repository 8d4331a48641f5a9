"""Each process remembers the profiles it last sent, so a repeat costs a small row.

A profile is ~10 KB; moving its lists from PostgreSQL and encoding it again for
every request was the larger part of a cached profile's cost. The memo keeps, per
identifier, the profile exactly as sent, with what it was built from: the cache
generation of its lists, the subject row's version, and the days the lists hold
for. The lookup first asks PostgreSQL for the subject's current generation and
version (one small statement, registry/bureau/profile_sql.py ``CURRENT``); when they
are still those, the memo's profile is sent and nothing else is read. That is exact for the same reason the shared cache
is: every write to what a profile shows bumps the generation in the writer's
transaction (schema/0005_bureau_profile_cache.sql) or the subject's version (every
subject write does, with its audit-log index), and lists of one generation differ
by day only at ``valid_until``, which the memo checks before offering a profile.
The subject part depends on the day only through the minor rule, and a profile
shown once (an adult) stays shown on every later day.

Bounded by the bytes it holds (least recently used first out).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Shown:
    """A profile as sent (UTF-8 JSON), built from lists of ``generation`` and the subject
    row at ``version``; the same on days [as_of, valid_until)."""

    generation: int
    version: int
    as_of: date
    valid_until: date | None
    body: bytes

    def holds_on(self, on: date) -> bool:
        return self.as_of <= on and (self.valid_until is None or on < self.valid_until)


class ProfileMemo:
    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[Hashable, Shown] = OrderedDict()

    def usable(self, key: Hashable, on: date) -> Shown | None:
        """The profile held for ``key`` if it may still be sent on ``on``."""
        shown = self._entries.get(key)
        if shown is None or not shown.holds_on(on):
            return None
        self._entries.move_to_end(key)
        return shown

    def put(self, key: Hashable, shown: Shown) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        if len(shown.body) > self._max_bytes:
            return
        self._entries[key] = shown
        self._bytes += len(shown.body)
        while self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held_bytes(self) -> int:
        return self._bytes
