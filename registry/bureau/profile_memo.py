"""Each process remembers the profile lists it last sent, so a repeat costs a small row.

A profile's lists are ~10 KB; moving them from PostgreSQL for every request was
the larger part of a cached profile's cost. The memo keeps, per identifier, the
lists with the cache generation they belong to and the days they hold for. The
lookup tells PostgreSQL the generation it holds (``known``); when the subject's
generation is still that one, the statement returns no lists and the memo's are
sent. That is exact for the same reason the shared cache is: every write to what
a profile shows bumps the generation in the writer's transaction
(schema/0005_bureau_profile_cache.sql), and lists of one generation differ by day
only at ``valid_until``, which the memo checks before offering them.

Bounded by the bytes it holds (least recently used first out).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date

# Sent as "known" when the memo has nothing usable: no generation is negative.
UNKNOWN = -1


@dataclass(frozen=True)
class Lists:
    """A subject's three lists as UTF-8 JSON, for ``generation``, on days [as_of, valid_until)."""

    generation: int
    as_of: date
    valid_until: date | None
    affiliations: bytes
    records: bytes
    listings: bytes

    def holds_on(self, on: date) -> bool:
        return self.as_of <= on and (self.valid_until is None or on < self.valid_until)

    @property
    def size(self) -> int:
        return len(self.affiliations) + len(self.records) + len(self.listings)


class ProfileMemo:
    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[Hashable, Lists] = OrderedDict()

    def usable(self, key: Hashable, on: date) -> Lists | None:
        """The lists held for ``key`` if they may still be sent on ``on``."""
        lists = self._entries.get(key)
        if lists is None or not lists.holds_on(on):
            return None
        self._entries.move_to_end(key)
        return lists

    def put(self, key: Hashable, lists: Lists) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        if lists.size > self._max_bytes:
            return
        self._entries[key] = lists
        self._bytes += lists.size
        while self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held_bytes(self) -> int:
        return self._bytes
