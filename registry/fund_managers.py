"""Fund managers: which management enterprise manages a venture-capital firm, and when.

A vc_firm (创业投资企业) names the vc_manager (创业投资管理企业) that manages it, from
``valid_from`` to ``valid_to`` (both days included; no ``valid_to``: until ended). A
firm has one manager at a time: two of its relations never share a day. Relations
are kept like affiliations (registry/relations.py holds what the two share): audited
rows, one leaf per change, never deleted; a relation ends by getting a ``valid_to``,
and a mistaken day is corrected by a new version. Subjects are shared master data, so
any regulator of an authority records them (the API checks it acts for one).

Each rule is checked here first, to answer with the field at fault, and again by the
database whatever writes the row (schema/0020_fund_managers.sql: a kinds trigger, a
CHECK on the days and an exclusion constraint, which also settles two writers racing
for overlapping spans).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from registry.db.types import Conn, Db, required
from registry.db.writes import Written, audited_write
from registry.errors import Conflict, InvalidInput, NotFound
from registry.relations import check_span, end_relation
from registry.services import Services

FIRM_KIND = "vc_firm"
MANAGER_KIND = "vc_manager"
OBJECT_TYPE = "fund_manager"
_NOUN = "fund manager relation"
_MANAGER_ACCEPTED = "the id of a vc_manager subject (创业投资管理企业)"

_INSERT = """
INSERT INTO fund_managers (id, firm_id, manager_id, valid_from, valid_to,
    version, created_at, created_by, updated_at, updated_by, log_index)
VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $6, $7, $8) RETURNING *"""

# A relation of firm $1, other than $4, sharing a day with [$2, $3] ($3 NULL: no end).
_OVERLAPPING = """
SELECT id, manager_id, valid_from, valid_to FROM fund_managers
WHERE firm_id = $1 AND id IS DISTINCT FROM $4
  AND daterange(valid_from, valid_to, '[]') && daterange($2, $3, '[]')
