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

Relations between subjects are shown from both sides, each item with the bureau view
of the subject on the other side (``related_views``): a firm's profile its managers
(``managers``), a manager's the firms it manages (``firms``) and the practitioners
affiliated to it (``practitioners``, masked and age-checked by the same ``SubjectReader``
as a practitioner's own profile, a minor left out entirely). Like a practitioner's
affiliations, every relation is listed, ended ones too, with its days: the one whose
days hold the day of the read is the current one. A profile that shows practitioners
discloses them, so it is answered only for a stated purpose and each adult shown is
recorded (``people_shown``, registry/api/bureau.py).

Bureaus see document numbers masked (``disclosure.AUDIENCES``), so a GB 11643 number
typed into a record's or listing's free text reaches them masked too, through the
public surfaces' function (``disclosure.mask_free_text``): in items built here
(``record_view``, ``listing_view``) and in lists PostgreSQL built (``masked_list``).
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

from registry.domain.disclosure import is_minor_on, mask_free_text, masked_number, may_hold_number
from registry.domain.policy import Policy
from registry.services import Services
from registry.structs.credit import RecordItems

# Audited object types the bureau view is made of (the change feed's filter).
FEED_TYPES = ("subject", "credit_record", "blacklist_entry", "affiliation", "fund_manager")
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


class BureauFundManager(Struct, kw_only=True):
    """A vc_firm's fund manager (a vc_manager) from ``valid_from`` to ``valid_to``, both
    days included (``valid_to`` null: not ended)."""

    id: uuid.UUID
    firm_id: uuid.UUID
    manager_id: uuid.UUID
    valid_from: date
    valid_to: date | None
    version: int
    log_index: int


class BureauManager(Struct, kw_only=True):
    """On a firm's profile: a relation naming its manager, and that manager."""

    fund_manager: BureauFundManager
    manager: BureauSubject


class BureauManagedFirm(Struct, kw_only=True):
    """On a manager's profile: a relation naming a firm it manages, and that firm."""

    fund_manager: BureauFundManager
    firm: BureauSubject


class BureauAffiliate(Struct, kw_only=True):
    """On a manager's profile: an affiliation naming it, and the practitioner (the number
    masked, as on the practitioner's own profile)."""

    affiliation: BureauAffiliation
    practitioner: BureauSubject


class BureauRecord(RecordItems, kw_only=True):
    """A published credit record with every 双公示 item, as bureaus see it."""

    publicity_start: date
    publicity_deadline: date | None
    under_objection: bool
    previous_log_index: int | None
    correction_note: str | None
    version: int
    log_index: int


class BureauListing(Struct, kw_only=True):
    """A listed serious-dishonesty entry (严重失信主体名单)."""

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


class BureauProfile(Struct, kw_only=True, omit_defaults=True):
    subject: BureauSubject
    affiliations: list[BureauAffiliation]
    records: list[BureauRecord]
    listings: list[BureauListing]
    # Relations seen from this subject's side; absent when empty (registry/bureau/
    # profile_sql.py RELATED).
    managers: list[BureauManager] = []
    firms: list[BureauManagedFirm] = []
    practitioners: list[BureauAffiliate] = []


def _pick(data: Row, kind: type[Any]) -> Any:
    return msgspec.convert({f: data[f] for f in kind.__struct_fields__}, kind, strict=False)


def record_view(data: Row, policy: Policy) -> BureauRecord:
    view: BureauRecord = _pick(mask_free_text("credit_record", data, policy), BureauRecord)
    return view


def listing_view(data: Row, policy: Policy) -> BureauListing:
    view: BureauListing = _pick(mask_free_text("blacklist_entry", data, policy), BureauListing)
    return view


def masked_list(object_type: str, raw: bytes, policy: Policy) -> bytes:
    """A JSON list of ``object_type`` items as PostgreSQL builds them (registry/bureau/
    profile_sql.py), their free text masked. The same bytes when no item can hold a number
    (``may_hold_number``, one pass): most lists are passed through without decoding."""
    if not may_hold_number(raw):
        return raw
    items = msgspec.json.decode(raw, type=list[dict[str, Any]])
    return msgspec.json.encode([mask_free_text(object_type, item, policy) for item in items])


def affiliation_view(data: Row) -> BureauAffiliation:
    view: BureauAffiliation = _pick(data, BureauAffiliation)
    return view


def fund_manager_view(data: Row) -> BureauFundManager:
    view: BureauFundManager = _pick(data, BureauFundManager)
    return view


class _Pair(Struct):
    """An item of a RELATED list as PostgreSQL builds it (registry/bureau/profile_sql.py):
    the relation's row and the other side's subject row (ciphers in base64)."""

    relation: dict[str, Any]
    subject: dict[str, Any]


class Related(Struct, kw_only=True):
    """A profile's relation lists (``BureauProfile``'s last three fields)."""

    managers: list[BureauManager] = []
    firms: list[BureauManagedFirm] = []
    practitioners: list[BureauAffiliate] = []


def related_views(
    reader: SubjectReader, managers: bytes | None, firms: bytes | None,
    practitioners: bytes | None,
) -> Related:
    """The relation lists of a profile from the JSON PostgreSQL built (None: not this kind
    of subject): each relation with the bureau view of the subject on its other side, and
    no trace of a practitioner who is a minor on the reader's day."""
    def pairs(raw: bytes | None) -> list[_Pair]:
        return [] if raw is None else msgspec.json.decode(raw, type=list[_Pair])

    return Related(
        managers=[
            BureauManager(fund_manager=fund_manager_view(p.relation), manager=reader.view(p.subject))
            for p in pairs(managers)
        ],
        firms=[
            BureauManagedFirm(fund_manager=fund_manager_view(p.relation), firm=reader.view(p.subject))
            for p in pairs(firms)
        ],
        practitioners=[
            BureauAffiliate(affiliation=affiliation_view(p.relation),
                            practitioner=reader.view(p.subject))
            for p in pairs(practitioners)
            if not reader.is_minor(p.subject)
        ],
    )


class _Person(Struct):
    id: uuid.UUID


class _Shown(Struct):
    practitioner: _Person


class _PeopleShown(Struct):
    practitioners: list[_Shown] = []


# In an encoded profile these bytes can only be the key of its list of practitioners: a
# quote inside a JSON string value is escaped.
_PRACTITIONERS_KEY = b'"practitioners":'


def people_shown(profile: bytes) -> tuple[uuid.UUID, ...]:
    """The practitioners an encoded profile shows on its ``practitioners`` list (adults:
    minors are never in it), each once, in order: whom sending it discloses."""
    if _PRACTITIONERS_KEY not in profile:
        return ()
    shown = msgspec.json.decode(profile, type=_PeopleShown).practitioners
    return tuple(dict.fromkeys(item.practitioner.id for item in shown))


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

    @property
    def policy(self) -> Policy:
        return self._services.policy

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
        masked = None if number is None else masked_number(number, self.policy)
        plain = {f: data[f] for f in BureauSubject.__struct_fields__ if f != "document_number"}
        view: BureauSubject = msgspec.convert(
            {**plain, "document_number": masked}, BureauSubject, strict=False
        )
        return view
