"""The bodies that register a subject (``POST /v1/subjects``): their constraints are the
first check of every registration, the API's and the importer's alike."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from msgspec import Meta, Struct

from registry.structs.common import Code, DocumentNumber, DocumentTypeName, Name

Region = Annotated[str, Meta(min_length=1, max_length=100)]
FilingNumber = Annotated[str, Meta(min_length=1, max_length=64)]
Role = Annotated[str, Meta(min_length=1, max_length=100, description="Role held, e.g. 投资经理")]


class AffiliationIn(Struct, forbid_unknown_fields=True, kw_only=True):
    organisation_id: uuid.UUID
    role: Role
    valid_from: date
    valid_to: date | None = None


class _Organisation(Struct, forbid_unknown_fields=True, kw_only=True, tag_field="kind"):
    name: Name
    credit_code: Code
    registered_region: Region | None = None
    filing_number: FilingNumber | None = None
    filing_date: date | None = None
    legal_representative: Name | None = None


class VcFirmCreate(_Organisation, tag="vc_firm"):
    """A venture-capital enterprise (創業投資企業)."""


class VcManagerCreate(_Organisation, tag="vc_manager"):
    """A venture-capital management enterprise (創業投資管理企業)."""


class PractitionerCreate(
    Struct, forbid_unknown_fields=True, kw_only=True, tag_field="kind", tag="practitioner"
):
    """A practitioner (從業人員); the document number is personal data, encrypted at rest."""

    name: Name
    document_type: DocumentTypeName
    document_number: DocumentNumber
    birth_date: Annotated[
        date,
        Meta(description="Required when the number carries no birth date (passport, permits, "
             "other): whether the holder is a minor decides what may be disclosed. Stored "
             "encrypted; omit it for a resident-ID number (it carries the date)."),
    ] | None = None
    affiliations: Annotated[list[AffiliationIn], Meta(max_length=50)] = []


SubjectCreate = VcFirmCreate | VcManagerCreate | PractitionerCreate
