"""Regulator routes for subjects and their affiliations (thin: parse, call, shape)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any

import asyncpg
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Meta, Struct

from registry import subjects
from registry.api.auth import BEARER, requires
from registry.api.openapi import enum_query, problem_responses
from registry.bureau import access
from registry.bureau.access import RegulatorPurpose
from registry.bureau.runtime import bureau_runtime
from registry.credit.ownership import deciding_authority
from registry.errors import InvalidInput
from registry.services import Services
from registry.structs.common import (
    Code,
    DocumentNumber,
    DocumentTypeName,
    Name,
    Receipt,
    ShortText,
)
from registry.structs.subjects import (
    AffiliationIn,
    FilingNumber,
    PractitionerCreate,
    Region,
    SubjectCreate,
)
from registry.tlog.leaf import Leaf, decode_leaf
from registry.tokens import Principal


class SubjectUpdate(Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields to change; ``version`` must be the subject's current version (else 409)."""

    version: Annotated[int, Meta(ge=1, le=2**31 - 1)]
    name: Name | None = None
    credit_code: Code | None = None
    registered_region: Region | None = None
    filing_number: FilingNumber | None = None
    filing_date: date | None = None
    legal_representative: Name | None = None
    document_type: DocumentTypeName | None = None
    document_number: DocumentNumber | None = None
    # For a number that carries no birth date (see PractitionerCreate).
    birth_date: date | None = None


class StatusChange(Struct, forbid_unknown_fields=True, kw_only=True):
    version: Annotated[int, Meta(ge=1, le=2**31 - 1)]


class AffiliationEnd(Struct, forbid_unknown_fields=True, kw_only=True):
    valid_to: date


class DocumentLookup(Struct, forbid_unknown_fields=True, kw_only=True):
    document_type: DocumentTypeName
    document_number: DocumentNumber
    purpose: Annotated[
        RegulatorPurpose, Meta(description="Why the regulator looks the number up")
    ] = "supervision"


class Affiliation(Struct, kw_only=True):
    id: uuid.UUID
    organisation_id: uuid.UUID
    # The organisation's current name and credit code, so nobody needs a second read.
    organisation_name: str
    organisation_credit_code: str
    role: str
    valid_from: date
    valid_to: date | None
    log_index: int


class Subject(Struct, kw_only=True, omit_defaults=True):
    id: uuid.UUID
    kind: str
    name: str
    status: str
    credit_code: str | None = None
    registered_region: str | None = None
    filing_number: str | None = None
    filing_date: date | None = None
    legal_representative: str | None = None
    document_type: str | None = None
    document_number: str | None = None
    document_number_masked: bool | None = None
    birth_date: date | None = None
    affiliations: list[Affiliation] | None = None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    log_index: int
    receipt: Receipt | None = None


class SubjectPage(Struct):
    items: list[Subject]
    next_cursor: str | None


class HistoryEntry(Struct):
    log_index: int
    # The leaf as an object; its canonical JSON (keys sorted, no whitespace, UTF-8) is the
    # exact leaf bytes the log hashes (registry/tlog/leaf.py).
    leaf: Leaf


class AffiliationWritten(Struct):
    affiliation: Affiliation
    receipt: Receipt


def affiliation_view(row: asyncpg.Record | Mapping[str, Any]) -> Affiliation:
    """From a row of ``subjects.affiliations_of`` or ``subjects.with_organisation``."""
    return Affiliation(
        id=row["id"],
        organisation_id=row["organisation_id"],
        organisation_name=row["organisation_name"],
        organisation_credit_code=row["organisation_credit_code"],
        role=row["role"],
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        log_index=row["log_index"],
    )


