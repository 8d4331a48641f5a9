"""Blacklist steps, objection and repair decisions at the console.

``/console/blacklist/new?subject={id}`` proposes an entry; ``/console/blacklist/{id}`` shows
it with the steps notify, list, remove and withdraw; ``/console/objections/{id}`` and
``/console/repairs/{id}`` show a filing and its decision. Each step's form is shown only
when its rule allows it today (``decision_permits``, asking the domain transition and the
ownership check the use case asks); otherwise its reason, in Chinese. A posted form calls
the same use case as the API (``registry.credit.blacklist``, ``objections.decide``,
``repairs.decide``) with the version the page showed, so a step refused there (another
authority, a page gone stale) writes nothing and the page comes back with the reason.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from registry.clock import today
from registry.console import names
from registry.console.decision_permits import (
    decider,
    entry_steps,
    objection_decision,
    repair_steps,
)
from registry.console.forms import FormState, field_of, read_form, struct_from_form
from registry.console.permits import Permit, permit
from registry.console.render import page
from registry.console.sessions import Officer
from registry.console.texts import reason_zh
from registry.credit import blacklist, objections, repairs
from registry.credit.common import fetch
from registry.credit.ownership import entry_owners
from registry.domain import blacklist as bl_rules
from registry.domain import objections as objection_rules
from registry.domain.repair import RepairApplication
from registry.errors import InvalidInput, NotFound, RegistryError
from registry.publish import labels
from registry.services import Services
from registry.structs.credit import (
    Listing,
    Notice,
    ObjectionDecision,
    Proposal,
    RecordCorrectionFields,
    Removal,
    RepairDecision,
    Withdrawal,
)
from registry.subjects import get_subject
from registry.tlog.leaf import decode_leaf

_STEPS: Final[dict[str, type[msgspec.Struct]]] = {
    "notify": Notice, "list": Listing, "remove": Removal, "withdraw": Withdrawal,
}
_BEIJING: Final = timedelta(hours=8)
# The record items an upheld objection's correction form offers (form names
# ``corrections.<item>``); an item left empty stays as it is.
CORRECTION_ITEMS: Final = ("grade", "decision_number", "violation_type", "facts",
                           "legal_basis", "penalty_content", "fine_amount", "valid_until",
                           "remarks")
_CORRECTIONS: Final = "corrections."


def _beijing(time: str) -> str:
    """A leaf's RFC 3339 UTC time as people read it: Beijing, to the minute."""
    moment = datetime.fromisoformat(time.replace("Z", "+00:00")).astimezone(UTC) + _BEIJING
    return moment.strftime("%Y-%m-%d %H:%M")


