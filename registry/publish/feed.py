"""The signed disclosure feed: what is public, newest change first, each entry signed.

Design (see also README "Public disclosure"):

- Sequence. Every entry's ``seq`` is the audit-log index of the item's current
  version (``log_index`` of its row). Log indexes are gap-free and committed in
  order, so ``seq`` only grows: a change to an item moves it to the top of the
  feed with a higher ``seq``. Pages are keyset on ``seq`` (``?before=<seq>``),
  so a page link names the same slice no matter what is added later.
- Events. An item appears once, at its current version:
  - ``publication``: the item passes the selection rule today
    (``selection.RECORD_PUBLIC``/``LISTING_PUBLIC``), with its 雙公示 items, its
    objection mark, ``published_on`` and the scheduled ``withdraw_on``;
  - ``withdrawal``: an audited change ended its publication (expired, revoked,
    repaired; a listing removed). It carries only the object, the day and the
    reason, so mirrors know what to take down.
  An item whose period ran out but whose ``record.expire`` is not yet written is
  in neither: it vanishes from the feed at midnight, and mirrors already knew
  the day from the publication's ``withdraw_on``. A minor's items never appear.
- Signatures. ``signature`` is base64 of the Ed25519 signature, by the log
  signing key, over ``canonical_json(entry without "signature")``. Verify with
  the key at ``/log/key`` (``parse_verifier_key(key).verify(bytes, sig)``).
- Caching. The validator is the log size (``tlog_sequence.next_index``: every
  change of anything public writes a leaf) plus today's date (windows move at
  midnight) plus the page asked: equal validators mean equal bodies.
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

from registry.keys import LogKey
from registry.publish.labels import (
    BLACKLIST,
    CREDIT_RECORD,
    OBJECT_TYPE_NAMES,
    SITE_NAME,
    SITE_TITLE,
    WITHDRAWAL_REASON_NAMES,
    WITHDRAWN,
)
from registry.publish.selection import (
    LISTING_PUBLIC,
    LISTING_WITHDRAWN,
    LISTINGS_FROM,
    RECORD_PUBLIC,
    RECORD_WITHDRAWN,
    RECORDS_FROM,
    SUBJECT_COLUMNS,
    SubjectView,
    beijing_time,
    day_of,
    listing_entry,
    record_entry,
    start_of_day,
    withdrawal_entry,
)
from registry.services import Services
from registry.tlog.leaf import canonical_json

FEED_VERSION: Final = "https://registry.example/public-feed/v1"
TITLE: Final = SITE_TITLE
MAX_PAGE: Final = 200
_END = 2**63 - 1


@dataclass(frozen=True)
class Validator:
    """What a feed page depends on: equal validators, equal pages."""

    log_size: int
    last_write: datetime | None
    day: date

    def etag(self, *parts: object) -> str:
        raw = "|".join(str(p) for p in (self.log_size, self.day, *parts))
        return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'

    @property
    def last_modified(self) -> datetime:
        midnight = start_of_day(self.day)
        moment = max(self.last_write, midnight) if self.last_write else midnight
        return moment.replace(microsecond=0)

    @property
    def last_modified_header(self) -> str:
        return format_datetime(self.last_modified.astimezone(UTC), usegmt=True)


async def validator(services: Services, day: date) -> Validator:
    row = await services.pool.fetchrow(
        "SELECT s.next_index, (SELECT created_at FROM tlog_leaves WHERE idx = s.next_index - 1)"
        " AS last_write FROM tlog_sequence s"
    )
    assert row is not None
    return Validator(row["next_index"], row["last_write"], day)


# Ed25519 signatures are deterministic (RFC 8032), so a signature can be reused
# for the same key and bytes; most feed entries are signed many times over. The cache is
# the running app's (``Services.feed_signatures``), this many entries at most.
_SIGNATURE_CACHE_SIZE: Final = 100_000


def sign_entry(
    key: LogKey, entry: dict[str, Any], cache: OrderedDict[tuple[str, bytes], str]
) -> str:
    """Base64 Ed25519 signature over the canonical bytes of ``entry`` (no signature field)."""
    message = canonical_json(entry)
    cache_key = (key.verifier, hashlib.sha256(message).digest())
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    signature = _sign(key, message)
    cache[cache_key] = signature
    if len(cache) > _SIGNATURE_CACHE_SIZE:
        cache.popitem(last=False)
    return signature


def _sign(key: LogKey, message: bytes) -> str:
    # NoteSigner signs the UTF-8 text of a note; canonical JSON is UTF-8, so the
    # signed bytes are exactly ``message``. Its line is "— name base64(keyid‖sig)".
    line = key.signer.signature_line(message.decode("utf-8"))
    raw = base64.b64decode(line.rstrip("\n").rsplit(" ", 1)[1])
    return base64.b64encode(raw[4:]).decode()


@dataclass
class FeedPage:
    entries: list[dict[str, Any]]
    next_before: int | None


async def feed_page(services: Services, day: date, before: int | None, limit: int) -> FeedPage:
    """Up to ``limit`` items with ``seq < before``, newest first, signed.

    Records and listings are read by two keyset queries of ``limit`` rows each
    and merged; ``next_before`` is the last ``seq`` taken before the minors
    filter, so a page may hold fewer entries than ``limit`` but never skips any.
    """
    bound = _END if before is None else before
    records = await services.pool.fetch(
        f"SELECT r.*, {SUBJECT_COLUMNS}, ({RECORD_PUBLIC}) AS shown FROM {RECORDS_FROM}"  # noqa: S608 - fixed text
        f" WHERE r.log_index < $2 AND (({RECORD_PUBLIC}) OR ({RECORD_WITHDRAWN}))"
        " ORDER BY r.log_index DESC LIMIT $3",
        day,
        bound,
        limit,
    )
    listings = await services.pool.fetch(
        f"SELECT b.*, {SUBJECT_COLUMNS}, ({LISTING_PUBLIC}) AS shown FROM {LISTINGS_FROM}"  # noqa: S608 - fixed text
        f" WHERE b.log_index < $2 AND (({LISTING_PUBLIC}) OR ({LISTING_WITHDRAWN}))"
        " ORDER BY b.log_index DESC LIMIT $3",
        day,
        bound,
        limit,
    )
    merged = sorted(
        [("credit_record", r) for r in records] + [("blacklist_entry", r) for r in listings],
        key=lambda pair: pair[1]["log_index"],
        reverse=True,
    )[:limit]
    subjects = SubjectView(services, day)
    key = services.integrator.key
    entries: list[dict[str, Any]] = []
    for object_type, row in merged:
        if not subjects.visible(row):
            continue
        if row["shown"]:
            body = (record_entry if object_type == "credit_record" else listing_entry)(row, subjects)
            entry = {"seq": row["log_index"], "event": "publication", **body}
        else:
            entry = {"seq": row["log_index"], "event": "withdrawal",
                     **withdrawal_entry(row, object_type, subjects.policy)}
        entry["signature"] = sign_entry(key, entry, services.feed_signatures)
        entries.append(entry)
    next_before = merged[-1][1]["log_index"] if len(merged) == limit else None
    return FeedPage(entries, next_before)


def page_url(base: str, before: int | None, limit: int, default_limit: int) -> str:
    params = []
    if before is not None:
        params.append(f"before={before}")
    if limit != default_limit:
        params.append(f"limit={limit}")
    return base + ("?" + "&".join(params) if params else "")


def feed_json(page: FeedPage, *, self_url: str, next_url: str | None, verifier: str,
              updated: datetime) -> bytes:
    """The JSON feed document (format ``FEED_VERSION``, documented in the README)."""
    return canonical_json({
        "version": FEED_VERSION,
        "title": TITLE,
        "feed_url": self_url,
        "next_url": next_url,
        "updated": beijing_time(updated),
        "verifier_key": verifier,
        "signature_over": "canonical JSON (sorted keys, compact, UTF-8) of the entry without 'signature'",
        "entries": page.entries,
    })


def _entry_title(entry: dict[str, Any]) -> str:
    """What a feed reader lists: the subject and the decision, or what was taken down and why."""
    if entry["event"] == "withdrawal":
        object_type, _, object_id = entry["object"].partition("/")
        reason = entry.get("reason")
        why = f"（{WITHDRAWAL_REASON_NAMES.get(reason, reason)}）" if reason else ""
        return f"{WITHDRAWN} {OBJECT_TYPE_NAMES.get(object_type, object_type)} {object_id}{why}"
    items = entry["items"]
    name = items.get("cf_xdr_mc") or items.get("zt_mc") or ""
    label = BLACKLIST if entry["kind"] == "blacklist" else (items.get("cf_wsh") or CREDIT_RECORD)
    mark = f"({entry['objection_mark']})" if entry.get("objection_mark") else ""
    return f"{name} {label}{mark}"


def feed_atom(page: FeedPage, *, base_url: str, self_url: str, next_url: str | None,
              updated: datetime, verifier: str) -> bytes:
    """Atom (RFC 4287). Each entry's content is the signed canonical JSON; the
    signature is the ``reg:signature`` element beside it."""
    stamp = beijing_time(updated)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n',
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:reg="https://registry.example/ns/public-feed">\n',
        f"<title>{escape(TITLE)}</title>\n<id>urn:registry:public-feed</id>\n<updated>{stamp}</updated>\n",
        f"<link rel=\"self\" href={quoteattr(self_url)}/>\n",
        f"<link rel=\"alternate\" type=\"text/html\" href={quoteattr(base_url + '/public/')}/>\n",
        f"<reg:verifierKey>{escape(verifier)}</reg:verifierKey>\n",
    ]
    if next_url:
        parts.append(f"<link rel=\"next\" href={quoteattr(next_url)}/>\n")
    parts.append(f"<author><name>{escape(SITE_NAME)}</name></author>\n")
    for entry in page.entries:
        signature = entry["signature"]
        unsigned = {k: v for k, v in entry.items() if k != "signature"}
        when = entry.get("published_on") or entry.get("withdrawn_on") or page_day(updated)
        parts.append(
            "<entry>"
            f"<id>urn:registry:seq:{entry['seq']}</id>"
            f"<title>{escape(_entry_title(entry))}</title>"
            f"<updated>{when}T00:00:00+08:00</updated>"
            f"<category term={quoteattr(entry['event'])}/>"
            f"<reg:seq>{entry['seq']}</reg:seq>"
            f"<reg:signature>{signature}</reg:signature>"
            f"<content type=\"text\">{escape(canonical_json(unsigned).decode())}</content>"
            "</entry>\n"
        )
    parts.append("</feed>\n")
    return "".join(parts).encode()


def page_day(moment: datetime) -> str:
    """The Xining day of ``moment`` (an Atom entry's fallback date)."""
    return day_of(moment).isoformat()
