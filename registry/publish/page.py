"""The public web page for 信用西宁: server-rendered HTML, no JavaScript.

Templates live in ``registry/templates/public_*.html`` and are rendered by Jinja2
with autoescaping on, so every value from the database is escaped. Lists are
keyset-paginated on the item's audit-log index, newest first, and read through
``selection`` like every public surface.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
from jinja2 import Environment, FileSystemLoader, select_autoescape

from registry.db.types import Conn
from registry.publish.labels import (
    BLACKLIST,
    GRADE_NAMES,
    LISTING_COLUMNS,
    OBJECTION_MARK,
    PENALTY_COLUMNS,
    RECORD_KIND_NAMES,
    RELATED_ORGANISATIONS,
    SITE_TITLE,
)
from registry.publish.selection import (
    LISTING_PUBLIC,
    LISTINGS_FROM,
    RECORD_PUBLIC,
    RECORDS_FROM,
    SUBJECT_COLUMNS,
    SubjectView,
    listing_items,
    public_listing,
    public_record,
    record_items,
    related_organisations,
)
from registry.search import matcher, record_condition, search_key, subject_condition
from registry.services import Services

PAGE_SIZE: Final = 20
_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
_ENV = Environment(
    loader=FileSystemLoader(str(_TEMPLATES)),
    autoescape=select_autoescape(["html"], default=True),
    auto_reload=False,
)
_END = 2**63 - 1


def render(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(site_title=SITE_TITLE, **context)


def _last_day(end: date | None) -> str | None:
    return (end - timedelta(days=1)).isoformat() if end else None


def _record_card(row: asyncpg.Record, subjects: SubjectView) -> dict[str, Any]:
    who = subjects.identity(row)
    kind = RECORD_KIND_NAMES.get(row["record_kind"], row["record_kind"])
    grade = GRADE_NAMES.get(row["grade"] or "", "")
    return {
        "href": f"/public/records/{row['id']}",
        "name": who["name"],
        "mark": OBJECTION_MARK if row["under_objection"] else None,
        "label": f"{kind}{('·' + grade) if grade else ''} {row['decision_number'] or ''}".strip(),
        "code": who["credit_code"] or who["document_number"] or "",
        "published_on": row["publicity_start"].isoformat(),
        "withdraw_on": row["publicity_end"],
        "last_day": _last_day(row["publicity_end"]),
    }


def _listing_card(row: asyncpg.Record, subjects: SubjectView) -> dict[str, Any]:
    who = subjects.identity(row)
    return {
        "href": f"/public/blacklist/{row['id']}",
        "name": who["name"],
        "mark": OBJECTION_MARK if row["under_objection"] else None,
        "label": BLACKLIST,
        "code": who["credit_code"] or who["document_number"] or "",
        "published_on": row["listed_on"].isoformat(),
        "withdraw_on": row["planned_removal_on"],
        "last_day": _last_day(row["planned_removal_on"]),
    }


# A search first counts its matches among this many subjects in id order and this many
# records in subject order (ids are random, uuid4: fair samples; the records' numbers read
# from the subject index alone, schema/0017), then reads each list one of two ways
# (``_search_condition``).
# Either is a few milliseconds at 100,000 subjects where it is used; walking for a rare
# subject whose items lie far back, or gathering the items of half the subjects, would
# take a second.
_SAMPLE: Final = 1000
# Shares of the sample: below _RARE, gather; from _COMMON on, only walk.
_RARE: Final = 0.01
_COMMON: Final = 0.03
# How many items a walk looks through before it ends the page there, with a link to go on:
# a term of very many subjects whose items all lie far back (an early year in the decision
# numbers) would otherwise walk every later item.
_LOOK_THROUGH: Final = 4000
# A term between _RARE and _COMMON that the index can gather for first walks only this
# many items, to see whether its items lie among the newest at all: an old decision
# number's do not, and a full first window (thousands) before gathering was the slowest
# search of the benchmark. One in a hundred subjects still puts a few items in it.
_PROBE: Final = 600
# The search's two lists: kind, table, alias, public rule (the joins of RECORDS_FROM and
# LISTINGS_FROM), and whether an item is named by a decision number of its own.
_SEARCHED: Final = (
    ("record", "credit_records", "r", RECORD_PUBLIC, True),
    ("listing", "blacklist_entries", "b", LISTING_PUBLIC, False),
)


def _found(names: Callable[[str | None], bool], kind: str, row: asyncpg.Record) -> bool:
    """Whether the search (``names``: registry/search.py ``matcher``) names the item itself:
    its subject's name or credit code, or (a record) its own decision number. Never by the
    numbers of the subject's other records, which may be out of publication: showing its
    items for such a number would tell the public which subject a revoked or expired
    decision was about. The statements below select by the same rule in SQL
    (``subject_condition``, ``record_condition``); this is its exact form, also for rows
    not yet folded, which SQL finds as typed."""
    return (
        names(row["subject_name"])
        or names(row["subject_credit_code"])
        or (kind == "record" and names(row["decision_number"]))
    )


def _gathered(table: str, a: str, public: str, condition: str, own: str | None) -> str:
    """The newest ``$3`` public items below ``$2`` (day ``$1``) of the subjects ``condition``
    finds, and (a record) those its own number ``own`` finds: the subjects through the
    trigram index, each one's items through the subject index (LATERAL, kept from being
    flattened by OFFSET 0: a nested loop, where the planner would read every item for a
    hash join), the records by number through their own trigram index, then sorted.
    Fenced off as materialized CTEs: the planner, counting on matches spread evenly, would
    rather walk the newest items, and meet items that lie far back (those of old decision
    numbers) only after all the others.
    """
    # The records a number finds, through the trigram index alone (OFFSET 0: the planner
    # would intersect it with an index of the public rule's days, which holds most items).
    by_number = (
        f" UNION SELECT {a}.id, {a}.log_index FROM (SELECT * FROM {table} {a} WHERE {own}"  # noqa: S608 - fixed text
        f" OFFSET 0) AS {a} WHERE {public} AND {a}.log_index < $2" if own else ""
    )
    return (
        f"WITH found AS MATERIALIZED (SELECT s.id FROM subjects s WHERE {condition}),"  # noqa: S608 - fixed text
        " theirs AS MATERIALIZED (SELECT item.* FROM found CROSS JOIN LATERAL"
        f" (SELECT {a}.id, {a}.log_index FROM {table} {a} WHERE {a}.subject_id = found.id"
        f" AND {public} AND {a}.log_index < $2 OFFSET 0) AS item{by_number})"
        f" SELECT {a}.*, {SUBJECT_COLUMNS} FROM (SELECT id FROM theirs ORDER BY log_index DESC"
        f" LIMIT $3) AS newest JOIN {table} {a} ON {a}.id = newest.id"
        f" JOIN subjects s ON s.id = {a}.subject_id ORDER BY {a}.log_index DESC"
    )


def _walked(table: str, a: str, public: str, condition: str, keep: str, own: str | None) -> str:
    """The window of the newest ``$3`` public items below ``$2`` on day ``$1`` (its lowest
    log index and its size, on every row), and the newest ``keep`` of its items whose
    subject ``condition`` finds or (a record) whose own ``search_number`` ``own`` (on
    ``newest``) finds (none: one row of NULLs), newest first, with how many items of the
    window lie at or above the last of them (``through_kept``: where the window was looked
    through to when ``keep`` cut it short). Read once, small columns first, from the
    covering index of the public items (the number too: schema/0017_record_search.sql);
    each subject looked up by its id (once, whichever of its items asks: the lookup
    depends on nothing else) and only the items kept read whole (LATERAL with OFFSET 0,
    each a nested loop: the planner would rather collect the subjects through the trigram
    index, which for a term of digits is most of them, and the items by reading the whole
    table). A term common among the newest items (the digits of this year's decision
    numbers) keeps a page's worth of a window of hundreds: reading all of them whole was
    most of its time."""
    number = f", {a}.search_number" if own else ""

    def their_subjects(named: str) -> str:
        return (
            "SELECT newest.id AS kept_id, newest.log_index AS kept_index, theirs.* FROM newest"  # noqa: S608 - fixed text
            f" CROSS JOIN LATERAL (SELECT {SUBJECT_COLUMNS} FROM subjects s"
            f" WHERE s.id = newest.subject_id{named} OFFSET 0) AS theirs"
        )

    # Each item's subject is looked up by its id alone, so a subject of several items is
    # read once (Memoize). The records their own number names are a second stream, merged
    # with the first, each item once (DISTINCT ON the log index: both come newest first).
    kept = their_subjects(f" AND {condition}")
    if own:
        kept = (
            f"SELECT DISTINCT ON (kept_index) * FROM ({kept} UNION ALL"  # noqa: S608 - fixed text
            f" {their_subjects('')} WHERE {own}) AS each"
        )
    return (
        f"WITH newest AS MATERIALIZED (SELECT {a}.id, {a}.log_index, {a}.subject_id{number}"  # noqa: S608 - fixed text
        f" FROM {table} {a} WHERE {public} AND {a}.log_index < $2"
        f" ORDER BY {a}.log_index DESC LIMIT $3),"
        f" kept AS MATERIALIZED ({kept} ORDER BY kept_index DESC LIMIT {keep})"
        " SELECT edge.lowest, edge.items, edge.through_kept, found.* FROM (SELECT"
        " min(log_index) AS lowest, count(*) AS items, count(*) FILTER (WHERE log_index >="
        " (SELECT min(kept_index) FROM kept)) AS through_kept FROM newest) AS edge"
        f" LEFT JOIN LATERAL (SELECT {a}.*, kept.* FROM kept CROSS JOIN LATERAL"
        f" (SELECT * FROM {table} {a} WHERE {a}.id = kept.kept_id OFFSET 0) AS {a}"
        f" ORDER BY {a}.log_index DESC) AS found ON true"
    )


# A search's statements are planned once on each connection (generic plans), not for each
# term: the CTE fences and LATERAL joins fix their shape, so a plan made for the term buys
# nothing, and making it was a third of a search's time in the database (measured at
# 100,000 subjects over the benchmark's 400 terms: 6.7 ms a search with a plan per term,
# 4.3 ms with generic plans, the slowest 1 % 21.7 against 17.5 ms). SET LOCAL: only these
# statements, only this transaction.
_GENERIC_PLANS: Final = "SET LOCAL plan_cache_mode = force_generic_plan"


async def _search(
    services: Services, q: str, day: date, bound: int
) -> tuple[list[tuple[str, asyncpg.Record]], int | None]:
    """``_search_condition`` on one connection, in one read-only transaction (one snapshot
    for all its statements), with generic plans."""
    async with services.pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(_GENERIC_PLANS)
        return await _search_condition(conn, q, day, bound)


async def _search_condition(
    conn: Conn, q: str, day: date, bound: int
) -> tuple[list[tuple[str, asyncpg.Record]], int | None]:
    """The newest public items (at most PAGE_SIZE of each list) below ``bound`` that ``q``
    names (registry/search.py, ``_found``), newest first; and, if the search stopped
    looking before the end, the log index down to which it looked.

    Each list by the share of its items the term names, from the samples: a listing's by
    the share of subjects it finds by name or code, a record's by that plus the share of
    records it finds by number. A term naming few items (below _RARE) gathers them
    (``_gathered``). A commoner one walks the newest items in windows of a known size
    (``_walked``): the first as wide as the share says a page needs, the next as wide as
    what was kept so far says, keeping those it names and ending the page after
    _LOOK_THROUGH items; unless it is also below _COMMON and the first window held not a
    quarter of what the share promised (its items lie further back, as those of an old
    decision number do): then it gathers after all.
    """
    condition, params = subject_condition("s", 1, q)
    [sample] = await conn.fetch(
        f"SELECT (SELECT count(*) FROM (SELECT * FROM subjects ORDER BY id LIMIT {_SAMPLE})"  # noqa: S608 - fixed text
        f" AS s WHERE {condition}) AS subjects, (SELECT count(*) FROM (SELECT search_number"
        f" FROM credit_records ORDER BY subject_id LIMIT {_SAMPLE}) AS r"
        f" WHERE {record_condition('r', 1, unfolded='kept')}) AS records",
        *params,
    )
    by_subject = sample["subjects"] / _SAMPLE
    by_number = sample["records"] / _SAMPLE
    # Fewer than three letters and digits make no trigram: the index would read all of
    # itself, so such a term (common anyway) is only ever walked for.
    indexed = len(search_key(q)) >= 3
    names = matcher(q)
    condition, params = subject_condition("s", 4, q)
    rows: list[tuple[str, asyncpg.Record]] = []
    looked_to: int | None = None
    for kind, table, a, public, numbered in _SEARCHED:
        share = min(1.0, by_subject + by_number) if numbered else by_subject
        gather = share < _RARE and indexed
        # Room for items the search then drops (rows not yet folded, kept as candidates).
        size = 3 * PAGE_SIZE if gather else min(
            _LOOK_THROUGH, max(5 * PAGE_SIZE, int(1.5 * PAGE_SIZE / max(share, 1 / _SAMPLE))))
        if not gather and indexed and share < _COMMON:
            size = min(size, _PROBE)
        below, looked = bound, 0
        found: list[asyncpg.Record] = []
        while True:
            seen = size  # how many items this step looked through
            if gather:
                own = record_condition(a, 4) if numbered else None
                batch = await conn.fetch(
                    _gathered(table, a, public, condition, own), day, below, size, *params)
                lowest = batch[-1]["log_index"] if batch else None
                full = len(batch) == size
            else:
                # Twice what the page still needs: items the search then drops are few.
                keep = 2 * (PAGE_SIZE - len(found))
                own = record_condition("newest", 4, unfolded="kept") if numbered else None
                walked = await conn.fetch(
                    _walked(table, a, public, condition, f"${4 + len(params)}", own),
                    day, below, size, *params, keep)
                lowest, full = walked[0]["lowest"], walked[0]["items"] == size
                batch = [row for row in walked if row["id"] is not None]
                if len(batch) == keep:  # looked through only down to the last one kept
                    lowest, full = batch[-1]["log_index"], True
                    seen = walked[0]["through_kept"]
            for row in batch:
                if _found(names, kind, row):
                    found.append(row)
                    if len(found) == PAGE_SIZE:
                        break
            if len(found) == PAGE_SIZE or not full or lowest is None:
                break
            if (not gather and not looked and indexed and share < _COMMON
                    and len(found) < share * size / 4):
                gather, below, size, found = True, bound, 3 * PAGE_SIZE, []
                continue
            below, looked = lowest, looked + seen
            if looked >= _LOOK_THROUGH:  # looked through the items down to ``below``
                looked_to = below if looked_to is None else max(looked_to, below)
                break
            # As many more as the share kept so far says the page needs, and a half again.
            wanted = (PAGE_SIZE - len(found)) * looked // max(len(found), 1)
            size = min(_LOOK_THROUGH - looked, max(PAGE_SIZE, wanted * 3 // 2))
        rows += [(kind, row) for row in found]
    return rows, looked_to


async def list_page(
    services: Services, day: date, *, what: str, q: str | None, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of public penalties (``what='penalties'``), listings or both (search)."""
    bound = _END if before is None else before
    subjects = SubjectView(services, day)
    rows: list[tuple[str, asyncpg.Record]] = []
    # Items below ``looked_to`` were not all looked through (a search that stopped early).
    looked_to: int | None = None
    if what == "search" and q:
        rows, looked_to = await _search(services, q, day, bound)
    if what == "penalties":
        found = await services.pool.fetch(
            f"SELECT r.*, {SUBJECT_COLUMNS} FROM {RECORDS_FROM} WHERE {RECORD_PUBLIC}"  # noqa: S608 - fixed text
            " AND r.record_kind = 'penalty' AND r.log_index < $2 ORDER BY r.log_index DESC LIMIT $3",
            day, bound, PAGE_SIZE,
        )
        rows += [("record", r) for r in found]
    if what == "blacklist":
        found = await services.pool.fetch(
            f"SELECT b.*, {SUBJECT_COLUMNS} FROM {LISTINGS_FROM} WHERE {LISTING_PUBLIC}"  # noqa: S608 - fixed text
            " AND b.log_index < $2 ORDER BY b.log_index DESC LIMIT $3",
            day, bound, PAGE_SIZE,
        )
        rows += [("listing", r) for r in found]
    rows.sort(key=lambda pair: pair[1]["log_index"], reverse=True)
    if looked_to is not None:  # only where both lists were looked through
        rows = [pair for pair in rows if pair[1]["log_index"] >= looked_to]
    rows = rows[:PAGE_SIZE]
    cards = [
        (_record_card if kind == "record" else _listing_card)(row, subjects)
        for kind, row in rows
        if subjects.visible(row)
    ]
    next_before = rows[-1][1]["log_index"] if len(rows) == PAGE_SIZE else looked_to
    return cards, next_before


