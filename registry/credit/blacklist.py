"""The serious-dishonesty list: each step of ``domain.blacklist`` as one audited change.

The row holds the whole ``BlacklistEntryState`` (same column names) plus who
proposed it, on which criterion and legal basis, and the serious records it
rests on. A step reads the row, applies the pure transition and writes the new
state only if the row is still at the version read (compare-and-set).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from registry.clock import today
from registry.credit.common import clean, fetch, list_keyset, update_versioned
from registry.db.types import Conn, required
from registry.db.writes import Written, audited_write
from registry.domain import blacklist as rules
from registry.domain.blacklist import BlacklistEntryState, RemovalReason
from registry.domain.publicity import Grade
from registry.errors import Conflict, InvalidInput
from registry.services import Services

STATES = tuple(s.value for s in rules.BlacklistState)
STATE_FIELDS = BlacklistEntryState.__struct_fields__


def state_of(row: asyncpg.Record) -> BlacklistEntryState:
    return msgspec.convert({f: row[f] for f in STATE_FIELDS}, BlacklistEntryState)


def _columns(state: BlacklistEntryState) -> dict[str, Any]:
    return {
        f: (v.value if isinstance(v, rules.BlacklistState | RemovalReason) else v)
        for f, v in ((f, getattr(state, f)) for f in STATE_FIELDS)
    }


async def propose(
    services: Services,
    actor: str,
    subject_id: uuid.UUID,
    criterion: str,
    legal_basis: str,
    record_ids: list[uuid.UUID],
) -> Written:
    """A proposal resting on at least one serious, unrevoked record of the same subject (else 409)."""
    if not record_ids:
        raise InvalidInput("record_ids", "is empty", "the ids of the serious records it rests on")
    ids = list(dict.fromkeys(record_ids))
    rows = await services.pool.fetch(
        "SELECT id, subject_id, grade, status FROM credit_records WHERE id = ANY($1::uuid[])", ids
    )
    found = {r["id"]: r for r in rows}
    for record_id in ids:
        row = found.get(record_id)
        if row is None:
            raise InvalidInput("record_ids", f"no record with id {record_id}", "ids of existing records")
        if row["subject_id"] != subject_id:
            raise InvalidInput("record_ids", f"record {record_id} belongs to another subject",
                               "records of the proposed subject")
    grades = [Grade(r["grade"]) for r in rows if r["grade"] and r["status"] != "revoked"]
    rules.check_listing_basis(grades)
    exists = await services.pool.fetchval("SELECT 1 FROM subjects WHERE id = $1", subject_id)
    if not exists:
        raise InvalidInput("subject_id", "no such subject", "the id of a registered subject")
    state = rules.propose(today(services.clock))
    values = {"criterion": clean(criterion, "criterion", required=True),
              "legal_basis": clean(legal_basis, "legal_basis", required=True),
              **_columns(state)}
    entry_id = uuid.uuid4()
    columns = ["id", "subject_id", "record_ids", *values]
    params: list[Any] = [entry_id, subject_id, ids, *values.values()]
    n = len(params)
    sql = (
        f"INSERT INTO blacklist_entries ({', '.join(columns)}, version, created_at, created_by,"  # noqa: S608 - fixed column names
        f" updated_at, updated_by, log_index) VALUES"
        f" ({', '.join(f'${i + 1}' for i in range(n))}, 1, ${n + 1}, ${n + 2}, ${n + 1}, ${n + 2},"
        f" ${n + 3}) RETURNING *"
    )

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(await conn.fetchrow(sql, *params, now, actor, index))
        return row

    return await audited_write(services.pool, services.clock, actor=actor,
                               action="blacklist.propose", object_type="blacklist_entry", write=write)


async def step(
    services: Services,
    actor: str,
    entry_id: uuid.UUID,
    action: str,
    transition: Callable[[BlacklistEntryState], BlacklistEntryState],
    *,
    version: int | None = None,
    extra: dict[str, Any] | None = None,
    conn: Conn | None = None,
) -> Written:
    """Apply one pure transition and write it (action e.g. ``blacklist.notify``)."""
    row = await fetch(services, "blacklist_entry", entry_id, conn)
    if version is not None and row["version"] != version:
        raise Conflict(f"blacklist entry {entry_id} is at version {row['version']}, not {version}",
                       field="version")
    new = transition(state_of(row))
    return await update_versioned(
        services, actor=actor, action=action, object_type="blacklist_entry", object_id=entry_id,
        version=row["version"], changes={**_columns(new), **(extra or {})}, conn=conn,
    )


def _day(services: Services, on: date | None) -> date:
    now = today(services.clock)
    if on is None:
        return now
    if on > now:
        raise InvalidInput("on", f"{on.isoformat()} is in the future", f"a date up to {now.isoformat()}")
    return on


async def notify(services: Services, actor: str, entry_id: uuid.UUID, channel: str,
                 on: date | None, version: int | None) -> Written:
    day = _day(services, on)
    return await step(services, actor, entry_id, "blacklist.notify",
                      lambda s: rules.notify(s, day, channel, services.policy), version=version)


async def list_entry(services: Services, actor: str, entry_id: uuid.UUID,
                     planned_removal_on: date | None, version: int | None) -> Written:
    day = today(services.clock)
    return await step(services, actor, entry_id, "blacklist.list",
                      lambda s: rules.list_entry(s, day, services.policy, planned_removal_on),
                      version=version)


async def remove(services: Services, actor: str, entry_id: uuid.UUID, reason: str,
                 version: int | None, *, conn: Conn | None = None) -> Written:
    try:
        why = RemovalReason(reason)
    except ValueError:
        raise InvalidInput("reason", f"unknown removal reason {reason!r}",
                           ", ".join(r.value for r in RemovalReason)) from None
    day = today(services.clock)
    return await step(services, actor, entry_id, "blacklist.remove",
                      lambda s: rules.remove(s, day, why), version=version, conn=conn)


async def withdraw(services: Services, actor: str, entry_id: uuid.UUID, reason: str,
                   version: int | None) -> Written:
    day = today(services.clock)
    return await step(services, actor, entry_id, "blacklist.withdraw",
                      lambda s: rules.withdraw(s, day, reason), version=version)


async def list_entries(services: Services, *, state: str | None, subject_id: uuid.UUID | None,
                       after: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await list_keyset(services, "blacklist_entry", after=after, limit=limit,
                             equals={"state": state, "subject_id": subject_id})


async def end_entries_resting_on(
    services: Services, actor: str, record_id: uuid.UUID, conn: Conn
) -> list[Written]:
    """A revoked decision takes its listings with it: listed entries are removed
    (``decision_revoked``), proposals withdrawn — in the caller's transaction."""
    rows = await conn.fetch(
        "SELECT id, state FROM blacklist_entries WHERE $1 = ANY(record_ids)"
        " AND state IN ('proposed', 'notified', 'listed') ORDER BY id FOR UPDATE",
        record_id,
    )
    day = today(services.clock)
    ended = []
    for row in rows:
        if row["state"] == "listed":
            ended.append(await step(
                services, actor, row["id"], "blacklist.remove",
                lambda s: rules.remove(s, day, RemovalReason.decision_revoked), conn=conn))
        else:
            ended.append(await step(
                services, actor, row["id"], "blacklist.withdraw",
                lambda s: rules.withdraw(s, day, "decision_revoked"), conn=conn))
    return ended
