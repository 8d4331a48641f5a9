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
from registry.credit.ownership import Acting, entry_owners, require_decider
from registry.db.types import Conn, required
from registry.db.writes import Written, audited_write, write_transaction
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


async def _basis(source: Conn | asyncpg.Pool, record_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await source.fetch(
        "SELECT id, subject_id, grade, status, authority_code FROM credit_records"
        " WHERE id = ANY($1::uuid[]) ORDER BY id", record_ids)
    return rows


def _why_not(row: asyncpg.Record) -> str:
    if row["status"] == "revoked":
        return f"record {row['id']} is revoked"
    return f"record {row['id']} is graded {row['grade'] or 'not at all'}, not serious"


async def propose(
    services: Services,
    who: Acting,
    subject_id: uuid.UUID,
    criterion: str,
    legal_basis: str,
    record_ids: list[uuid.UUID],
) -> Written:
    """A proposal resting on serious, unrevoked records of the same subject, all decided by
    the proposing authority (403 otherwise; 409 if a record is no basis)."""
    if not record_ids:
        raise InvalidInput("record_ids", "is empty", "the ids of the serious records it rests on")
    ids = list(dict.fromkeys(record_ids))
    rows = await _basis(services.pool, ids)
    found = {r["id"]: r for r in rows}
    for record_id in ids:
        row = found.get(record_id)
        if row is None:
            raise InvalidInput("record_ids", f"no record with id {record_id}", "ids of existing records")
        if row["subject_id"] != subject_id:
            raise InvalidInput("record_ids", f"record {record_id} belongs to another subject",
                               "records of the proposed subject")
    await require_decider(services.pool, who, [r["authority_code"] for r in rows],
                          "a record this entry would rest on")
    rules.check_listing_basis([Grade(r["grade"]) for r in rows if r["grade"] and r["status"] != "revoked"])
    for row in rows:
        if not rules.basis_holds(row["grade"], row["status"]):
            raise Conflict(f"a blacklist entry rests only on serious records in force: {_why_not(row)}")
    exists = await services.pool.fetchval("SELECT 1 FROM subjects WHERE id = $1", subject_id)
    if not exists:
        raise InvalidInput("subject_id", "no such subject", "the id of a registered subject")
    actor = who.actor
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
    who: Acting,
    entry_id: uuid.UUID,
    action: str,
    transition: Callable[[BlacklistEntryState], BlacklistEntryState],
    *,
    version: int | None = None,
    extra: dict[str, Any] | None = None,
    conn: Conn | None = None,
    check_owner: bool = True,
) -> Written:
    """Apply one pure transition and write it (action e.g. ``blacklist.notify``); only the
    authority whose records the entry rests on may (403). ``check_owner=False`` for steps
    that are no decision of an authority: filing an objection (the subject's side), and an
    entry ending because a decision it rests on was changed (a consequence of a change its
    owner was allowed to make)."""
    row = await fetch(services, "blacklist_entry", entry_id, conn)
    source: Conn | asyncpg.Pool = conn or services.pool
    if check_owner:
        await require_decider(source, who, await entry_owners(source, list(row["record_ids"])),
                              f"blacklist entry {entry_id}")
    if version is not None and row["version"] != version:
        raise Conflict(f"blacklist entry {entry_id} is at version {row['version']}, not {version}",
                       field="version")
    new = transition(state_of(row))
    return await update_versioned(
        services, actor=who.actor, action=action, object_type="blacklist_entry", object_id=entry_id,
        version=row["version"], changes={**_columns(new), **(extra or {})}, conn=conn,
    )


def _day(services: Services, on: date | None) -> date:
    now = today(services.clock)
    if on is None:
        return now
    if on > now:
        raise InvalidInput("on", f"{on.isoformat()} is in the future", f"a date up to {now.isoformat()}")
    return on


async def notify(services: Services, who: Acting, entry_id: uuid.UUID, channel: str,
                 on: date | None, version: int | None) -> Written:
    day = _day(services, on)
    channel = clean(channel, "channel", required=True) or channel
    return await step(services, who, entry_id, "blacklist.notify",
                      lambda s: rules.notify(s, day, channel, services.policy), version=version)


