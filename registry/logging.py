"""Structured logs: JSON off a terminal, a request id on every line, no personal data.

Personal data never reaches a log call in the first place (document numbers
travel in request bodies, which are not logged); as a second line of defence a
processor drops any field whose name suggests a document number or a secret.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

_FORBIDDEN = ("document_number", "token", "password", "passphrase", "secret", "authorization")


@functools.lru_cache(maxsize=4096)
def _is_sensitive(key: str) -> bool:
    # Cached: log calls repeat a handful of keys, and this runs on every request.
    return any(word in key.lower() for word in _FORBIDDEN)


def _drop_sensitive(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event:
        if _is_sensitive(key):
            event[key] = "[redacted]"
    return event


def _timestamp(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # structlog's TimeStamper does the same several times slower (one line per request).
    event["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return event


_JSON = msgspec.json.Encoder(enc_hook=str)

# The request being served (registry/api/middleware.py), on every line logged while
# serving it. A variable of our own rather than structlog's bind_contextvars, which
# looks up and sets a variable per key on every request.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _json_line(event: Any, **_: Any) -> str:
    # msgspec instead of the json module: the access log's share of a request halves.
    return _JSON.encode(event).decode()


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing.

    Loggers are cached on first use; binding the stream object itself would keep
    a replaced stream (a test's capture, a closed pipe) alive in them forever.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _RequestLines:
    """How ``log_request`` writes: set by ``configure_logging``."""

    enabled = True
    json = False


_REQUEST_LINES = _RequestLines()
_access = structlog.get_logger("registry.access")


def log_request(method: str, path: str, status: int, ms: float, request_id: str) -> None:
    """The ``request_finished`` line every request ends with.

    In JSON it is written straight, the same line structlog would write: it is the
    one log call made for every request, and structlog's processor chain (walking
    every context variable, redaction, rendering) cost ~8 % of a cached profile read.
    Its fields are fixed and none is personal (bodies and query strings are never
    logged), so redaction has nothing to do. The console format goes through structlog.
    """
    if not _REQUEST_LINES.enabled:
        return
    if not _REQUEST_LINES.json:
        _access.info(
            "request_finished", method=method, path=path, status=status, ms=ms,
            request_id=request_id,
        )  # fmt: skip
        return
    line = {
        "method": method,
        "path": path,
        "status": status,
        "ms": ms,
        "event": "request_finished",
        "request_id": request_id,
        "level": "info",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    sys.stderr.write(_JSON.encode(line).decode() + "\n")


def configure_logging(fmt: str = "auto", level: int = logging.INFO) -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    _REQUEST_LINES.enabled = level <= logging.INFO
    _REQUEST_LINES.json = use_json
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _request_id,
            structlog.processors.add_log_level,
            _timestamp,
            _drop_sensitive,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
