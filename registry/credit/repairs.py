"""Credit repair (信用修復): applied after the minimum period, approved or rejected once.

Approval ends publication on the approval day in the same transaction: the
record becomes ``repaired`` (``record.repair``), a listing is removed with
reason ``credit_repair_approved`` (``blacklist.remove``). Nothing is deleted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from registry.clock import today
from registry.credit import blacklist as entries
from registry.credit import records
from registry.credit.common import clean, fetch, list_keyset, update_versioned
from registry.credit.objections import owners_of
from registry.credit.ownership import Acting, disclosed_to_bureaus, require_decider
from registry.db.types import Conn, required
from registry.db.writes import Written, audited_write, write_transaction
from registry.domain import blacklist as bl_rules
from registry.domain import repair as rules
from registry.domain.blacklist import RemovalReason
from registry.domain.publicity import PublicityWindow
from registry.domain.repair import RepairApplication, RepairRoute
from registry.errors import Conflict, InvalidInput, NotFound
from registry.services import Services

TARGETS = ("credit_record", "blacklist_entry")


def _window(services: Services, target_type: str, target: asyncpg.Record) -> tuple[RepairRoute, PublicityWindow]:
    if target_type == "credit_record":
        if target["record_kind"] not in records.GRADED_KINDS:
            raise Conflict(f"a {target['record_kind']} record is not dishonesty information; "
                           "credit repair applies to penalties and dishonesty records")
        if target["status"] != "published":
            raise Conflict(f"the record is '{target['status']}', not in publication; "
                           "there is nothing to repair")
        route = (RepairRoute.penalty_publicity if target["record_kind"] == "penalty"
                 else RepairRoute.other_dishonesty)
        return route, records.stored_window(target)
    state = entries.state_of(target)
    if state.state is not bl_rules.BlacklistState.listed:
        raise Conflict(f"blacklist entry is '{state.state.value}'; credit repair removes "
                       "'listed' entries only")
    return RepairRoute.blacklist_removal, bl_rules.listing_window(state, services.policy)


def check_repairable(services: Services, target_type: str, target: asyncpg.Record) -> None:
    """Refuse (409) unless ``target`` is still in publication, as approving requires: the
    check ``decide`` makes, for a page to ask before offering approval."""
    _window(services, target_type, target)


async def apply(services: Services, who: Acting, target_type: str, target_id: uuid.UUID,
                grounds: str) -> Written:
    actor = who.actor
    if target_type not in TARGETS:
        raise InvalidInput("target_type", f"unknown target {target_type!r}", ", ".join(TARGETS))
    reason = clean(grounds, "grounds", required=True)
    target = await fetch(services, target_type, target_id)
    if who.role == "bureau" and not await disclosed_to_bureaus(
        services, target_type, target, services.pool
    ):
        raise NotFound(f"no {target_type.replace('_', ' ')} with id {target_id}")
    route, window = _window(services, target_type, target)
    application = rules.apply_for_repair(route, window, today(services.clock))
    repair_id = uuid.uuid4()

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(await conn.fetchrow(
            "INSERT INTO repairs (id, target_type, target_id, subject_id, route, grounds, state,"
            " applied_on, version, created_at, created_by, updated_at, updated_by, log_index)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'applied', $7, 1, $8, $9, $8, $9, $10) RETURNING *",
            repair_id, target_type, target_id, target["subject_id"], application.route.value,
            reason, application.applied_on, now, actor, index))
        return row

    try:
        return await audited_write(services.pool, services.clock, actor=actor,
                                   action="repair.apply", object_type="repair", write=write)
    except asyncpg.UniqueViolationError:
        raise Conflict("a repair application for this item is already pending") from None


async def decide(services: Services, who: Acting, repair_id: uuid.UUID, *, approve: bool,
                 note: str | None) -> tuple[Written, Written | None]:
    """Approve (ends publication now) or reject; returns (the repair, the target's change).
    Only the authority answering for the target decides (403)."""
    actor = who.actor
    on = today(services.clock)
    note = clean(note, "note")
    async with write_transaction(services.pool) as conn:
        row = await fetch(services, "repair", repair_id, conn)
        current = msgspec.convert(
            {f: row[f] for f in RepairApplication.__struct_fields__}, RepairApplication)
        decided = rules.approve(current, on, note) if approve else rules.reject(current, on, note)
        target = await fetch(services, row["target_type"], row["target_id"], conn)
        await require_decider(
            conn, who, await owners_of(services, row["target_type"], target, conn),
            f"the {row['target_type'].replace('_', ' ')} {row['target_id']} to repair")
        if approve:
            # Publication may have ended by itself since the application.
            check_repairable(services, row["target_type"], target)
        written = await update_versioned(
            services, actor=actor, action="repair.approve" if approve else "repair.reject",
            object_type="repair", object_id=repair_id, version=row["version"], conn=conn,
            changes={"state": decided.state.value, "decided_on": decided.decided_on,
                     "decision_note": decided.decision_note})
        changed: Written | None = None
        if approve and row["target_type"] == "credit_record":
            changes: dict[str, Any] = {"status": "repaired", "publication_ended_on": on,
                                       "status_reason": "credit_repair_approved"}
            changed = await update_versioned(
                services, actor=actor, action="record.repair", object_type="credit_record",
                object_id=row["target_id"], version=target["version"], changes=changes, conn=conn)
        elif approve:
            changed = await entries.step(
                services, who, row["target_id"], "blacklist.remove",
                lambda s: bl_rules.remove(s, on, RemovalReason.credit_repair_approved), conn=conn)
    return written, changed


async def list_repairs(services: Services, *, state: str | None, subject_id: uuid.UUID | None,
                       after: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await list_keyset(services, "repair", after=after, limit=limit,
                             equals={"state": state, "subject_id": subject_id})
