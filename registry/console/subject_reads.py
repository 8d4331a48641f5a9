"""What a subject's console page shows, gathered from the use cases' own reads.

Everything here reads; nothing writes but the access record a clear document number
requires (``account_clear_read``), which is the regulators' API's rule: a practitioner's
number is shown in the clear only after the read is recorded in their access records,
and the page is refused (503) if it cannot be. Lists are the use cases' listings
(``registry.credit.*``, ``registry.fund_managers``, ``registry.subjects``); the two
plain reads below (an organisation's affiliated practitioners, the versions of a
practitioner's affiliations in the log) have no use case because nothing else needs them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

from registry import fund_managers, subjects
from registry.bureau import access
from registry.bureau.runtime import bureau_runtime
from registry.credit import blacklist, history, objections, records, repairs
from registry.db.tlog_store import read_head
from registry.services import Services
from registry.tlog.leaf import decode_leaf
from registry.tokens import Principal

# How many of each list a page shows; a subject with more says so and the API lists all.
SHOWN: Final = 100
_BEIJING: Final = timedelta(hours=8)


def beijing(moment: datetime | str) -> str:
    """A moment as an official reads it: Beijing time, ``YYYY-MM-DD HH:MM``."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return (moment.astimezone(UTC) + _BEIJING).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class HistoryLine:
    """One audited version: its leaf's index, when, who, what, and where a reader checks it."""

    log_index: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    # /log/proof/inclusion in the current tree, once the leaf is in a signed checkpoint.
    proof_href: str | None
    entry_href: str | None


@dataclass
class SubjectDetail:
    row: asyncpg.Record
    document_number: str | None = None
    birth_date: str | None = None
    affiliations: list[asyncpg.Record] = field(default_factory=list)
    managers: list[asyncpg.Record] = field(default_factory=list)  # a firm's
    firms: list[asyncpg.Record] = field(default_factory=list)  # a manager's
    practitioners: list[dict[str, Any]] = field(default_factory=list)  # an organisation's
    records: list[asyncpg.Record] = field(default_factory=list)
    entries: list[asyncpg.Record] = field(default_factory=list)
    objections: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[asyncpg.Record] = field(default_factory=list)
    history: list[HistoryLine] = field(default_factory=list)
    accesses: list[asyncpg.Record] = field(default_factory=list)
    # Lists cut at SHOWN, by name (records, entries, …).
    cut: set[str] = field(default_factory=set)
    tree_size: int = 0


async def account_clear_read(services: Services, who: Principal, subject_id: uuid.UUID,
                             purpose: str) -> None:
    """Record that ``who`` reads this practitioner's clear number, as the API's read does
    (channel ``regulator_read``); returns once durable, else raises ``Unavailable``."""
    read = access.Access(who=who, at=services.clock.now(), purpose=purpose,
                         channel="regulator_read", subject_id=subject_id)
    await bureau_runtime(services).recorder.record([read])


_PRACTITIONERS = """
SELECT a.id, a.practitioner_id, a.role, a.valid_from, a.valid_to, a.log_index,
       p.name, p.document_type, p.document_cipher
FROM affiliations a JOIN subjects p ON p.id = a.practitioner_id
WHERE a.organisation_id = $1 ORDER BY a.valid_from, a.id LIMIT $2"""

# Every version of the practitioner's affiliations (object_type 'affiliation'), which the
# credit history leaves out: it follows the subject's credit objects and relations between
# organisations.
_AFFILIATION_VERSIONS = """
SELECT o.object_type, o.object_id, o.log_index, l.leaf
FROM affiliations a
JOIN tlog_objects o ON o.object_type = 'affiliation' AND o.object_id = a.id::text
JOIN tlog_leaves l ON l.idx = o.log_index
WHERE a.practitioner_id = $1"""


def _line(object_type: str, object_id: str, index: int, leaf_bytes: bytes,
          size: int) -> HistoryLine:
    leaf = decode_leaf(leaf_bytes)
    included = size > index
    return HistoryLine(
        log_index=index, at=beijing(leaf.time), actor=leaf.actor, action=leaf.action,
        object_type=object_type, object_id=object_id,
        proof_href=f"/log/proof/inclusion?index={index}&size={size}" if included else None,
        entry_href=f"/log/entries?start={index}&end={index + 1}" if included else None,
    )


def _cut(detail: SubjectDetail, name: str, rows: list[Any]) -> list[Any]:
    if len(rows) > SHOWN:
        detail.cut.add(name)
    return rows[:SHOWN]


async def subject_detail(services: Services, subject_id: uuid.UUID, *, clear_number: bool,
                         accesses_after: int | None = None) -> SubjectDetail:
    """The page's content; 404 (``NotFound``) for an unknown subject. ``clear_number``: the
    caller has recorded the read (``account_clear_read``) and may show the number."""
    row = await subjects.get_subject(services, subject_id)
    detail = SubjectDetail(row=row)
    kind = row["kind"]
    if kind == "practitioner":
        detail.document_number = subjects.document_number_for(services, row, clear=clear_number)
        if clear_number:
            born = subjects.birth_date_of(services, row)
            detail.birth_date = born.isoformat() if born else None
        detail.affiliations = await subjects.affiliations_of(services, subject_id)
    else:
        relations = await fund_managers.relations_of(services, subject_id)
        detail.managers = [r for r in relations if r["firm_id"] == subject_id]
        detail.firms = [r for r in relations if r["manager_id"] == subject_id]
        people = await services.pool.fetch(_PRACTITIONERS, subject_id, SHOWN + 1)
        # Masked, as the API lists subjects: a clear number is one person's page at a time.
        detail.practitioners = _cut(detail, "practitioners", [
            {**dict(p), "document_number": subjects.document_number_for(services, p, clear=False)}
            for p in people
        ])
    more = SHOWN + 1
    detail.records = _cut(detail, "records", await records.list_records(
        services, subject_id=subject_id, authority_code=None, grade=None, status=None,
        date_from=None, date_to=None, after=None, limit=more))
    detail.entries = _cut(detail, "entries", await blacklist.list_entries(
        services, state=None, subject_id=subject_id, after=None, limit=more))
    detail.objections = _cut(detail, "objections", await objections.list_objections(
        services, state=None, overdue=False, subject_id=subject_id, after=None, limit=more))
    detail.repairs = _cut(detail, "repairs", await repairs.list_repairs(
        services, state=None, subject_id=subject_id, after=None, limit=more))

    head = await read_head(services.pool)
    detail.tree_size = size = head.size if head else 0
    own = await subjects.subject_history(services, subject_id)
    lines = [_line("subject", str(subject_id), r["log_index"], bytes(r["leaf"]), size)
             for r in own]
    lines += [_line(r["object_type"], r["object_id"], r["log_index"], bytes(r["leaf"]), size)
              for r in await history.subject_credit_history(services, subject_id)]
    if kind == "practitioner":
        lines += [_line(r["object_type"], r["object_id"], r["log_index"], bytes(r["leaf"]), size)
                  for r in await services.pool.fetch(_AFFILIATION_VERSIONS, subject_id)]
    # Newest first: what changed last is what an official looks for.
    detail.history = sorted(lines, key=lambda line: line.log_index, reverse=True)

    if kind == "practitioner":
        # Oldest first, a page at a time after ``accesses_after``, as the API lists them.
        detail.accesses = _cut(detail, "accesses", await access.list_for_subject(
            services.pool, subject_id, after=accesses_after, limit=more))
    return detail
