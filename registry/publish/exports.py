"""Exports for the credit-information exchange platform: CSV and JSON, streamed.

Each export is one consistent snapshot: a READ ONLY, REPEATABLE READ
transaction whose first query fixes what it sees, read through a server-side
cursor in chunks of ``CHUNK`` rows. Memory stays flat whatever the size: a
chunk is encoded and handed to the response before the next is fetched.

"As of" a moment ``t`` (never the future) is a snapshot of ``t``: each item in the
version it had at ``t``, rebuilt from the audit log's stored versions
(``credit.history.versions_as_of_sql``, subjects too), and exported when that
version was in publication on ``t``'s day (the selection rule, the same SQL). So a
grade corrected after ``t`` shows as it was, an item revoked, repaired or expired
since shows as it was then, and an item first written after ``t`` is absent.
Without ``as_of`` the export is of now, read straight from the current rows (the
same answer, cheaper: ``tests/test_as_of_snapshot.py`` checks they agree).

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

from registry.credit.history import versions_as_of_sql
from registry.publish.labels import LISTING_COLUMNS, PENALTY_COLUMNS
from registry.publish.selection import (
    LISTING_PUBLIC,
    LISTINGS_FROM,
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
# $1 is the day of the moment $2. Now: the current rows.
PENALTIES_SQL: Final = (
    f"SELECT {_RECORD_COLUMNS}, {SUBJECT_COLUMNS} FROM {RECORDS_FROM}"  # noqa: S608 - fixed text
    f" WHERE r.record_kind = 'penalty' AND {RECORD_PUBLIC} AND r.created_at <= $2"
)
BLACKLIST_SQL: Final = (
    f"SELECT b.*, {SUBJECT_COLUMNS} FROM {LISTINGS_FROM}"  # noqa: S608 - fixed text
    f" WHERE {LISTING_PUBLIC} AND b.created_at <= $2"
)
# As of $2: the same selection over the versions current at $2.
_SUBJECTS_AS_OF: Final = f"{versions_as_of_sql('subject', '$2')} s"
PENALTIES_AS_OF_SQL: Final = (
    f"SELECT {_RECORD_COLUMNS}, {SUBJECT_COLUMNS}"  # noqa: S608 - fixed text
    f" FROM {versions_as_of_sql('credit_record', '$2')} r"
    f" JOIN {_SUBJECTS_AS_OF} ON s.id = r.subject_id"
    f" WHERE r.record_kind = 'penalty' AND {RECORD_PUBLIC}"
)
BLACKLIST_AS_OF_SQL: Final = (
    f"SELECT b.*, {SUBJECT_COLUMNS}"  # noqa: S608 - fixed text
    f" FROM {versions_as_of_sql('blacklist_entry', '$2')} b"
    f" JOIN {_SUBJECTS_AS_OF} ON s.id = b.subject_id"
    f" WHERE {LISTING_PUBLIC}"
)

# name -> (SQL now, SQL as of a moment, items, CSV values, JSON entry)
EXPORTS: Final = {
    "penalties": (PENALTIES_SQL, PENALTIES_AS_OF_SQL, PENALTY_COLUMNS, record_values, record_entry),
    "blacklist": (BLACKLIST_SQL, BLACKLIST_AS_OF_SQL, LISTING_COLUMNS, listing_values,
                  listing_entry),
}


def _sql(name: str, snapshot: bool) -> str:
    now, as_of, *_ = EXPORTS[name]
    return as_of if snapshot else now


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


async def stream_csv(
    services: Services, name: str, as_of: datetime, *, snapshot: bool = False
) -> AsyncIterator[bytes]:
    """UTF-8 with BOM; the header is the column names in Simplified Chinese, in the
    template's order (``labels.PENALTY_COLUMNS``, ``labels.LISTING_COLUMNS``); every
    cell safe to open in a spreadsheet (``spreadsheet_safe``). ``snapshot``: the items as
    they were at ``as_of`` (else ``as_of`` is now, and the current rows are read)."""
    _, _, items, to_values, _ = EXPORTS[name]
    sql = _sql(name, snapshot)
    subjects = SubjectView(services, day_of(as_of))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([title for _, title in items])
    yield BOM + buffer.getvalue().encode()
    async for chunk in _rows(services, sql, as_of):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(
            [spreadsheet_safe(cell) for cell in to_values(row, subjects)]
            for row in chunk if subjects.visible(row)
        )
        yield buffer.getvalue().encode()


async def stream_json(
    services: Services, name: str, as_of: datetime, *, snapshot: bool = False
) -> AsyncIterator[bytes]:
    """A JSON array of the same objects as the feed's publication entries (unsigned);
    ``snapshot`` as for ``stream_csv``."""
    *_, to_entry = EXPORTS[name]
    sql = _sql(name, snapshot)
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
