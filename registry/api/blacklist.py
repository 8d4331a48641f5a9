"""Regulator routes for the serious-dishonesty list (嚴重失信主體名單)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from registry.api.auth import BEARER, requires
from registry.api.openapi import enum_query, problem_responses
from registry.credit import blacklist
from registry.credit.common import decode_cursor, encode_cursor, fetch
from registry.db.writes import Written
from registry.errors import InvalidInput
from registry.services import Services
from registry.structs.credit import (
    BlacklistEntry,
    BlacklistPage,
    Listing,
    Notice,
    Proposal,
    Removal,
    Withdrawal,
    view,
)
from registry.tokens import Principal

_STEP = problem_responses(400, 401, 403, 404, 409, 422)


async def _answer(services: Services, written: Written) -> BlacklistEntry:
    entry: BlacklistEntry = view(BlacklistEntry, written.row,
                                 await services.receipt(written.log_index))
    return entry


class BlacklistController(Controller):
    path = "/v1/blacklist"
    tags = ["serious-dishonesty list"]
    security = BEARER
    middleware = [requires("regulator")]

    @post("/", status_code=HTTP_201_CREATED, responses=_STEP,
          summary="Propose listing a subject (organisation or practitioner)",
          description="Needs a criterion, its legal basis and at least one serious, unrevoked "
                      "record of the same subject (409 otherwise).")
    async def propose(self, data: JSONBody[Proposal], services: NamedDependency[Services],
                      principal: NamedDependency[Principal]) -> BlacklistEntry:
        written = await blacklist.propose(services, principal, data.subject_id,
                                          data.criterion, data.legal_basis, data.record_ids)
        return await _answer(services, written)

    @get("/", responses=problem_responses(400, 401, 403, 422),
         summary="List entries by state (keyset pagination by id)")
    async def list_entries(
        self,
        services: NamedDependency[Services],
        wanted: Annotated[
            str | None, enum_query(blacklist.STATES, "the entries' current state", query="state")
        ] = None,
        subject_id: FromQuery[uuid.UUID | None] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> BlacklistPage:
        if wanted is not None and wanted not in blacklist.STATES:
            raise InvalidInput("state", f"unknown state {wanted!r}", ", ".join(blacklist.STATES))
        after = decode_cursor(cursor, (uuid.UUID,))[0] if cursor else None
        rows = await blacklist.list_entries(services, state=wanted, subject_id=subject_id,
                                            after=after, limit=limit)
        next_cursor = encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
        return BlacklistPage(items=[view(BlacklistEntry, r) for r in rows], next_cursor=next_cursor)

    @get("/{entry_id:uuid}", responses=problem_responses(401, 403, 404), summary="Read an entry")
    async def read(self, entry_id: FromPath[uuid.UUID],
                   services: NamedDependency[Services]) -> BlacklistEntry:
        entry: BlacklistEntry = view(BlacklistEntry, await fetch(services, "blacklist_entry", entry_id))
        return entry

    @post("/{entry_id:uuid}/notify", status_code=HTTP_200_OK, responses=_STEP,
          summary="Record that the subject was told (告知); opens the objection window")
    async def notify(self, entry_id: FromPath[uuid.UUID], data: JSONBody[Notice],
                     services: NamedDependency[Services],
                     principal: NamedDependency[Principal]) -> BlacklistEntry:
        return await _answer(services, await blacklist.notify(
            services, principal, entry_id, data.channel, data.on, data.version))

    @post("/{entry_id:uuid}/list", status_code=HTTP_200_OK, responses=_STEP,
          summary="List the subject, after the objection window with no objection pending")
    async def list_entry(self, entry_id: FromPath[uuid.UUID], data: JSONBody[Listing],
                         services: NamedDependency[Services],
                         principal: NamedDependency[Principal]) -> BlacklistEntry:
        return await _answer(services, await blacklist.list_entry(
            services, principal, entry_id, data.planned_removal_on, data.version))

    @post("/{entry_id:uuid}/remove", status_code=HTTP_200_OK, responses=_STEP,
          summary="Remove a listed entry (period ended, repair, decision revoked or corrected)")
    async def remove(self, entry_id: FromPath[uuid.UUID], data: JSONBody[Removal],
                     services: NamedDependency[Services],
                     principal: NamedDependency[Principal]) -> BlacklistEntry:
        return await _answer(services, await blacklist.remove(
            services, principal, entry_id, data.reason, data.version))

    @post("/{entry_id:uuid}/withdraw", status_code=HTTP_200_OK, responses=_STEP,
          summary="Withdraw a proposal before it is listed")
    async def withdraw(self, entry_id: FromPath[uuid.UUID], data: JSONBody[Withdrawal],
                       services: NamedDependency[Services],
                       principal: NamedDependency[Principal]) -> BlacklistEntry:
        return await _answer(services, await blacklist.withdraw(
            services, principal, entry_id, data.reason, data.version))