async def list_entry(services: Services, who: Acting, entry_id: uuid.UUID,
                     planned_removal_on: date | None, version: int | None) -> Written:
    """List the entry; its basis is checked again at this moment (409 naming the record that
    no longer holds), in the transaction that lists it."""
    day = today(services.clock)
    async with write_transaction(services.pool) as conn:
        row = await fetch(services, "blacklist_entry", entry_id, conn)
        # FOR SHARE: a correction or revocation of a basis record committing meanwhile
        # waits for this listing (and then ends it), or this listing sees it.
        basis = await conn.fetch(
            "SELECT id, grade, status FROM credit_records WHERE id = ANY($1::uuid[])"
            " ORDER BY id FOR SHARE", list(row["record_ids"]))
        written = await step(services, who, entry_id, "blacklist.list",
                             lambda s: rules.list_entry(s, day, services.policy, planned_removal_on),
                             version=version, conn=conn)
        for record in basis:
            if not rules.basis_holds(record["grade"], record["status"]):
                raise Conflict(f"blacklist entry {entry_id} cannot be listed: its basis no longer "
                               f"holds ({_why_not(record)}); withdraw it")
        return written


async def remove(services: Services, who: Acting, entry_id: uuid.UUID, reason: str,
                 version: int | None, *, conn: Conn | None = None) -> Written:
    try:
        why = RemovalReason(reason)
    except ValueError:
        raise InvalidInput("reason", f"unknown removal reason {reason!r}",
                           ", ".join(r.value for r in RemovalReason)) from None
    day = today(services.clock)
    return await step(services, who, entry_id, "blacklist.remove",
                      lambda s: rules.remove(s, day, why), version=version, conn=conn)


async def withdraw(services: Services, who: Acting, entry_id: uuid.UUID, reason: str,
                   version: int | None) -> Written:
    day = today(services.clock)
    reason = clean(reason, "reason", required=True) or reason
    return await step(services, who, entry_id, "blacklist.withdraw",
                      lambda s: rules.withdraw(s, day, reason), version=version)


async def list_entries(services: Services, *, state: str | None, subject_id: uuid.UUID | None,
                       after: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    return await list_keyset(services, "blacklist_entry", after=after, limit=limit,
                             equals={"state": state, "subject_id": subject_id})


async def end_entries_without_basis(
    services: Services, who: Acting, record_id: uuid.UUID, conn: Conn
) -> list[Written]:
    """After a change to ``record_id`` (in the caller's transaction): every open entry resting
    on it whose basis no longer holds (``rules.basis_holds`` for each of its records) ends,
    each with its own leaf: listed entries are removed (``decision_revoked`` or
    ``decision_corrected``), proposals withdrawn. The list never outlives its basis."""
    rows = await conn.fetch(
        "SELECT id, state, record_ids FROM blacklist_entries WHERE $1 = ANY(record_ids)"
        " AND state IN ('proposed', 'notified', 'listed') ORDER BY id FOR UPDATE",
        record_id,
    )
    day = today(services.clock)
    ended = []
    for row in rows:
        basis = await _basis(conn, list(row["record_ids"]))
        broken = [r for r in basis if not rules.basis_holds(r["grade"], r["status"])]
        if not broken:
            continue
        revoked = any(r["status"] == "revoked" for r in broken)
        reason = RemovalReason.decision_revoked if revoked else RemovalReason.decision_corrected
        ended.append(await _end(services, who, row["id"], row["state"], reason, day, conn))
    return ended


async def _end(services: Services, who: Acting, entry_id: uuid.UUID, state: str,
               reason: RemovalReason, day: date, conn: Conn) -> Written:
    if state == "listed":
        return await step(services, who, entry_id, "blacklist.remove",
                          lambda s: rules.remove(s, day, reason), conn=conn, check_owner=False)
    return await step(services, who, entry_id, "blacklist.withdraw",
                      lambda s: rules.withdraw(s, day, reason.value), conn=conn,
                      check_owner=False)
