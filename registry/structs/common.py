"""Request and response types shared by several controllers (msgspec Structs).

Size limits live here, in ``Meta`` constraints, so that the OpenAPI document
states them and oversize input is refused before any code runs.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from registry.services import Receipt

Name = Annotated[str, Meta(min_length=1, max_length=200, description="Full name, 1–200 characters")]
ShortText = Annotated[str, Meta(min_length=1, max_length=200)]
Code = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=40,
        description="Unified social credit code (GB 32100-2015): 18 characters, check character last",
        examples=["91350100M000100Y43"],
    ),
]
DocumentNumber = Annotated[
    str, Meta(min_length=1, max_length=40, description="Document number; personal data")
]
DocumentTypeName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=40,
        description=(
            "resident_id, passport, hk_macao_permit, taiwan_permit, hmt_residence_permit, "
            "foreign_permanent_residence or other"
        ),
    ),
]
Limit = Annotated[int, Meta(ge=1, le=500)]


class Problem(Struct, kw_only=True):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    reason: str | None = None
    accepted: str | None = None
    errors: list[dict[str, Any]] | None = None


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


__all__ = [
    "Code",
    "DocumentNumber",
    "DocumentTypeName",
    "Limit",
    "Name",
    "Problem",
    "Receipt",
    "ShortText",
    "date",
    "datetime",
]
