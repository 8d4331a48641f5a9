"""Request and response types of the credit routes (records, list, objections, repairs).

Amounts are in 万元 as decimal strings (``"12.5"``): exact, never floats. JSON
numbers are accepted too and kept exactly as written, but strings are preferred
because many JSON tools turn numbers into binary floats.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from registry.domain.disclosure import RECORDS, numbers_in_free_text
from registry.structs.common import Code, Receipt

Text = Annotated[str, Meta(min_length=1, max_length=2000)]
LongText = Annotated[str, Meta(min_length=1, max_length=20000)]
Short = Annotated[str, Meta(min_length=1, max_length=200)]
Amount = Annotated[Decimal, Meta(description='万元, at most 6 decimals, as a string e.g. "12.5"')]
PenaltyTypeName = Literal["warning", "fine", "confiscation", "suspension_order",
                          "licence_suspension", "licence_revocation", "detention", "other"]
GradeName = Literal["minor", "general", "serious"]
# `integer` columns: a version beyond 2^31 - 1 cannot exist (was a 422 without a field).
Version = Annotated[int, Meta(ge=1, le=2**31 - 1,
                              description="the version you read; 409 if it moved on")]


class RecordIn(Struct, forbid_unknown_fields=True, kw_only=True):
    """A credit record. For a penalty every 双公示 mandatory item is required."""

    subject_id: uuid.UUID
    record_kind: Literal["penalty", "filing", "commendation", "dishonesty_other"]
    grade: GradeName | None = None
    decision_number: Short | None = None
    violation_type: Short | None = None
    facts: LongText
    legal_basis: Text | None = None
    penalty_types: Annotated[list[PenaltyTypeName], Meta(max_length=8)] = []
    penalty_content: Text | None = None
    fine_amount: Amount | None = None
    confiscation_amount: Amount | None = None
    licence_name: Short | None = None
    licence_number: Short | None = None
    decision_date: date
    valid_until: date | None = None
    # The deciding authority is always the token's (README, "Authorities"): may be
    # omitted; naming another authority is refused with 403.
    authority_name: Annotated[
        str, Meta(max_length=200, description="omit, or the token's authority's registered name")
    ] | None = None
    authority_code: Annotated[
        str, Meta(max_length=40, description="omit, or the token's authority's code (403 otherwise)")
    ] | None = None
    source_name: Short
    source_code: Code
    remarks: Text | None = None


class RecordCorrectionFields(Struct, forbid_unknown_fields=True, kw_only=True):
    """Record items an upheld objection may correct. A field left out stays as it is; a field
    sent as ``null`` is cleared (e.g. ``fine_amount`` when ``fine`` leaves ``penalty_types``),
    and the whole corrected record must still pass the record rules (422)."""

    grade: GradeName | UnsetType | None = UNSET
    decision_number: Short | UnsetType | None = UNSET
    violation_type: Short | UnsetType | None = UNSET
    facts: LongText | UnsetType | None = UNSET
    legal_basis: Text | UnsetType | None = UNSET
    penalty_types: Annotated[list[PenaltyTypeName], Meta(max_length=8)] | UnsetType | None = UNSET
    penalty_content: Text | UnsetType | None = UNSET
    fine_amount: Amount | UnsetType | None = UNSET
    confiscation_amount: Amount | UnsetType | None = UNSET
    licence_name: Short | UnsetType | None = UNSET
    licence_number: Short | UnsetType | None = UNSET
    decision_date: date | UnsetType | None = UNSET
    valid_until: date | UnsetType | None = UNSET
    remarks: Text | UnsetType | None = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields sent, ``null`` included (it clears the item)."""
        return {f: getattr(self, f) for f in self.__struct_fields__
                if getattr(self, f) is not UNSET}


class RecordCorrection(RecordCorrectionFields, forbid_unknown_fields=True, kw_only=True):
    """A correction: the fields to change; the record keeps its id, gains a version."""

    version: Version
    note: Text
    # No authority fields: a decision stays its authority's (credit/ownership.py).
    source_name: Short | UnsetType = UNSET
    source_code: Code | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        # version and note describe the correction itself, not the record.
        return {k: v for k, v in super().changes().items() if k not in ("version", "note")}


