"""The bureau change feed: the audit log, read in index order, projected to the bureau view.

Why build it on the log: leaf indexes are gap-free and committed in index order
(registry/db/audit.py), so "every leaf with an index in [n, head.size)" is a set
that never changes once read and never misses a late committer. A cursor holding
the next index to read therefore never skips or repeats, survives restarts, and
needs no extra bookkeeping on the write path. Only leaves below the integrated
head (``tlog_head.size``) are served, so every item is already provable with an
inclusion proof against a signed checkpoint.

Each leaf whose object is a subject, credit record, blacklist entry, affiliation or
fund-manager relation is projected from the version body stored with it, by the disclosure
gate (registry/domain/disclosure.py) on the day of the read; leaves of other
objects (tokens, objections, repairs …) only advance the cursor, and so does a
leaf that yields no item:

- about a minor (the subject as it is now, on the day of the read): no item at
  all, not even an id;
- a subject: ``upsert`` of the bureau projection. A practitioner's version after
  the first (a correction, or the ``subject.came_of_age`` the expiry pass writes
  when a person recorded as a minor turns 18: registry/coming_of_age.py) is
  followed by ``upsert`` items, with the same ``log_index``, for the person's
  current affiliations, records and listings in publication, built as the profile
  builds them: a bureau that got nothing while the person was a minor then has
  what the profile shows;
- an affiliation: ``upsert``;
- a fund-manager relation (``fund_manager``): ``upsert``, under the firm's
  ``subject_id``; it belongs to the manager's profile too (``manager_id``). A profile's
  ``managers``, ``firms`` and ``practitioners`` pair such relations (and affiliations
  naming a manager) with the subject on the other side, which the feed brings as that
  subject's own items: a replay joins them, as the profile does;
- a credit record or blacklist entry: ``upsert`` when this version is in
  publication today; ``delete`` when it is not, but this or an earlier version
  of it could have been in publication on some day on or after it was written
  (so a bureau may hold it: publicity ended, revoked, repaired, removed); no item
  when no version ever could — a proposal, a notice, a withdrawn proposal, a
  record recorded after its period ended or never published — so what was never
  disclosed never reaches a bureau, not even as an id. Earlier versions are read
  with one statement per page.

A page reads up to ``limit`` leaves, so it may hold more items (re-announced
profiles) or fewer (leaves without one). Applying the items in order to an empty
copy yields the profiles as ``GET /v1/bureau/profiles`` shows them.

Visibility is evaluated on the day of the read. A record whose window ends is
withdrawn from the feed by the ``record.expire`` leaf the expiry job writes;
until then a re-read of an old page would already say ``delete`` for it, and a
profile already hides it, so the two never disagree for long: run the expiry job
(every minute by default) to get the explicit delete.

The cursor is opaque to bureaus: base64url of the canonical JSON
``{"next":n,"v":1}``. It is not secret (it only names a position in a public
log) so it is not signed, but it is validated strictly: anything that is not
exactly what this module encodes, or points past the served head, is a 422
naming ``since``.

Every page that discloses something about an adult practitioner (an ``upsert``
whose subject is one) is an access to them, as a profile lookup is: the page
says which (``Changes.disclosed``), and the caller records one access per
person before it sends the page (registry/bureau/access.py). A ``delete`` tells
only an id the bureau already holds, and organisations are not personal data.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import msgspec
from msgspec import Struct

from registry.bureau import profile_sql
from registry.bureau.views import (
    FEED_TYPES,
    BureauAffiliation,
    BureauFundManager,
    BureauListing,
    BureauRecord,
    BureauSubject,
    SubjectReader,
    affiliation_view,
    fund_manager_view,
    listing_view,
    masked_list,
    record_view,
)
from registry.clock import today
from registry.db.tlog_store import committed_leaf_count
from registry.db.types import Conn
from registry.domain.disclosure import PUBLICATIONS, day_of
from registry.domain.policy import Policy
from registry.errors import InvalidInput, Unavailable
from registry.services import Services
from registry.tlog.leaf import canonical_json

CURSOR_VERSION = 1
_CURSOR_ACCEPTED = "the next_cursor of a previous page, or nothing to start from the beginning"


class _Cursor(Struct, forbid_unknown_fields=True):
    v: int
    next: int


class FeedItem(Struct, kw_only=True, omit_defaults=True):
    log_index: int
    op: Literal["upsert", "delete"]
    object_type: str
    object_id: uuid.UUID
    subject_id: uuid.UUID
    subject: BureauSubject | None = None
    record: BureauRecord | None = None
    listing: BureauListing | None = None
    affiliation: BureauAffiliation | None = None
    fund_manager: BureauFundManager | None = None


class ChangePage(Struct, kw_only=True):
    items: list[FeedItem]
    # Where to continue; always given (poll it later when ``more`` is false).
    next_cursor: str
    # The integrated tree size the page was served from: every item's log_index is
    # below it, so a checkpoint of this size proves them all.
    tree_size: int
    more: bool


@dataclass(frozen=True)
class Changes:
    page: ChangePage
    # The adult practitioners the page discloses something about (an ``upsert`` of
    # them, their affiliations, records or listings), each once, in the order of
    # their first item: the accesses to record before the page may be sent.
    disclosed: tuple[uuid.UUID, ...]


def encode_cursor(next_index: int) -> str:
    raw = canonical_json(_Cursor(v=CURSOR_VERSION, next=next_index))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The next log index to read, or InvalidInput naming ``since``."""
    try:
        if not cursor or len(cursor) > 64:
            raise ValueError("length")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = msgspec.json.decode(raw, type=_Cursor)
        if value.v != CURSOR_VERSION or value.next < 0 or encode_cursor(value.next) != cursor:
            raise ValueError("not canonical")
    except (ValueError, binascii.Error, msgspec.DecodeError):
        raise InvalidInput("since", "not a cursor this API gave out", _CURSOR_ACCEPTED) from None
    return value.next


