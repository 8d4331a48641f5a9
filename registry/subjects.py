"""Subject use cases: validate, encrypt personal data, write with its audit leaf.

Nothing is ever deleted: updates bump ``version`` and keep who and when; every
version's full row is kept in the log's object store with its leaf index.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from registry.clock import today
from registry.db.like import literal as like_literal
from registry.db.types import Conn, Db, required
from registry.db.writes import Written, audited_insert, audited_write, write_transaction
from registry.domain.record_rules import check_past_date
from registry.errors import Conflict, InvalidInput, NotFound
from registry.identifiers import (
    birth_date_of_resident_id,
    mask_document_number,
    validate_credit_code,
    validate_document,
)
from registry.relations import check_span, end_relation
from registry.search import record_condition, search_key, subject_condition, subject_search_text
from registry.services import Services
from registry.text import clean_query, clean_text

ORGANISATION_KINDS = ("vc_firm", "vc_manager")
KINDS = (*ORGANISATION_KINDS, "practitioner")

# A new subject's columns after id, kind, name and status, in the order create_subject
# gives their values.
_DETAIL_COLUMNS = (
    "credit_code", "registered_region", "filing_number", "filing_date", "legal_representative",
    "document_type", "document_cipher", "document_lookup",
)

_EARLIEST_BIRTH = date(1900, 1, 1)
_BIRTH_DATE_ACCEPTED = (
    "the holder's birth date, YYYY-MM-DD: a document whose number carries none (passport, "
    "permits, other) needs it, since whether the holder is a minor decides what may be disclosed"
)


def birth_date_to_store(given: date | None, number: str, on: date) -> date | None:
    """The birth date to keep beside ``number``: None when the number carries one (a GB 11643
    layout; a different ``given`` is refused), else ``given``, which is then required."""
    try:
        carried: date | None = birth_date_of_resident_id(number)
    except InvalidInput:
        carried = None
    if carried is not None:
        if given is not None and given != carried:
            raise InvalidInput("birth_date", "differs from the birth date in the document number",
                               "omit birth_date: the number carries it")
        return None
    if given is None:
        raise InvalidInput("birth_date", "is required for a document whose number carries no "
                           "birth date", _BIRTH_DATE_ACCEPTED)
    if not _EARLIEST_BIRTH <= given <= on:
        raise InvalidInput("birth_date", "is not a possible birth date",
                           f"a date from {_EARLIEST_BIRTH.isoformat()} to {on.isoformat()}")
    return given


def _clean(value: str | None, field: str) -> str | None:
    """One line of text as stored (registry/text.py): trimmed, NFC, nothing hidden, not blank."""
    return clean_text(value, field)


def _unique_conflict(
    error: asyncpg.UniqueViolationError, existing_id: uuid.UUID | None = None
) -> Conflict:
    """The 409 for a duplicate credit code or document, naming the subject that holds it
    (``existing_id``). Subjects are written by regulators only (registry/api/subjects.py),
    and a regulator may read that subject anyway: the id tells it nothing it could not ask."""
    constraint = getattr(error, "constraint_name", "") or ""
    existing = str(existing_id) if existing_id is not None else None
    if "credit_code" in constraint:
        return Conflict(
            "a subject with this credit_code already exists (existing_id names it)",
            field="credit_code",
            existing_id=existing,
        )
    if "document" in constraint:
        return Conflict(
            "a practitioner with this document_type and document_number already exists "
            "(existing_id names it: read or change that subject instead)",
            field="document_number",
            existing_id=existing,
        )
    return Conflict(f"duplicate value ({constraint})")


async def _duplicate(
    services: Services,
    error: asyncpg.UniqueViolationError,
    *,
    credit_code: str | None,
    document: tuple[str, bytes] | None,
) -> Conflict:
    """``_unique_conflict`` with the holder looked up. A unique violation is raised only once
    the other row is committed, so the lookup (a new snapshot) finds it."""
    constraint = getattr(error, "constraint_name", "") or ""
    existing: uuid.UUID | None = None
    if "credit_code" in constraint and credit_code is not None:
        existing = await services.pool.fetchval(
            "SELECT id FROM subjects WHERE credit_code = $1", credit_code
        )
    elif "document" in constraint and document is not None:
        existing = await services.pool.fetchval(
            "SELECT id FROM subjects WHERE document_type = $1 AND document_lookup = $2",
            *document,
        )
    return _unique_conflict(error, existing)


def _filing_date(services: Services, value: date | None) -> date | None:
    """A filing (備案) has happened: 1990-01-01 up to today (9999-12-31 was accepted)."""
    if value is not None:
        check_past_date("filing_date", value, today(services.clock))
    return value


async def create_subject(
    services: Services, actor: str, data: dict[str, Any], *, conn: Conn | None = None
) -> Written:
    """Register a subject: one change, one leaf. With ``conn`` it joins that write
    transaction (``register`` adds the affiliations in the same one)."""
    kind = data["kind"]
    name = _clean(data["name"], "name")
    subject_id = uuid.uuid4()
    born_cipher: bytes | None = None
    if kind in ORGANISATION_KINDS:
        code = validate_credit_code(data["credit_code"], "credit_code")
        values: tuple[Any, ...] = (
            code,
            _clean(data.get("registered_region"), "registered_region"),
            _clean(data.get("filing_number"), "filing_number"),
            _filing_date(services, data.get("filing_date")),
            _clean(data.get("legal_representative"), "legal_representative"),
            None,
            None,
            None,
        )
    else:
        doc_type, number = validate_document(data["document_type"], data["document_number"])
        born = birth_date_to_store(data.get("birth_date"), number, today(services.clock))
        born_cipher = None if born is None else services.pii.encrypt_birth_date(str(doc_type), born)
        values = (
            None,
            None,
            None,
            None,
            None,
            str(doc_type),
            services.pii.encrypt(str(doc_type), number),
            services.pii.lookup_hash(str(doc_type), number),
        )

    # Searched by its name and credit code from the commit on (registry/search.py).
    search = subject_search_text(name or "", values[0])

    def row_at(now: datetime) -> dict[str, Any]:
        return {
            "id": subject_id, "kind": kind, "name": name, "status": "active",
            **dict(zip(_DETAIL_COLUMNS, values, strict=True)),
            "version": 1, "created_at": now, "created_by": actor, "updated_at": now,
            "updated_by": actor, "birth_date_cipher": born_cipher, "search_text": search,
        }

    try:
        return await audited_insert(
            services.pool,
            services.clock,
            services.shapes,
            actor=actor,
            action="subject.create",
            object_type="subject",
            values=row_at,
            conn=conn,
        )
    except asyncpg.UniqueViolationError as error:
        raise await _duplicate(
            services,
            error,
            credit_code=values[0],
            document=None if values[5] is None else (values[5], values[7]),
        ) from None


async def get_subject(services: Services, subject_id: uuid.UUID) -> asyncpg.Record:
    row = await services.pool.fetchrow("SELECT * FROM subjects WHERE id = $1", subject_id)
    if row is None:
        raise NotFound(f"no subject with id {subject_id}")
    return row


_UPDATABLE = {
    "name",
    "registered_region",
    "filing_number",
    "filing_date",
    "legal_representative",
    "credit_code",
    "document",
    "birth_date",
    "status",
}


async def update_subject(
    services: Services,
    actor: str,
    subject_id: uuid.UUID,
    expected_version: int,
    changes: dict[str, Any],
    action: str = "subject.update",
) -> Written:
    """Apply ``changes`` if the subject is still at ``expected_version`` (else 409)."""
    current = await get_subject(services, subject_id)
    is_org = current["kind"] in ORGANISATION_KINDS
    assignments: dict[str, Any] = {}
    for field, value in changes.items():
        if field not in _UPDATABLE:
            raise InvalidInput(field, "cannot be changed", ", ".join(sorted(_UPDATABLE)))
        if field == "name":
            assignments["name"] = _clean(value, "name")
        elif field == "status":
            assignments["status"] = value
        elif field == "document":
            if is_org:
                raise InvalidInput("document_number", "organisations have no document number")
            doc_type, number = validate_document(value[0], value[1])
            assignments["document_type"] = str(doc_type)
            assignments["document_cipher"] = services.pii.encrypt(str(doc_type), number)
            assignments["document_lookup"] = services.pii.lookup_hash(str(doc_type), number)
            # A new document that carries no birth date keeps the one already known (from
            # the old number, or recorded beside it) unless another is given.
            given = changes.get("birth_date") or _known_birth_date(services, current)
            born = birth_date_to_store(given, number, today(services.clock))
            assignments["birth_date_cipher"] = (
                None if born is None else services.pii.encrypt_birth_date(str(doc_type), born))
        elif field == "birth_date":
            if is_org:
                raise InvalidInput("birth_date", "applies to practitioners only", "omit birth_date")
            if "document" in changes:
                continue  # set with the document above
            number = services.pii.decrypt(current["document_type"],
                                          bytes(current["document_cipher"]))
            born = birth_date_to_store(value, number, today(services.clock))
            assignments["birth_date_cipher"] = (
                None if born is None
                else services.pii.encrypt_birth_date(current["document_type"], born))
        else:
            if not is_org:
                raise InvalidInput(field, "applies to organisations only", "name, document")
            if field == "credit_code":
                assignments[field] = validate_credit_code(value, "credit_code")
            elif field == "filing_date":
                assignments[field] = _filing_date(services, value)
            else:
                assignments[field] = _clean(value, field)
    if not assignments:
        raise InvalidInput("body", "no field to change", ", ".join(sorted(_UPDATABLE)))
    # A new name or credit code is searched from this write on (registry/search.py); the
    # version check makes ``current`` the row this update replaces.
    if "name" in assignments or "credit_code" in assignments:
        assignments["search_text"] = subject_search_text(
            assignments.get("name", current["name"]),
            assignments.get("credit_code", current["credit_code"]),
        )
    columns = list(assignments)
    sets = ", ".join(f"{column} = ${i + 6}" for i, column in enumerate(columns))
    sql = (
        f"UPDATE subjects SET {sets}, version = version + 1, updated_at = $3, updated_by = $4,"  # noqa: S608 - column names come from the fixed _UPDATABLE set
        " log_index = $5 WHERE id = $1 AND version = $2 RETURNING *"
    )

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = await conn.fetchrow(
            sql, subject_id, expected_version, now, actor, index, *assignments.values()
        )
        if row is None:
            raise Conflict(
                f"subject {subject_id} is no longer at version {expected_version}; "
                "read it again and retry with its current version",
                field="version",
            )
        return row

    try:
        return await audited_write(
            services.pool,
            services.clock,
            actor=actor,
            action=action,
            object_type="subject",
            write=write,
        )
    except asyncpg.UniqueViolationError as error:
        raise await _duplicate(
            services,
            error,
            credit_code=assignments.get("credit_code"),
            document=(assignments["document_type"], assignments["document_lookup"])
            if "document_lookup" in assignments else None,
        ) from None


async def find_by_document(
    services: Services, document_type: str, number: str
) -> asyncpg.Record | None:
    doc_type, normalised = validate_document(document_type, number)
    row: asyncpg.Record | None = await services.pool.fetchrow(
        "SELECT * FROM subjects WHERE document_type = $1 AND document_lookup = $2",
        str(doc_type),
        services.pii.lookup_hash(str(doc_type), normalised),
    )
    return row


async def find_by_credit_code(services: Services, code: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await services.pool.fetchrow(
        "SELECT * FROM subjects WHERE credit_code = $1", validate_credit_code(code, "credit_code")
    )
    return row


def _known_birth_date(services: Services, row: asyncpg.Record) -> date | None:
    """A practitioner's birth date as the registry knows it: from the number, or beside it."""
    number = services.pii.decrypt(row["document_type"], bytes(row["document_cipher"]))
    try:
        return birth_date_of_resident_id(number)
    except InvalidInput:
        return birth_date_of(services, row)


