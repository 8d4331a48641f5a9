"""待办: what waits for one authority's officials today, each item with the place to act.

Reads only (a face may read storage; every write goes through a use case). Each section
asks the rule it depends on instead of stating it again:

- objections to decide: the pending state, ``is_overdue`` and ``is_decision_overdue`` of
  ``registry.domain.objections`` on the stored working-day deadlines; which deadlines are
  provisional, ``credit.objections.provisional_deadlines``; the years they guess, the
  running calendar's count of the same days (``WorkingCalendar.add_working_days``);
- blacklist entries: the verdicts the entry's own page shows (``decision_permits.
  entry_steps``, each a pure transition tried for today): listable now, to be notified,
  or the refusal in words (the window's end, an objection pending);
- leaving publication: ``domain.disclosure.RECORDS``/``LISTINGS``, the one rule the public
  page shows by (in publication today, and the first day it is not);
- repair applications awaiting a decision: state ``applied``.

Whose items: the SQL narrows each section to items resting on the authority's records
(cheap, indexed); each candidate is then confirmed with ``credit.ownership``'s
``require_decider`` (``decision_permits.decider``) on ``credit.objections.owners_of``, the
same question every use case asks before a decision, so the page lists nothing the use
case would refuse as another's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

import asyncpg

from registry.clock import today
from registry.console.decision_permits import decider, entry_steps
from registry.console.permits import ALLOWED, Permit
from registry.credit.blacklist import state_of
from registry.credit.objections import objection_of, owners_of, provisional_deadlines
from registry.credit.ownership import Acting
from registry.db.types import Conn
from registry.domain import blacklist as bl_rules
from registry.domain import objections as objection_rules
from registry.domain.disclosure import LISTINGS, RECORDS, Publication
from registry.domain.policy import Policy
from registry.domain.repair import RepairState
from registry.errors import Forbidden
from registry.services import Services

# "Leaving publication soon": the first day an item is no longer shown is at most this
# many days after today.
LEAVING_WITHIN_DAYS: Final = 30
# At most this many items per section; more are said to exist, not listed.
SECTION_LIMIT: Final = 200


# --- What a page shows --------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    id: uuid.UUID
    name: str

    @property
    def href(self) -> str:
        return f"/console/subjects/{self.id}"


@dataclass(frozen=True)
class Target:
    """The record or listing an objection or repair is about."""

    type: str  # credit_record | blacklist_entry
    id: uuid.UUID
    # The decision number of a record, the criterion of an entry.
    label: str | None

    @property
    def href(self) -> str:
        if self.type == "credit_record":
            return f"/console/records/{self.id}"
        return f"/console/blacklist/{self.id}"


@dataclass(frozen=True)
class ObjectionDue:
    id: uuid.UUID
    subject: Subject
    target: Target
    filed_on: date
    decide_due: date
    answer_due: date
    # Still undecided after ``answer_due`` (已逾期) / after ``decide_due``.
    overdue: bool
    decision_overdue: bool
    # The deadline columns counted Monday to Friday for a year not yet published.
    provisional: frozenset[str]

    @property
    def href(self) -> str:
        return f"/console/objections/{self.id}"


@dataclass(frozen=True)
class EntryStep:
    """An open blacklist entry and its next step: allowed now, or why not."""

    id: uuid.UUID
    subject: Subject
    criterion: str
    state: str  # proposed | notified
    step: str  # the step it waits for: notify | list
    objection_deadline: date | None
    permit: Permit

    @property
    def href(self) -> str:
        return f"/console/blacklist/{self.id}"


@dataclass(frozen=True)
class Leaving:
    """A record or listing in publication today whose publication ends soon."""

    target: Target
    subject: Subject
    # The last day it is shown (公示截止期); from the next day it is not.
    last_day_shown: date

    @property
    def href(self) -> str:
        return self.target.href


@dataclass(frozen=True)
class RepairWaiting:
    id: uuid.UUID
    subject: Subject
    target: Target
    route: str
    applied_on: date

    @property
    def href(self) -> str:
        return f"/console/repairs/{self.id}"


@dataclass(frozen=True)
class ProvisionalDeadline:
    objection: ObjectionDue
    column: str  # decide_due | answer_due
    due: date
    # The years whose holiday notice is still unknown to the running calendar; empty once
    # it knows them (the next recount pass then fixes the date).
    unknown_years: tuple[int, ...]


@dataclass(frozen=True)
class Todo:
    today: date
    # Items whose publication ends by this day are "leaving".
    horizon: date
    objections: list[ObjectionDue]
    # Open entries: the step allowed now (listable or to be notified), or waiting.
    listable: list[EntryStep]
    to_notify: list[EntryStep]
    waiting: list[EntryStep]
    leaving: list[Leaving]
    repairs: list[RepairWaiting]
    provisional: list[ProvisionalDeadline]
    # Sections cut at SECTION_LIMIT: objections, entries, leaving, repairs.
    truncated: frozenset[str] = field(default_factory=frozenset)

    @property
    def entries(self) -> int:
        return len(self.listable) + len(self.to_notify) + len(self.waiting)


# --- Pure parts -----------------------------------------------------------------------


def overdue_first(items: Iterable[ObjectionDue]) -> list[ObjectionDue]:
    """Overdue answers first, then overdue decisions, then by the nearest deadline."""
    return sorted(items, key=lambda o: (not o.overdue, not o.decision_overdue, o.answer_due,
                                        o.decide_due, o.filed_on, str(o.id)))


def next_step(entry: bl_rules.BlacklistEntryState, day: date,
              policy: Policy) -> tuple[str, Permit]:
    """The step an open entry waits for and whether it may be taken on ``day``: the
    verdicts of its page (``decision_permits.entry_steps``). ``list`` when allowed, else
    ``notify`` when allowed, else ``list`` with the reason it is not allowed yet."""
    steps = entry_steps(entry, day, policy, ALLOWED)
    if steps.list.allowed or not steps.notify.allowed:
        return "list", steps.list
    return "notify", steps.notify


def leaving_on(rule: Publication, item: Mapping[str, Any], day: date) -> date | None:
    """The first day after ``day`` that ``item``, in publication on ``day``, is not; None
    when it is not shown on ``day`` or shown without end."""
    if not rule.shown(item, day):
        return None
    return rule.next_change(item, day)


# --- Reads --------------------------------------------------------------------------

# $1: the authority. An entry rests on records of one authority (checked at proposal).
_ENTRY_OF_AUTHORITY: Final = (
    "EXISTS (SELECT 1 FROM credit_records c WHERE c.id = ANY({alias}.record_ids)"
    " AND c.authority_code = $1)"
)
# Objections and repairs (alias o) with their target's owner columns and label: a record's
# ``authority_code``, an entry's ``record_ids`` (what ``owners_of`` reads).
_WITH_TARGET: Final = (
    " FROM {table} o JOIN subjects s ON s.id = o.subject_id"
    " LEFT JOIN credit_records r ON o.target_type = 'credit_record' AND r.id = o.target_id"
    " LEFT JOIN blacklist_entries b ON o.target_type = 'blacklist_entry' AND b.id = o.target_id"
    " WHERE o.state = $2 AND (r.authority_code = $1 OR ("
    + _ENTRY_OF_AUTHORITY.format(alias="b") + "))"
)
_TARGET_COLUMNS: Final = (
    "s.name AS subject_name, r.authority_code, b.record_ids,"
    " COALESCE(r.decision_number, b.criterion) AS target_label"
)


async def _decides(services: Services, conn: Conn, who: Acting, target_type: str,
                   row: asyncpg.Record) -> bool:
    """Whether ``who`` answers for the item ``row`` holds the owner columns of."""
    owners = await owners_of(services, target_type, row, conn)
    return (await decider(conn, who, owners, f"{target_type} {row['id']}")).allowed


async def _mine(services: Services, conn: Conn, who: Acting, rows: Sequence[asyncpg.Record],
                target_type: str | None = None) -> list[asyncpg.Record]:
    return [row for row in rows
            if await _decides(services, conn, who, target_type or row["target_type"], row)]


def _subject(row: asyncpg.Record) -> Subject:
    return Subject(row["subject_id"], row["subject_name"])


def _target(row: asyncpg.Record) -> Target:
    return Target(row["target_type"], row["target_id"], row["target_label"])


async def pending_objections(services: Services, conn: Conn, who: Acting, authority: str,
                             day: date) -> tuple[list[ObjectionDue], bool]:
    """The authority's objections awaiting a decision, overdue first; and whether more
    than ``SECTION_LIMIT`` exist."""
    rows = await conn.fetch(
        f"SELECT o.*, {_TARGET_COLUMNS}" + _WITH_TARGET.format(table="objections")
        + " ORDER BY o.answer_due, o.decide_due, o.id LIMIT $3",
        authority, objection_rules.ObjectionState.filed.value, SECTION_LIMIT + 1)
    more = len(rows) > SECTION_LIMIT
    rows = await _mine(services, conn, who, rows[:SECTION_LIMIT])
    marked = await provisional_deadlines(conn, [row["id"] for row in rows])
    items = []
    for row in rows:
        objection = objection_of(row)
        if not objection_rules.is_pending(objection):
            continue
        items.append(ObjectionDue(
            id=row["id"], subject=_subject(row), target=_target(row),
            filed_on=objection.filed_on, decide_due=objection.decide_due,
            answer_due=objection.answer_due,
            overdue=objection_rules.is_overdue(objection, day),
            decision_overdue=objection_rules.is_decision_overdue(objection, day),
            provisional=marked.get(row["id"], frozenset())))
    return overdue_first(items), more


async def provisional_of(services: Services, conn: Conn,
                         objections: Sequence[ObjectionDue]) -> list[ProvisionalDeadline]:
    """Each provisional deadline of ``objections``, with the years it still guesses."""
    by_id = {o.id: o for o in objections if o.provisional}
    if not by_id:
        return []
    rows = await conn.fetch(
        "SELECT object_id, deadline, counted_from, working_days FROM provisional_deadlines"
        " WHERE object_type = 'objection' AND object_id = ANY($1::uuid[])", list(by_id))
    found = []
    for row in rows:
        objection = by_id[row["object_id"]]
        counted = services.calendar.add_working_days(row["counted_from"], row["working_days"])
        found.append(ProvisionalDeadline(
            objection=objection, column=row["deadline"],
            due=getattr(objection, row["deadline"]), unknown_years=counted.unknown_years))
    return sorted(found, key=lambda p: (p.due, p.column, str(p.objection.id)))


async def open_entries(services: Services, conn: Conn, who: Acting, authority: str,
                       day: date) -> tuple[list[EntryStep], bool]:
    """The authority's proposed and notified entries with their next step."""
    rows = await conn.fetch(
        "SELECT b.*, s.name AS subject_name FROM blacklist_entries b"  # noqa: S608 - fixed names
        " JOIN subjects s ON s.id = b.subject_id"
        " WHERE b.state = ANY($2::text[]) AND " + _ENTRY_OF_AUTHORITY.format(alias="b")
        + " ORDER BY b.objection_deadline NULLS LAST, b.proposed_on, b.id LIMIT $3",
        authority, [bl_rules.BlacklistState.proposed.value, bl_rules.BlacklistState.notified.value],
        SECTION_LIMIT + 1)
    more = len(rows) > SECTION_LIMIT
    items = []
    for row in await _mine(services, conn, who, rows[:SECTION_LIMIT], "blacklist_entry"):
        state = state_of(row)
        step, verdict = next_step(state, day, services.policy)
        items.append(EntryStep(id=row["id"], subject=_subject(row), criterion=row["criterion"],
                               state=state.state.value, step=step,
                               objection_deadline=state.objection_deadline, permit=verdict))
    return items, more