class Revocation(Struct, forbid_unknown_fields=True, kw_only=True):
    version: Version
    reason: Text


class RecordItems(Struct, kw_only=True):
    """A credit record's 双公示 items (cf_* codes in schema/0002), shared by every view."""

    id: uuid.UUID
    subject_id: uuid.UUID
    record_kind: str
    grade: str | None
    decision_number: str | None
    violation_type: str | None
    facts: str
    legal_basis: str | None
    penalty_types: list[str]
    penalty_content: str | None
    fine_amount: Decimal | None
    confiscation_amount: Decimal | None
    licence_name: str | None
    licence_number: str | None
    decision_date: date
    valid_until: date | None
    authority_name: str
    authority_code: str
    source_name: str
    source_code: str
    remarks: str | None


class MaskedOnPublication(Struct, kw_only=True):
    field: Annotated[str, Meta(description="a free-text field of the record, e.g. `facts`")]
    count: Annotated[int, Meta(ge=1, description="how many GB 11643 numbers it holds")]


class CreditRecord(RecordItems, kw_only=True):
    """The regulator's view: the items plus publicity, status and audit fields."""

    published: Annotated[bool, Meta(description=(
        "In publication today: `status` is `published`, the rules allow publication "
        "(`publishable`) and today is within [`publicity_start`, `publicity_end`) — the "
        "disclosure rule the public surfaces and bureaus apply. False for revoked, repaired, "
        "expired and never-published records, and for a record whose period has ended even "
        "before the expiry job recorded it. (Earlier versions of the API sent `publishable` "
        "under this name.)"
    ))]
    publishable: Annotated[bool, Meta(description=(
        "Whether the publicity rules allow this record to be published at all (a "
        "warning-only or unpublished minor penalty is not); says nothing about whether it is "
        "in publication now (see `published` and `status`). Stored as column `published` in "
        "the record's versions."
    ))]
    publicity_start: date
    repair_from: date
    publicity_end: date | None
    publicity_deadline: date | None = None
    publicity_reason: str
    status: str
    publication_ended_on: date | None
    status_reason: str | None
    under_objection: bool
    previous_log_index: int | None
    correction_note: str | None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    log_index: int
    masked_on_publication: Annotated[list[MaskedOnPublication], Meta(description=(
        "Free-text fields of this version (facts, penalty_content, remarks, legal_basis, "
        "violation_type, licence_name, licence_number, correction_note, status_reason) that "
        "hold a GB 11643 resident-ID number (18 characters with a valid check character and "
        "birth date), with how many each: stored and shown to regulators as typed, these "
        "numbers reach the public (feed, page, exports) and credit bureaus masked like a "
        "practitioner's document number (e.g. `630102********123X`). Empty when nothing is "
        "masked."
    ))] = msgspec.field(default_factory=list)
    receipt: Receipt | None = None


class RecordPage(Struct):
    items: list[CreditRecord]
    next_cursor: str | None


class Proposal(Struct, forbid_unknown_fields=True, kw_only=True):
    subject_id: uuid.UUID
    criterion: Text
    legal_basis: Text
    record_ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=100)]


class Notice(Struct, forbid_unknown_fields=True, kw_only=True):
    channel: Short
    on: date | None = None
    version: Version | None = None


class Listing(Struct, forbid_unknown_fields=True, kw_only=True):
    planned_removal_on: date | None = None
    version: Version | None = None


