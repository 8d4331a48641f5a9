"""The app's edge: request ids, access logs, ``nosniff`` and ``HEAD``, around everything.

``edge`` wraps the whole Litestar handler (routing and its exception layer included), not
one route's stack: so refusals raised before a route runs (authentication's 401 and 403,
an unknown path's 404, a 405) carry ``X-Request-ID`` and are logged with their status like
every other answer. (As a Litestar app middleware it ran inside the route, and those
refusals were answered past it: no id, status 0 in the log.)

Only the method, the path, status and timing are logged: never query strings or bodies,
which may carry personal data.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from registry.logging import REQUEST_ID, log_request

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Any HTML answer that sets no policy of its own (the API docs; the public pages set a
# stricter one): scripts only from this server, never inline; never framed. Swagger UI
# sets styles from its script and draws icons as data: URIs.
DEFAULT_HTML_SECURITY: Final = (
    (b"content-security-policy", (
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def _secured(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {k.lower() for k, _ in headers}
    if b"x-content-type-options" not in names:
        # Every answer is what its Content-Type says: never sniffed as HTML.
        headers.append((b"x-content-type-options", b"nosniff"))
    html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
    if html and b"content-security-policy" not in names:
        headers.extend(h for h in DEFAULT_HTML_SECURITY if h[0] not in names)
    return headers


def _with_full_allow(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # Litestar's automatic OPTIONS answer can list the methods of only one of the
    # handlers sharing a path; answer with every method the path really accepts.
    template = scope.get("path_template")
    app = scope.get("app")
    methods: set[str] = set()
    if template and app is not None:
        for route in app.routes:
            if template in (route.path, route.path_format):
                methods |= set(getattr(route, "methods", ()))
    given = next((v for k, v in headers if k.lower() == b"allow"), b"")
    methods |= {m.strip() for m in given.decode("latin-1").split(",") if m.strip()}
    if not methods:
        return headers
    if "GET" in methods:
        methods.add("HEAD")  # answered at the edge (below)
    allow = ", ".join(sorted(methods)).encode()
    return [(k, v) for k, v in headers if k.lower() != b"allow"] + [(b"allow", allow)]


def edge(app: ASGIApp) -> ASGIApp:
    """Wrap the app's whole ASGI handler (``app.asgi_handler``; see ``create_app``)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        incoming = raw.decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else secrets.token_hex(8)
        method = scope["method"]
        # HEAD is GET without the body (RFC 9110 §9.3.2), wherever GET is: the same headers,
        # Content-Length included, the same authentication and accounting.
        head = method == "HEAD"
        if head:
            scope["method"] = "GET"
        serving = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 0}

        async def send_at_edge(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers = _secured(headers)
                if (method == "OPTIONS" and status["code"] == 204) or status["code"] == 405:
                    headers = _with_full_allow(scope, headers)
                message["headers"] = headers
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await app(scope, receive, send_at_edge)
        finally:
            seconds = time.perf_counter() - started
            log_request(method, scope["path"], status["code"], round(seconds * 1000, 2),
                        request_id)
            services = getattr(scope["app"].state, "services", None)
            if services is not None:
                # By route template (set by the router): one series per route, not per id.
                services.metrics.observe_request(
                    method, scope.get("path_template"), status["code"], seconds)
            REQUEST_ID.reset(serving)

    return middleware
