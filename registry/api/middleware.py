"""Request ids and access logs as a plain ASGI middleware.

Only the method, the path template's concrete path, status and timing are
logged: never query strings or bodies, which may carry personal data.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from registry.logging import REQUEST_ID, log_request

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _with_full_allow(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # Litestar's automatic OPTIONS answer can list the methods of only one of the
    # handlers sharing a path; answer with every method the path really accepts.
    template = scope.get("path_template")
    app = scope.get("app")
    if not template or app is None:
        return headers
    methods: set[str] = set()
    for route in app.routes:
        if template in (route.path, route.path_format):
            methods |= set(getattr(route, "methods", ()))
    if not methods:
        return headers
    allow = ", ".join(sorted(methods)).encode()
    return [(k, v) for k, v in headers if k.lower() != b"allow"] + [(b"allow", allow)]


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        incoming = raw.decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else secrets.token_hex(8)
        serving = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                # Every answer is what its Content-Type says: never sniffed as HTML. (Problem
                # answers carry it already: api/problems.py.)
                if not any(k.lower() == b"x-content-type-options" for k, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                if scope.get("method") == "OPTIONS" and status["code"] == 204:
                    headers = _with_full_allow(scope, headers)
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            log_request(
                scope["method"],
                scope["path"],
                status["code"],
                round((time.perf_counter() - started) * 1000, 2),
                request_id,
            )
            REQUEST_ID.reset(serving)

    return middleware