async def leaving_publication(services: Services, conn: Conn, who: Acting, authority: str,
                              day: date, horizon: date) -> tuple[list[Leaving], bool]:
    """The authority's records and listings in publication on ``day`` whose publication
    ends by ``horizon`` (the first day not shown ``<= horizon``), soonest first."""
    ends = {}
    for rule, label, mine in (
        (RECORDS, "r.decision_number", "r.authority_code = $1"),
        (LISTINGS, "r.criterion", _ENTRY_OF_AUTHORITY.format(alias="r")),
    ):
        rows = await conn.fetch(
            f"SELECT r.*, s.name AS subject_name, {label} AS target_label,"  # noqa: S608 - fixed names
            f" '{rule.object_type}' AS target_type, r.id AS target_id"
            f" FROM {rule.table} r JOIN subjects s ON s.id = r.subject_id"
            f" WHERE {mine} AND {rule.shown_sql('$2', 'r')} AND {rule.changes_after_sql('$2', 'r')}"
            f" AND {rule.change_day_sql('$2', 'r')} <= $3"
            f" ORDER BY {rule.change_day_sql('$2', 'r')}, r.id LIMIT $4",
            authority, day, horizon, SECTION_LIMIT + 1)
        for row in await _mine(services, conn, who, rows, rule.object_type):
            end = leaving_on(rule, dict(row), day)
            if end is not None and end <= horizon:
                ends[(rule.object_type, row["id"])] = (end, row)
    found = sorted(ends.values(), key=lambda pair: (pair[0], str(pair[1]["id"])))
    items = [Leaving(target=_target(row), subject=_subject(row),
                     last_day_shown=end - timedelta(days=1))
             for end, row in found[:SECTION_LIMIT]]
    return items, len(found) > SECTION_LIMIT


