"""Coming of age: when a practitioner recorded as a minor turns 18, the log says so.

Nothing about a minor reaches bureaus or the public (registry/domain/disclosure.py),
so a bureau that read the change feed while a person was a minor holds nothing
about them. On the day they come of age ``announce_adults`` writes an audited
``subject.came_of_age`` version of their subject (only the version, ``updated_*``
and ``log_index`` change), and the change feed answers a practitioner's version
after the first with the person's whole current profile (registry/bureau/feed.py):
from that leaf on, a bureau's replay has what the profile shows.

Who: a practitioner who is an adult today by the stored number
(``disclosure.adult_from``) and whose current subject version was written before
that day. A version written on or after it (any update, or this announcement)
already told the feed about an adult, so the subject row itself is the state: a
person is announced once, and a crash between two announcements leaves the rest
for the next pass. Age is not visible to SQL (the number is stored encrypted), so
each pass decrypts the number of every practitioner last written before today, in
keyset batches; the scheduled expiry task runs it once a day.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, time

import asyncpg

from registry.clock import today
from registry.db.types import Conn
from registry.db.writes import Written, audited_write
from registry.domain.disclosure import XINING, adult_from, day_of
from registry.errors import Conflict
from registry.services import Services
from registry.subjects import birth_date_of

ACTION = "subject.came_of_age"
_BATCH = 1000


async def announce_adults(services: Services, actor: str) -> int:
    """Write ``subject.came_of_age`` for every practitioner who came of age since their
    subject was last written; returns how many. A subject written meanwhile (409) is
    skipped: that write already told the feed."""
    on = today(services.clock)
    # Rows written today cannot hold a minor who is an adult today.
    today_began = datetime.combine(on, time(0), tzinfo=UTC) - XINING
    after: uuid.UUID | None = None
    announced = 0
    while True:
        rows = await services.pool.fetch(
            "SELECT id, version, document_type, document_cipher, birth_date_cipher, updated_at"
            " FROM subjects"
            " WHERE kind = 'practitioner' AND updated_at < $1 AND ($2::uuid IS NULL OR id > $2)"
            " ORDER BY id LIMIT $3",
            today_began,
            after,
            _BATCH,
        )
        for row in rows:
            number = services.pii.decrypt(row["document_type"], bytes(row["document_cipher"]))
            first = adult_from(number, birth_date_of(services, row))
            if first is not None and day_of(row["updated_at"]) < first <= on:
                with contextlib.suppress(Conflict):
                    await _came_of_age(services, actor, row["id"], row["version"])
                    announced += 1
        if len(rows) < _BATCH:
            return announced
        after = rows[-1]["id"]


async def _came_of_age(
    services: Services, actor: str, subject_id: uuid.UUID, version: int
) -> Written:
    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row: asyncpg.Record | None = await conn.fetchrow(
            "UPDATE subjects SET version = version + 1, updated_at = $3, updated_by = $4,"
            " log_index = $5 WHERE id = $1 AND version = $2 RETURNING *",
            subject_id,
            version,
            now,
            actor,
            index,
        )
        if row is None:
            raise Conflict(f"subject {subject_id} is no longer at version {version}")
        return row

    return await audited_write(
        services.pool,
        services.clock,
        actor=actor,
        action=ACTION,
        object_type="subject",
        write=write,
    )
