"""Regulator routes for fund managers: which vc_manager manages a vc_firm, and when
(thin: parse, call ``registry.fund_managers``, shape)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

import asyncpg
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import UNSET, Meta, Struct, UnsetType

from registry import fund_managers
from registry.api.auth import BEARER, requires
from registry.api.openapi import problem_responses
from registry.credit.ownership import deciding_authority
from registry.services import Services
from registry.structs.common import Receipt
from registry.structs.credit import Version
from registry.tokens import Principal

_LAST_DAY = "its last day (inclusive), a Xining day"


class FundManagerIn(Struct, forbid_unknown_fields=True, kw_only=True):
    manager_id: Annotated[
        uuid.UUID, Meta(description="The vc_manager subject (创业投资管理企业) that manages the firm")
    ]
    valid_from: Annotated[date, Meta(description="Its first day (a Xining day)")]
    valid_to: Annotated[date, Meta(description=f"{_LAST_DAY}; omit it while it lasts")] | None = None


class FundManagerEnd(Struct, forbid_unknown_fields=True, kw_only=True):
    valid_to: Annotated[date, Meta(description=_LAST_DAY)]


class FundManagerCorrection(Struct, forbid_unknown_fields=True, kw_only=True):
    """The days to correct; a field left out stays, ``valid_to: null`` reopens the relation."""

    version: Version
    valid_from: date | UnsetType = UNSET
    valid_to: date | UnsetType | None = UNSET


class FundManager(Struct, kw_only=True):
    id: uuid.UUID
    firm_id: uuid.UUID
    # Both sides' current names and credit codes, so nobody needs a second read.
    firm_name: str
    firm_credit_code: str
    manager_id: uuid.UUID
    manager_name: str
    manager_credit_code: str
    valid_from: date
    valid_to: date | None
    version: int
    log_index: int


class FundManagerWritten(Struct):
    fund_manager: FundManager
    receipt: Receipt


def fund_manager_view(row: asyncpg.Record) -> FundManager:
    """From a row of ``fund_managers.with_names`` or ``fund_managers.relations_of``."""
    return FundManager(**{f: row[f] for f in FundManager.__struct_fields__})


async def _written(services: Services, relation_id: uuid.UUID, log_index: int) -> FundManagerWritten:
    receipt = await services.receipt(log_index)
    row = await fund_managers.with_names(services, relation_id)
    return FundManagerWritten(fund_manager=fund_manager_view(row), receipt=receipt)


class SubjectFundManagerController(Controller):
    path = "/v1/subjects"
    tags = ["subjects"]
    security = BEARER

    @post(
        "/{subject_id:uuid}/fund-managers",
        middleware=[requires("regulator")],
        status_code=HTTP_201_CREATED,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
        summary="Record a firm's fund manager (the management enterprise that manages it)",
        description=(
            "The path names a vc_firm (创业投资企业), `manager_id` a vc_manager (创业投资管理企业). "
            "Both days are included; omit `valid_to` while the relation lasts. A firm has one "
            "manager at a time: a span sharing a day with one of its relations is a 409 naming "
            "the day at fault (`valid_from` or `valid_to`), the relation in `existing_id` and "
            "what would fit in `accepted`. Any other kind on either side is a 422 naming "
            "`subject_id` or `manager_id`. Subjects are shared master data: any regulator of "
            "an authority records them. The answer carries the relation's audit-log receipt."
        ),
    )
    async def name_manager(
        self,
        subject_id: FromPath[uuid.UUID],
        data: JSONBody[FundManagerIn],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> FundManagerWritten:
        deciding_authority(principal)
        written = await fund_managers.name_manager(
            services, principal.actor, subject_id, data.manager_id, data.valid_from, data.valid_to
        )
        return await _written(services, written.row["id"], written.log_index)

    @get(
        "/{subject_id:uuid}/fund-managers",
        middleware=[requires("regulator")],
        responses=problem_responses(401, 403, 404),
        summary="A subject's fund-manager relations: a firm's managers, a manager's firms",
        description=(
            "Every relation the subject is part of, as firm or as manager, ended ones too, "
            "oldest first (a practitioner has none: see its affiliations)."
        ),
    )
    async def list_relations(
        self, subject_id: FromPath[uuid.UUID], services: NamedDependency[Services]
    ) -> list[FundManager]:
        rows = await fund_managers.relations_of(services, subject_id)
        return [fund_manager_view(r) for r in rows]


class FundManagerController(Controller):
    path = "/v1/fund-managers"
    tags = ["subjects"]
    security = BEARER

    @get(
        "/{relation_id:uuid}",
        middleware=[requires("regulator")],
        responses=problem_responses(401, 403, 404),
        summary="Read a fund-manager relation",
    )
    async def read(
        self, relation_id: FromPath[uuid.UUID], services: NamedDependency[Services]
    ) -> FundManager:
        return fund_manager_view(await fund_managers.with_names(services, relation_id))

    @post(
        "/{relation_id:uuid}/end",
        middleware=[requires("regulator")],
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
        summary="End a fund-manager relation on a day (its last)",
        description=(
            "As an affiliation ends: 409 if it has ended already (correct its days instead), "
            "422 naming `valid_to` for a day before `valid_from` or more than 50 years after it."
        ),
    )
    async def end(
        self,
        relation_id: FromPath[uuid.UUID],
        data: JSONBody[FundManagerEnd],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> FundManagerWritten:
        deciding_authority(principal)
        written = await fund_managers.end_manager(
            services, principal.actor, relation_id, data.valid_to
        )
        return await _written(services, relation_id, written.log_index)

    @patch(
        "/{relation_id:uuid}",
        middleware=[requires("regulator")],
        responses=problem_responses(400, 401, 403, 404, 409, 422),
        summary="Correct a fund-manager relation's days (optimistic: send its current version)",
        description=(
            "A new version of the relation with the days sent; the other stays. Checked as a new "
            "relation is: a span sharing a day with another relation of the firm is a 409 naming "
            "the day, a stale `version` a 409 naming `version`."
        ),
    )
    async def correct(
        self,
        relation_id: FromPath[uuid.UUID],
        data: JSONBody[FundManagerCorrection],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> FundManagerWritten:
        deciding_authority(principal)
        changes: dict[str, date | None] = {}
        if not isinstance(data.valid_from, UnsetType):
            changes["valid_from"] = data.valid_from
        if not isinstance(data.valid_to, UnsetType):
            changes["valid_to"] = data.valid_to
        written = await fund_managers.correct_manager(
            services, principal.actor, relation_id, data.version, changes
        )
        return await _written(services, relation_id, written.log_index)