class Removal(Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Literal["period_ended", "credit_repair_approved", "decision_revoked",
                    "decision_corrected"]
    version: Version | None = None


class Withdrawal(Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Text
    version: Version | None = None


class BlacklistEntry(Struct, kw_only=True):
    id: uuid.UUID
    subject_id: uuid.UUID
    criterion: str
    legal_basis: str
    record_ids: list[uuid.UUID]
    state: str
    proposed_on: date
    notified_on: date | None
    notice_channel: str | None
    objection_deadline: date | None
    listed_on: date | None
    planned_removal_on: date | None
    removed_on: date | None
    removal_reason: str | None
    withdrawn_on: date | None
    withdrawal_reason: str | None
    pending_objection: bool
    under_objection: bool
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    log_index: int
    receipt: Receipt | None = None


class BlacklistPage(Struct):
    items: list[BlacklistEntry]
    next_cursor: str | None


TargetType = Literal["credit_record", "blacklist_entry"]


class ObjectionIn(Struct, forbid_unknown_fields=True, kw_only=True):
    target_type: TargetType
    target_id: uuid.UUID
    grounds: LongText




class ObjectionDecision(Struct, forbid_unknown_fields=True, kw_only=True):
    """Upheld needs ``action``: revoke, or correct with ``corrections``; rejected takes neither."""

    outcome: Literal["upheld", "rejected"]
    note: Text | None = None
    action: Literal["revoke", "correct"] | None = None
    corrections: RecordCorrectionFields | None = None


# Beside every working-day deadline: one shape for all of them.
_PROVISIONAL = (
    "True when the deadline reaches into a year whose State Council holiday notice the "
    "registry does not know yet: it is counted Monday to Friday for now and will be counted "
    "again, possibly moving, once that year's calendar is added (the change is an audited "
    "change by `system:calendar`). False: final."
)


class Objection(Struct, kw_only=True):
    id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    subject_id: uuid.UUID
    filed_by: str
    grounds: str
    state: str
    filed_on: date
    decide_due: Annotated[date, Meta(description=(
        "Last day for the department to decide: `objection_decide_days` working days after "
        "`filed_on` (not counted), in the official calendar (public holidays off, 调休 "
        "weekend days worked)."))]
    decide_due_provisional: Annotated[bool, Meta(description=_PROVISIONAL)]
    answer_due: Annotated[date, Meta(description=(
        "Last day to answer the applicant: `objection_answer_days` working days after "
        "`filed_on` (not counted), in the official calendar. After it a still-filed "
        "objection is overdue."))]
    answer_due_provisional: Annotated[bool, Meta(description=_PROVISIONAL)]
    decided_on: date | None
    decision_note: str | None
    decision_action: str | None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    log_index: int
    receipt: Receipt | None = None


class ObjectionWritten(Struct, kw_only=True):
    objection: Objection
    target_log_index: int
    receipt: Receipt


class ObjectionPage(Struct):
    items: list[Objection]
    next_cursor: str | None


class RepairIn(Struct, forbid_unknown_fields=True, kw_only=True):
    target_type: TargetType
    target_id: uuid.UUID
    grounds: LongText


class RepairDecision(Struct, forbid_unknown_fields=True, kw_only=True):
    note: Text | None = None


class Repair(Struct, kw_only=True):
    id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    subject_id: uuid.UUID
    route: str
    grounds: str
    state: str
    applied_on: date
    decided_on: date | None
    decision_note: str | None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    log_index: int
    receipt: Receipt | None = None


class RepairPage(Struct):
    items: list[Repair]
    next_cursor: str | None


class HistoryItem(Struct, kw_only=True):
    """One audited version: the leaf (public) and the stored row it commits to."""

    object_type: str
    object_id: str
    log_index: int
    action: str
    actor: str
    time: str
    row: dict[str, Any]


def view(kind: type[Any], row: asyncpg.Record, receipt: Receipt | None = None) -> Any:
    """A response struct from a database row (plus the receipt of the write, if any)."""
    data = dict(row)
    if receipt is not None:
        data["receipt"] = msgspec.structs.asdict(receipt)
    return msgspec.convert(data, kind)



def credit_record(row: asyncpg.Record, on: date, receipt: Receipt | None = None) -> CreditRecord:
    """The regulator's view of a record row on day ``on``: ``published`` is whether it is in
    publication that day (``disclosure.RECORDS``), ``publishable`` the stored column, and
    ``masked_on_publication`` what masking audiences will see masked in its free text."""
    stored = dict(row)
    data = {
        **stored,
        "published": RECORDS.shown(stored, on),
        "publishable": stored["published"],
        "masked_on_publication": [
            {"field": field, "count": count}
            for field, count in numbers_in_free_text("credit_record", stored)
        ],
    }
    if receipt is not None:
        data["receipt"] = msgspec.structs.asdict(receipt)
    record: CreditRecord = msgspec.convert(data, CreditRecord)
    return record
