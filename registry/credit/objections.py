"""Objections (異議) to a record or a listing: filed, then decided once.

Filing marks the target ``under_objection`` (異議處理中) in the same transaction;
deciding clears it and, when upheld, revokes or corrects the record (or takes
the listing down / drops the proposal) in that transaction too. Each change is
its own leaf: filing writes ``objection.file`` then ``record.objection_filed``
(or ``blacklist.objection_filed``); deciding writes ``objection.decide`` then
the target's change (and, when a correction or revocation leaves listings without
a basis, their ends). All leaves of one filing or decision are consecutive and commit
together; ``ObjectionWrite.last_index`` is the last, which a receipt for the whole
write waits for.

Deadlines count working days of the running app's calendar (``services.calendar``,
registry/working_calendar.py). One that reaches into a year the calendar does not
know is provisional: its audited column holds the Monday-to-Friday count, a row of
``provisional_deadlines`` (schema/0014) says how to count it again, it is logged as
``deadline_provisional``, and every answer shows ``<column>_provisional: true``.
``recount_provisional_deadlines`` (at start and in each expiry pass) counts each
again with the calendar of the day: a date that moves is an audited change of the
objection by ``system:calendar`` (``objection.deadlines_recounted``), and the row goes
once no year is guessed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from registry.clock import today
from registry.credit import blacklist as entries
from registry.credit import records
from registry.credit.common import clean, fetch, list_keyset, update_versioned
from registry.credit.ownership import (
    Acting,
    SystemActor,
    disclosed_to_bureaus,
    entry_owners,
    require_decider,
)
from registry.db.types import Conn, required
from registry.db.writes import Written, audited_write, last_leaf, write_transaction
from registry.domain import blacklist as bl_rules
from registry.domain import objections as rules
from registry.domain.blacklist import RemovalReason
from registry.domain.objections import DEADLINES, Objection, ObjectionFiler
from registry.domain.working_days import Deadline
from registry.errors import Conflict, InvalidInput, NotFound
from registry.services import Services

log = structlog.get_logger(__name__)

TARGETS = ("credit_record", "blacklist_entry")
DECISION_ACTIONS = ("revoke", "correct")
# Who counts provisional deadlines again (an audited change of the objection).
CALENDAR = SystemActor("system:calendar")


@dataclass(frozen=True)
class ObjectionWrite:
    """One filing or decision: the objection's change (the write's first leaf), the
    target's change, the index of the write's last leaf, and which of the objection's
    deadlines are provisional."""

    objection: Written
    target: Written
    last_index: int
    provisional: frozenset[str] = frozenset()


def deadline_flags(provisional: Iterable[str]) -> dict[str, bool]:
    """``<column>_provisional`` for each deadline column, as the answers show them."""
    marked = set(provisional)
    return {f"{column}_provisional": column in marked for column in DEADLINES}


async def provisional_deadlines(source: Conn | asyncpg.Pool,
                                ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
    """The provisional deadline columns of each objection in ``ids`` (absent: none)."""
    rows = await source.fetch(
        "SELECT object_id, deadline FROM provisional_deadlines"
        " WHERE object_type = 'objection' AND object_id = ANY($1::uuid[])", list(ids))
    found: dict[uuid.UUID, set[str]] = {}
    for row in rows:
        found.setdefault(row["object_id"], set()).add(row["deadline"])
    return {key: frozenset(columns) for key, columns in found.items()}


async def with_flags(source: Conn | asyncpg.Pool,
                     rows: Iterable[asyncpg.Record | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Objection rows (or masked copies of them) as plain dicts with their deadline flags."""
    plain = [{key: row[key] for key in row.keys()} for row in rows]  # noqa: SIM118 - asyncpg.Record
    marked = await provisional_deadlines(source, [row["id"] for row in plain])
    return [{**row, **deadline_flags(marked.get(row["id"], ()))} for row in plain]


async def _mark_provisional(conn: Conn, objection_id: uuid.UUID,
                            deadlines: Mapping[str, Deadline]) -> None:
    for column, deadline in deadlines.items():
        if deadline.provisional:
            await conn.execute(
                "INSERT INTO provisional_deadlines (object_type, object_id, deadline,"
                " counted_from, working_days) VALUES ('objection', $1, $2, $3, $4)",
                objection_id, column, deadline.start, deadline.working_days)


