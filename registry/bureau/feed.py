"""The bureau change feed: the audit log, read in index order, projected to the bureau view.

Why build it on the log: leaf indexes are gap-free and committed in index order
(registry/db/audit.py), so "every leaf with an index in [n, head.size)" is a set
that never changes once read and never misses a late committer. A cursor holding
the next index to read therefore never skips or repeats, survives restarts, and
needs no extra bookkeeping on the write path. Only leaves below the integrated
head (``tlog_head.size``) are served, so every item is already provable with an
inclusion proof against a signed checkpoint.

Each leaf whose object is a subject, credit record, blacklist entry or
affiliation yields one item from the version body stored with it: ``upsert``
with the bureau projection if that version is visible to bureaus today, else
``delete`` for the object id (publicity ended, repaired, revoked, removed,
withdrawn, not yet listed, or about a minor). Leaves of other objects (tokens,
objections, repairs …) only advance the cursor. Applying the items in order to an
empty copy yields the profiles as ``GET /v1/bureau/profiles`` shows them.

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
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from typing import Any, Literal

import msgspec
from msgspec import Struct

from registry.bureau.views import (
    FEED_TYPES,
    BureauAffiliation,
    BureauListing,
    BureauRecord,
    BureauSubject,
    SubjectReader,
    affiliation_view,
    listing_view,
    listing_visible,
    record_view,
    record_visible,
)
from registry.clock import today
from registry.db.tlog_store import committed_leaf_count
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


class ChangePage(Struct, kw_only=True):
    items: list[FeedItem]
    # Where to continue; always given (poll it later when ``more`` is false).
    next_cursor: str
    # The integrated tree size the page was served from: every item's log_index is
    # below it, so a checkpoint of this size proves them all.
    tree_size: int
    more: bool


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
    return uuid.UUID(body["subject_id"])


async def read_changes(services: Services, since: str | None, limit: int) -> ChangePage:
    start = decode_cursor(since) if since else 0
    on = today(services.clock)
    async with services.pool.acquire() as conn:
        size: int = await conn.fetchval("SELECT size FROM tlog_head") or 0
        committed = await committed_leaf_count(conn)
        if committed > size:
            # Writes nobody waits a receipt for (the expiry job) are committed but not
            # yet in a signed tree: have them integrated so the feed can serve them.
            with contextlib.suppress(Unavailable):
                size = max(size, (await services.integrator.wait_for(committed - 1, 2.0)).size)
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
            "SELECT id, document_type, document_cipher FROM subjects"
            " WHERE id = ANY($1::uuid[]) AND kind = 'practitioner'",
            subject_ids,
        )
    reader = SubjectReader(services, on)
    minors = {p["id"] for p in people if reader.is_minor(p)}
    items: list[FeedItem] = []
    for index, object_type, object_id, body in decoded:
        subject_id = _subject_of(object_type, object_id, body)
        item = FeedItem(
            log_index=index,
            op="delete",
            object_type=object_type,
            object_id=uuid.UUID(object_id),
            subject_id=subject_id,
        )
        if subject_id not in minors:
            if object_type == "subject":
                item.subject = reader.view(body)
            elif object_type == "affiliation":
                item.affiliation = affiliation_view(body)
            elif object_type == "credit_record" and record_visible(body, on):
                item.record = record_view(body)
            elif object_type == "blacklist_entry" and listing_visible(body, on):
                item.listing = listing_view(body)
            if item.subject or item.affiliation or item.record or item.listing:
                item.op = "upsert"
        items.append(item)
    more = len(rows) == limit
    next_index = rows[-1]["log_index"] + 1 if more else size
    return ChangePage(items=items, next_cursor=encode_cursor(next_index), tree_size=size, more=more)
