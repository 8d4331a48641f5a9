"""Credit records at the console: record one, read it, correct it, revoke it.

Each form posts to the use case the API calls for the same step
(``registry/credit/records.py``; cf. ``registry/api/records.py``): ``create_record``,
``correct_record``, ``revoke_record``, with the signed-in official's ``Principal``, so the
authority rules, the record rules and the audit leaf are the API's. A refusal about a
field comes back at that field in Chinese with what was typed kept (422); a conflict
(a stale version, a revoked record, a decision number already recorded) as the form's
alert (409); another authority's record as the 403 page (``auth.py``), nothing written.
Success answers 303 to the record's page.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler

from registry import subjects
from registry.clock import today
from registry.console.forms import FormState, read_form, struct_from_form
from registry.console.names import RECORD_STATUSES, name_of
from registry.console.record_permits import record_permits
from registry.console.record_view import (
    CORRECTION_FIELDS,
    GRADE_OPTIONS,
    KIND_OPTIONS,
    LISTS,
    NEW_FIELDS,
    PENALTY_TYPE_OPTIONS,
    correction_from_form,
    correction_state,
    ended_reason,
    items,
    place,
    versions,
    withheld_reason,
)
from registry.console.render import page
from registry.console.sessions import Officer
from registry.console.texts import reason_zh
from registry.credit import records
from registry.errors import Conflict, InvalidInput
from registry.services import Services
from registry.structs.credit import RecordIn, Revocation, credit_record

SubjectQuery = Annotated[uuid.UUID, QueryParameter(name="subject")]


def _record_url(record_id: object) -> str:
    return f"/console/records/{record_id}"


async def _subject_view(services: Services, subject_id: uuid.UUID) -> dict[str, Any]:
    """The subject as the regulators' list shows it: a person's number masked (the clear
    number is read, and that read recorded, on the subject's own page)."""
    row = await subjects.get_subject(services, subject_id)
    return {
        "id": row["id"], "name": row["name"], "kind": row["kind"],
        "credit_code": row["credit_code"],
        "document_number": subjects.document_number_for(services, row, clear=False),
    }


async def _new_page(request: Request[Any, Any, Any], services: Services, officer: Officer,
                    subject_id: uuid.UUID, state: FormState, status: int = 200) -> Response[str]:
    code = officer.principal.authority_code or ""
    return page(
        request, "console_record_new.html", officer=officer, status=status,
        title="登记信用信息", subject=await _subject_view(services, subject_id), state=state,
        authority_code=code, today=today(services.clock).isoformat(),
        kinds=KIND_OPTIONS, grades=GRADE_OPTIONS, penalty_types=PENALTY_TYPE_OPTIONS,
        action=f"/console/records/new?subject={subject_id}",
    )


@get("/records/new")
async def new_record_form(request: Request[Any, Any, Any], subject: SubjectQuery,
                          officer: NamedDependency[Officer],
                          services: NamedDependency[Services]) -> Response[str]:
    state = FormState(values={"record_kind": ["penalty"]})
    return await _new_page(request, services, officer, subject, state)


@post("/records/new")
async def new_record(request: Request[Any, Any, Any], subject: SubjectQuery,
                     officer: NamedDependency[Officer],
                     services: NamedDependency[Services]) -> Response[Any]:
    form = await read_form(request)
    state = FormState(values=form)
    try:
        data = struct_from_form(form, RecordIn, lists=LISTS, extra={"subject_id": str(subject)})
        fields = {f: getattr(data, f) for f in data.__struct_fields__ if f != "subject_id"}
        written = await records.create_record(services, officer.principal, subject, fields)
    except InvalidInput as error:
        return await _new_page(request, services, officer, subject,
                               place(state, error, NEW_FIELDS), 422)
    except Conflict as error:
        # A decision number this authority has recorded already: said at the number.
        if error.extra.get("field") == "decision_number":
            state.errors["decision_number"] = reason_zh(error.detail)
        else:
            state.alert = reason_zh(error.detail)
        return await _new_page(request, services, officer, subject, state, 409)
    return Redirect(_record_url(written.row["id"]), status_code=303)


async def _record_page(request: Request[Any, Any, Any], services: Services, officer: Officer,
                       record_id: uuid.UUID, *, correct: FormState | None = None,
                       revoke: FormState | None = None, status: int = 200) -> Response[str]:
    row = await records.get_record(services, record_id)
    on = today(services.clock)
    record = credit_record(row, on)
    return page(
        request, "console_record.html", officer=officer, status=status,
        title=f"信用信息 {record.decision_number or ''}".strip(),
        record=record, items=items(record), today=on.isoformat(),
        status_name=name_of(RECORD_STATUSES, record.status),
        withheld=withheld_reason(record), ended=ended_reason(record),
        subject=await _subject_view(services, record.subject_id),
        versions=await versions(services.pool, record_id),
        permits=await record_permits(services, officer.principal, row),
        correct=correct or correction_state(record),
        revoke=revoke or FormState(values={"version": [str(record.version)]}),
        grades=GRADE_OPTIONS, penalty_types=PENALTY_TYPE_OPTIONS,
    )


@get("/records/{record_id:uuid}")
async def record_page(request: Request[Any, Any, Any], record_id: FromPath[uuid.UUID],
                      officer: NamedDependency[Officer],
                      services: NamedDependency[Services]) -> Response[str]:
    return await _record_page(request, services, officer, record_id)


@post("/records/{record_id:uuid}/correct")
async def correct(request: Request[Any, Any, Any], record_id: FromPath[uuid.UUID],
                  officer: NamedDependency[Officer],
                  services: NamedDependency[Services]) -> Response[Any]:
    form = await read_form(request)
    state = FormState(values=form)
    current = await records.get_record(services, record_id)
    try:
        correction, changes = correction_from_form(form, current)
        await records.correct_record(services, officer.principal, record_id,
                                     correction.version, changes, correction.note)
    except InvalidInput as error:
        return await _record_page(request, services, officer, record_id,
                                  correct=place(state, error, CORRECTION_FIELDS), status=422)
    except Conflict as error:
        state.alert = reason_zh(error.detail)
        return await _record_page(request, services, officer, record_id, correct=state,
                                  status=409)
    return Redirect(_record_url(record_id), status_code=303)


@post("/records/{record_id:uuid}/revoke")
async def revoke(request: Request[Any, Any, Any], record_id: FromPath[uuid.UUID],
                 officer: NamedDependency[Officer],
                 services: NamedDependency[Services]) -> Response[Any]:
    form = await read_form(request)
    state = FormState(values=form)
    try:
        data = struct_from_form(form, Revocation)
        await records.revoke_record(services, officer.principal, record_id, data.version,
                                    data.reason)
    except InvalidInput as error:
        return await _record_page(request, services, officer, record_id,
                                  revoke=place(state, error, ("reason",)), status=422)
    except Conflict as error:
        state.alert = reason_zh(error.detail)
        return await _record_page(request, services, officer, record_id, revoke=state,
                                  status=409)
    return Redirect(_record_url(record_id), status_code=303)


RECORD_HANDLERS: list[ControllerRouterHandler] = [
    new_record_form, new_record, record_page, correct, revoke,
]
