"""Exports for the credit-information exchange platform: CSV and JSON, streamed.

Each export is one consistent snapshot: a READ ONLY, REPEATABLE READ
transaction whose first query fixes what it sees, read through a server-side
cursor in chunks of ``CHUNK`` rows. Memory stays flat whatever the size: a
chunk is encoded and handed to the response before the next is fetched.

"As of" a moment ``t`` (default now, never the future): the items public on
``t``'s day (the selection rule) among those created by ``t``. The current
version of each item is what is exported; a correction written after ``t``
shows in its corrected form (the audit log keeps the earlier one).

The connection is held for the whole download and released when the stream
ends or the client goes away (the generator's ``finally``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Final

import asyncpg
import msgspec

from registry.publish.selection import (
    LISTING_ITEMS,
    LISTING_PUBLIC,
    LISTINGS_FROM,
    PENALTY_ITEMS,
    RECORD_PUBLIC,
    RECORDS_FROM,
    SUBJECT_COLUMNS,
    SubjectView,
    day_of,
    listing_entry,
    listing_values,
    record_entry,
    record_values,
)
from registry.services import Services

CHUNK: Final = 2000
BOM: Final = "\ufeff".encode()

# Only what the items need: a million-row export spends its time decoding columns.
_RECORD_COLUMNS: Final = ", ".join(
    "r." + c for c in (
        "id", "subject_id", "record_kind", "grade", "decision_number", "violation_type", "facts",
        "legal_basis", "penalty_types", "penalty_content", "fine_amount", "confiscation_amount",
        "licence_name", "licence_number", "decision_date", "valid_until", "publicity_deadline",
        "authority_name", "authority_code", "source_name", "source_code", "remarks",
        "under_objection", "publicity_start", "publicity_end", "log_index",
    )
)
PENALTIES_SQL: Final = (
    f"SELECT {_RECORD_COLUMNS}, {SUBJECT_COLUMNS} FROM {RECORDS_FROM}"  # noqa: S608 - fixed text
    f" WHERE r.record_kind = 'penalty' AND {RECORD_PUBLIC} AND r.created_at <= $2"
)
BLACKLIST_SQL: Final = (
    f"SELECT b.*, {SUBJECT_COLUMNS} FROM {LISTINGS_FROM}"  # noqa: S608 - fixed text
    f" WHERE {LISTING_PUBLIC} AND b.created_at <= $2"
)

EXPORTS: Final = {
    "penalties": (PENALTIES_SQL, PENALTY_ITEMS, record_values, record_entry),
    "blacklist": (BLACKLIST_SQL, LISTING_ITEMS, listing_values, listing_entry),
}


async def _rows(services: Services, sql: str, as_of: datetime) -> AsyncIterator[list[asyncpg.Record]]:
    async with services.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(sql, day_of(as_of), as_of)
        while True:
            chunk = await cursor.fetch(CHUNK)
            if not chunk:
                return
            yield chunk
            if len(chunk) < CHUNK:
                return


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): =, +, -, @, and tab
# or carriage return, after which some spreadsheets look again. Such a cell is prefixed
# with an apostrophe, the neutralisation spreadsheets themselves use for text; the value is
# still there to read. JSON exports carry values as typed (no spreadsheet opens them).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str | None) -> str | None:
    """``value`` as a CSV cell no spreadsheet will evaluate."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value


async def stream_csv(services: Services, name: str, as_of: datetime) -> AsyncIterator[bytes]:
    """UTF-8 with BOM; the header is the Chinese item names in the standard's order; every
    cell safe to open in a spreadsheet (``spreadsheet_safe``)."""
    sql, items, to_values, _ = EXPORTS[name]
    subjects = SubjectView(services, day_of(as_of))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([title for _, title in items])
    yield BOM + buffer.getvalue().encode()
    async for chunk in _rows(services, sql, as_of):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(
            [spreadsheet_safe(cell) for cell in to_values(row, subjects.identity(row))]
            for row in chunk if subjects.visible(row)
        )
        yield buffer.getvalue().encode()


async def stream_json(services: Services, name: str, as_of: datetime) -> AsyncIterator[bytes]:
    """A JSON array of the same objects as the feed's publication entries (unsigned)."""
    sql, _, _, to_entry = EXPORTS[name]
    make: Callable[[asyncpg.Record, SubjectView], dict[str, Any]] = to_entry
    subjects = SubjectView(services, day_of(as_of))
    encoder = msgspec.json.Encoder(order="sorted")
    first = True
    yield b"["
    async for chunk in _rows(services, sql, as_of):
        parts = []
        for row in chunk:
            if subjects.visible(row):
                parts.append(encoder.encode(make(row, subjects)))
        if parts:
            body = b",".join(parts)
            yield body if first else b"," + body
            first = False
    yield b"]"