async def pending_repairs(services: Services, conn: Conn, who: Acting,
                          authority: str) -> tuple[list[RepairWaiting], bool]:
    """The authority's repair applications awaiting a decision, oldest first."""
    rows = await conn.fetch(
        f"SELECT o.*, {_TARGET_COLUMNS}" + _WITH_TARGET.format(table="repairs")
        + " ORDER BY o.applied_on, o.id LIMIT $3",
        authority, RepairState.applied.value, SECTION_LIMIT + 1)
    more = len(rows) > SECTION_LIMIT
    items = [RepairWaiting(id=row["id"], subject=_subject(row), target=_target(row),
                           route=row["route"], applied_on=row["applied_on"])
             for row in await _mine(services, conn, who, rows[:SECTION_LIMIT])]
    return items, more


async def todo_for(services: Services, who: Acting) -> Todo:
    """Everything waiting for ``who``'s authority today (``who`` a regulator of one)."""
    authority = who.authority_code
    if authority is None:
        raise Forbidden("this token belongs to no authority, so no decision waits for it")
    day = today(services.clock)
    horizon = day + timedelta(days=LEAVING_WITHIN_DAYS)
    # One snapshot for the whole page: an item moving between sections meanwhile is
    # shown once, in one of them.
    async with services.pool.acquire() as conn, conn.transaction(
            isolation="repeatable_read", readonly=True):
        objections, more_objections = await pending_objections(services, conn, who,
                                                               authority, day)
        entries, more_entries = await open_entries(services, conn, who, authority, day)
        leaving, more_leaving = await leaving_publication(services, conn, who, authority,
                                                          day, horizon)
        repairs, more_repairs = await pending_repairs(services, conn, who, authority)
        provisional = await provisional_of(services, conn, objections)
    truncated = {name for name, more in (("objections", more_objections),
                                         ("entries", more_entries), ("leaving", more_leaving),
                                         ("repairs", more_repairs)) if more}
    return Todo(
        today=day, horizon=horizon, objections=objections,
        listable=[e for e in entries if e.step == "list" and e.permit.allowed],
        to_notify=[e for e in entries if e.step == "notify" and e.permit.allowed],
        waiting=[e for e in entries if not e.permit.allowed],
        leaving=leaving, repairs=repairs,
        provisional=provisional,
        truncated=frozenset(truncated),
    )
