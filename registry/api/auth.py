"""Who may call what: bearer tokens, checked by the token cache (``registry/token_cache.py``):
from memory while revocations can be heard, else against the database.

``requires(*roles)`` is a route middleware (``middleware=[requires("regulator")]`` on
a controller or handler); the authenticated ``Principal`` is left in the request
state for handlers (``provide_principal``). A middleware rather than a Litestar
guard because Litestar copies the route handler for every guard call, which cost
more than the rest of the check on a cached profile read; it runs at the same
point (after routing, before the body is parsed), so a request is refused before
anything else is looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from registry.errors import Forbidden, Unauthenticated
from registry.services import Services
from registry.tokens import Principal

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

# Run after a principal is accepted, before the handler (e.g. the bureau rate limit).
Then = Callable[[Services, Principal], None]
Middleware = Callable[[ASGIApp], ASGIApp]


def _token_from(scope: Scope) -> str:
    # Straight from the raw headers: building Litestar's Headers object for one
    # lookup cost more than the lookup.
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if not header:
        raise Unauthenticated("missing Authorization header; send `Authorization: Bearer <token>`")
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be `Bearer <token>`")
    return token.strip()


async def authorise(scope: Scope, roles: tuple[str, ...]) -> tuple[Services, Principal]:
    """The services and the caller holding one of ``roles``; raises 401 or 403."""
    token = _token_from(scope)
    services: Services = scope["app"].state.services
    principal = await services.tokens.authenticate(token)
    if principal is None:
        raise Unauthenticated("the token is unknown or revoked")
    if principal.role not in roles:
        raise Forbidden(
            f"this needs the role {' or '.join(roles)}; the token's role is {principal.role}"
        )
    if not principal.authority_active:
        raise Forbidden(
            f"the token's authority {principal.authority_code} is deactivated; "
            "its tokens are refused (an admin can list authorities at /v1/admin/authorities)"
        )
    return services, principal


def requires(*roles: str, then: Then | None = None) -> Middleware:
    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.HTTP:
                services, principal = await authorise(scope, roles)
                scope.setdefault("state", {})["principal"] = principal
                if then is not None:
                    then(services, principal)
            await app(scope, receive, send)

        return middleware

    return wrap


def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal: Principal = request.scope["state"]["principal"]
    return principal
