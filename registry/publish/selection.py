"""The public shape of each item, and the public half of the disclosure gate.

Every public surface (feed, web page, exports) reads through this module. What is
shown, and when, is ``registry.domain.disclosure`` (the one statement of the rule
"in publication on day D", of the minors rule and of what each audience sees); this
module applies it to the public's queries:

- a credit record or blacklist entry is shown on day ``d`` when it is in
  publication on ``d`` (``RECORD_PUBLIC``/``LISTING_PUBLIC``, derived from
  ``disclosure.RECORDS``/``LISTINGS``). The date test is part of the query, so a
  record whose period ended is hidden at midnight even if the expiry job has not
  yet written ``record.expire``;
- nothing is shown about a practitioner who is a minor on ``d``
  (``disclosure.is_minor_on``: any stored GB 11643 number, whatever its document
  type);
- a practitioner's document number leaves only masked (``Policy.mask_*``,
  ``disclosure.masked_number``), and so does a GB 11643 number typed into an
  item's free text (``disclosure.mask_resident_ids`` over ``disclosure.FREE_TEXT``,
  applied by ``public_text`` in every item built here); addresses, contacts and the
  legal representative's document number are never stored with an item here and
  never leave. Organisations show their credit code and the legal representative's
  name;
- beside an item about an organisation, the organisations its fund-manager relations
  name on ``d`` (a firm's manager, a manager's firms: ``related_organisations``), by
  name and credit code. Never the practitioners affiliated to it: the public sees a
  person only in an item about that person, never as a third party of another's.

The SQL half runs in PostgreSQL; the minors half needs the decrypted number and
runs in Python (``SubjectView.visible``). A caller must apply both.

Day ``d`` is always the registry's calendar day (Xining time) of the moment asked.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Final

import asyncpg

from registry.domain.disclosure import (
    LISTINGS,
    NUMBER_LENGTH,
    RECORDS,
    XINING,
    day_of_sql,
    is_minor_on,
    mask_resident_ids,
    masked_number,
)
from registry.domain.disclosure import day_of as day_of  # the public surfaces' day
from registry.domain.policy import Policy
from registry.errors import InvalidInput
from registry.identifiers import DocumentType
from registry.publish.labels import (
    DOCUMENT_TYPE_NAMES,
    FUND_MANAGER,
    LISTING_COLUMNS,
    MANAGED_FIRM,
    OBJECTION_MARK,
    PENALTY_COLUMNS,
    PENALTY_TYPE_NAMES,
    SUBJECT_CATEGORY_NAMES,
)
from registry.services import Services

# Columns of the subject every public query joins in (never document_lookup).
SUBJECT_COLUMNS: Final = (
    "s.kind AS subject_kind, s.name AS subject_name, s.credit_code AS subject_credit_code,"
    " s.legal_representative AS subject_legal_representative,"
    " s.document_type AS subject_document_type, s.document_cipher AS subject_document_cipher,"
    " s.birth_date_cipher AS subject_birth_date_cipher"
)

# $1 is the day: in publication on it (registry.domain.disclosure).
RECORD_PUBLIC: Final = RECORDS.shown_sql("$1", "r")
LISTING_PUBLIC: Final = LISTINGS.shown_sql("$1", "b")
# The feed's withdrawals: publication ended by an audited change (expired, revoked,
# repaired; removed) after the item was shown on some day since it was recorded, so
# nothing recorded after its period ended, and no proposal, is ever announced.
RECORD_WITHDRAWN: Final = RECORDS.withdrawn_sql(day_of_sql("r.created_at"), "r")
LISTING_WITHDRAWN: Final = LISTINGS.withdrawn_sql(day_of_sql("b.created_at"), "b")

RECORDS_FROM: Final = "credit_records r JOIN subjects s ON s.id = r.subject_id"
LISTINGS_FROM: Final = "blacklist_entries b JOIN subjects s ON s.id = b.subject_id"


def start_of_day(day: date) -> datetime:
    """The UTC moment the Xining day ``day`` starts."""
    return datetime.combine(day, time(0), tzinfo=UTC) - XINING


# Beijing time, the time people read (Xining keeps it; China has no daylight saving).
BEIJING: Final = timezone(XINING, "UTC+8")


def beijing_time(moment: datetime) -> str:
    """An aware moment as people read it: RFC 3339 in Beijing time, to the second
    (``2026-03-02T10:00:00+08:00``)."""
    return moment.astimezone(BEIJING).replace(microsecond=0).isoformat()


def check_as_of(as_of: datetime | None, now: datetime) -> datetime:
    """The moment an export is taken at: default now, never in the future."""
    if as_of is None:
        return now
    if as_of.tzinfo is None:
        raise InvalidInput("as_of", "has no time zone", "an RFC 3339 timestamp such as 2026-03-02T10:00:00+08:00")
    if as_of > now:
        raise InvalidInput("as_of", "is in the future", f"a moment up to {now.isoformat()}")
    return as_of


# (subject, ciphertext, day, mask) -> (hidden as a minor, masked number). Holds no
# clear number; bounded so that memory stays flat over a million-row export.
_PRACTITIONERS: OrderedDict[tuple[uuid.UUID, bytes, date, str], tuple[bool, str | None]] = OrderedDict()
_PRACTITIONER_CACHE_SIZE: Final = 50_000


class SubjectView:
    """A subject as the public may see it, with the minors rule applied once per subject.

    Decrypting a number is the only way to know a practitioner's age; the clear
    number never leaves this object (only ``masked``).
    """

    def __init__(self, services: Services, day: date) -> None:
        self._services = services
        self._day = day
        self._cache: dict[uuid.UUID, tuple[bool, str | None]] = {}

    def _practitioner(self, subject_id: uuid.UUID, row: asyncpg.Record) -> tuple[bool, str | None]:
        cached = self._cache.get(subject_id)
        if cached is not None:
            return cached
        # Across requests: keyed by the ciphertext too, so a changed number is a miss.
        born_blob = row["subject_birth_date_cipher"]
        shared_key = (subject_id, bytes(row["subject_document_cipher"]) + bytes(born_blob or b""),
                      self._day, self._services.policy.mask_char)
        shared = _PRACTITIONERS.get(shared_key)
        if shared is not None:
            self._cache[subject_id] = shared
            return shared
        doc_type = row["subject_document_type"]
        number = self._services.pii.decrypt(doc_type, bytes(row["subject_document_cipher"]))
        born = (None if born_blob is None
                else self._services.pii.decrypt_birth_date(doc_type, bytes(born_blob)))
        hidden = is_minor_on(number, self._day, born)
        masked = masked_number(number, self._services.policy)
        result = (hidden, masked)
        self._cache[subject_id] = result
        _PRACTITIONERS[shared_key] = result
        if len(_PRACTITIONERS) > _PRACTITIONER_CACHE_SIZE:
            _PRACTITIONERS.popitem(last=False)
        return result

    @property
    def policy(self) -> Policy:
        return self._services.policy

    def visible(self, row: asyncpg.Record) -> bool:
        if row["subject_kind"] != "practitioner":
            return True
        return not self._practitioner(row["subject_id"], row)[0]

    def identity(self, row: asyncpg.Record) -> dict[str, str | None]:
        """Name, category, credit code or masked document: what identifies the subject publicly."""
        person = row["subject_kind"] == "practitioner"
        masked = self._practitioner(row["subject_id"], row)[1] if person else None
        doc_type = row["subject_document_type"]
        return {
            "name": row["subject_name"],
            "category": SUBJECT_CATEGORY_NAMES[row["subject_kind"]],
            "credit_code": None if person else row["subject_credit_code"],
            "legal_representative": None if person else row["subject_legal_representative"],
            "document_type": DOCUMENT_TYPE_NAMES[DocumentType(doc_type)] if person and doc_type else None,
            "document_number": masked,
        }


def public_text(value: str | None, policy: Policy) -> str | None:
    """A free-text column's value (``disclosure.FREE_TEXT``) as the public reads it: its
    GB 11643 numbers masked (``disclosure.mask_resident_ids``). Every public item reads
    its free text through this (``record_values``, ``listing_values``,
    ``withdrawal_entry``; tests/test_free_text_masking.py puts a number in every such
    column)."""
    if value is None or len(value) < NUMBER_LENGTH:  # most values: a call saved per column
        return value
    return mask_resident_ids(value, policy)[0]


def _remarks(row: asyncpg.Record, own: str | None) -> str | None:
    parts = [OBJECTION_MARK] if row["under_objection"] else []
    if own:
        parts.append(own)
    return ";".join(parts) or None


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def record_values(row: asyncpg.Record, subjects: SubjectView) -> list[str | None]:
    """The 雙公示 items of a public credit record, in the standard's order (``PENALTY_COLUMNS``)."""
    who = subjects.identity(row)
    policy = subjects.policy
    licence = " ".join(
        x for x in (public_text(row["licence_name"], policy),
                    public_text(row["licence_number"], policy)) if x
    ) or None
    return [
        who["name"],
        who["category"],
        who["credit_code"],
        None,  # 工商注册号, 组织机构代码, 税务登记号, 事业单位证书号, 社会组织登记证号:
        None,  # superseded by the unified social credit code and not stored
        None,
        None,
        None,
        who["legal_representative"],
        None,
        None,  # the representative's document number: personal data, never published
        who["document_type"],
        who["document_number"],
        row["decision_number"],
        public_text(row["violation_type"], policy),
        public_text(row["facts"], policy),
        public_text(row["legal_basis"], policy),
        ";".join(PENALTY_TYPE_NAMES.get(t, t) for t in row["penalty_types"]) or None,
        public_text(row["penalty_content"], policy),
        _amount(row["fine_amount"]),
        _amount(row["confiscation_amount"]),
        licence,
        _day(row["decision_date"]),
        _day(row["valid_until"]),
        _day(row["publicity_deadline"]),
        row["authority_name"],
        row["authority_code"],
        row["source_name"],
        row["source_code"],
        _remarks(row, public_text(row["remarks"], policy)),
    ]