async def _history(services: Services, object_type: str, object_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every audited version of the object, oldest first: log index, time, action, actor."""
    rows = await services.pool.fetch(
        "SELECT o.log_index, l.leaf FROM tlog_objects o JOIN tlog_leaves l ON l.idx = o.log_index"
        " WHERE o.object_type = $1 AND o.object_id = $2 ORDER BY o.log_index",
        object_type, str(object_id))
    items = []
    for row in rows:
        leaf = decode_leaf(bytes(row["leaf"]))
        items.append({"log_index": row["log_index"], "time": _beijing(leaf.time),
                      "action": names.name_of(names.ACTIONS, leaf.action), "actor": leaf.actor})
    return items


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def _target_path(target_type: str, target_id: uuid.UUID) -> str:
    kind = "records" if target_type == "credit_record" else "blacklist"
    return f"/console/{kind}/{target_id}"


def _record_line(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "decision_number": row["decision_number"],
            "kind": names.name_of(labels.RECORD_KIND_NAMES, row["record_kind"]),
            "grade": names.name_of(labels.GRADE_NAMES, row["grade"]),
            "status": names.name_of(names.RECORD_STATUSES, row["status"]),
            "decision_date": row["decision_date"]}


_RECORD_COLUMNS: Final = "id, decision_number, record_kind, grade, status, decision_date, authority_code"


# ---- proposing an entry --------------------------------------------------------------

async def _proposal_page(request: Request[Any, Any, Any], officer: Officer, subject_id: uuid.UUID,
                         state: FormState, status: int = 200) -> Response[str]:
    services = _services(request)
    subject = await get_subject(services, subject_id)
    rows = await services.pool.fetch(
        f"SELECT {_RECORD_COLUMNS} FROM credit_records WHERE subject_id = $1"  # noqa: S608 - fixed columns
        " ORDER BY decision_date DESC, id", subject_id)
    # A basis: a serious record in force (bl_rules.basis_holds) decided by this authority
    # (require_decider), as blacklist.propose checks.
    candidates = []
    for row in rows:
        owner = await decider(services.pool, officer.principal, [row["authority_code"]],
                              f"credit record {row['id']}")
        if owner.allowed and bl_rules.basis_holds(row["grade"], row["status"]):
            candidates.append(_record_line(row))
    return page(request, "console_blacklist_new.html", officer=officer, status=status,
                title="提请列入严重失信主体名单", subject=subject, candidates=candidates,
                form=state)


@get("/blacklist/new")
async def blacklist_new(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                        subject: FromQuery[uuid.UUID]) -> Response[str]:
    return await _proposal_page(request, officer, subject, FormState())


@post("/blacklist/new")
async def blacklist_propose(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                            subject: FromQuery[uuid.UUID]) -> Response[str]:
    services = _services(request)
    form = await read_form(request)
    state = FormState(values=form)
    try:
        data = struct_from_form(form, Proposal, lists=frozenset({"record_ids"}),
                                extra={"subject_id": str(subject)})
        written = await blacklist.propose(services, officer.principal, data.subject_id,
                                          data.criterion, data.legal_basis, data.record_ids)
    except InvalidInput as error:
        return await _proposal_page(request, officer, subject, state.refused(error), error.status)
    except RegistryError as error:
        if isinstance(error, NotFound) or error.status >= 500:
            raise
        state.alert = reason_zh(error.detail)
        return await _proposal_page(request, officer, subject, state, error.status)
    return Redirect(f"/console/blacklist/{written.row['id']}?done=propose", status_code=303)


# ---- an entry and its steps ----------------------------------------------------------

async def _entry_page(request: Request[Any, Any, Any], officer: Officer, entry_id: uuid.UUID, *,
                      forms: dict[str, FormState] | None = None, alert: str | None = None,
                      done: str | None = None, status: int = 200) -> Response[str]:
    services = _services(request)
    row = await fetch(services, "blacklist_entry", entry_id)
    state = blacklist.state_of(row)
    day = today(services.clock)
    owner = await decider(services.pool, officer.principal,
                          await entry_owners(services.pool, list(row["record_ids"])),
                          f"blacklist entry {entry_id}")
    steps = entry_steps(state, day, services.policy, owner)
    subject = await get_subject(services, row["subject_id"])
    basis = await services.pool.fetch(
        f"SELECT {_RECORD_COLUMNS} FROM credit_records WHERE id = ANY($1::uuid[])"  # noqa: S608 - fixed columns
        " ORDER BY decision_date, id", list(row["record_ids"]))
    objection_rows = await services.pool.fetch(
        "SELECT id, state, filed_on, answer_due FROM objections"
        " WHERE target_type = 'blacklist_entry' AND target_id = $1 ORDER BY filed_on, id", entry_id)
    repair_rows = await services.pool.fetch(
        "SELECT id, state, applied_on FROM repairs"
        " WHERE target_type = 'blacklist_entry' AND target_id = $1 ORDER BY applied_on, id", entry_id)
    forms = forms or {}
    return page(
        request, "console_blacklist_entry.html", officer=officer, status=status,
        title="严重失信主体名单条目", entry=row, subject=subject, today=day,
        state_name=names.name_of(names.ENTRY_STATES, row["state"]),
        removal_name=names.name_of(names.REMOVAL_REASONS, row["removal_reason"]),
        withdrawal_name=names.name_of(names.ENTRY_WITHDRAWAL_REASONS, row["withdrawal_reason"]),
        notice_channel_name=names.name_of(names.NOTICE_CHANNELS, row["notice_channel"]),
        basis=[_record_line(r) for r in basis], steps=steps, owner=owner,
        removal_options=[(reason.value, names.REMOVAL_REASONS[reason.value])
                         for reason, verdict in steps.removal.items() if verdict.allowed],
        removal_refusals=[(names.REMOVAL_REASONS[reason.value], verdict.reason)
                          for reason, verdict in steps.removal.items()
                          if not verdict.allowed and owner.allowed],
        channels=list(names.NOTICE_CHANNELS.items()),
        objections=[{**dict(r), "state_name": names.name_of(names.OBJECTION_STATES, r["state"])}
                    for r in objection_rows],
        repairs=[{**dict(r), "state_name": names.name_of(names.REPAIR_STATES, r["state"])}
                 for r in repair_rows],
        history=await _history(services, "blacklist_entry", entry_id),
        forms={step: forms.get(step, FormState()) for step in _STEPS},
        alert=alert, done=names.name_of(_DONE, done) if done else None,
    )


_DONE: Final = {
    "propose": "已提请列入名单。", "notify": "已记录告知，异议期开始计算。",
    "list": "已列入名单。", "remove": "已移出名单。", "withdraw": "已撤回提请。",
}


@get("/blacklist/{entry_id:uuid}")
async def blacklist_entry(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                          entry_id: FromPath[uuid.UUID],
                          done: FromQuery[str | None] = None) -> Response[str]:
    return await _entry_page(request, officer, entry_id,
                             done=done if done in _DONE else None)


async def _take_step(services: Services, officer: Officer, entry_id: uuid.UUID, step: str,
                     data: Any) -> None:
    who = officer.principal
    if isinstance(data, Notice):
        await blacklist.notify(services, who, entry_id, data.channel, data.on, data.version)
    elif isinstance(data, Listing):
        await blacklist.list_entry(services, who, entry_id, data.planned_removal_on, data.version)
    elif isinstance(data, Removal):
        await blacklist.remove(services, who, entry_id, data.reason, data.version)
    elif isinstance(data, Withdrawal):
        await blacklist.withdraw(services, who, entry_id, data.reason, data.version)
    else:  # pragma: no cover - _STEPS names the four structs above
        raise NotFound(f"no blacklist step {step!r}")


@post("/blacklist/{entry_id:uuid}/{step:str}")
async def blacklist_step(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                         entry_id: FromPath[uuid.UUID], step: FromPath[str]) -> Response[str]:
    if step not in _STEPS:
        raise NotFound(f"no blacklist step {step!r}; the steps are {', '.join(_STEPS)}")
    services = _services(request)
    form = await read_form(request)
    state = FormState(values=form)
    try:
        data = struct_from_form(form, _STEPS[step])
        await _take_step(services, officer, entry_id, step, data)
    except InvalidInput as error:
        return await _entry_page(request, officer, entry_id, forms={step: state.refused(error)},
                                 status=error.status)
    except RegistryError as error:
        if isinstance(error, NotFound) or error.status >= 500:
            raise
        return await _entry_page(request, officer, entry_id, alert=reason_zh(error.detail),
                                 status=error.status)
    return Redirect(f"/console/blacklist/{entry_id}?done={step}", status_code=303)


# ---- objections ------------------------------------------------------------------------

async def _target_summary(services: Services, target_type: str,
                          target: asyncpg.Record) -> dict[str, Any]:
    if target_type == "credit_record":
        return {"label": labels.CREDIT_RECORD, "path": _target_path(target_type, target["id"]),
                "text": f"{target['decision_number'] or ''}（"
                        f"{names.name_of(names.RECORD_STATUSES, target['status'])}）"}
    return {"label": labels.BLACKLIST, "path": _target_path(target_type, target["id"]),
            "text": names.name_of(names.ENTRY_STATES, target["state"])}


async def _owner_of(services: Services, officer: Officer, target_type: str,
                    target: asyncpg.Record, what: str) -> Permit:
    async with services.pool.acquire() as conn:
        owners = await objections.owners_of(services, target_type, target, conn)
    return await decider(services.pool, officer.principal, owners, what)


async def _objection_page(request: Request[Any, Any, Any], officer: Officer,
                          objection_id: uuid.UUID, *, forms: dict[str, FormState] | None = None,
                          alert: str | None = None, done: bool = False,
                          status: int = 200) -> Response[str]:
    services = _services(request)
    row = await fetch(services, "objection", objection_id)
    flagged = (await objections.with_flags(services.pool, [row]))[0]
    target = await fetch(services, row["target_type"], row["target_id"])
    owner = await _owner_of(
        services, officer, row["target_type"], target,
        f"the {row['target_type'].replace('_', ' ')} {row['target_id']} objected to")
    current = objections.objection_of(row)
    day = today(services.clock)
    decision = objection_decision(current, day, owner)
    forms = forms or {}
    return page(
        request, "console_objection.html", officer=officer, status=status, title="异议",
        objection=flagged, subject=await get_subject(services, row["subject_id"]),
        target=await _target_summary(services, row["target_type"], target),
        target_type=row["target_type"], today=day, decision=decision,
        state_name=names.name_of(names.OBJECTION_STATES, row["state"]),
        filer_name=names.name_of(names.OBJECTION_FILERS, row["filed_by"]),
        action_name=names.name_of(names.OBJECTION_ACTIONS, row["decision_action"]),
        overdue=objection_rules.is_overdue(current, day),
        decision_overdue=objection_rules.is_decision_overdue(current, day),
        # An upheld objection against a listing ends it (removal or withdrawal): revoking
        # the listing decision is the action; corrections are of a record's items.
        actions=[(code, text) for code, text in names.OBJECTION_ACTIONS.items()
                 if row["target_type"] == "credit_record" or code == "revoke"],
        correction_items=CORRECTION_ITEMS if row["target_type"] == "credit_record" else (),
        grades=list(labels.GRADE_NAMES.items()),
        history=await _history(services, "objection", objection_id),
        forms={outcome: forms.get(outcome, FormState()) for outcome in ("upheld", "rejected")},
        alert=alert, done=done,
    )


@get("/objections/{objection_id:uuid}")
async def objection(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                    objection_id: FromPath[uuid.UUID],
                    done: FromQuery[bool] = False) -> Response[str]:
    return await _objection_page(request, officer, objection_id, done=done)


def _corrections_of(form: dict[str, list[str]]) -> RecordCorrectionFields | None:
    """The correction items typed (``corrections.<item>``), or None if none was."""
    typed = {name.removeprefix(_CORRECTIONS): values for name, values in form.items()
             if name.startswith(_CORRECTIONS) and any(v.strip() for v in values)}
    if not typed:
        return None
    try:
        return struct_from_form(typed, RecordCorrectionFields)
    except InvalidInput as error:
        raise InvalidInput(_CORRECTIONS + field_of(error), error.reason, error.accepted) from None


def _at_field(state: FormState, error: InvalidInput) -> FormState:
    """The error at its form field: a record item a correction changes is ``corrections.<item>``."""
    name = error.field if error.field.startswith(_CORRECTIONS) else field_of(error)
    if name in RecordCorrectionFields.__struct_fields__:
        name = _CORRECTIONS + name
    state.errors[name] = reason_zh(error.reason)
    return state


@post("/objections/{objection_id:uuid}/decide")
async def objection_decide(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                           objection_id: FromPath[uuid.UUID]) -> Response[str]:
    services = _services(request)
    form = await read_form(request)
    outcome = (form.get("outcome") or [""])[-1]
    state = FormState(values=form)
    key = outcome if outcome in ("upheld", "rejected") else "upheld"
    try:
        corrections = _corrections_of(form)
        plain = {k: v for k, v in form.items() if not k.startswith(_CORRECTIONS)}
        data = struct_from_form(plain, ObjectionDecision)
        await objections.decide(
            services, officer.principal, objection_id, upheld=data.outcome == "upheld",
            note=data.note, action=data.action,
            corrections=corrections.changes() if corrections else None)
    except InvalidInput as error:
        return await _objection_page(request, officer, objection_id,
                                     forms={key: _at_field(state, error)}, status=error.status)
    except RegistryError as error:
        if isinstance(error, NotFound) or error.status >= 500:
            raise
        return await _objection_page(request, officer, objection_id,
                                     alert=reason_zh(error.detail), status=error.status)
    return Redirect(f"/console/objections/{objection_id}?done=true", status_code=303)


# ---- repairs ---------------------------------------------------------------------------

async def _repair_page(request: Request[Any, Any, Any], officer: Officer, repair_id: uuid.UUID, *,
                       state: FormState | None = None, alert: str | None = None,
                       done: bool = False, status: int = 200) -> Response[str]:
    services = _services(request)
    row = await fetch(services, "repair", repair_id)
    target = await fetch(services, row["target_type"], row["target_id"])
    owner = await _owner_of(
        services, officer, row["target_type"], target,
        f"the {row['target_type'].replace('_', ' ')} {row['target_id']} to repair")
    application = msgspec.convert(
        {f: row[f] for f in RepairApplication.__struct_fields__}, RepairApplication)
    day = today(services.clock)
    steps = repair_steps(application, day, owner, permit(
        lambda: repairs.check_repairable(services, row["target_type"], target)))
    return page(
        request, "console_repair.html", officer=officer, status=status, title="信用修复申请",
        repair=row, subject=await get_subject(services, row["subject_id"]),
        target=await _target_summary(services, row["target_type"], target),
        state_name=names.name_of(names.REPAIR_STATES, row["state"]),
        route_name=names.name_of(names.REPAIR_ROUTES, row["route"]),
        steps=steps, history=await _history(services, "repair", repair_id),
        form=state or FormState(), alert=alert, done=done,
    )


@get("/repairs/{repair_id:uuid}")
async def repair(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                 repair_id: FromPath[uuid.UUID], done: FromQuery[bool] = False) -> Response[str]:
    return await _repair_page(request, officer, repair_id, done=done)


@post("/repairs/{repair_id:uuid}/decide")
async def repair_decide(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                        repair_id: FromPath[uuid.UUID]) -> Response[str]:
    services = _services(request)
    form = await read_form(request)
    state = FormState(values=form)
    outcome = (form.get("outcome") or [""])[-1]
    try:
        if outcome not in ("approve", "reject"):
            raise InvalidInput("outcome", f"unknown outcome {outcome!r}", "approve, reject")
        data = struct_from_form({k: v for k, v in form.items() if k != "outcome"},
                                RepairDecision)
        await repairs.decide(services, officer.principal, repair_id,
                             approve=outcome == "approve", note=data.note)
    except InvalidInput as error:
        return await _repair_page(request, officer, repair_id, state=state.refused(error),
                                  status=error.status)
    except RegistryError as error:
        if isinstance(error, NotFound) or error.status >= 500:
            raise
        return await _repair_page(request, officer, repair_id, state=state,
                                  alert=reason_zh(error.detail), status=error.status)
    return Redirect(f"/console/repairs/{repair_id}?done=true", status_code=303)


DECISION_HANDLERS = [blacklist_new, blacklist_propose, blacklist_entry, blacklist_step,
                     objection, objection_decide, repair, repair_decide]
