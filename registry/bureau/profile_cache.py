"""Filling the bureau profile cache from the profiles built on a miss, in the background.

A lookup that missed already holds the lists it built; it hands them here and
answers at once. ``ProfileCacheFiller`` writes them in batches with one upsert
that only fills a subject whose generation is still the one the lookup read
(schema/0005_bureau_profile_cache.sql explains why that keeps the cache exact).
A failed or dropped fill costs nothing but a later miss, so failures are not
retried.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import asyncpg

from registry.bureau import profile_sql
from registry.db.batches import BatchWriter, Row
from registry.db.types import Conn


@dataclass(frozen=True)
class Lists:
    """A subject's three lists as UTF-8 JSON, for ``generation``, on days [as_of, valid_until)."""

    generation: int
    as_of: date
    valid_until: date | None
    affiliations: bytes
    records: bytes
    listings: bytes


async def _fill(conn: Conn, rows: list[Row]) -> None:
    # One row per subject (an upsert may not touch a row twice): the last one added,
    # in subject order, the order the invalidation triggers lock in.
    latest = {row[0]: row for row in rows}
    ordered = [latest[sid] for sid in sorted(latest)]
    await conn.execute(profile_sql.FILL, *(list(column) for column in zip(*ordered, strict=True)))


class ProfileCacheFiller(BatchWriter):
    def __init__(self, pool: asyncpg.Pool, *, interval: float = 0.1, batch: int = 1000) -> None:
        super().__init__(
            pool,
            _fill,
            name="profile_cache_fill",
            keep_failed=False,
            interval=interval,
            batch=batch,
            max_buffer=100_000,
        )

    def fill(self, subject_id: uuid.UUID, lists: Lists) -> None:
        """Queue lists built from a snapshot that saw ``lists.generation`` (0: no row yet)."""
        self.add(
            (
                subject_id,
                lists.generation,
                lists.as_of,
                lists.valid_until,
                lists.affiliations,
                lists.records,
                lists.listings,
            )
        )