_PENALTY_KEYS: Final = tuple(key for key, _ in PENALTY_COLUMNS)


def record_items(row: asyncpg.Record, subjects: SubjectView) -> dict[str, str | None]:
    """The same items keyed by column code."""
    return dict(zip(_PENALTY_KEYS, record_values(row, subjects), strict=True))


def listing_values(row: asyncpg.Record, subjects: SubjectView) -> list[str | None]:
    """A public listing's items in ``LISTING_COLUMNS`` order."""
    who = subjects.identity(row)
    policy = subjects.policy
    return [
        who["name"],
        who["category"],
        who["credit_code"],
        who["document_type"],
        who["document_number"],
        public_text(row["criterion"], policy),
        public_text(row["legal_basis"], policy),
        _day(row["listed_on"]),
        _day(row["planned_removal_on"]),
        _remarks(row, None),
    ]


def listing_items(row: asyncpg.Record, subjects: SubjectView) -> dict[str, str | None]:
    return dict(zip((key for key, _ in LISTING_COLUMNS), listing_values(row, subjects), strict=True))


def record_entry(row: asyncpg.Record, subjects: SubjectView) -> dict[str, Any]:
    """A public record as one JSON object (feed entries and JSON exports share it)."""
    return {
        "object": f"credit_record/{row['id']}",
        "kind": row["record_kind"],
        "grade": row["grade"],
        "log_index": row["log_index"],
        "published_on": _day(row["publicity_start"]),
        "withdraw_on": _day(row["publicity_end"]),
        "under_objection": row["under_objection"],
        "objection_mark": OBJECTION_MARK if row["under_objection"] else None,
        "items": record_items(row, subjects),
    }


