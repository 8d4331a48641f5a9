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
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from registry.clock import today
from registry.credit import blacklist as entries
from registry.credit import records
from registry.credit.common import clean, fetch, list_keyset, update_versioned
from registry.credit.ownership import (
    Acting,
    disclosed_to_bureaus,
    entry_owners,
    require_decider,
)
from registry.db.types import Conn, required
from registry.db.writes import Written, audited_write, last_leaf, write_transaction
from registry.domain import blacklist as bl_rules
from registry.domain import objections as rules
from registry.domain.blacklist import RemovalReason
from registry.domain.objections import Objection, ObjectionFiler
from registry.errors import Conflict, InvalidInput, NotFound
from registry.services import Services

TARGETS = ("credit_record", "blacklist_entry")
DECISION_ACTIONS = ("revoke", "correct")


@dataclass(frozen=True)
class ObjectionWrite:
    """One filing or decision: the objection's change (the write's first leaf), the
    target's change, and the index of the write's last leaf."""

    objection: Written
    target: Written
    last_index: int


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
    objection = rules.file_objection(on, services.policy, filer)
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
    return ObjectionWrite(objection=filed, target=marked, last_index=last)


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
    return ObjectionWrite(objection=written, target=changed, last_index=last)


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
                          limit: int) -> list[asyncpg.Record]:
    """Keyset by id. ``overdue``: still filed after ``answer_due`` (domain.objections.is_overdue)."""
    due_before = today(services.clock) if overdue else None
    return await list_keyset(services, "objection", after=after, limit=limit,
                             equals={"state": "filed" if overdue else state, "subject_id": subject_id},
                             due_before=due_before)