def _subject_of(object_type: str, object_id: str, body: dict[str, Any]) -> uuid.UUID:
    if object_type == "subject":
        return uuid.UUID(object_id)
    if object_type == "affiliation":
        return uuid.UUID(body["practitioner_id"])
    if object_type == "fund_manager":
        return uuid.UUID(body["firm_id"])
    return uuid.UUID(body["subject_id"])


# (object type, object id, log index, version body with its log_index)
_Version = tuple[str, str, int, dict[str, Any]]


def _could_show(object_type: str, body: dict[str, Any]) -> bool:
    """Whether this version is in publication on some day on or after it was written."""
    return PUBLICATIONS[object_type].shown_on_or_after(body, day_of(body["updated_at"]))


async def _first_could_show(conn: Conn, versions: list[_Version]) -> dict[tuple[str, str], int]:
    """For the records and listings of ``versions``: the lowest log index below theirs of
    a version that could be in publication (one statement for the page)."""
    if not versions:
        return {}
    rows = await conn.fetch(
        "SELECT log_index, object_type, object_id, body FROM tlog_objects"
        " WHERE object_type = ANY($1::text[]) AND object_id = ANY($2::text[]) AND log_index < $3"
        " ORDER BY log_index",
        list({t for t, _, _, _ in versions}),
        list({i for _, i, _, _ in versions}),
        max(index for _, _, index, _ in versions),
    )
    first: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["object_type"], row["object_id"])
        if key not in first and _could_show(key[0], msgspec.json.decode(row["body"])):
            first[key] = row["log_index"]
    return first


class _Profile(msgspec.Struct):
    affiliations: list[BureauAffiliation]
    records: list[BureauRecord]
    listings: list[BureauListing]


async def _current_profiles(
    conn: Conn, on: date, people: list[uuid.UUID], size: int, policy: Policy
) -> dict[uuid.UUID, _Profile]:
    """The people's lists as their profiles show them on ``on`` (the same SQL), without
    items whose version is not yet in the served tree (its own leaf will bring them)."""
    if not people:
        return {}
    out: dict[uuid.UUID, _Profile] = {}
    for row in await conn.fetch(profile_sql.LISTS, on, people):
        lists = _Profile(
            affiliations=msgspec.json.decode(row["affiliations"], type=list[BureauAffiliation]),
            records=msgspec.json.decode(
                masked_list("credit_record", row["records"], policy), type=list[BureauRecord]
            ),
            listings=msgspec.json.decode(
                masked_list("blacklist_entry", row["listings"], policy), type=list[BureauListing]
            ),
        )
        lists.affiliations = [a for a in lists.affiliations if a.log_index < size]
        lists.records = [r for r in lists.records if r.log_index < size]
        lists.listings = [b for b in lists.listings if b.log_index < size]
        out[row["id"]] = lists
    return out


def _profile_items(index: int, subject_id: uuid.UUID, lists: _Profile) -> list[FeedItem]:
    """A re-announced profile: its items, all at the subject version's ``index``."""
    items = [
        FeedItem(log_index=index, op="upsert", object_type="affiliation", object_id=a.id,
                 subject_id=subject_id, affiliation=a)
        for a in lists.affiliations
    ]
    items += [
        FeedItem(log_index=index, op="upsert", object_type="credit_record", object_id=r.id,
                 subject_id=subject_id, record=r)
        for r in lists.records
    ]
    items += [
        FeedItem(log_index=index, op="upsert", object_type="blacklist_entry", object_id=b.id,
                 subject_id=subject_id, listing=b)
        for b in lists.listings
    ]
    return items


