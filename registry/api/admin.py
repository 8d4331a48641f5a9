"""Admin routes: API tokens (issue, list, revoke) and authorities (add, list, deactivate).

Admins manage who may act; they read no registry data and no personal data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Meta, Struct

from registry.api.auth import BEARER, requires
from registry.api.openapi import problem_responses
from registry.authorities import add_authority, deactivate_authority, list_authorities
from registry.services import Services
from registry.structs.common import Receipt
from registry.tokens import Principal, issue_token, list_tokens, revoke_token


class TokenRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    role: Annotated[str, Meta(description="regulator, bureau or admin", max_length=20)]
    name: Annotated[
        str,
        Meta(min_length=1, max_length=200,
             description="The holder, for people; unique among live tokens of the role. One line "
                         "of visible text, trimmed and stored in NFC (README, \"Text rules\")"),
    ]
    authority_code: Annotated[
        str,
        Meta(max_length=40,
             description="Required for a regulator: the active authority it records decisions for"),
    ] | None = None


class AuthorityRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    code: Annotated[str, Meta(max_length=40, description="GB 32100 code of a government body (11…)")]
    name: Annotated[str, Meta(min_length=1, max_length=200,
                              description="The official name: one line of visible text, trimmed "
                                          "and stored in NFC (README, \"Text rules\")")]


class AuthorityInfo(Struct, kw_only=True):
    id: uuid.UUID
    code: str
    name: str
    active: bool
    live_tokens: int | None = None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    log_index: int


class AuthorityWritten(Struct, kw_only=True):
    authority: AuthorityInfo
    # Deactivation: the live tokens of the authority, refused from now on.
    refused_tokens: list[uuid.UUID]
    receipt: Receipt


class TokenInfo(Struct, kw_only=True):
    id: uuid.UUID
    name: str
    role: str
    authority_code: str | None
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    log_index: int


class IssuedToken(Struct, kw_only=True):
    token: Annotated[str, Meta(description="Shown once; only its hash is stored")]
    info: TokenInfo
    receipt: Receipt


class RevokedToken(Struct, kw_only=True):
    info: TokenInfo
    receipt: Receipt


def _info(row: asyncpg.Record) -> TokenInfo:
    get = row.__getitem__
    return TokenInfo(
        id=get("id"),
        name=get("name"),
        role=get("role"),
        authority_code=get("authority_code"),
        prefix=get("prefix"),
        created_at=get("created_at"),
        created_by=get("created_by"),
        revoked_at=get("revoked_at"),
        revoked_by=get("revoked_by"),
        log_index=get("log_index"),
    )


class TokenController(Controller):
    path = "/v1/admin/tokens"
    tags = ["admin"]
    security = BEARER
    middleware = [requires("admin")]

    @get("/", responses=problem_responses(401, 403), summary="List API tokens (never the secrets)")
    async def list_all(self, services: NamedDependency[Services]) -> list[TokenInfo]:
        return [_info(r) for r in await list_tokens(services.pool)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        # 409: a live token of the role already has the name (registry/tokens.py).
        responses=problem_responses(400, 401, 403, 409, 422),
        summary="Issue a token; the secret is in this answer only",
    )
    async def issue(
        self,
        data: JSONBody[TokenRequest],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> IssuedToken:
        token, written = await issue_token(
            services.pool, services.clock, role=data.role, name=data.name, actor=principal.actor,
            authority_code=data.authority_code,
        )
        receipt = await services.receipt(written.log_index)
        return IssuedToken(
            token=token,
            info=_info(written.row),
            receipt=receipt,
        )

    @post(
        "/{token_id:uuid}/revoke",
        status_code=HTTP_200_OK,
        responses=problem_responses(401, 403, 404, 409),
        summary="Revoke a token at once",
    )
    async def revoke(
        self,
        token_id: FromPath[uuid.UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> RevokedToken:
        written = await revoke_token(
            services.pool, services.clock, token_id=token_id, actor=principal.actor
        )
        # Committed: drop it here before answering, not when our own notification comes
        # back, so in this process the very next request with it is refused.
        services.tokens.forget(token_id)
        receipt = await services.receipt(written.log_index)
        return RevokedToken(
            info=_info(written.row),
            receipt=receipt,
        )


def _authority(row: asyncpg.Record) -> AuthorityInfo:
    fields = {f: row[f] for f in AuthorityInfo.__struct_fields__ if f in row.keys()}  # noqa: SIM118 - asyncpg.Record
    return AuthorityInfo(**fields)


class AuthorityController(Controller):
    path = "/v1/admin/authorities"
    tags = ["admin"]
    security = BEARER
    middleware = [requires("admin")]

    @get("/", responses=problem_responses(401, 403),
         summary="List authorities (active and deactivated) with their live token counts")
    async def list_all(self, services: NamedDependency[Services]) -> list[AuthorityInfo]:
        return [_authority(r) for r in await list_authorities(services.pool)]

    @post("/", status_code=HTTP_201_CREATED, responses=problem_responses(400, 401, 403, 409, 422),
          summary="Register an authority (a government body's GB 32100 code and its name)")
    async def add(self, data: JSONBody[AuthorityRequest], services: NamedDependency[Services],
                  principal: NamedDependency[Principal]) -> AuthorityWritten:
        written = await add_authority(services.pool, services.clock, code=data.code,
                                      name=data.name, actor=principal.actor)
        receipt = await services.receipt(written.log_index)
        return AuthorityWritten(authority=_authority(written.row), refused_tokens=[],
                                receipt=receipt)

    @post("/{code:str}/deactivate", status_code=HTTP_200_OK,
          responses=problem_responses(401, 403, 404, 409, 422),
          summary="Deactivate an authority: its regulator tokens are refused at once")
    async def deactivate(self, code: FromPath[str], services: NamedDependency[Services],
                         principal: NamedDependency[Principal]) -> AuthorityWritten:
        written, refused = await deactivate_authority(services.pool, services.clock, code=code,
                                                      actor=principal.actor)
        # Committed: refuse them here before answering (other processes hear the notices).
        for token_id in refused:
            services.tokens.forget(token_id)
        receipt = await services.receipt(written.log_index)
        return AuthorityWritten(authority=_authority(written.row), refused_tokens=refused,
                                receipt=receipt)
