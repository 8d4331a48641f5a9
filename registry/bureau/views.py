"""What a credit bureau may see of a subject, and the rule deciding it (pure).

One projection per audited object type, applied alike to a current database row
(profiles) and to a stored version body decoded from ``tlog_objects`` (the change
feed): both go through ``msgspec.convert`` of a plain mapping, so a version
replayed from the feed and the same row read for a profile encode to the same
bytes. That equality is what lets a bureau check its copy against a profile.

What a bureau may see is ``registry.domain.disclosure`` (the audience table, the
rule "in publication on day D", the minors rule), decided at the day of the read
(``registry.clock.today``): records and listings while in publication; subjects
and affiliations always; nothing at all about a minor. A practitioner who is a
minor on the day of the read (any stored GB 11643 number, whatever its document
type) is answered exactly like an unknown one (``not_found``; no item in the feed),
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
from registry.domain.disclosure import is_minor_on
from registry.identifiers import mask_document_number
from registry.services import Services

# Audited object types the bureau view is made of (the change feed's filter).
FEED_TYPES = ("subject", "credit_record", "blacklist_entry", "affiliation")
# A current row (profiles) or a decoded stored version (the feed).
Row = Mapping[str, Any] | asyncpg.Record


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
        """``disclosure.is_minor_on`` the day of the read, for a subject row or body."""
        blob = data.get("birth_date_cipher")
        born = (None if blob is None
                else self._services.pii.decrypt_birth_date(str(data["document_type"]), _cipher(blob)))
        return is_minor_on(self.number(data), self.on, born)

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