def birth_date_of(services: Services, row: asyncpg.Record) -> date | None:
    """The birth date recorded beside a number that carries none (decrypted), or None."""
    blob = row["birth_date_cipher"]
    if blob is None:
        return None
    return services.pii.decrypt_birth_date(row["document_type"], bytes(blob))


def document_number_for(services: Services, row: asyncpg.Record, *, clear: bool) -> str | None:
    """The practitioner's document number: clear for regulators, masked for everyone else."""
    if row["document_cipher"] is None:
        return None
    number = services.pii.decrypt(row["document_type"], bytes(row["document_cipher"]))
    if clear:
        return number
    policy = services.policy
    return mask_document_number(
        number, policy.mask_keep_head, policy.mask_keep_tail, policy.mask_char
    )


# One kind is compared with ``=`` ($1), so the (kind, id) index walks it in id order;
# several are an array ($5): PostgreSQL plans ``kind = ANY`` as a filter on the walk
# through every id, even for an array of one.
_LISTED = (
    "($1::text IS NULL OR kind = $1) AND ($5::text[] IS NULL OR kind = ANY($5))"
    " AND ($2::text IS NULL OR name LIKE $2 || '%') AND ($3::uuid IS NULL OR id > $3)"
)
# A search first looks through the next subjects in id order, twenty for each one a page
# holds (at least _LOOK_FIRST): a term of one subject in twenty or more fills the page
# there. Ids are random (uuid4), so those subjects are a fair sample: a term of one in a
# hundred or more then looks through as many more as the sample says the page needs (at
# most _LOOK_AT_MOST). A rarer one, or one that still falls short, is gathered through the
# trigram indexes, fenced off as a materialized CTE: the planner, counting on matches spread
# evenly, would walk the ids for it too, and a term of one subject in a thousand would
# cost a walk through most of the table.
_LOOK_FIRST = 1000
_LOOK_AT_MOST = 20_000

