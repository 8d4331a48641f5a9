"""What an import asks the database before it writes: one statement per batch for each.

Plain reads, outside any write transaction: a row that changes between one of these
and its write is caught by the write itself (the unique decision number per
authority, the subject's foreign key), reported as that row's problem.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from registry.credit.records import recorded_decision_numbers
from registry.db.types import Db


async def authority(db: Db, code: str) -> tuple[str, bool] | None:
    """(registered name, active) of authority ``code``, or None if there is none."""
    row = await db.fetchrow("SELECT name, active FROM authorities WHERE code = $1", code)
    return None if row is None else (row["name"], row["active"])


async def subjects_by_code(
    db: Db, codes: Sequence[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """(id, registered name) of the subjects registered under these credit codes
    (canonical), by code."""
    rows = await db.fetch(
        "SELECT id, credit_code, name FROM subjects WHERE credit_code = ANY($1::text[])",
        list(codes),
    )
    return {r["credit_code"]: (r["id"], r["name"]) for r in rows}


async def subjects_by_document(
    db: Db, keys: Sequence[tuple[str, bytes]]
) -> dict[tuple[str, bytes], tuple[uuid.UUID, str]]:
    """(id, registered name) of practitioners by (document type, keyed hash of the number):
    the index the API's document lookup uses (``subjects.find_by_document``); no number
    reaches the database."""
    rows = await db.fetch(
        "SELECT s.id, s.name, s.document_type, s.document_lookup FROM subjects s"
        " JOIN unnest($1::text[], $2::bytea[]) AS k(document_type, document_lookup)"
        " ON s.document_type = k.document_type AND s.document_lookup = k.document_lookup",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(r["document_type"], bytes(r["document_lookup"])): (r["id"], r["name"]) for r in rows}


async def subjects_by_id(db: Db, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    """The credit codes (None for practitioners) of the subjects with these ids."""
    rows = await db.fetch(
        "SELECT id, credit_code FROM subjects WHERE id = ANY($1::uuid[])", list(ids)
    )
    return {r["id"]: r["credit_code"] for r in rows}


async def recorded_numbers(db: Db, authority_code: str, numbers: Sequence[str]) -> set[str]:
    """Which of these decision numbers the authority has recorded already (the import's
    natural key; ``credit_records`` holds each at most once per authority)."""
    return await recorded_decision_numbers(db, authority_code, numbers)
