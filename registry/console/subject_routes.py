"""Subjects at the console: search, one subject's page, and registering a new one.

The search is the regulators' API's (``subjects.list_subjects``: the public page's
matcher, registry/search.py, over every subject, published or not). The new-subject
form's fields are ``POST /v1/subjects``'s JSON fields, read into the same struct
(``SubjectCreate``) and handed to the same use case (``subjects.register``): the same
checks, the same audit leaf. A subject's page shows a practitioner's document number in
the clear, as the API's read does, and so records the read in their access records
first (``subject_reads.account_clear_read``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final

import structlog
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from registry import subjects
from registry.bureau.access import RegulatorPurpose
from registry.console.forms import FormState, read_form, struct_from_form
from registry.console.names import DOCUMENT_TYPES, REGULATOR_PURPOSES, SUBJECT_KINDS, label
from registry.console.permits import Permit, permit
from registry.console.render import page
from registry.console.sessions import Officer
from registry.console.subject_reads import account_clear_read, beijing, subject_detail
from registry.console.texts import reason_zh
from registry.credit.ownership import deciding_authority, require_decider
from registry.domain import blacklist as blacklist_rules
from registry.domain.publicity import Grade
from registry.errors import Conflict, Forbidden, InvalidInput
from registry.services import Services
from registry.structs.subjects import (
    PractitionerCreate,
    SubjectCreate,
    VcFirmCreate,
)

log = structlog.get_logger(__name__)

PAGE_SIZE: Final = 50
# The form's fields for each kind: the JSON fields of its struct (affiliations are added
# on the practitioner's page through the API, not in this form).
_FIELDS: Final = {
    "vc_firm": frozenset(VcFirmCreate.__struct_fields__),
    "vc_manager": frozenset(VcFirmCreate.__struct_fields__),
    "practitioner": frozenset(PractitionerCreate.__struct_fields__) - {"affiliations"},
}
_KIND_OPTIONS: Final = tuple(SUBJECT_KINDS.items())
_DOCUMENT_OPTIONS: Final = tuple(DOCUMENT_TYPES.items())
_PURPOSE_OPTIONS: Final = tuple(REGULATOR_PURPOSES.items())


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


# ---- search -------------------------------------------------------------------------

@get("/subjects")
async def search_subjects(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Officer],
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
    kind: Annotated[str | None, QueryParameter(max_length=40)] = None,
    after: Annotated[uuid.UUID | None, QueryParameter()] = None,
) -> Response[str]:
    services = _services(request)
    state = FormState(values={"q": [q or ""], "kind": [kind or ""]})
    rows: list[Any] = []
    status = 200
    try:
        if kind and kind not in subjects.KINDS:
            raise InvalidInput("kind", f"unknown kind {kind!r}", ", ".join(subjects.KINDS))
        rows = await subjects.list_subjects(services, kind=kind or None, name_prefix=None,
                                            q=q or None, after=after, limit=PAGE_SIZE)
    except InvalidInput as error:
        state.refused(error)
        status = 422
    items = [
        {"row": r, "document_number": subjects.document_number_for(services, r, clear=False)}
        for r in rows
    ]
    next_after = str(rows[-1]["id"]) if len(rows) == PAGE_SIZE else None
    return page(request, "console_subjects.html", officer=officer, status=status,
                title="主体", state=state, items=items, q=q or "", kind=kind or "",
                next_after=next_after, searched=bool(q), kind_options=_KIND_OPTIONS,
                label=label)


# ---- a subject's page ---------------------------------------------------------------

async def _may_propose(services: Services, officer: Officer, records: list[Any]) -> Permit:
    """Whether the officer may propose listing the subject: on records of their own
    authority (the same ownership check as ``blacklist.propose``) that can carry a
    listing (``basis_holds``), at least one serious (``check_listing_basis``)."""
    basis: list[Grade] = []
    for row in records:
        try:
            await require_decider(services.pool, officer.principal, [row["authority_code"]],
                                  "a record this entry would rest on")
        except Forbidden:
            continue
        if blacklist_rules.basis_holds(row["grade"], row["status"]):
            basis.append(Grade(row["grade"]))
    return permit(lambda: blacklist_rules.check_listing_basis(basis))


@get("/subjects/{subject_id:uuid}")
async def subject_page(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Officer],
    subject_id: FromPath[uuid.UUID],
    purpose: Annotated[RegulatorPurpose, QueryParameter()] = "supervision",
    accesses_after: Annotated[int | None, QueryParameter(ge=0)] = None,
) -> Response[str]:
    services = _services(request)
    row = await subjects.get_subject(services, subject_id)
    if row["document_cipher"] is not None:
        # As GET /v1/subjects/{id}: the clear number only once the read is recorded.
        await account_clear_read(services, officer.principal, subject_id, purpose)
    detail = await subject_detail(services, subject_id, clear_number=True,
                                  accesses_after=accesses_after)
    propose = await _may_propose(services, officer, detail.records)
    return page(request, "console_subject.html", officer=officer, title=detail.row["name"],
                s=detail.row, d=detail, propose=propose, purpose=purpose,
                purpose_options=_PURPOSE_OPTIONS, label=label, beijing=beijing)


# ---- a new subject ------------------------------------------------------------------

def _new_page(request: Request[Any, Any, Any], officer: Officer, state: FormState, *,
              status: int = 200, existing_id: str | None = None) -> Response[str]:
    return page(request, "console_subject_new.html", officer=officer, status=status,
                title="新建主体", state=state, kind_options=_KIND_OPTIONS,
                document_options=_DOCUMENT_OPTIONS, existing_id=existing_id)


@get("/subjects/new")
async def new_subject_form(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Officer],
    kind: Annotated[str | None, QueryParameter(max_length=40)] = None,
) -> Response[str]:
    chosen = kind if kind in _FIELDS else ""
    return _new_page(request, officer, FormState(values={"kind": [chosen]}))


@post("/subjects/new")
async def create_subject(
    request: Request[Any, Any, Any], officer: NamedDependency[Officer]
) -> Response[str]:
    services = _services(request)
    form = await read_form(request)
    state = FormState(values=form)
    # One form for the three kinds: the fields of the other kinds' part are left out,
    # as a JSON body of this kind would not have them.
    wanted = _FIELDS.get(state.value("kind"))
    given = {name: values for name, values in form.items()
             if name == "kind" or wanted is None or name in wanted}
    try:
        data: Any = struct_from_form(given, SubjectCreate)  # type: ignore[arg-type]  # a union of structs, as the API decodes it
        payload: dict[str, Any] = {
            "kind": data.__struct_config__.tag,
            **{f: getattr(data, f) for f in data.__struct_fields__ if f != "affiliations"},
        }
        deciding_authority(officer.principal)
        registered = await subjects.register(services, officer.principal.actor, payload, [])
    except InvalidInput as error:
        return _new_page(request, officer, state.refused(error), status=422)
    except Conflict as error:
        # A duplicate names its field and the subject already holding the code or document.
        state.errors[str(error.extra.get("field") or "name")] = reason_zh(error.detail)
        existing = error.extra.get("existing_id")
        return _new_page(request, officer, state, status=409,
                         existing_id=str(existing) if existing else None)
    # As the API answers with a receipt: the page then shows the leaf in a checkpoint.
    await services.receipt(registered.last_index)
    subject_id = registered.subject.row["id"]
    log.info("console_subject_created", subject_id=str(subject_id),
             kind=payload["kind"], authority=officer.principal.authority_code)
    return Redirect(f"/console/subjects/{subject_id}", status_code=303)


SUBJECT_HANDLERS = [search_subjects, new_subject_form, create_subject, subject_page]
