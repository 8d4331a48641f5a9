"""What can go wrong, as a small hierarchy the HTTP layer maps to RFC 9457 problems.

Domain code raises these; it never builds HTTP responses itself. Each category
maps to exactly one status code in ``registry.api.problems``.
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base of every error the registry reports to a caller on purpose."""

    status = 500
    title = "Internal error"
    type_slug = "internal"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(RegistryError):
    """A field of the request is wrong: says which, what was wrong, what is accepted."""

    status = 422
    title = "Invalid input"
    type_slug = "invalid-input"

    def __init__(
        self, field: str, reason: str, accepted: str | None = None, *, source: str | None = None
    ) -> None:
        message = f"{field}: {reason}"
        if accepted:
            message += f" (accepted: {accepted})"
        # ``source`` says where the field is when it is not the body: query, header, path.
        super().__init__(message, field=field, reason=reason, accepted=accepted, source=source)
        self.field = field
        self.reason = reason
        self.accepted = accepted


class BadRequest(InvalidInput):
    """The request as a whole cannot be read (a body too deeply nested to decode): 400,
    naming the part (``body``) like any invalid input."""

    status = 400
    title = "Bad request"
    type_slug = "bad-request"


class UnsupportedMediaType(InvalidInput):
    """A body in a format the route does not read (``Content-Type`` not JSON): 415."""

    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"

    def __init__(
        self, field: str, reason: str, accepted: str | None = None, *,
        media_types: str = "application/json",
    ) -> None:
        super().__init__(field, reason, accepted, source="header")
        # The media types the route reads, for the answer's Accept-Post (or Accept-Patch).
        self.media_types = media_types


class NotFound(RegistryError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(RegistryError):
    """The request is well formed but clashes with the current state (duplicate, illegal transition)."""

    status = 409
    title = "Conflict"
    type_slug = "conflict"


class Unauthenticated(RegistryError):
    status = 401
    title = "Unauthenticated"
    type_slug = "unauthenticated"


class Forbidden(RegistryError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class Unavailable(RegistryError):
    """Temporarily unable to serve (database down, overloaded); the caller should retry."""

    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"

    def __init__(self, detail: str, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class LogIntegrityError(Exception):
    """The stored log does not match its leaves, nodes or signature: fatal, never served."""
