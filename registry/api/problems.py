"""The one mapping from errors to HTTP: every error leaves as RFC 9457 problem details.

Domain errors carry their own status; framework errors (validation, routing,
body size) are reshaped so that each names the field and what is accepted.
Anything unexpected becomes a 500 problem without internals, and is logged.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from registry.errors import RegistryError, Unauthenticated, Unavailable, UnsupportedMediaType

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
NO_SNIFF = {"X-Content-Type-Options": "nosniff"}
_TYPE_BASE = "https://registry.example/problems/"


def problem_response(
    status: int,
    title: str,
    detail: str,
    slug: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[bytes]:
    body: dict[str, Any] = {
        "type": _TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        # Also here, not only at the edge (api/middleware.py): an answer that is a problem
        # stays one wherever it is served from.
        headers={**NO_SNIFF, **(headers or {})},
    )


def handle_registry_error(request: Request[Any, Any, Any], error: RegistryError) -> Response[bytes]:
    headers = None
    if isinstance(error, Unavailable):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, Unauthenticated):
        # RFC 6750 §3: say which scheme the resource wants.
        headers = {"WWW-Authenticate": 'Bearer realm="vc-credit-registry"'}
    elif isinstance(error, UnsupportedMediaType):
        # RFC 9110 §15.5.16: say which media types the method accepts.
        accept = "Accept-Patch" if request.method == "PATCH" else "Accept-Post"
        headers = {accept: error.media_types}
    extra = dict(error.extra)
    extra.pop("retry_after", None)
    return problem_response(
        error.status,
        error.title,
        error.detail,
        error.type_slug,
        instance=request.url.path,
        headers=headers,
        **extra,
    )


_ACCEPTED_HINTS = {
    "Expected `object`": "a JSON object",
    "Object contains unknown field": "only the fields listed in the OpenAPI document",
    "Invalid value": "one of the values listed in the OpenAPI document",
    "Expected `str` of length": "text within the documented length",
    "Expected `array` of length": "a list within the documented length",
    "Expected `int`": "a whole number within the documented range",
    "Expected `str`": "a JSON string",
    "Invalid date": "a date as YYYY-MM-DD",
    "Expected `date`": "a date as YYYY-MM-DD",
    "Object missing required field": "the object with every required field",
    "Expected `int` >=": "a whole number within the documented range",
    "Expected `int` <=": "a whole number within the documented range",
}


def _accepted_for(message: str) -> str | None:
    for prefix, hint in _ACCEPTED_HINTS.items():
        if message.startswith(prefix):
            return hint
    return None


_BACKTICKED = re.compile(r"field `([^`]+)`")
# Litestar's words for a parameter that is not there at all (it names no key for it).
_MISSING_PARAMETER = re.compile(r"Missing required (query|header|path|cookie) parameter '([^']+)'")


def _field_name(key: str, message: str) -> str:
    """The request field a framework message is about, in the body's own terms."""
    named = _BACKTICKED.search(message)
    if key in ("", "data") and named:
        return named.group(1)
    if key.startswith("data."):
        return key.removeprefix("data.")
    return "body" if key in ("", "data") else key


def handle_validation_error(
    request: Request[Any, Any, Any], error: ValidationException
) -> Response[bytes]:
    errors: list[dict[str, Any]] = []
    raw = error.extra if isinstance(error.extra, list) else []
    for item in raw:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        field = _field_name(str(item.get("key") or ""), message)
        source = item.get("source")
        errors.append(
            {
                "field": field,
                "source": source,
                "reason": message,
                "accepted": _accepted_for(message),
            }
        )
    missing = _MISSING_PARAMETER.search(str(error.detail))
    if not errors and missing:
        source, name = missing.groups()
        errors.append(
            {
                "field": name,
                "source": source,
                "reason": f"the {source} parameter is required",
                "accepted": "see the operation's parameters in the OpenAPI document",
            }
        )
    if not errors:
        detail = str(error.detail)
        malformed = "JSON" in detail or "decode" in detail.lower()
        errors.append(
            {
                "field": "body",
                "source": "body",
                "reason": "malformed JSON" if malformed else detail,
                "accepted": "a JSON object as described in the OpenAPI document",
            }
        )
    first = errors[0]
    return problem_response(
        400,
        "Invalid request",
        f"{first['field']}: {first['reason']}",
        "invalid-request",
        instance=request.url.path,
        field=first["field"],
        reason=first["reason"],
        accepted=first["accepted"],
        source=first["source"],
        errors=errors,
    )


