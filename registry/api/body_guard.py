"""What every request must be before a handler reads it: ``screen_request``.

- A body is JSON, said so: ``Content-Type: application/json`` (a ``charset`` other than
  UTF-8 is refused too). ``text/plain`` or no type used to be parsed as JSON anyway, so a
  form post or a mislabelled upload reached the decoder; now it is a 415 naming the
  header and what is accepted.
- Query parameters carry no control characters: a NUL in ``?q=`` reached PostgreSQL and
  came back as a vague 422 without a field; now it is a 400 naming the parameter.
- Bodies too deeply nested to decode are refused before anything decodes them.

msgspec decodes JSON recursively and raises RecursionError at about 1,000 levels, which
reached callers as a 500 with a traceback in the log (`'[' * 1000 + ']' * 1000` to the
bulk lookup). No request of this API nests deeper than a few levels, so a body nested
more than ``MAX_DEPTH`` levels is a 400 naming ``body`` and the limit.

The check runs as the app's ``before_request`` hook: after routing and authentication,
before Litestar reads the handler's ``data`` (which then reuses the body read here). It
costs C-speed passes over the bytes, never a Python loop per byte, so a 4 MiB body of
brackets cannot turn it into a denial of service: strings are cut out (brackets inside
them do not nest), everything but brackets is deleted, then each pass removes the
innermost ``[]`` and ``{}`` pairs. Balanced JSON of depth d is gone after at most d passes
(a ``{[]}`` can go in one); what is left after ``MAX_DEPTH`` passes is too deep, and what
stops shrinking is unbalanced, not JSON either way.
"""

from __future__ import annotations

import re
from typing import Any, Final

from litestar import Request

from registry.errors import BadRequest, UnsupportedMediaType

MAX_DEPTH: Final = 32
_METHODS_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))
JSON: Final = "application/json"
# C0 and C1 controls and DEL: nothing a search term or identifier ever holds.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def nesting_within(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``body`` nests at most ``limit`` levels (and its brackets balance)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    for _ in range(limit):
        if not brackets:
            return True
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):
            return False
        brackets = shorter
    return not brackets


def json_content_type(header: str | None) -> bool:
    """Whether a ``Content-Type`` value says JSON in UTF-8 (RFC 8259 §8.1 allows no other)."""
    if not header:
        return False
    media, *params = (part.strip() for part in header.split(";"))
    if media.lower() != JSON:
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8", "utf8"
        ):
            return False
    return True


_WHOLE_NUMBER: Final = re.compile(r"-?[0-9]+")


def _integer_parameters(request: Request[Any, Any, Any]) -> frozenset[str]:
    """The query names the handler reads as whole numbers (``int`` or ``int | None``)."""
    names = set()
    for name, definition in request.route_handler.parsed_fn_signature.parameters.items():
        if definition.annotation is int or (
            definition.is_optional and definition.inner_types
            and all(t.annotation in (int, type(None)) for t in definition.inner_types)
        ):
            names.add(name)
    return frozenset(names)


def _refuse_malformed_query(request: Request[Any, Any, Any]) -> None:
    """No query parameter of this API is a list, and a whole number is written as one:
    ``?q=a&q=b`` or ``?before=5.0`` were read as the last value or as 5 (Litestar's lax
    parsing), so a client never learnt that its request was not what it meant."""
    seen: set[str] = set()
    integers = _integer_parameters(request)
    for name, value in request.query_params.multi_items():
        if name in seen:
            raise BadRequest(name, "is given more than once", "the parameter once",
                             source="query")
        seen.add(name)
        if name in integers and not _WHOLE_NUMBER.fullmatch(value):
            raise BadRequest(name, f"{value[:40]!r} is not a whole number",
                             "digits only, e.g. 42", source="query")


def _refuse_control_characters(request: Request[Any, Any, Any]) -> None:
    for name, value in request.query_params.multi_items():
        found = _CONTROL.search(value) or _CONTROL.search(name)
        if found:
            raise BadRequest(
                name if _CONTROL.search(name) is None else "query",
                f"the query parameter holds the control character U+{ord(found.group()):04X}",
                "text without control characters",
                source="query",
            )


async def screen_request(request: Request[Any, Any, Any]) -> None:
    """The app's ``before_request`` hook: after routing and authentication, before any
    handler reads its parameters or body."""
    if request.scope["query_string"]:
        _refuse_control_characters(request)
        _refuse_malformed_query(request)
    if request.method not in _METHODS_WITH_BODY:
        return
    # Only a handler that decodes its body as ``data`` is screened, and the body is read
    # only then: a console form's body was already consumed by the CSRF middleware's form
    # parser (which keeps the form, not the bytes), and reading it again waited forever.
    if "data" not in request.route_handler.parsed_fn_signature.parameters:
        return
    body = await request.body()
    if not body:
        return
    content_type = request.headers.get("content-type")
    if not json_content_type(content_type):
        raise UnsupportedMediaType(
            "Content-Type",
            f"is {content_type!r}" if content_type else "is missing",
            f"{JSON} (UTF-8, the default); the body is a JSON document",
        )
    if not nesting_within(body):
        raise BadRequest(
            "body",
            f"is nested more than {MAX_DEPTH} levels deep, or its brackets do not balance",
            f"a JSON document nested at most {MAX_DEPTH} levels",
        )
