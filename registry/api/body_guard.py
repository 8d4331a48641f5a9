"""Bodies too deeply nested to decode are refused before anything decodes them.

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

from registry.errors import BadRequest

MAX_DEPTH: Final = 32
_METHODS_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))


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


async def refuse_deep_bodies(request: Request[Any, Any, Any]) -> None:
    if request.method not in _METHODS_WITH_BODY:
        return
    body = await request.body()
    if body and not nesting_within(body):
        raise BadRequest(
            "body",
            f"is nested more than {MAX_DEPTH} levels deep, or its brackets do not balance",
            f"a JSON document nested at most {MAX_DEPTH} levels",
        )
