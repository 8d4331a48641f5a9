"""Routes for objections (異議) and credit repair (信用修復).

Regulators and bureaus file objections and repair applications on a subject's
behalf; only regulators decide them.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Struct

from registry.api.auth import BEARER, requires
from registry.api.openapi import enum_query, problem_responses
from registry.credit import objections, repairs
from registry.credit.common import decode_cursor, encode_cursor, fetch
from registry.credit.objections import ObjectionWrite
from registry.domain.disclosure import mask_free_text
from registry.domain.objections import OBJECTION_STATES
from registry.domain.repair import REPAIR_STATES
from registry.errors import InvalidInput, NotFound
from registry.services import Receipt, Services
from registry.structs.credit import (
    Objection,
    ObjectionDecision,
    ObjectionIn,
    ObjectionPage,
    Repair,
    RepairDecision,
    RepairIn,
    RepairPage,
    view,
)
from registry.tokens import Principal

_WRITE = problem_responses(400, 401, 403, 404, 409, 422)


def _filed_by_caller(row: Any, principal: Principal, missing: str, *, object_type: str,
                     services: Services) -> Any:
    """Regulators read every objection and repair; a bureau only those its token filed
    (answered as missing otherwise: another's filing says nothing about it to a bureau), with
    resident-ID numbers in its free text masked like everything a bureau reads."""
    if principal.role != "bureau":
        return row
    if row["created_by"] != principal.actor:
        raise NotFound(missing)
    return mask_free_text(object_type, row, services.policy)


class StoredObjection(Objection, kw_only=True, omit_defaults=True):
    """The objection as stored; the receipt of the write that changed it is beside it."""


class ObjectionWritten(Struct, kw_only=True):
    """A filing or decision: one write of several changes, each with its leaf, committed
    together. ``log_indexes`` are all of them in log order (consecutive): the objection's
    first, then the target's (``target_log_index``), then any listing a correction or
    revocation ended. The one ``receipt`` names the objection's leaf and carries a signed
    checkpoint that includes every leaf of the write."""

    objection: StoredObjection
    target_log_index: int
    log_indexes: list[int]
    receipt: Receipt


def _objection(kind: type[Objection], data: dict[str, Any]) -> Any:
    """An objection answer from a row with its deadline flags (objections.with_flags)."""
    return msgspec.convert(data, kind)


async def _objection_answer(services: Services, written: ObjectionWrite) -> ObjectionWritten:
    signed = await services.receipt(written.last_index)
    first = written.objection.log_index
    return ObjectionWritten(
        objection=_objection(StoredObjection, {**dict(written.objection.row),
                                               **objections.deadline_flags(written.provisional)}),
        target_log_index=written.target.log_index,
        log_indexes=list(range(first, written.last_index + 1)),
        receipt=Receipt(log_index=first, checkpoint=signed.checkpoint),
    )


class ObjectionController(Controller):
    path = "/v1/objections"
    tags = ["objections"]
    security = BEARER

    @post("/", middleware=[requires("regulator", "bureau")], status_code=HTTP_201_CREATED,
          responses=_WRITE, summary="File an objection against a record or a listing",
          description="The record or listing shows `under_objection: true` (异议处理中) until a "
                      "regulator decides. `decide_due` and `answer_due` count the policy's "
                      "working days in the official calendar (State Council holiday notice: "
                      "public holidays off, 调休 weekend days worked). Each has a "
                      "`<deadline>_provisional` flag: true when it reaches into a year whose "
                      "notice the registry does not know yet (counted Monday to Friday for "
                      "now, counted again once the year is added).")
    async def file(self, data: JSONBody[ObjectionIn], services: NamedDependency[Services],
                   principal: NamedDependency[Principal]) -> ObjectionWritten:
        filed = await objections.file(services, principal, principal.role,
                                      data.target_type, data.target_id, data.grounds)
        return await _objection_answer(services, filed)

    @get("/", middleware=[requires("regulator")], responses=problem_responses(400, 401, 403, 422),
         summary="List objections: pending (state=filed) or overdue (keyset by id)")
    async def list_objections(
        self,
        services: NamedDependency[Services],
        wanted: Annotated[str | None, enum_query(
            OBJECTION_STATES, "the objections' state (filed: awaiting a decision)", query="state"
        )] = None,
        overdue: Annotated[bool, Parameter(description="still filed after answer_due")] = False,
        subject_id: FromQuery[uuid.UUID | None] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> ObjectionPage:
        if wanted is not None and wanted not in OBJECTION_STATES:
            raise InvalidInput("state", f"unknown state {wanted!r}", ", ".join(OBJECTION_STATES))
        after = decode_cursor(cursor, (uuid.UUID,))[0] if cursor else None
        rows = await objections.list_objections(services, state=wanted, overdue=overdue,
                                                subject_id=subject_id, after=after, limit=limit)
        next_cursor = encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
        return ObjectionPage(items=[_objection(Objection, r) for r in rows],
                             next_cursor=next_cursor)

    @get("/{objection_id:uuid}", middleware=[requires("regulator", "bureau")],
         responses=problem_responses(401, 403, 404), summary="Read an objection")
    async def read(self, objection_id: FromPath[uuid.UUID], services: NamedDependency[Services],
                   principal: NamedDependency[Principal]) -> Objection:
        row = _filed_by_caller(await fetch(services, "objection", objection_id), principal,
                               f"no objection with id {objection_id}", object_type="objection",
                               services=services)
        objection: Objection = _objection(
            Objection, (await objections.with_flags(services.pool, [row]))[0])
        return objection

    @post("/{objection_id:uuid}/decide", middleware=[requires("regulator")], status_code=HTTP_200_OK,
          responses=_WRITE, summary="Decide an objection once: upheld (revoke or correct) or rejected")
    async def decide(self, objection_id: FromPath[uuid.UUID], data: JSONBody[ObjectionDecision],
                     services: NamedDependency[Services],
                     principal: NamedDependency[Principal]) -> ObjectionWritten:
        decided = await objections.decide(
            services, principal, objection_id, upheld=data.outcome == "upheld",
            note=data.note, action=data.action,
            corrections=data.corrections.changes() if data.corrections else None)
        return await _objection_answer(services, decided)


class RepairController(Controller):
    path = "/v1/repairs"
    tags = ["credit repair"]
    security = BEARER

    @post("/", middleware=[requires("regulator", "bureau")], status_code=HTTP_201_CREATED,
          responses=_WRITE, summary="Apply for credit repair of a record or a listing",
          description="Accepted from the end of the minimum publicity period while still "
                      "published (409 naming the dates otherwise). Repair is free.")
    async def apply(self, data: JSONBody[RepairIn], services: NamedDependency[Services],
                    principal: NamedDependency[Principal]) -> Repair:
        written = await repairs.apply(services, principal, data.target_type, data.target_id,
                                      data.grounds)
        repair: Repair = view(Repair, written.row, await services.receipt(written.log_index))
        return repair

    @get("/", middleware=[requires("regulator")], responses=problem_responses(400, 401, 403, 422),
         summary="List repair applications (state=applied for pending; keyset by id)")
    async def list_repairs(
        self,
        services: NamedDependency[Services],
        wanted: Annotated[str | None, enum_query(
            REPAIR_STATES, "the applications' state (applied: awaiting a decision)", query="state"
        )] = None,
        subject_id: FromQuery[uuid.UUID | None] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> RepairPage:
        if wanted is not None and wanted not in REPAIR_STATES:
            raise InvalidInput("state", f"unknown state {wanted!r}", ", ".join(REPAIR_STATES))
        after = decode_cursor(cursor, (uuid.UUID,))[0] if cursor else None
        rows = await repairs.list_repairs(services, state=wanted, subject_id=subject_id,
                                          after=after, limit=limit)
        next_cursor = encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
        return RepairPage(items=[view(Repair, r) for r in rows], next_cursor=next_cursor)

    @get("/{repair_id:uuid}", middleware=[requires("regulator", "bureau")],
         responses=problem_responses(401, 403, 404), summary="Read a repair application")
    async def read(self, repair_id: FromPath[uuid.UUID], services: NamedDependency[Services],
                   principal: NamedDependency[Principal]) -> Repair:
        row = _filed_by_caller(await fetch(services, "repair", repair_id), principal,
                               f"no repair with id {repair_id}", object_type="repair",
                               services=services)
        repair: Repair = view(Repair, row)
        return repair

    @post("/{repair_id:uuid}/approve", middleware=[requires("regulator")], status_code=HTTP_200_OK,
          responses=_WRITE, summary="Approve: publication of the record or listing ends today")
    async def approve(self, repair_id: FromPath[uuid.UUID], data: JSONBody[RepairDecision],
                      services: NamedDependency[Services],
                      principal: NamedDependency[Principal]) -> Repair:
        return await self._decide(repair_id, True, data, services, principal)

    @post("/{repair_id:uuid}/reject", middleware=[requires("regulator")], status_code=HTTP_200_OK,
          responses=_WRITE, summary="Reject: the record stays published; the subject may apply again")
    async def reject(self, repair_id: FromPath[uuid.UUID], data: JSONBody[RepairDecision],
                     services: NamedDependency[Services],
                     principal: NamedDependency[Principal]) -> Repair:
        return await self._decide(repair_id, False, data, services, principal)

    async def _decide(self, repair_id: uuid.UUID, approve: bool, data: RepairDecision,
                      services: Services, principal: Principal) -> Repair:
        written, changed = await repairs.decide(services, principal, repair_id,
                                                approve=approve, note=data.note)
        # One receipt, for the repair's own leaf, with a checkpoint that also includes the
        # target's leaf written in the same transaction (as objection answers do).
        last = changed.log_index if changed else written.log_index
        signed = await services.receipt(last)
        receipt = Receipt(log_index=written.log_index, checkpoint=signed.checkpoint)
        repair: Repair = view(Repair, written.row, receipt)
        return repair