async def read_changes(services: Services, since: str | None, limit: int) -> Changes:
    start = decode_cursor(since) if since else 0
    on = today(services.clock)
    reader = SubjectReader(services, on)
    async with services.pool.acquire() as conn:
        size: int = await conn.fetchval("SELECT size FROM tlog_head") or 0
        committed = await committed_leaf_count(conn)
        if committed > size:
            # Writes nobody waits a receipt for (the expiry job) are committed but not
            # yet in a signed tree: have them integrated so the feed can serve them. A
            # replica serves them once it has the new tree head: the primary's size may
            # count entries it does not have yet, and the cursor would skip them.
            with contextlib.suppress(Unavailable):
                head = await services.integrator.wait_for(committed - 1, 2.0)
                if services.reads.on_primary(services.pool):
                    size = max(size, head.size)
        if start > size:
            raise InvalidInput("since", "points past the log's current size", _CURSOR_ACCEPTED)
        rows = await conn.fetch(
            "SELECT log_index, object_type, object_id, body FROM tlog_objects"
            " WHERE log_index >= $1 AND log_index < $2 AND object_type = ANY($3::text[])"
            " ORDER BY log_index LIMIT $4",
            start,
            size,
            list(FEED_TYPES),
            limit,
        )
        # A stored body leaves out ``log_index`` (db/audit.py): it is the leaf's own index.
        decoded = [
            (
                r["log_index"],
                r["object_type"],
                r["object_id"],
                {**msgspec.json.decode(r["body"]), "log_index": r["log_index"]},
            )
            for r in rows
        ]
        subject_ids = list({_subject_of(t, i, b) for _, t, i, b in decoded})
        # Minors are judged on the subject as it is now (the profile does the same).
        people = await conn.fetch(
            "SELECT id, document_type, document_cipher, birth_date_cipher FROM subjects"
            " WHERE id = ANY($1::uuid[]) AND kind = 'practitioner'",
            subject_ids,
        )
        minors = {p["id"] for p in people if reader.is_minor(p)}
        adults = {p["id"] for p in people} - minors
        told = [
            (index, object_type, object_id, body)
            for index, object_type, object_id, body in decoded
            if _subject_of(object_type, object_id, body) not in minors
        ]
        # Records and listings not in publication whose own version never could be:
        # whether an earlier version could decides between delete and nothing.
        undecided: list[_Version] = [
            (object_type, object_id, index, body)
            for index, object_type, object_id, body in told
            if object_type in PUBLICATIONS
            and body["version"] > 1
            and not PUBLICATIONS[object_type].shown(body, on)
            and not _could_show(object_type, body)
        ]
        first_could = await _first_could_show(conn, undecided)
        again = {
            uuid.UUID(object_id)
            for _, object_type, object_id, body in told
            if object_type == "subject" and body["version"] > 1 and uuid.UUID(object_id) in adults
        }
        profiles = await _current_profiles(conn, on, list(again), size, reader.policy)
    items: list[FeedItem] = []
    for index, object_type, object_id, body in told:
        subject_id = _subject_of(object_type, object_id, body)
        item = FeedItem(
            log_index=index,
            op="upsert",
            object_type=object_type,
            object_id=uuid.UUID(object_id),
            subject_id=subject_id,
        )
        if object_type == "subject":
            item.subject = reader.view(body)
            items.append(item)
            if subject_id in profiles and body["version"] > 1:
                items += _profile_items(index, subject_id, profiles[subject_id])
            continue
        if object_type == "affiliation":
            item.affiliation = affiliation_view(body)
        elif object_type == "fund_manager":
            item.fund_manager = fund_manager_view(body)
        elif PUBLICATIONS[object_type].shown(body, on):
            if object_type == "credit_record":
                item.record = record_view(body, reader.policy)
            else:
                item.listing = listing_view(body, reader.policy)
        elif _could_show(object_type, body) or first_could.get(
            (object_type, object_id), index
        ) < index:
            item.op = "delete"
        else:
            continue  # never disclosed: not even its id
        items.append(item)
    more = len(rows) == limit
    next_index = rows[-1]["log_index"] + 1 if more else size
    # ``adults`` are the page's practitioners who are not minors, from the query above;
    # a dict keeps the first-seen order.
    disclosed = {i.subject_id: None for i in items if i.op == "upsert" and i.subject_id in adults}
    page = ChangePage(items=items, next_cursor=encode_cursor(next_index), tree_size=size, more=more)
    return Changes(page=page, disclosed=tuple(disclosed))
