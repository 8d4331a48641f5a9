"""Admin routes: API tokens (issue, list, revoke)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
from litestar import Controller, get, post
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Meta, Struct

from registry.api.auth import BEARER, requires
from registry.api.openapi import problem_responses
from registry.api.schemas import Receipt
from registry.services import Services
from registry.tokens import Principal, issue_token, list_tokens, revoke_token


class TokenRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    role: Annotated[str, Meta(description="regulator, bureau or admin", max_length=20)]
    name: Annotated[
        str, Meta(min_length=1, max_length=200, description="The holder, as the log records it")
    ]


class TokenInfo(Struct, kw_only=True):
    id: uuid.UUID
    name: str
    role: str
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
    async def list_all(self, services: Services) -> list[TokenInfo]:
        return [_info(r) for r in await list_tokens(services.pool)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        responses=problem_responses(400, 401, 403, 422),
        summary="Issue a token; the secret is in this answer only",
    )
    async def issue(
        self, data: TokenRequest, services: Services, principal: Principal
    ) -> IssuedToken:
        token, written = await issue_token(
            services.pool, services.clock, role=data.role, name=data.name, actor=principal.actor
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
        self, token_id: uuid.UUID, services: Services, principal: Principal
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
