"""Every console form carries a CSRF token: Litestar's CSRF middleware, on the console only.

The API authenticates with bearer tokens, which a browser never sends by itself, so it
needs no CSRF token; the console authenticates with a cookie, which it does. The
middleware (a double-submit cookie signed with HMAC) runs on the console router, with
the database's one secret (``sessions.csrf_secret``) so that every server process
accepts what another rendered. Its cookie is ``Secure`` when the request came over
HTTPS (``scope["scheme"]``, which uvicorn sets from a trusted proxy's
X-Forwarded-Proto); Litestar fixes that flag per configuration, hence one middleware
per scheme.
"""

from __future__ import annotations

from litestar.config.csrf import CSRFConfig
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from registry.console.sessions import csrf_secret

CSRF_COOKIE = "registry_console_csrf"
# The form field Litestar's middleware reads (it is not configurable).
CSRF_FIELD = "_csrf_token"


def https(scope: Scope) -> bool:
    return scope.get("scheme") == "https"


class ConsoleCsrf:
    """ASGI middleware for the console router (``middleware=[ConsoleCsrf]``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._by_scheme: dict[bool, CSRFMiddleware] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = https(scope)
        inner = self._by_scheme.get(secure)
        if inner is None:
            secret = await csrf_secret(scope["app"].state.services.pool)
            inner = self._by_scheme[secure] = CSRFMiddleware(self.app, CSRFConfig(
                secret=secret, cookie_name=CSRF_COOKIE, cookie_path="/console",
                cookie_secure=secure, cookie_httponly=True, cookie_samesite="strict",
            ))
        await inner(scope, receive, send)


def csrf_token(scope: Scope) -> str:
    """The token to put in this page's forms (set by the middleware for this request)."""
    token = ScopeState.from_scope(scope).csrf_token
    return token if isinstance(token, str) else ""
