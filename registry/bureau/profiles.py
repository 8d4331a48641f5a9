"""Bureau profiles, one or a thousand at a time, each read with a few SQL statements.

``lookup_many`` validates each identifier on its own (an invalid one never fails
the batch), then reads subjects by credit code (one ``unnest`` join) and by (document
type, keyed hash) (one more): at most two statements per step whatever the batch
size, and two steps: whether the profiles this process holds are still current,
then whole profiles for the rest (no step at all for profiles the memo trusts).
Single profiles use the same path.

Each profile's lists arrive as UTF-8 JSON bytes, from the profile cache or built by
PostgreSQL (registry/bureau/profile_sql.py), and pass through untouched
(``msgspec.Raw``): a 1000-subject batch holds ~10,000 records, and decoding them
into Python objects only to encode them again was what bounded lookups. Lists
are mostly built before any lookup asks (registry/bureau/profile_warmer.py); those
built on a miss are handed to the cache filler (registry/bureau/profile_cache.py).
Each answer is the profile's encoded bytes; a profile this process already sent and
that is still current is neither sent by PostgreSQL nor encoded again, and one read
since the last change this process knows of is not even checked
(registry/bureau/profile_memo.py, registry/db/changes.py).
tests/test_bureau_profiles.py compares every item with the regulator's view, and
the fuzzer checks every answer against the documented schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

import asyncpg
import msgspec

from registry.bureau import profile_sql
from registry.bureau.profile_cache import Lists
from registry.bureau.profile_memo import NEVER_TRUSTED, Shown
from registry.bureau.runtime import BureauRuntime, bureau_runtime
from registry.bureau.views import (
    BureauAffiliate,
    BureauManagedFirm,
    BureauManager,
    BureauSubject,
    SubjectReader,
    masked_list,
    people_shown,
    related_views,
)
from registry.clock import today
from registry.db.changes import CHANGES
from registry.db.types import Conn
from registry.errors import InvalidInput
from registry.identifiers import validate_credit_code, validate_document
from registry.services import Services


class ProfileJson(msgspec.Struct, omit_defaults=True):
    """A ``BureauProfile`` on the wire: the same fields, the kept lists already JSON."""

    subject: BureauSubject
    affiliations: msgspec.Raw
    records: msgspec.Raw
    listings: msgspec.Raw
    managers: list[BureauManager] = []
    firms: list[BureauManagedFirm] = []
    practitioners: list[BureauAffiliate] = []


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
    # The profile as sent: a ProfileJson, encoded.
    profile: bytes | None = None
    error: InvalidInput | None = None
    # The practitioner looked up, found (also when answered not_found as a minor):
    # what the access record names.
    practitioner_id: uuid.UUID | None = None
    # The practitioners a found organisation's profile shows (a manager's): whom sending
    # it discloses, each to be recorded first.
    disclosed: tuple[uuid.UUID, ...] = ()


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
Row = tuple[Key, asyncpg.Record]  # a row with the identifier it answers


async def _rows(conn: Conn, family: dict[str, str], keys: list[Key], *first: Any) -> list[Row]:
    """``family``'s rows for ``keys`` (one statement per kind of identifier), each with
    the key it answers; ``first`` are the parameters before the identifiers."""
    found: list[Row] = []
    codes = [k[1] for k in keys if k[0] == "code"]
    docs = [k for k in keys if k[0] == "doc"]
    if len(codes) == 1:
        rows = await conn.fetch(family["code"], *first, codes[0])
    else:
        rows = await conn.fetch(family["codes"], *first, codes) if codes else []
    found += [(("code", r["credit_code"]), r) for r in rows]
    if len(docs) == 1:
        rows = await conn.fetch(family["document"], *first, docs[0][1], docs[0][2])
    elif docs:
        rows = await conn.fetch(
            family["documents"], *first, [k[1] for k in docs], [k[2] for k in docs]
        )
    else:
        rows = []
    found += [(("doc", r["document_type"], bytes(r["document_lookup"])), r) for r in rows]
    return found


_ENCODER = msgspec.json.Encoder()


def _build(
    runtime: BureauRuntime, reader: SubjectReader, key: Key, row: asyncpg.Record, read_in: int
) -> bytes | None:
    """The row's profile as sent, remembered; None for a minor (never shown). Lists built
    on the spot are handed to the shared cache."""
    lists = Lists(
        generation=row["lists_generation"],
        as_of=row["lists_as_of"],
        valid_until=row["lists_valid_until"],
        affiliations=row["affiliations_json"],
        records=row["records_json"],
        listings=row["listings_json"],
    )
    if not row["cache_hit"]:
        runtime.profile_fills.fill(row["id"], lists)
    if reader.is_minor(row):
        return None
    related = related_views(
        reader, row["managers_json"], row["firms_json"], row["practitioners_json"]
    )
    body = _ENCODER.encode(
        ProfileJson(
            subject=reader.view(row),
            affiliations=msgspec.Raw(lists.affiliations),
            records=msgspec.Raw(masked_list("credit_record", lists.records, reader.policy)),
            listings=msgspec.Raw(masked_list("blacklist_entry", lists.listings, reader.policy)),
            managers=related.managers,
            firms=related.firms,
            practitioners=related.practitioners,
        )
    )
    # From ``on``, not the lists' first day: the subject part was judged (the minor rule)
    # on ``on``, and a clock set back must not reach an earlier day with it.
    shown = Shown(
        row["id"], row["kind"], lists.generation, row["version"], max(lists.as_of, reader.on),
        lists.valid_until, body,
    )
    runtime.profile_memo.put(key, shown, read_in)
    return body


class _Found(NamedTuple):
    # A named tuple: built for every identifier found, and a frozen dataclass's
    # constructor costs several times more.
    subject_id: uuid.UUID
    kind: str
    profile: bytes | None


async def _find(
    services: Services, runtime: BureauRuntime, on: date, asked: list[Key]
) -> dict[Key, _Found]:
    """The subjects asked for that exist, with their profiles: the memo's where nothing
    can have changed since they were read (no statement at all) or where one small
    statement says they are still current; the rest built by PostgreSQL."""
    memo = runtime.profile_memo
    listening = services.listener.listening
    found: dict[Key, _Found] = {}
    # Taken now: the memo may drop them meanwhile.
    held: dict[Key, Shown] = {}
    for key in asked:
        if (shown := memo.trusted(key, on, listening)) is not None:
            found[key] = _Found(shown.subject_id, shown.kind, shown.body)
        elif (shown := memo.usable(key, on)) is not None:
            held[key] = shown
    build = [key for key in asked if key not in found and key not in held]
    if not held and not build:
        return found
    # Before the first read: a change learnt of from here on may not be in what it reads.
    # A replica's read holds every change learnt of so far only if the replica is fresh
    # as of the moment the last was (each was committed before it was learnt of); else
    # it may lack one already counted, and what it reads is never trusted without a
    # check (NEVER_TRUSTED). No await between the two reads of the state.
    reads = services.reads
    read_in = (
        CHANGES.epoch
        if reads.on_primary(services.pool) or reads.fresh_as_of() >= CHANGES.heard_at
        else NEVER_TRUSTED
    )
    async with services.pool.acquire() as conn:
        if held:
            for key, row in await _rows(conn, profile_sql.CURRENT, sorted(held)):
                shown = held[key]
                # The same subject too: an identifier can pass to another subject (a
                # corrected code) whose version and generation happen to be equal.
                if (row["id"], row["generation"], row["version"]) == (
                    shown.subject_id,
                    shown.generation,
                    shown.version,
                ):
                    found[key] = _Found(row["id"], row["kind"], shown.body)
                    memo.confirm(key, shown, read_in)
                else:
                    build.append(key)
            # A held key with no row (its credit code changed) is simply not found.
        built = await _rows(conn, profile_sql.PROFILES, sorted(build), on) if build else []
    reader = SubjectReader(services, on)
    for key, row in built:
        found[key] = _Found(row["id"], row["kind"], _build(runtime, reader, key, row, read_in))
    return found


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
    found = await _find(services, runtime, on, sorted({k for k in keys if isinstance(k, tuple)}))
    answers: list[Answer] = []
    for key in keys:
        if isinstance(key, InvalidInput):
            answers.append(Answer("invalid", error=key))
            continue
        if key not in found:
            answers.append(Answer("not_found"))
            continue
        subject = found[key]
        person = subject.subject_id if subject.kind == "practitioner" else None
        if subject.profile is None:
            answers.append(Answer("not_found", practitioner_id=person))
        else:
            # Read off the bytes sent, wherever they came from (built, or the memo's).
            shown = people_shown(subject.profile) if subject.kind == "vc_manager" else ()
            answers.append(Answer("found", profile=subject.profile, practitioner_id=person,
                                  disclosed=shown))
    return answers
