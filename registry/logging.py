"""Structured logs: JSON off a terminal, a request id on every line, no personal data.

Personal data never reaches a log call in the first place (document numbers
travel in request bodies, which are not logged); as a second line of defence a
processor drops any field whose name suggests a document number or a secret.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_FORBIDDEN = ("document_number", "token", "password", "passphrase", "secret", "authorization")


def _drop_sensitive(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _FORBIDDEN):
            event[key] = "[redacted]"
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing.

    Loggers are cached on first use; binding the stream object itself would keep
    a replaced stream (a test's capture, a closed pipe) alive in them forever.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(fmt: str = "auto", level: int = logging.INFO) -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_sensitive,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
