"""What a credit bureau may see of a subject, and the rule deciding it (pure).

One projection per audited object type, applied alike to a current database row
(profiles) and to a stored version body decoded from ``tlog_objects`` (the change
feed): both go through ``msgspec.convert`` of a plain mapping, so a version
replayed from the feed and the same row read for a profile encode to the same
bytes. That equality is what lets a bureau check its copy against a profile.

Visibility is decided at the day of the read (``registry.clock.today``):

- a credit record while ``status = 'published'`` and inside its half-open
  publicity window ``[publicity_start, publicity_end)`` — so a record whose
  window has ended is hidden before the expiry job writes ``record.expire``;
- a blacklist entry while ``state = 'listed'`` and before ``planned_removal_on``;
- subjects and affiliations always, except everything about a minor.

Minors: nothing is published about them (DOMAIN.md). A practitioner whose
GB 11643 number (resident ID, HMT residence permit, 18-character foreign
permanent residence card) shows them under 18 on the day of the read is
answered exactly like an unknown one (``not_found``; ``delete`` in the feed),
so a bureau cannot even learn that a minor is registered.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

import asyncpg
import msgspec
from msgspec import Struct

from registry.api.credit_schemas import RecordItems
from registry.errors import InvalidInput
from registry.identifiers import is_minor, mask_document_number
from registry.services import Services

# Audited object types the bureau view is made of (the change feed's filter).
FEED_TYPES = ("subject", "credit_record", "blacklist_entry", "affiliation")
# Document types whose number carries the holder's birth date (GB 11643 layout).
# A current row (profiles) or a decoded stored version (the feed).
Row = Mapping[str, Any] | asyncpg.Record
_BIRTH_DATE_DOCUMENTS = ("resident_id", "hmt_residence_permit", "foreign_permanent_residence")


class BureauSubject(Struct, kw_only=True):
    id: uuid.UUID
    kind: str
    name: str
    status: str
    credit_code: str | None
    registered_region: str | None
    filing_number: str | None
    filing_date: date | None
    legal_representative: str | None
    document_type: str | None
    # Masked per Policy.mask_* (e.g. 630102********123X); never the whole number.
    document_number: str | None
    version: int
    log_index: int


class BureauAffiliation(Struct, kw_only=True):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    organisation_id: uuid.UUID
    role: str
    valid_from: date
    valid_to: date | None
    version: int
    log_index: int


class BureauRecord(RecordItems, kw_only=True):
    """A published credit record with every 雙公示 item, as bureaus see it."""

    publicity_start: date
    publicity_deadline: date | None
    under_objection: bool
    previous_log_index: int | None
    correction_note: str | None
    version: int
    log_index: int


class BureauListing(Struct, kw_only=True):
    """A listed serious-dishonesty entry (嚴重失信主體名單)."""

    id: uuid.UUID
    subject_id: uuid.UUID
    criterion: str
    legal_basis: str
    record_ids: list[uuid.UUID]
    listed_on: date | None
    planned_removal_on: date | None
    under_objection: bool
    version: int
    log_index: int


class BureauProfile(Struct, kw_only=True):
    subject: BureauSubject
    affiliations: list[BureauAffiliation]
    records: list[BureauRecord]
    listings: list[BureauListing]


def _pick(data: Row, kind: type[Any]) -> Any:
    return msgspec.convert({f: data[f] for f in kind.__struct_fields__}, kind, strict=False)


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def record_visible(data: Row, on: date) -> bool:
    if data["status"] != "published":
        return False
    start, end = _as_date(data["publicity_start"]), _as_date(data["publicity_end"])
    return start is not None and start <= on and (end is None or on < end)


def listing_visible(data: Row, on: date) -> bool:
    if data["state"] != "listed":
        return False
    listed, until = _as_date(data["listed_on"]), _as_date(data["planned_removal_on"])
    return (listed is None or listed <= on) and (until is None or on < until)


def record_view(data: Row) -> BureauRecord:
    view: BureauRecord = _pick(data, BureauRecord)
    return view


def listing_view(data: Row) -> BureauListing:
    view: BureauListing = _pick(data, BureauListing)
    return view


def affiliation_view(data: Row) -> BureauAffiliation:
    view: BureauAffiliation = _pick(data, BureauAffiliation)
    return view


def _cipher(value: Any) -> bytes:
    # A row holds bytes; a stored version body holds them base64 (tlog.leaf._plain).
    if isinstance(value, str):
        return base64.b64decode(value)
    return bytes(value)


class SubjectReader:
    """Decrypts, masks and age-checks practitioners' documents, each at most once."""

    def __init__(self, services: Services, on: date) -> None:
        self._services = services
        self.on = on
        self._numbers: dict[tuple[str, bytes], str] = {}

    def number(self, data: Row) -> str | None:
        if data.get("document_cipher") is None:
            return None
        key = (str(data["document_type"]), _cipher(data["document_cipher"]))
        if key not in self._numbers:
            self._numbers[key] = self._services.pii.decrypt(key[0], key[1])
        return self._numbers[key]

    def is_minor(self, data: Row) -> bool:
        number = self.number(data)
        if number is None or data["document_type"] not in _BIRTH_DATE_DOCUMENTS:
            return False
        try:
            return is_minor(number, self.on)
        except InvalidInput:
            # Old 15-character permanent residence cards carry no birth date; a birth
            # date after today cannot be stored (validated on write).
            return False

    def view(self, data: Row) -> BureauSubject:
        number = self.number(data)
        policy = self._services.policy
        masked = (
            None
            if number is None
            else mask_document_number(
                number, policy.mask_keep_head, policy.mask_keep_tail, policy.mask_char
            )
        )
        plain = {f: data[f] for f in BureauSubject.__struct_fields__ if f != "document_number"}
        view: BureauSubject = msgspec.convert(
            {**plain, "document_number": masked}, BureauSubject, strict=False
        )
        return view
