"""The public web page for 信用西寧: server-rendered HTML, no JavaScript.

Templates live in ``registry/templates/public_*.html`` and are rendered by Jinja2
with autoescaping on, so every value from the database is escaped. Lists are
keyset-paginated on the item's audit-log index, newest first, and read through
``selection`` like every public surface.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
from jinja2 import Environment, FileSystemLoader, select_autoescape

from registry.db.like import literal as like_literal
from registry.identifiers import normalise_identifier
from registry.publish.selection import (
    GRADE_NAMES,
    LISTING_ITEMS,
    LISTING_PUBLIC,
    LISTINGS_FROM,
    OBJECTION_MARK,
    PENALTY_ITEMS,
    RECORD_KIND_NAMES,
    RECORD_PUBLIC,
    RECORDS_FROM,
    SUBJECT_COLUMNS,
    SubjectView,
    listing_items,
    public_listing,
    public_record,
    record_items,
)
from registry.services import Services

SITE_TITLE: Final = "信用西寧 · 創業投資領域信用信息公示"
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
        "label": "嚴重失信主體名單",
        "code": who["credit_code"] or who["document_number"] or "",
        "published_on": row["listed_on"].isoformat(),
        "withdraw_on": row["planned_removal_on"],
        "last_day": _last_day(row["planned_removal_on"]),
    }


def _search_condition(q: str | None, first: int) -> tuple[str, list[Any]]:
    if not q:
        return "", []
    like = "%" + like_literal(q) + "%"
    return (f" AND (s.name LIKE ${first} OR s.credit_code = ${first + 1})", [like, normalise_identifier(q)])


async def list_page(
    services: Services, day: date, *, what: str, q: str | None, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of public penalties (``what='penalties'``), listings or both (search)."""
    bound = _END if before is None else before
    subjects = SubjectView(services, day)
    rows: list[tuple[str, asyncpg.Record]] = []
    search, params = _search_condition(q, 4)
    if what in ("penalties", "search"):
        kind = " AND r.record_kind = 'penalty'" if what == "penalties" else ""
        found = await services.pool.fetch(
            f"SELECT r.*, {SUBJECT_COLUMNS} FROM {RECORDS_FROM} WHERE {RECORD_PUBLIC}{kind}"  # noqa: S608 - fixed text
            f" AND r.log_index < $2{search} ORDER BY r.log_index DESC LIMIT $3",
            day, bound, PAGE_SIZE, *params,
        )
        rows += [("record", r) for r in found]
    if what in ("blacklist", "search"):
        found = await services.pool.fetch(
            f"SELECT b.*, {SUBJECT_COLUMNS} FROM {LISTINGS_FROM} WHERE {LISTING_PUBLIC}"  # noqa: S608 - fixed text
            f" AND b.log_index < $2{search} ORDER BY b.log_index DESC LIMIT $3",
            day, bound, PAGE_SIZE, *params,
        )
        rows += [("listing", r) for r in found]
    rows.sort(key=lambda pair: pair[1]["log_index"], reverse=True)
    rows = rows[:PAGE_SIZE]
    cards = [
        (_record_card if kind == "record" else _listing_card)(row, subjects)
        for kind, row in rows
        if subjects.visible(row)
    ]
    next_before = rows[-1][1]["log_index"] if len(rows) == PAGE_SIZE else None
    return cards, next_before


async def detail(services: Services, day: date, what: str, item_id: uuid.UUID) -> dict[str, Any] | None:
    """The template context of one public item, or None if it is not public today."""
    subjects = SubjectView(services, day)
    if what == "record":
        row = await public_record(services, item_id, day)
        if row is None or not subjects.visible(row):
            return None
        values = record_items(row, subjects)
        rows = [(title, values[key]) for key, title in PENALTY_ITEMS]
        kind = RECORD_KIND_NAMES.get(row["record_kind"], row["record_kind"])
        heading = f"{kind}:{values['cf_xdr_mc']}"
        published_on, end = row["publicity_start"], row["publicity_end"]
    else:
        row = await public_listing(services, item_id, day)
        if row is None or not subjects.visible(row):
            return None
        values = listing_items(row, subjects)
        rows = [(title, values[key]) for key, title in LISTING_ITEMS]
        heading = f"嚴重失信主體名單:{values['zt_mc']}"
        published_on, end = row["listed_on"], row["planned_removal_on"]
    size = await services.pool.fetchval("SELECT size FROM tlog_head")
    index = row["log_index"]
    proof = f"/log/proof/inclusion?index={index}&size={size}" if size and size > index else None
    return {
        "heading": heading,
        "mark": OBJECTION_MARK if row["under_objection"] else None,
        "rows": rows,
        "log_index": index,
        "proof_href": proof,
        "published_on": published_on.isoformat(),
        "last_day": _last_day(end),
    }
