"""Subject use cases: validate, encrypt personal data, write with its audit leaf.

Nothing is ever deleted: updates bump ``version`` and keep who and when; every
version's full row is kept in the log's object store with its leaf index.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import asyncpg

from registry.clock import today
from registry.db.like import literal as like_literal
from registry.db.types import Conn, required
from registry.db.writes import Written, audited_write
from registry.errors import Conflict, InvalidInput, NotFound
from registry.identifiers import (
    birth_date_of_resident_id,
    mask_document_number,
    validate_credit_code,
    validate_document,
)
from registry.services import Services

ORGANISATION_KINDS = ("vc_firm", "vc_manager")
KINDS = (*ORGANISATION_KINDS, "practitioner")

_INSERT = """
INSERT INTO subjects (id, kind, name, status, credit_code, registered_region, filing_number,
    filing_date, legal_representative, document_type, document_cipher, document_lookup,
    version, created_at, created_by, updated_at, updated_by, log_index, birth_date_cipher)
VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13, $12, $13, $14, $15)
RETURNING *"""

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
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(field, "is blank", "a non-empty text")
    return stripped


def _unique_conflict(error: asyncpg.UniqueViolationError) -> Conflict:
    constraint = getattr(error, "constraint_name", "") or ""
    if "credit_code" in constraint:
        return Conflict("a subject with this credit_code already exists", field="credit_code")
    if "document" in constraint:
        return Conflict(
            "a practitioner with this document_type and document_number already exists",
            field="document_number",
        )
    return Conflict(f"duplicate value ({constraint})")


async def create_subject(services: Services, actor: str, data: dict[str, Any]) -> Written:
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
            data.get("filing_date"),
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

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(
            await conn.fetchrow(
                _INSERT, subject_id, kind, name, *values, now, actor, index, born_cipher
            )
        )
        return row

    try:
        return await audited_write(
            services.pool,
            services.clock,
            actor=actor,
            action="subject.create",
            object_type="subject",
            write=write,
        )
    except asyncpg.UniqueViolationError as error:
        raise _unique_conflict(error) from None


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
                assignments[field] = value
            else:
                assignments[field] = _clean(value, field)
    if not assignments:
        raise InvalidInput("body", "no field to change", ", ".join(sorted(_UPDATABLE)))
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
        raise _unique_conflict(error) from None


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


async def list_subjects(
    services: Services,
    *,
    kind: str | None,
    name_prefix: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await services.pool.fetch(
        "SELECT * FROM subjects WHERE ($1::text IS NULL OR kind = $1)"
        " AND ($2::text IS NULL OR name LIKE $2 || '%')"
        " AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4",
        kind,
        None if name_prefix is None else like_literal(name_prefix),
        after,
        limit,
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


async def add_affiliation(
    services: Services,
    actor: str,
    practitioner_id: uuid.UUID,
    organisation_id: uuid.UUID,
    role: str,
    valid_from: date,
    valid_to: date | None,
) -> Written:
    person = await get_subject(services, practitioner_id)
    if person["kind"] != "practitioner":
        raise InvalidInput("subject", "affiliations belong to practitioners", "a practitioner's id")
    org = await services.pool.fetchrow("SELECT kind FROM subjects WHERE id = $1", organisation_id)
    if org is None:
        raise InvalidInput(
            "organisation_id", "no such subject", "the id of a vc_firm or vc_manager"
        )
    if org["kind"] not in ORGANISATION_KINDS:
        raise InvalidInput("organisation_id", "is not an organisation", "a vc_firm or vc_manager")
    if valid_to is not None and valid_to < valid_from:
        raise InvalidInput("valid_to", "is before valid_from", "a date on or after valid_from")
    role_clean = _clean(role, "role")
    affiliation_id = uuid.uuid4()

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(
            await conn.fetchrow(
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
    )


async def end_affiliation(
    services: Services, actor: str, affiliation_id: uuid.UUID, valid_to: date
) -> Written:
    current = await services.pool.fetchrow(
        "SELECT * FROM affiliations WHERE id = $1", affiliation_id
    )
    if current is None:
        raise NotFound(f"no affiliation with id {affiliation_id}")
    if current["valid_to"] is not None:
        raise Conflict(f"affiliation {affiliation_id} already ended on {current['valid_to']}")
    if valid_to < current["valid_from"]:
        raise InvalidInput(
            "valid_to", "is before valid_from", f"a date on or after {current['valid_from']}"
        )

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = await conn.fetchrow(
            "UPDATE affiliations SET valid_to = $2, version = version + 1, updated_at = $3,"
            " updated_by = $4, log_index = $5 WHERE id = $1 AND valid_to IS NULL RETURNING *",
            affiliation_id,
            valid_to,
            now,
            actor,
            index,
        )
        if row is None:
            raise Conflict(f"affiliation {affiliation_id} changed meanwhile; read it again")
        return row

    return await audited_write(
        services.pool,
        services.clock,
        actor=actor,
        action="affiliation.end",
        object_type="affiliation",
        write=write,
    )


async def affiliations_of(services: Services, subject_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await services.pool.fetch(
        "SELECT a.*, o.name AS organisation_name, o.credit_code AS organisation_credit_code"
        " FROM affiliations a JOIN subjects o ON o.id = a.organisation_id"
        " WHERE a.practitioner_id = $1 ORDER BY a.valid_from, a.id",
        subject_id,
    )
    return rows