def handle_http_exception(request: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    status = error.status_code
    if status == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        return problem_response(
            413,
            "Request body too large",
            f"body: the request body is larger than this route accepts ({limit} bytes)",
            "body-too-large",
            instance=request.url.path,
            field="body",
            reason="too large",
            limit_bytes=limit,
            accepted=f"a body of at most {limit} bytes (REGISTRY_MAX_BODY_BYTES)",
        )
    if status == 405:
        return problem_response(
            405,
            "Method not allowed",
            str(error.detail),
            "method-not-allowed",
            instance=request.url.path,
            headers=error.headers,
        )
    if status == 404:
        return problem_response(
            404, "Not found", "no such resource", "not-found", instance=request.url.path
        )
    if status >= 500:
        log.error("http_error", status=status, detail=str(error.detail))
        return problem_response(
            status,
            "Server error",
            "the server could not answer",
            "internal",
            instance=request.url.path,
        )
    if status == 400:
        # Framework 400s that are not field validation: undecodable bodies and the like.
        return problem_response(
            400,
            "Invalid request",
            f"body: {error.detail}",
            "invalid-request",
            instance=request.url.path,
            field="body",
            reason=str(error.detail),
            accepted="a JSON object as described in the OpenAPI document",
        )
    return problem_response(
        status,
        "Request refused",
        str(error.detail),
        "http-error",
        instance=request.url.path,
        headers=error.headers,
    )


def handle_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    if isinstance(
        error,
        OSError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.PostgresConnectionError
        # PostgreSQL stopping or restarting: "terminating connection due to administrator
        # command", a crash of another backend, and asyncpg's own state error when the
        # connection dies under a query (seen while the server shuts down).
        | asyncpg.AdminShutdownError
        | asyncpg.CrashShutdownError
        | asyncpg.InternalClientError,
    ):
        log.warning("database_unavailable", error=type(error).__name__)
        return problem_response(
            503,
            "Service unavailable",
            "the database is unreachable; retry shortly",
            "unavailable",
            instance=request.url.path,
            headers={"Retry-After": "2"},
        )
    if isinstance(error, asyncpg.LockNotAvailableError | asyncpg.QueryCanceledError):
        log.warning("database_busy", error=type(error).__name__)
        return problem_response(
            503, "Service busy", "the registry is busy writing; retry shortly",
            "busy", instance=request.url.path, headers={"Retry-After": "1"},
        )
    if isinstance(error, asyncpg.DataError | asyncpg.NumericValueOutOfRangeError):
        # A value the database cannot hold (e.g. a number beyond 64 bits) that no
        # schema limit caught: the client's input, so a 4xx, but logged to add the limit.
        log.warning("input_out_of_range", error_type=type(error).__name__)
        return problem_response(
            422, "Invalid input", "a value is out of the range the registry stores",
            "invalid-input", instance=request.url.path, field="body",
            accepted="numbers and dates within the documented ranges",
        )
    log.exception("unhandled_error", error_type=type(error).__name__)
    return problem_response(
        500,
        "Internal error",
        "an unexpected error occurred; it was logged",
        "internal",
        instance=request.url.path,
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    RegistryError: handle_registry_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}

MEDIA_TYPE_PROBLEM = MediaType.JSON