def listing_entry(row: asyncpg.Record, subjects: SubjectView) -> dict[str, Any]:
    return {
        "object": f"blacklist_entry/{row['id']}",
        "kind": "blacklist",
        "grade": "serious",
        "log_index": row["log_index"],
        "published_on": _day(row["listed_on"]),
        "withdraw_on": _day(row["planned_removal_on"]),
        "under_objection": row["under_objection"],
        "objection_mark": OBJECTION_MARK if row["under_objection"] else None,
        "items": listing_items(row, subjects),
    }


def withdrawal_entry(row: asyncpg.Record, object_type: str, policy: Policy) -> dict[str, Any]:
    """The feed's withdrawal of an item: the object, the day and the reason, nothing else."""
    if object_type == "credit_record":
        on, reason = row["publication_ended_on"], row["status_reason"] or row["status"]
    else:
        on, reason = row["removed_on"], row["removal_reason"] or "removed"
    return {
        "object": f"{object_type}/{row['id']}",
        "log_index": row["log_index"],
        "withdrawn_on": on.isoformat() if on else None,
        "reason": public_text(reason, policy),
    }


EntryMaker = Callable[[asyncpg.Record, SubjectView], dict[str, Any]]


async def public_record(services: Services, record_id: uuid.UUID, day: date) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await services.pool.fetchrow(
        f"SELECT r.*, {SUBJECT_COLUMNS} FROM {RECORDS_FROM}"  # noqa: S608 - fixed text
        f" WHERE {RECORD_PUBLIC} AND r.id = $2",
        day,
        record_id,
    )
    return row


async def public_listing(services: Services, entry_id: uuid.UUID, day: date) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await services.pool.fetchrow(
        f"SELECT b.*, {SUBJECT_COLUMNS} FROM {LISTINGS_FROM}"  # noqa: S608 - fixed text
        f" WHERE {LISTING_PUBLIC} AND b.id = $2",
        day,
        entry_id,
    )
    return row


# The organisation on the other side of a fund-manager relation, by the kind of the
# subject an item is about: (label, the other side's column, the subject's column).
_COUNTERPARTS: Final = {
    "vc_firm": (FUND_MANAGER, "manager_id", "firm_id"),
    "vc_manager": (MANAGED_FIRM, "firm_id", "manager_id"),
}


async def related_organisations(
    services: Services, subject_id: uuid.UUID, kind: str, day: date
) -> list[tuple[str, str]]:
    """(label, "name（credit code）") of each organisation the subject's fund-manager
    relations name on ``day`` (both days of a relation count): nothing for a practitioner."""
    if kind not in _COUNTERPARTS:
        return []
    label, other, mine = _COUNTERPARTS[kind]
    rows = await services.pool.fetch(
        f"SELECT o.name, o.credit_code FROM fund_managers f JOIN subjects o ON o.id = f.{other}"  # noqa: S608 - fixed names
        f" WHERE f.{mine} = $1 AND f.valid_from <= $2 AND (f.valid_to IS NULL OR $2 <= f.valid_to)"
        " ORDER BY f.valid_from, f.id",
        subject_id,
        day,
    )
    return [(label, f"{r['name']}（{r['credit_code']}）") for r in rows]
