"""Bureau profiles, one or a thousand at a time, in a constant number of queries.

``lookup_many`` validates each identifier on its own (an invalid one never fails
the batch), then reads: subjects by credit code (one ``= ANY``), subjects by
(document type, keyed hash) (one join on ``unnest``), and for all found subjects
their affiliations, published records and listed entries (one query each) —
at most five queries whatever the batch size. Single profiles use the same path.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from registry.bureau.views import (
    BureauAffiliation,
    BureauListing,
    BureauProfile,
    BureauRecord,
    SubjectReader,
    listing_view,
    listing_visible,
)
from registry.clock import today
from registry.errors import InvalidInput
from registry.identifiers import validate_credit_code, validate_document
from registry.services import Services


@dataclass(frozen=True)
class Identifier:
    """One identifier as sent: a credit code, or a document type and number."""

    credit_code: str | None = None
    document_type: str | None = None
    document_number: str | None = None


@dataclass
class Answer:
    """``found`` (profile set), ``not_found``, or ``invalid`` (error set)."""

    status: str
    profile: BureauProfile | None = None
    error: InvalidInput | None = None
    # The practitioner looked up, found (also when answered not_found as a minor):
    # what the access record names.
    practitioner_id: uuid.UUID | None = None


_AFFILIATION_COLUMNS = ", ".join(BureauAffiliation.__struct_fields__)
_RECORD_COLUMNS = ", ".join(BureauRecord.__struct_fields__)
_LISTING_COLUMNS = ", ".join(BureauListing.__struct_fields__)
_CODE_ACCEPTED = "an object with credit_code, or with document_type and document_number"


def _parse(item: Identifier) -> tuple[str, Any]:
    """("code", code) or ("doc", (type, number)); raises InvalidInput."""
    has_doc = item.document_type is not None or item.document_number is not None
    if item.credit_code is not None and has_doc:
        raise InvalidInput("identifier", "has both a credit code and a document", _CODE_ACCEPTED)
    if item.credit_code is not None:
        return "code", validate_credit_code(item.credit_code, "credit_code")
    if item.document_type is None or item.document_number is None:
        raise InvalidInput(
            "document_number" if item.document_type is not None else "identifier",
            "needs both document_type and document_number" if has_doc else "names no subject",
            _CODE_ACCEPTED,
        )
    doc_type, number = validate_document(item.document_type, item.document_number)
    return "doc", (str(doc_type), number)


async def _fetch_subjects(
    conn: Any, services: Services, codes: list[str], docs: list[tuple[str, bytes]]
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = []
    if codes:
        rows += await conn.fetch(
            "SELECT * FROM subjects WHERE credit_code = ANY($1::text[])", codes
        )
    if docs:
        rows += await conn.fetch(
            "SELECT s.* FROM unnest($1::text[], $2::bytea[]) AS q (document_type, document_lookup)"
            " JOIN subjects s ON s.document_type = q.document_type"
            " AND s.document_lookup = q.document_lookup",
            [d[0] for d in docs],
            [d[1] for d in docs],
        )
    return rows


async def profiles_for(
    conn: Any, services: Services, subjects: list[asyncpg.Record], on: date
) -> dict[uuid.UUID, BureauProfile | None]:
    """Profiles of the given subject rows; None for a minor (never shown)."""
    reader = SubjectReader(services, on)
    shown = [s for s in subjects if not reader.is_minor(s)]
    ids = list({s["id"] for s in shown})
    affiliations: dict[uuid.UUID, list[Any]] = defaultdict(list)
    records: dict[uuid.UUID, list[Any]] = defaultdict(list)
    listings: dict[uuid.UUID, list[Any]] = defaultdict(list)
    if ids:
        # Only the projected columns, built straight into the structs: a 1000-subject
        # batch reads ~10,000 records, so per-row work is what bounds bulk throughput.
        people = [s["id"] for s in shown if s["kind"] == "practitioner"]
        for row in (
            await conn.fetch(
                f"SELECT {_AFFILIATION_COLUMNS} FROM affiliations"  # noqa: S608 - fixed names
                " WHERE practitioner_id = ANY($1::uuid[]) ORDER BY valid_from, id",
                people,
            )
            if people
            else []
        ):
            affiliations[row["practitioner_id"]].append(BureauAffiliation(**row))
        # The same visibility rule as views.record_visible, in SQL.
        for row in await conn.fetch(
            f"SELECT {_RECORD_COLUMNS} FROM credit_records"  # noqa: S608 - fixed names
            " WHERE subject_id = ANY($1::uuid[])"
            " AND status = 'published' AND publicity_start <= $2"
            " AND (publicity_end IS NULL OR publicity_end > $2)"
            " ORDER BY decision_date DESC, id DESC",
            ids,
            on,
        ):
            records[row["subject_id"]].append(BureauRecord(**row))
        for row in await conn.fetch(
            f"SELECT {_LISTING_COLUMNS}, state FROM blacklist_entries"  # noqa: S608 - fixed names
            " WHERE subject_id = ANY($1::uuid[]) AND state = 'listed' ORDER BY id",
            ids,
        ):
            if listing_visible(row, on):
                listings[row["subject_id"]].append(listing_view(row))
    out: dict[uuid.UUID, BureauProfile | None] = {s["id"]: None for s in subjects}
    for s in shown:
        out[s["id"]] = BureauProfile(
            subject=reader.view(s),
            affiliations=affiliations[s["id"]],
            records=records[s["id"]],
            listings=listings[s["id"]],
        )
    return out


async def lookup_many(services: Services, items: list[Identifier]) -> list[Answer]:
    """One answer per identifier, in order."""
    on = today(services.clock)
    parsed: list[tuple[str, Any] | InvalidInput] = []
    for item in items:
        try:
            parsed.append(_parse(item))
        except InvalidInput as error:
            parsed.append(error)
    codes = sorted({p[1] for p in parsed if isinstance(p, tuple) and p[0] == "code"})
    doc_keys: dict[tuple[str, str], bytes] = {}
    for p in parsed:
        if isinstance(p, tuple) and p[0] == "doc" and p[1] not in doc_keys:
            doc_keys[p[1]] = services.pii.lookup_hash(p[1][0], p[1][1])
    async with services.pool.acquire() as conn:
        rows = await _fetch_subjects(
            conn, services, codes, [(k[0], h) for k, h in doc_keys.items()]
        )
        profiles = await profiles_for(conn, services, rows, on)
    by_code = {r["credit_code"]: r for r in rows if r["credit_code"] is not None}
    by_doc = {
        (r["document_type"], bytes(r["document_lookup"])): r
        for r in rows
        if r["document_lookup"] is not None
    }
    answers: list[Answer] = []
    for p in parsed:
        if isinstance(p, InvalidInput):
            answers.append(Answer("invalid", error=p))
            continue
        key = p[1] if p[0] == "code" else (p[1][0], doc_keys[p[1]])
        row = (by_code if p[0] == "code" else by_doc).get(key)
        if row is None:
            answers.append(Answer("not_found"))
            continue
        profile = profiles[row["id"]]
        person = row["id"] if row["kind"] == "practitioner" else None
        if profile is None:
            answers.append(Answer("not_found", practitioner_id=person))
        else:
            answers.append(Answer("found", profile=profile, practitioner_id=person))
    return answers