def _warn_provisional(objection_id: uuid.UUID, deadlines: Mapping[str, Deadline]) -> None:
    for column, deadline in deadlines.items():
        if deadline.provisional:
            log.warning("deadline_provisional", object_type="objection",
                        object_id=str(objection_id), deadline=column,
                        due=deadline.day.isoformat(), counted_from=deadline.start.isoformat(),
                        working_days=deadline.working_days,
                        unknown_years=list(deadline.unknown_years))


def objection_of(row: asyncpg.Record) -> Objection:
    return msgspec.convert({f: row[f] for f in Objection.__struct_fields__}, Objection)


async def owners_of(services: Services, target_type: str, target: asyncpg.Record,
                    conn: Conn) -> list[str]:
    """The authorities answering for an objection's or repair's target (credit/ownership.py)."""
    if target_type == "credit_record":
        return [target["authority_code"]]
    return await entry_owners(conn, list(target["record_ids"]))


async def file(
    services: Services, who: Acting, role: str, target_type: str, target_id: uuid.UUID,
    grounds: str,
) -> ObjectionWrite:
    """File an objection; the objection, then the target marked under objection.

    Anyone with the right to object may file about any authority's decision; only one
    objection per item is open at a time (409)."""
    actor = who.actor
    if target_type not in TARGETS:
        raise InvalidInput("target_type", f"unknown target {target_type!r}", ", ".join(TARGETS))
    reason = clean(grounds, "grounds", required=True)
    on = today(services.clock)
    filer = ObjectionFiler.bureau if role == "bureau" else ObjectionFiler.subject
    due = rules.objection_deadlines(on, services.policy, services.calendar)
    objection = rules.file_objection(on, due, filer)
    deadlines = due.by_column()
    async with write_transaction(services.pool) as conn:
        target = await fetch(services, target_type, target_id, conn)
        if role == "bureau" and not await disclosed_to_bureaus(services, target_type, target, conn):
            raise NotFound(f"no {target_type.replace('_', ' ')} with id {target_id}")
        if target["under_objection"]:
            raise Conflict(f"the {target_type.replace('_', ' ')} is already under objection; "
                           "wait for the pending objection's decision")
        objection_id = uuid.uuid4()

        async def write(c: Conn, index: int, now: datetime) -> asyncpg.Record:
            row = required(await c.fetchrow(
                "INSERT INTO objections (id, target_type, target_id, subject_id, filed_by, grounds,"
                " state, filed_on, decide_due, answer_due, version, created_at, created_by,"
                " updated_at, updated_by, log_index) VALUES ($1, $2, $3, $4, $5, $6, 'filed', $7,"
                " $8, $9, 1, $10, $11, $10, $11, $12) RETURNING *",
                objection_id, target_type, target_id, target["subject_id"], filer.value, reason,
                objection.filed_on, objection.decide_due, objection.answer_due, now, actor, index,
            ))
            return row

        try:
            filed = await audited_write(services.pool, services.clock, actor=actor,
                                        action="objection.file", object_type="objection",
                                        write=write, conn=conn)
        except asyncpg.UniqueViolationError:
            # objections_one_pending: another filing won the race for this item.
            raise Conflict(f"the {target_type.replace('_', ' ')} is already under objection; "
                           "wait for the pending objection's decision") from None
        await _mark_provisional(conn, objection_id, deadlines)
        if target_type == "credit_record":
            if target["status"] == "revoked":
                raise Conflict("the record is revoked; there is nothing left to object to")
            marked = await update_versioned(
                services, actor=actor, action="record.objection_filed",
                object_type="credit_record", object_id=target_id, version=target["version"],
                changes={"under_objection": True}, conn=conn)
        else:
            state = entries.state_of(target)
            if state.state is bl_rules.BlacklistState.notified:
                marked = await entries.step(
                    services, who, target_id, "blacklist.objection_filed",
                    lambda s: bl_rules.file_objection(s, on), extra={"under_objection": True},
                    conn=conn, check_owner=False)
            elif state.state is bl_rules.BlacklistState.listed:
                marked = await update_versioned(
                    services, actor=actor, action="blacklist.objection_filed",
                    object_type="blacklist_entry", object_id=target_id,
                    version=target["version"], changes={"under_objection": True}, conn=conn)
            else:
                raise Conflict(f"blacklist entry is '{state.state.value}'; objections are filed "
                               "against 'notified' or 'listed' entries")
        last = await last_leaf(conn)
    # After the commit: a refused filing guessed nothing.
    _warn_provisional(objection_id, deadlines)
    return ObjectionWrite(objection=filed, target=marked, last_index=last,
                          provisional=frozenset(c for c, d in deadlines.items() if d.provisional))