# Decision numbers are their records' (schema/0017_record_search.sql). A term with a
# trigram that no record of a sample of _NUMBER_SAMPLE in subject order names (ids are
# random: a fair sample) names few records anywhere, and a name never names one: its
# subjects are collected first, through the records' trigram index, as a set the walk
# looks each subject up in, as cheap as the name. A commoner term (this year's digits,
# thousands of records) and a term of no trigram look each subject's records up as the
# walk goes instead (a correlated subquery with LIMIT, which the planner cannot turn into
# a hash of every record the term names), from the subject index alone, which holds each
# record's spelled number: about 2 µs a subject, and such a term fills a page soon.
_NUMBER_SAMPLE = 1000
_FEW_NUMBERS = """
SELECT CASE WHEN EXISTS (SELECT FROM (SELECT search_number FROM credit_records
    ORDER BY subject_id LIMIT {sample}) AS r WHERE {sampled})
THEN NULL ELSE ARRAY(SELECT DISTINCT r.subject_id FROM credit_records r WHERE {numbered}) END"""

# The first ``$4`` of the ``$6`` subjects in id order after ``$3`` (``_LISTED``; ``$6``
# NULL: to the end) that the search (from ``$7``) finds by name or code, or by the number
# of one of their records (``{numbered}``).
_LOOKED_THROUGH = """
SELECT * FROM (SELECT * FROM subjects WHERE {listed} ORDER BY id LIMIT $6) AS subjects
WHERE {search} OR {numbered} ORDER BY id LIMIT $4"""
# A record's number, looked up as the walk goes; records not yet folded are found on their
# own, through their partial index (empty once `registry migrate` has run).
_LOOKED_UP = """(SELECT true FROM credit_records r WHERE r.subject_id = subjects.id AND {folded}
    LIMIT 1) OR id IN (SELECT r.subject_id FROM credit_records r WHERE r.search_number IS NULL
    AND {unfolded})"""

