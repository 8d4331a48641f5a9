"""Bureau profiles, one or a thousand at a time, each read with one SQL statement.

``lookup_many`` validates each identifier on its own (an invalid one never fails
the batch), then reads subjects by credit code (one ``= ANY``) and by (document
type, keyed hash) (one join on ``unnest``): at most two statements whatever the
batch size. Single profiles use the same path.

Each profile's lists arrive as UTF-8 JSON bytes, from the profile cache or built by
PostgreSQL (registry/bureau/profile_sql.py), and pass through untouched
(``msgspec.Raw``): a 1000-subject batch holds ~10,000 records, and decoding them
into Python objects only to encode them again was what bounded lookups. Lists
built on a miss are handed to the cache filler (registry/bureau/profile_cache.py);
lists this process already holds and that are still current are not sent again
(registry/bureau/profile_memo.py).
tests/test_bureau_profiles.py compares every item with the regulator's view, and
the fuzzer checks every answer against the documented schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import msgspec

from registry.bureau import profile_sql
from registry.bureau.profile_memo import UNKNOWN, Lists
from registry.bureau.runtime import BureauRuntime, bureau_runtime
from registry.bureau.views import BureauSubject, SubjectReader
from registry.clock import today
from registry.errors import InvalidInput
from registry.identifiers import validate_credit_code, validate_document
from registry.services import Services


class ProfileJson(msgspec.Struct):
    """A ``BureauProfile`` on the wire: the same fields, the lists already JSON."""

    subject: BureauSubject
    affiliations: msgspec.Raw
    records: msgspec.Raw
    listings: msgspec.Raw


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
    profile: ProfileJson | None = None
    error: InvalidInput | None = None
    # The practitioner looked up, found (also when answered not_found as a minor):
    # what the access record names.
    practitioner_id: uuid.UUID | None = None


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


Key = tuple[Any, ...]  # ("code", credit code) or ("doc", document type, keyed hash)


async def _fetch(
    services: Services, on: date, codes: list[tuple[Key, int]], docs: list[tuple[Key, int]]
) -> list[tuple[Key, asyncpg.Record]]:
    """Rows of the subjects named, each with the key it was asked by."""
    found: list[tuple[Key, asyncpg.Record]] = []
    async with services.pool.acquire() as conn:
        if len(codes) == 1:
            [((_, code), known)] = codes
            rows = await conn.fetch(profile_sql.BY_CODE, on, code, known)
        elif codes:
            rows = await conn.fetch(
                profile_sql.BY_CODES, on, [k[1] for k, _ in codes], [n for _, n in codes]
            )
        else:
            rows = []
        found += [(("code", r["credit_code"]), r) for r in rows]
        if len(docs) == 1:
            [((_, doc_type, lookup), known)] = docs
            rows = await conn.fetch(profile_sql.BY_DOCUMENT, on, doc_type, lookup, known)
        elif docs:
            rows = await conn.fetch(
                profile_sql.BY_DOCUMENTS,
                on,
                [k[1] for k, _ in docs],
                [k[2] for k, _ in docs],
                [n for _, n in docs],
            )
        else:
            rows = []
        found += [(("doc", r["document_type"], bytes(r["document_lookup"])), r) for r in rows]
    return found


def _lists(runtime: BureauRuntime, key: Key, row: asyncpg.Record, held: dict[Key, Lists]) -> Lists:
    """The row's lists: the memo's when still current, else the row's (remembered, and
    handed to the shared cache when they were built on the spot)."""
    if row["known"]:
        return held[key]
    lists = Lists(
        generation=row["lists_generation"],
        as_of=row["lists_as_of"],
        valid_until=row["lists_valid_until"],
        affiliations=row["affiliations_json"],
        records=row["records_json"],
        listings=row["listings_json"],
    )
    runtime.profile_memo.put(key, lists)
    if not row["cache_hit"]:
        runtime.profile_fills.fill(row["id"], lists)
    return lists


def _profile(reader: SubjectReader, row: asyncpg.Record, lists: Lists) -> ProfileJson | None:
    """The row's profile; None for a minor (never shown)."""
    if reader.is_minor(row):
        return None
    return ProfileJson(
        subject=reader.view(row),
        affiliations=msgspec.Raw(lists.affiliations),
        records=msgspec.Raw(lists.records),
        listings=msgspec.Raw(lists.listings),
    )


async def lookup_many(services: Services, items: list[Identifier]) -> list[Answer]:
    """One answer per identifier, in order."""
    on = today(services.clock)
    runtime = bureau_runtime(services)
    keys: list[Key | InvalidInput] = []
    for item in items:
        try:
            kind, value = _parse(item)
        except InvalidInput as error:
            keys.append(error)
            continue
        if kind == "code":
            keys.append(("code", value))
        else:
            keys.append(("doc", value[0], services.pii.lookup_hash(value[0], value[1])))
    # The lists this process holds, taken now: the memo may drop them meanwhile.
    held: dict[Key, Lists] = {}
    for key in keys:
        if isinstance(key, tuple) and key not in held:
            lists = runtime.profile_memo.usable(key, on)
            if lists is not None:
                held[key] = lists
    asked = sorted({k for k in keys if isinstance(k, tuple)})

    def known(key: Key) -> int:
        return held[key].generation if key in held else UNKNOWN

    rows = await _fetch(
        services,
        on,
        [(k, known(k)) for k in asked if k[0] == "code"],
        [(k, known(k)) for k in asked if k[0] == "doc"],
    )
    reader = SubjectReader(services, on)
    found: dict[Key, tuple[asyncpg.Record, ProfileJson | None]] = {
        key: (row, _profile(reader, row, _lists(runtime, key, row, held))) for key, row in rows
    }
    answers: list[Answer] = []
    for key in keys:
        if isinstance(key, InvalidInput):
            answers.append(Answer("invalid", error=key))
            continue
        if key not in found:
            answers.append(Answer("not_found"))
            continue
        row, profile = found[key]
        person = row["id"] if row["kind"] == "practitioner" else None
        if profile is None:
            answers.append(Answer("not_found", practitioner_id=person))
        else:
            answers.append(Answer("found", profile=profile, practitioner_id=person))
    return answers