def subject_view(
    services: Services,
    row: asyncpg.Record,
    *,
    clear_document: bool,
    affiliations: list[asyncpg.Record] | None = None,
    receipt: Receipt | None = None,
) -> Subject:
    is_person = row["kind"] == "practitioner"
    return Subject(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        status=row["status"],
        credit_code=row["credit_code"],
        registered_region=row["registered_region"],
        filing_number=row["filing_number"],
        filing_date=row["filing_date"],
        legal_representative=row["legal_representative"],
        document_type=row["document_type"],
        document_number=subjects.document_number_for(services, row, clear=clear_document),
        document_number_masked=(not clear_document) if is_person else None,
        # Recorded beside a number that carries none; shown with the clear number only.
        birth_date=subjects.birth_date_of(services, row) if is_person and clear_document else None,
        affiliations=[affiliation_view(a) for a in affiliations]
        if affiliations is not None
        else None,
        version=row["version"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
        log_index=row["log_index"],
        receipt=receipt,
    )


async def _full_view(
    services: Services,
    row: asyncpg.Record,
    principal: Principal,
    receipt: Receipt | None = None,
    *,
    clear: bool = False,
) -> Subject:
    """The subject with its affiliations. A practitioner's number is masked unless ``clear``:
    a read that was recorded as an access (``_account``), or the answer to a write whose
    request carried that very number; never a number the caller did not send or account for."""
    affiliations = (
        await subjects.affiliations_of(services, row["id"])
        if row["kind"] == "practitioner"
        else None
    )
    return subject_view(
        services,
        row,
        clear_document=clear and principal.role == "regulator",
        affiliations=affiliations,
        receipt=receipt,
    )


async def _account(
    services: Services,
    principal: Principal,
    purpose: str,
    channel: str,
    *,
    subject_id: uuid.UUID | None = None,
    document: tuple[str, bytes] | None = None,
) -> None:
    """Record a regulator's read of a practitioner; returns once durable, else raises
    ``Unavailable`` and the answer must not be sent (registry/bureau/access.py)."""
    accessed = access.Access(
        who=principal,
        at=services.clock.now(),
        purpose=purpose,
        channel=channel,
        subject_id=subject_id,
        found=document is None,
        document=document,
    )
    await bureau_runtime(services).recorder.record([accessed])


class SubjectController(Controller):
    path = "/v1/subjects"
    tags = ["subjects"]
    security = BEARER

    @post(
        "/",
        middleware=[requires("regulator")],
        status_code=HTTP_201_CREATED,
        responses=problem_responses(400, 401, 403, 409, 422),
        summary="Create a subject",
        description=(
            "Registers a venture-capital enterprise, management enterprise or practitioner. "
            "The credit code is checked with its check character (GB 32100-2015); a resident ID "
            "with GB 11643-1999. A practitioner's affiliations are written in the same "
            "transaction: the subject and all of them, or nothing (a refused affiliation is a "
            "422 naming `affiliations[i].<field>`). A credit code or document already "
            "registered is a 409 whose `existing_id` names that subject. The answer carries "
            "one audit-log receipt: the subject's leaf, with a checkpoint that includes every "
            "leaf of the write."
        ),
    )
    async def create(
        self,
        data: JSONBody[SubjectCreate],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Subject:
        payload: dict[str, Any] = {
            "kind": data.__struct_config__.tag,
            **{f: getattr(data, f) for f in data.__struct_fields__ if f != "affiliations"},
        }
        # Master data is shared, but every change names the authority that made it.
        deciding_authority(principal)
        wanted = [
            subjects.NewAffiliation(a.organisation_id, a.role, a.valid_from, a.valid_to)
            for a in (data.affiliations if isinstance(data, PractitionerCreate) else [])
        ]
        # One transaction: the subject and every affiliation, or nothing (a refused
        # affiliation leaves no subject behind to make the corrected retry a 409).
        registered = await subjects.register(services, principal.actor, payload, wanted)
        # One receipt for the write: the subject's leaf, with a checkpoint that includes
        # every leaf of it (the affiliations' indexes are in the answer).
        signed = await services.receipt(registered.last_index)
        return await _full_view(
            services,
            registered.subject.row,
            principal,
            Receipt(log_index=registered.subject.log_index, checkpoint=signed.checkpoint),
            clear=True,  # the number the caller just sent
        )

    @get(
        "/",
        middleware=[requires("regulator")],
        responses=problem_responses(400, 401, 403),
        summary="List subjects (keyset pagination by id)",
        description=(
            "Practitioners' document numbers are masked; read one subject for the clear "
            "number. `q` finds subjects by any part of their name, credit code or a decision "
            "number of one of their records, in Simplified or Traditional characters, full- "
            "or half-width, any case (西宁 finds 西寧); `name_prefix` matches the start of "
            "the name as typed. `%` and `_` are searched as typed."
        ),
    )
    async def list_subjects(
        self,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        kind: Annotated[str | None, enum_query(subjects.KINDS, "the kind of subject")] = None,
        name_prefix: Annotated[str | None, Parameter(max_length=200)] = None,
        q: Annotated[
            str | None,
            Parameter(
                max_length=200,
                description="part of the name, credit code or a record's decision number "
                "(either script, full- or half-width, any case)",
            ),
        ] = None,
        cursor: Annotated[
            str | None, Parameter(description="next_cursor of the previous page", max_length=64)
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> SubjectPage:
        if kind is not None and kind not in subjects.KINDS:
            raise InvalidInput("kind", f"unknown kind {kind!r}", ", ".join(subjects.KINDS))
        after = None
        if cursor:
            try:
                after = uuid.UUID(cursor)
            except ValueError:
                raise InvalidInput(
                    "cursor", "not a cursor this API gave out", "next_cursor of a page"
                ) from None
        rows = await subjects.list_subjects(
            services, kind=kind, name_prefix=name_prefix, q=q, after=after, limit=limit
        )
        # Masked, whoever asks: a listing must never bulk-export clear numbers. A clear
        # number is one read (or lookup) at a time, each recorded.
        items = [subject_view(services, r, clear_document=False) for r in rows]
        next_cursor = str(rows[-1]["id"]) if len(rows) == limit else None
        return SubjectPage(items=items, next_cursor=next_cursor)

    @get(
        "/{subject_id:uuid}",
        middleware=[requires("regulator")],
        responses=problem_responses(401, 403, 404),
        summary="Read a subject",
        description=(
            "Regulators see a practitioner's document number in the clear; everyone else "
            "masked. Each clear read is recorded (who, when, why: `purpose`) in the person's "
            "access records before it is answered (503 with Retry-After if it cannot be)."
        ),
    )
    async def read(
        self,
        subject_id: FromPath[uuid.UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        purpose: Annotated[
            RegulatorPurpose,
            Parameter(description="Why a regulator reads a practitioner's clear number"),
        ] = "supervision",
    ) -> Subject:
        row = await subjects.get_subject(services, subject_id)
        view = await _full_view(services, row, principal, clear=True)
        if view.document_number is not None and view.document_number_masked is False:
            await _account(services, principal, purpose, "regulator_read", subject_id=row["id"])
        return view

    @patch(
        "/{subject_id:uuid}",
        middleware=[requires("regulator")],
        responses=problem_responses(400, 401, 403, 404, 409, 422),
        summary="Change a subject (optimistic: send its current version)",
    )
    async def update(
        self,
        subject_id: FromPath[uuid.UUID],
        data: JSONBody[SubjectUpdate],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Subject:
        changes: dict[str, Any] = {}
        for field in (
            "name",
            "credit_code",
            "registered_region",
            "filing_number",
            "filing_date",
            "legal_representative",
        ):
            value = getattr(data, field)
            if value is not None:
                changes[field] = value
        if (data.document_type is None) != (data.document_number is None):
            raise InvalidInput(
                "document_number", "document_type and document_number change together"
            )
        if data.document_type is not None:
            changes["document"] = (data.document_type, data.document_number)
        if data.birth_date is not None:
            changes["birth_date"] = data.birth_date
        deciding_authority(principal)
        written = await subjects.update_subject(
            services, principal.actor, subject_id, data.version, changes
        )
        # Clear only when the request carried the number: a rename must not disclose it.
        return await _full_view(
            services, written.row, principal, await services.receipt(written.log_index),
            clear="document" in changes,
        )

    @post(
        "/{subject_id:uuid}/deactivate",
        middleware=[requires("regulator")],
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 401, 403, 404, 409),
        summary="Deactivate a subject (nothing is deleted)",
    )
    async def deactivate(
        self,
        subject_id: FromPath[uuid.UUID],
        data: JSONBody[StatusChange],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Subject:
        return await self._set_status(subject_id, data.version, "inactive", services, principal)

    @post(
        "/{subject_id:uuid}/reactivate",
        middleware=[requires("regulator")],
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 401, 403, 404, 409),
        summary="Reactivate a deactivated subject",
    )
    async def reactivate(
        self,
        subject_id: FromPath[uuid.UUID],
        data: JSONBody[StatusChange],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Subject:
        return await self._set_status(subject_id, data.version, "active", services, principal)

    async def _set_status(
        self,
        subject_id: uuid.UUID,
        version: int,
        status: str,
        services: Services,
        principal: Principal,
    ) -> Subject:
        deciding_authority(principal)
        current = await subjects.get_subject(services, subject_id)
        if current["status"] == status:
            from registry.errors import Conflict

            raise Conflict(f"subject {subject_id} is already {status}")
        action = "subject.deactivate" if status == "inactive" else "subject.reactivate"
        written = await subjects.update_subject(
            services, principal.actor, subject_id, version, {"status": status}, action=action
        )
        return await _full_view(
            services, written.row, principal, await services.receipt(written.log_index)
        )

    @get(
        "/{subject_id:uuid}/history",
        middleware=[requires("regulator")],
        responses=problem_responses(401, 403, 404),
        summary="Every audited version of the subject, with its log index and leaf",
    )
    async def history(
        self,
        subject_id: FromPath[uuid.UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> list[HistoryEntry]:
        rows = await subjects.subject_history(services, subject_id)
        return [
            HistoryEntry(log_index=r["log_index"], leaf=decode_leaf(bytes(r["leaf"])))
            for r in rows
        ]

    @post(
        "/{subject_id:uuid}/affiliations",
        middleware=[requires("regulator")],
        status_code=HTTP_201_CREATED,
        responses=problem_responses(400, 401, 403, 404, 422),
        summary="Record a practitioner's affiliation with an organisation",
    )
    async def add_affiliation(
        self,
        subject_id: FromPath[uuid.UUID],
        data: JSONBody[AffiliationIn],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> AffiliationWritten:
        deciding_authority(principal)
        written = await subjects.add_affiliation(
            services,
            principal.actor,
            subject_id,
            data.organisation_id,
            data.role,
            data.valid_from,
            data.valid_to,
        )
        receipt = await services.receipt(written.log_index)
        return AffiliationWritten(
            affiliation=affiliation_view(await subjects.with_organisation(services, written.row)),
            receipt=receipt,
        )

    @post(
        "/lookup",
        middleware=[requires("regulator")],
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 401, 403, 404, 422),
        summary="Find a practitioner by document type and number (sent in the body, never the URL)",
        description=(
            "Every lookup is recorded (who, when, why: `purpose`), also one that finds nobody, "
            "before it is answered (503 with Retry-After if it cannot be); once that person is "
            "registered their access records show it."
        ),
    )
    async def lookup(
        self,
        data: JSONBody[DocumentLookup],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Subject:
        row = await subjects.find_by_document(services, data.document_type, data.document_number)
        if row is None:
            from registry.errors import NotFound

            document = access.document_key(services, data.document_type, data.document_number)
            await _account(services, principal, data.purpose, "regulator_lookup", document=document)
            raise NotFound("no practitioner with this document")
        view = await _full_view(services, row, principal, clear=True)
        await _account(services, principal, data.purpose, "regulator_lookup", subject_id=row["id"])
        return view


class AffiliationController(Controller):
    path = "/v1/affiliations"
    tags = ["subjects"]
    security = BEARER

    @post(
        "/{affiliation_id:uuid}/end",
        middleware=[requires("regulator")],
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
        summary="End an affiliation on a date",
    )
    async def end(
        self,
        affiliation_id: FromPath[uuid.UUID],
        data: JSONBody[AffiliationEnd],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> AffiliationWritten:
        deciding_authority(principal)
        written = await subjects.end_affiliation(
            services, principal.actor, affiliation_id, data.valid_to
        )
        receipt = await services.receipt(written.log_index)
        return AffiliationWritten(
            affiliation=affiliation_view(await subjects.with_organisation(services, written.row)),
            receipt=receipt,
        )


_ = ShortText