# The subjects (from ``$6``) found by name or code and those found by a record's number,
# each set through its own trigram index.
_GATHERED = """
WITH found AS MATERIALIZED (
    SELECT id FROM subjects WHERE {listed} AND {search}
    UNION
    SELECT id FROM subjects WHERE {listed} AND {numbered})
SELECT subjects.* FROM (SELECT id FROM found ORDER BY id LIMIT $4) AS page
JOIN subjects ON subjects.id = page.id ORDER BY subjects.id"""


async def list_subjects(
    services: Services,
    *,
    kind: str | tuple[str, ...] | None,
    name_prefix: str | None,
    after: uuid.UUID | None,
    limit: int,
    q: str | None = None,
) -> list[asyncpg.Record]:
    """Subjects in id order after ``after``: of ``kind`` (one, or any of several), whose
    name starts with ``name_prefix`` (as typed), and that ``q`` finds (registry/search.py:
    anywhere in the name, credit code or a decision number of one of its records; either
    script, full- or half-width, any case)."""
    # Names are stored in NFC (registry/text.py), so the prefix is compared in NFC too.
    prefix = clean_query(name_prefix, "name_prefix")
    query = clean_query(q, "q")
    kinds = (kind,) if isinstance(kind, str) else kind
    one, several = (kinds[0], None) if kinds and len(kinds) == 1 else (None, kinds)
    args = (one, None if prefix is None else like_literal(prefix), after, limit, several)
    rows: list[asyncpg.Record]
    if query is None:
        rows = await services.pool.fetch(
            f"SELECT * FROM subjects WHERE {_LISTED} ORDER BY id LIMIT $4", *args  # noqa: S608 - fixed text
        )
        return rows
    # Fewer than three letters and digits make no trigram (the index would read all of
    # itself): such a term, common anyway, only ever walks the ids, to the end if need be.
    indexed = len(search_key(query)) >= 3
    few: list[uuid.UUID] | None = None
    if indexed:
        search, params = subject_condition("s", 1, query)
        few = await services.pool.fetchval(_FEW_NUMBERS.format(
            sample=_NUMBER_SAMPLE, sampled=record_condition("r", 1, unfolded="kept"),
            numbered=record_condition("r", 1)), *params[:3])

    def numbered(first: int) -> tuple[str, list[Any]]:
        """The condition on ``subjects`` that a record's number finds it, with the
        parameters from ``first`` on it adds (after the search's own four)."""
        if few is not None:
            return f"subjects.id = ANY(${first + 4}::uuid[])", [few]
        return _LOOKED_UP.format(folded=record_condition("r", first, unfolded="left"),
                                 unfolded=record_condition("r", first)), []

    search, params = subject_condition("subjects", 7, query)
    by_number, extra = numbered(7)
    looked_through = _LOOKED_THROUGH.format(listed=_LISTED, search=search, numbered=by_number)
    window = max(_LOOK_FIRST, 20 * limit) if indexed else None
    rows = await services.pool.fetch(looked_through, *args, window, *params, *extra)
    if len(rows) == limit or window is None:
        return rows
    if len(rows) * 100 >= window:
        wider = min(_LOOK_AT_MOST, window + 2 * (limit - len(rows)) * window // len(rows))
        rows = await services.pool.fetch(looked_through, *args, wider, *params, *extra)
        if len(rows) == limit:
            return rows
    search, params = subject_condition("subjects", 6, query)
    by_number, extra = numbered(6)
    if few is None:  # many records: their subjects through the trigram index after all
        by_number = ("id IN (SELECT r.subject_id FROM credit_records r"  # noqa: S608 - fixed text
                     f" WHERE {record_condition('r', 6)})")
    rows = await services.pool.fetch(
        _GATHERED.format(listed=_LISTED, search=search, numbered=by_number),
        *args, *params, *extra,
    )
    return rows


async def subject_history(services: Services, subject_id: uuid.UUID) -> list[asyncpg.Record]:
    await get_subject(services, subject_id)
    rows: list[asyncpg.Record] = await services.pool.fetch(
        "SELECT o.log_index, l.leaf FROM tlog_objects o JOIN tlog_leaves l ON l.idx = o.log_index"
        " WHERE o.object_type = 'subject' AND o.object_id = $1 ORDER BY o.log_index",
        str(subject_id),
    )
    return rows


# ---- affiliations ---------------------------------------------------------------

_INSERT_AFFILIATION = """
INSERT INTO affiliations (id, practitioner_id, organisation_id, role, valid_from, valid_to,
    version, created_at, created_by, updated_at, updated_by, log_index)
VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $7, $8, $9) RETURNING *"""


@dataclass(frozen=True)
class NewAffiliation:
    organisation_id: uuid.UUID
    role: str
    valid_from: date
    valid_to: date | None = None


@dataclass(frozen=True)
class Registered:
    """A subject registered with its affiliations: every change and its leaf, in log order."""

    subject: Written
    affiliations: list[Written]

    @property
    def last_index(self) -> int:
        """The write's last leaf: a receipt for all of it waits for this index."""
        return self.affiliations[-1].log_index if self.affiliations else self.subject.log_index


async def register(
    services: Services,
    actor: str,
    data: dict[str, Any],
    affiliations: Sequence[NewAffiliation] = (),
) -> Registered:
    """Create a subject and its affiliations as one write.

    Guarantee: the subject, every affiliation and their leaves (consecutive indexes)
    commit together or not at all. A refused affiliation is a 422 naming it
    (``affiliations[i].organisation_id``) and leaves nothing behind, so the corrected
    request can simply be sent again.
    """
    if affiliations and data["kind"] != "practitioner":
        raise InvalidInput("affiliations", "only practitioners have affiliations",
                           "omit affiliations")
    if not affiliations:
        # One change: its own write, one statement (db/writes.py audited_insert).
        return Registered(subject=await create_subject(services, actor, data), affiliations=[])
    async with write_transaction(services.pool) as conn:
        subject = await create_subject(services, actor, data, conn=conn)
        added: list[Written] = []
        for i, item in enumerate(affiliations):
            try:
                added.append(await add_affiliation(
                    services, actor, subject.row["id"], item.organisation_id, item.role,
                    item.valid_from, item.valid_to, conn=conn,
                ))
            except InvalidInput as error:
                raise InvalidInput(
                    f"affiliations[{i}].{error.field}", error.reason, error.accepted
                ) from None
    return Registered(subject=subject, affiliations=added)


async def add_affiliation(
    services: Services,
    actor: str,
    practitioner_id: uuid.UUID,
    organisation_id: uuid.UUID,
    role: str,
    valid_from: date,
    valid_to: date | None,
    *,
    conn: Conn | None = None,
) -> Written:
    """Record an affiliation: one change, one leaf. With ``conn`` it reads and writes in
    that write transaction (so a practitioner created in it is found)."""
    db: Db = conn if conn is not None else services.pool
    person = await db.fetchrow("SELECT kind FROM subjects WHERE id = $1", practitioner_id)
    if person is None:
        raise NotFound(f"no subject with id {practitioner_id}")
    if person["kind"] != "practitioner":
        raise InvalidInput("subject", "affiliations belong to practitioners", "a practitioner's id")
    org = await db.fetchrow("SELECT kind FROM subjects WHERE id = $1", organisation_id)
    if org is None:
        raise InvalidInput(
            "organisation_id", "no such subject", "the id of a vc_firm or vc_manager"
        )
    if org["kind"] not in ORGANISATION_KINDS:
        raise InvalidInput("organisation_id", "is not an organisation", "a vc_firm or vc_manager")
    check_span(valid_from, valid_to)
    role_clean = _clean(role, "role")
    affiliation_id = uuid.uuid4()

    async def write(c: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(
            await c.fetchrow(
                _INSERT_AFFILIATION,
                affiliation_id,
                practitioner_id,
                organisation_id,
                role_clean,
                valid_from,
                valid_to,
                now,
                actor,
                index,
            )
        )
        return row

    return await audited_write(
        services.pool,
        services.clock,
        actor=actor,
        action="affiliation.create",
        object_type="affiliation",
        write=write,
        conn=conn,
    )


async def end_affiliation(
    services: Services, actor: str, affiliation_id: uuid.UUID, valid_to: date
) -> Written:
    return await end_relation(
        services, actor, object_type="affiliation", noun="affiliation",
        relation_id=affiliation_id, valid_to=valid_to,
    )


async def with_organisation(services: Services, row: asyncpg.Record) -> dict[str, Any]:
    """An affiliation row as written, with its organisation's name and credit code (the
    organisation's current ones, as ``affiliations_of`` shows them)."""
    org = required(await services.pool.fetchrow(
        "SELECT name, credit_code FROM subjects WHERE id = $1", row["organisation_id"]
    ))
    return {**dict(row), "organisation_name": org["name"],
            "organisation_credit_code": org["credit_code"]}


async def affiliations_of(services: Services, subject_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await services.pool.fetch(
        "SELECT a.*, o.name AS organisation_name, o.credit_code AS organisation_credit_code"
        " FROM affiliations a JOIN subjects o ON o.id = a.organisation_id"
        " WHERE a.practitioner_id = $1 ORDER BY a.valid_from, a.id",
        subject_id,
    )
    return rows
