"""Who may call what: bearer tokens checked against the database on every request.

``requires(*roles)`` is a guard; the authenticated ``Principal`` is left in
``connection.state.principal`` for handlers (``provide_principal``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from registry.errors import Forbidden, Unauthenticated
from registry.tokens import Principal, authenticate

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _token_from(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization")
    if not header:
        raise Unauthenticated("missing Authorization header; send `Authorization: Bearer <token>`")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be `Bearer <token>`")
    return token.strip()


def requires(*roles: str) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        token = _token_from(connection)
        services = connection.app.state.services
        principal = await authenticate(services.pool, token)
        if principal is None:
            raise Unauthenticated("the token is unknown or revoked")
        connection.state.principal = principal
        if principal.role not in roles:
            raise Forbidden(
                f"this needs the role {' or '.join(roles)}; the token's role is {principal.role}"
            )

    return guard


def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal: Principal = request.state.principal
    return principal