async def detail(services: Services, day: date, what: str, item_id: uuid.UUID) -> dict[str, Any] | None:
    """The template context of one public item, or None if it is not public today."""
    subjects = SubjectView(services, day)
    if what == "record":
        row = await public_record(services, item_id, day)
        if row is None or not subjects.visible(row):
            return None
        values = record_items(row, subjects)
        rows = [(title, values[key]) for key, title in PENALTY_COLUMNS]
        kind = RECORD_KIND_NAMES.get(row["record_kind"], row["record_kind"])
        heading = f"{kind}：{values['cf_xdr_mc']}"
        published_on, end = row["publicity_start"], row["publicity_end"]
    else:
        row = await public_listing(services, item_id, day)
        if row is None or not subjects.visible(row):
            return None
        values = listing_items(row, subjects)
        rows = [(title, values[key]) for key, title in LISTING_COLUMNS]
        heading = f"{BLACKLIST}：{values['zt_mc']}"
        published_on, end = row["listed_on"], row["planned_removal_on"]
    related = await related_organisations(services, row["subject_id"], row["subject_kind"], day)
    size = await services.pool.fetchval("SELECT size FROM tlog_head")
    index = row["log_index"]
    proof = f"/log/proof/inclusion?index={index}&size={size}" if size and size > index else None
    return {
        "heading": heading,
        "mark": OBJECTION_MARK if row["under_objection"] else None,
        "rows": rows,
        "related_heading": RELATED_ORGANISATIONS,
        "related": related,
        "log_index": index,
        "proof_href": proof,
        "published_on": published_on.isoformat(),
        "last_day": _last_day(end),
    }