ORDER BY valid_from LIMIT 1"""

# Relations with the current name and credit code of the subjects on both sides.
_WITH_NAMES = (
    "SELECT f.*, firm.name AS firm_name, firm.credit_code AS firm_credit_code,"
    " manager.name AS manager_name, manager.credit_code AS manager_credit_code"
    " FROM fund_managers f JOIN subjects firm ON firm.id = f.firm_id"
    " JOIN subjects manager ON manager.id = f.manager_id"
)


async def _kind(db: Db, subject_id: uuid.UUID) -> str | None:
    kind: str | None = await db.fetchval("SELECT kind FROM subjects WHERE id = $1", subject_id)
    return kind


def _overlap(firm_id: uuid.UUID, other: asyncpg.Record, valid_from: date) -> Conflict:
    """The 409 for a span sharing a day with ``other``, naming the day at fault: the start
    when it falls inside ``other``, else the end, which reaches into it."""
    first, last = other["valid_from"], other["valid_to"]
    if first <= valid_from:
        field = "valid_from"
        accepted = (f"a valid_from after {last.isoformat()}" if last is not None else
                    f"end relation {other['id']} first (POST /v1/fund-managers/{other['id']}/end)")
    else:
        field, accepted = "valid_to", f"a valid_to before {first.isoformat()}"
    until = last.isoformat() if last is not None else "no end"
    return Conflict(
        f"firm {firm_id} already has a manager from {first.isoformat()} to {until} (relation "
        f"{other['id']}), and a firm has one manager at a time: {field} falls on a day of it",
        field=field,
        existing_id=str(other["id"]),
        accepted=accepted,
    )


async def _refuse_overlap(
    db: Db, firm_id: uuid.UUID, valid_from: date, valid_to: date | None,
    relation_id: uuid.UUID | None = None,
) -> None:
    other = await db.fetchrow(_OVERLAPPING, firm_id, valid_from, valid_to, relation_id)
    if other is not None:
        raise _overlap(firm_id, other, valid_from)


async def _raced(
    services: Services, firm_id: uuid.UUID, valid_from: date, valid_to: date | None,
    relation_id: uuid.UUID | None,
) -> Conflict:
    """The 409 for an exclusion violation: a writer committed an overlapping span after
    the check. The violation is raised only once that row is committed, so a new
    snapshot finds it."""
    other = await services.pool.fetchrow(_OVERLAPPING, firm_id, valid_from, valid_to, relation_id)
    if other is None:  # it was corrected away meanwhile: the retry will tell
        return Conflict("another write changed this firm's managers meanwhile; send it again")
    return _overlap(firm_id, other, valid_from)


async def name_manager(
    services: Services,
    actor: str,
    firm_id: uuid.UUID,
    manager_id: uuid.UUID,
    valid_from: date,
    valid_to: date | None,
) -> Written:
    """Record that ``manager_id`` manages ``firm_id`` over the span: one change, one leaf
    (``fund_manager.create``). 404 for an unknown firm; 422 naming ``subject_id`` (the
    path) when it is no vc_firm, ``manager_id`` when that is no vc_manager, or the day a
    span rule refuses; 409 naming the day when the firm has a manager on a day of it."""
    firm_kind = await _kind(services.pool, firm_id)
    if firm_kind is None:
        raise NotFound(f"no subject with id {firm_id}")
    if firm_kind != FIRM_KIND:
        raise InvalidInput("subject_id", f"names a {firm_kind}: only a vc_firm has a fund manager",
                           "the id of a vc_firm subject (创业投资企业)", source="path")
    manager_kind = await _kind(services.pool, manager_id)
    if manager_kind is None:
        raise InvalidInput("manager_id", "no such subject", _MANAGER_ACCEPTED)
    if manager_kind != MANAGER_KIND:
        raise InvalidInput("manager_id", f"names a {manager_kind}, not a management enterprise",
                           _MANAGER_ACCEPTED)
    check_span(valid_from, valid_to)
    await _refuse_overlap(services.pool, firm_id, valid_from, valid_to)
    relation_id = uuid.uuid4()

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        return required(await conn.fetchrow(
            _INSERT, relation_id, firm_id, manager_id, valid_from, valid_to, now, actor, index
        ))

    try:
        return await audited_write(
            services.pool, services.clock, actor=actor, action=f"{OBJECT_TYPE}.create",
            object_type=OBJECT_TYPE, write=write,
        )
    except asyncpg.ExclusionViolationError:
        raise await _raced(services, firm_id, valid_from, valid_to, None) from None


async def end_manager(
    services: Services, actor: str, relation_id: uuid.UUID, valid_to: date
) -> Written:
    """End an open relation on ``valid_to`` (its last day): ``fund_manager.end``, as an
    affiliation ends (registry/relations.py)."""
    return await end_relation(
        services, actor, object_type=OBJECT_TYPE, noun=_NOUN, relation_id=relation_id,
        valid_to=valid_to,
        if_ended=f"; correct its days with PATCH /v1/fund-managers/{relation_id}",
    )


async def correct_manager(
    services: Services,
    actor: str,
    relation_id: uuid.UUID,
    expected_version: int,
    changes: dict[str, date | None],
) -> Written:
    """Correct a relation's days (``valid_from``, ``valid_to``; ``valid_to`` None reopens
    it) if it is still at ``expected_version`` (else 409 naming ``version``):
    ``fund_manager.correct``. Checked as a new span would be, against the firm's other
    relations."""
    current = await services.pool.fetchrow(
        "SELECT * FROM fund_managers WHERE id = $1", relation_id
    )
    if current is None:
        raise NotFound(f"no {_NOUN} with id {relation_id}")
    valid_from = changes.get("valid_from") or current["valid_from"]
    valid_to = changes["valid_to"] if "valid_to" in changes else current["valid_to"]
    if (valid_from, valid_to) == (current["valid_from"], current["valid_to"]):
        raise InvalidInput("body", "changes no day of the relation",
                           "a valid_from or valid_to other than the current ones")
    check_span(valid_from, valid_to)
    await _refuse_overlap(services.pool, current["firm_id"], valid_from, valid_to, relation_id)

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = await conn.fetchrow(
            "UPDATE fund_managers SET valid_from = $3, valid_to = $4, version = version + 1,"
            " updated_at = $5, updated_by = $6, log_index = $7"
            " WHERE id = $1 AND version = $2 RETURNING *",
            relation_id, expected_version, valid_from, valid_to, now, actor, index,
        )
        if row is None:
            raise Conflict(
                f"{_NOUN} {relation_id} is no longer at version {expected_version}; "
                "read it again and retry with its current version",
                field="version",
            )
        return row

    try:
        return await audited_write(
            services.pool, services.clock, actor=actor, action=f"{OBJECT_TYPE}.correct",
            object_type=OBJECT_TYPE, write=write,
        )
    except asyncpg.ExclusionViolationError:
        raise await _raced(
            services, current["firm_id"], valid_from, valid_to, relation_id
        ) from None


async def with_names(services: Services, relation_id: uuid.UUID) -> asyncpg.Record:
    """The relation as it is now, with the current name and credit code of both sides."""
    row: asyncpg.Record | None = await services.pool.fetchrow(
        f"{_WITH_NAMES} WHERE f.id = $1", relation_id
    )
    if row is None:
        raise NotFound(f"no {_NOUN} with id {relation_id}")
    return row


async def relations_of(services: Services, subject_id: uuid.UUID) -> list[asyncpg.Record]:
    """The subject's relations, as firm or as manager, oldest first, ended ones too (a
    practitioner has none). 404 for an unknown subject."""
    if await _kind(services.pool, subject_id) is None:
        raise NotFound(f"no subject with id {subject_id}")
    rows: list[asyncpg.Record] = await services.pool.fetch(
        f"{_WITH_NAMES} WHERE f.firm_id = $1 OR f.manager_id = $1"
        " ORDER BY f.valid_from, f.id",
        subject_id,
    )
    return rows