async def decide(
    services: Services,
    who: Acting,
    objection_id: uuid.UUID,
    *,
    upheld: bool,
    note: str | None,
    action: str | None,
    corrections: dict[str, Any] | None,
) -> ObjectionWrite:
    """Decide once: the objection, then the target's change (then any listings ended)."""
    if upheld and action not in DECISION_ACTIONS:
        raise InvalidInput("action", "an upheld objection needs an action on the disputed item",
                           ", ".join(DECISION_ACTIONS))
    if not upheld and action is not None:
        raise InvalidInput("action", "a rejected objection changes nothing", "omit action")
    if action == "correct" and not corrections:
        raise InvalidInput("corrections", "action 'correct' needs the corrected fields",
                           ", ".join(records.FIELDS))
    if action != "correct" and corrections:
        raise InvalidInput("corrections", "only action 'correct' takes corrections",
                           "omit corrections")
    on = today(services.clock)
    async with write_transaction(services.pool) as conn:
        row = await fetch(services, "objection", objection_id, conn)
        target_id = row["target_id"]
        target = await fetch(services, row["target_type"], target_id, conn)
        await require_decider(conn, who, await owners_of(services, row["target_type"], target, conn),
                              f"the {row['target_type'].replace('_', ' ')} {target_id} objected to")
        actor = who.actor
        decided = rules.decide(objection_of(row), on, upheld=upheld, note=clean(note, "note"))
        written = await update_versioned(
            services, actor=actor, action="objection.decide", object_type="objection",
            object_id=objection_id, version=row["version"], conn=conn,
            changes={"state": decided.state.value, "decided_on": decided.decided_on,
                     "decision_note": decided.decision_note, "decision_action": action})
        target = await fetch(services, row["target_type"], target_id, conn)
        clear = {"under_objection": False}
        if row["target_type"] == "credit_record":
            if action == "revoke":
                changed = await records.revoke_record(
                    services, who, target_id, target["version"],
                    f"objection {objection_id} upheld", extra=clear, conn=conn)
            elif action == "correct":
                changed = await records.correct_record(
                    services, who, target_id, target["version"], corrections or {},
                    f"objection {objection_id} upheld", extra=clear, conn=conn)
            else:
                changed = await update_versioned(
                    services, actor=actor, action="record.objection_settled",
                    object_type="credit_record", object_id=target_id,
                    version=target["version"], changes=clear, conn=conn)
        else:
            changed = await _settle_listing(services, who, target, upheld, action, on, conn)
        last = await last_leaf(conn)
        marked = (await provisional_deadlines(conn, [objection_id])).get(objection_id, frozenset())
    return ObjectionWrite(objection=written, target=changed, last_index=last, provisional=marked)


async def _settle_listing(services: Services, who: Acting, target: asyncpg.Record, upheld: bool,
                          action: str | None, on: date, conn: Conn) -> Written:
    actor = who.actor
    state = entries.state_of(target)
    clear = {"under_objection": False}
    if state.state is bl_rules.BlacklistState.notified and state.pending_objection:
        return await entries.step(
            services, who, target["id"], "blacklist.objection_settled",
            lambda s: bl_rules.settle_objection(s, on, upheld=upheld), extra=clear, conn=conn)
    if upheld and state.state is bl_rules.BlacklistState.listed:
        reason = (RemovalReason.decision_revoked if action == "revoke"
                  else RemovalReason.decision_corrected)
        return await entries.step(
            services, who, target["id"], "blacklist.remove",
            lambda s: bl_rules.remove(s, on, reason), extra=clear, conn=conn)
    return await update_versioned(
        services, actor=actor, action="blacklist.objection_settled",
        object_type="blacklist_entry", object_id=target["id"], version=target["version"],
        changes=clear, conn=conn)


async def list_objections(services: Services, *, state: str | None, overdue: bool,
                          subject_id: uuid.UUID | None, after: uuid.UUID | None,
                          limit: int) -> list[dict[str, Any]]:
    """Keyset by id, with deadline flags (``with_flags``). ``overdue``: still filed after
    ``answer_due`` (domain.objections.is_overdue), provisional or not."""
    due_before = today(services.clock) if overdue else None
    rows = await list_keyset(services, "objection", after=after, limit=limit,
                             equals={"state": "filed" if overdue else state,
                                     "subject_id": subject_id},
                             due_before=due_before)
    return await with_flags(services.pool, rows)


@dataclass
class Recount:
    """What one ``recount_provisional_deadlines`` pass did."""

    # Objections whose stored deadlines moved (one audited change each).
    moved: int = 0
    # Deadlines no longer provisional (their provisional_deadlines rows deleted).
    settled: int = 0
    # Deadlines still provisional, and the years they still guess.
    provisional: int = 0
    unknown_years: set[int] = field(default_factory=set)


async def recount_provisional_deadlines(services: Services,
                                        actor: str = CALENDAR.actor) -> Recount:
    """Count every provisional deadline again with ``services.calendar``.

    Per objection, one transaction: its ``provisional_deadlines`` rows are locked and read
    again, each deadline is counted from the same day and number of working days, a date
    that moved is written as one audited change of the objection (``update_versioned``
    with the system actor; the policy of today plays no part, the stored count stands), and
    the rows of deadlines that no longer guess a year are deleted. Dying mid-pass leaves
    the rest for the next pass; another writer moving the objection first (409) leaves it
    to the next pass too. Still-provisional deadlines whose date does not move cost a read.
    """
    result = Recount()
    ids = [row["object_id"] for row in await services.pool.fetch(
        "SELECT DISTINCT object_id FROM provisional_deadlines WHERE object_type = 'objection'"
        " ORDER BY object_id")]
    for objection_id in ids:
        with contextlib.suppress(Conflict):
            await _recount(services, actor, objection_id, result)
    if result.moved or result.settled:
        log.info("deadlines_recounted", moved=result.moved, settled=result.settled,
                 still_provisional=result.provisional, unknown_years=sorted(result.unknown_years))
    return result


async def _recount(services: Services, actor: str, objection_id: uuid.UUID,
                   result: Recount) -> None:
    async with write_transaction(services.pool) as conn:
        marks = await conn.fetch(
            "SELECT deadline, counted_from, working_days FROM provisional_deadlines"
            " WHERE object_type = 'objection' AND object_id = $1 ORDER BY deadline FOR UPDATE",
            objection_id)
        if not marks:
            return  # another pass got here first
        row = await fetch(services, "objection", objection_id, conn)
        counted = {m["deadline"]: services.calendar.add_working_days(m["counted_from"],
                                                                     m["working_days"])
                   for m in marks}
        changes = {column: d.day for column, d in counted.items() if row[column] != d.day}
        if changes:
            await update_versioned(services, actor=actor, action="objection.deadlines_recounted",
                                   object_type="objection", object_id=objection_id,
                                   version=row["version"], changes=changes, conn=conn)
        settled = [column for column, d in counted.items() if not d.provisional]
        if settled:
            await conn.execute(
                "DELETE FROM provisional_deadlines WHERE object_type = 'objection'"
                " AND object_id = $1 AND deadline = ANY($2::text[])", objection_id, settled)
    # Counted only once committed.
    result.moved += bool(changes)
    result.settled += len(settled)
    for d in counted.values():
        if d.provisional:
            result.provisional += 1
            result.unknown_years.update(d.unknown_years)
