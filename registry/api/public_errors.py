"""The public pages' refusals as a page in Simplified Chinese, for people with a browser.

There is still one mapping from errors to HTTP: ``problems.EXCEPTION_HANDLERS``. Each
handler here first asks it for the problem response, then retells that answer as a
small page: the same status, the query parameter the problem names (in Chinese), and
the headers that tell a client what to do (Retry-After, Allow, WWW-Authenticate). The
problem's English ``title`` and ``detail`` never reach the page: they may name
internals, and the public reads Chinese (``registry.publish.labels``).

Only a browser gets the page: a request whose ``Accept`` prefers ``text/html`` (every
browser's does). Anyone else, ``*/*`` from curl or a script included, keeps the problem
JSON every other route sends. The feeds and exports never get a page: their errors go
through the plain handlers, machines read them.

An error page is never cached (``no-store``): a shared cache must not serve one
reader's refusal, or a moment's 503, in place of the page to everyone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.types import ExceptionHandlersMap

from registry.api.problems import EXCEPTION_HANDLERS, PROBLEM_JSON
from registry.publish import labels, page

HTML: Final = "text/html"
# Those of the problem's headers that still mean something on a page.
KEPT_HEADERS: Final = frozenset({"retry-after", "allow", "www-authenticate"})
ERROR_PAGE_CACHE: Final = "no-store"
# A parameter the page has no Chinese name for is named by its code, if it is one: the
# name comes from the request, and a page repeats no arbitrary text it was sent.
_CODE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")

Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """Whether the client prefers HTML to problem JSON (a tie, ``*/*``, is JSON)."""
    offered = [PROBLEM_JSON, "application/json", HTML]
    return request.accept.best_match(offered, default=PROBLEM_JSON) == HTML


def _named_parameter(problem: Mapping[str, Any]) -> str | None:
    field = problem.get("field")
    if not isinstance(field, str):
        return None
    if field in labels.QUERY_PARAMETER_NAMES:
        return field
    if problem.get("source") != "query":
        return None  # "body" and the like: the status says it all
    return field if _CODE.fullmatch(field) else "query"


def error_page(problem: Response[Any], page_headers: Mapping[str, str]) -> Response[str]:
    """The page retelling ``problem`` (a response of ``problems.EXCEPTION_HANDLERS``)."""
    status = problem.status_code or 500  # every problem response sets one
    try:
        body = msgspec.json.decode(problem.content) if isinstance(problem.content, bytes) else {}
    except msgspec.DecodeError:
        body = {}
    details = body if isinstance(body, dict) else {}
    heading, explanation = labels.error_page_texts(status, _named_parameter(details))
    html = page.render("public_error.html", status=status, heading=heading,
                       explanation=explanation, back_home=labels.BACK_HOME,
                       error_code=labels.ERROR_CODE)
    kept = {name: value for name, value in problem.headers.items()
            if name.lower() in KEPT_HEADERS}
    return Response(html, status_code=status, media_type=HTML, headers={
        **kept, **page_headers, "Cache-Control": ERROR_PAGE_CACHE, "Content-Language": "zh-CN",
    })


def _retold(handler: Handler, page_headers: Mapping[str, str],
            applies: Callable[[Request[Any, Any, Any]], bool]) -> Handler:
    def answer(request: Request[Any, Any, Any], error: Any) -> Response[Any]:
        problem = handler(request, error)
        return error_page(problem, page_headers) if applies(request) else problem

    return answer


def html_exception_handlers(page_headers: Mapping[str, str]) -> ExceptionHandlersMap:
    """``problems.EXCEPTION_HANDLERS`` answering a browser with a page: for the
    ``exception_handlers=`` of the public page routes."""
    return {kind: _retold(handler, page_headers, wants_page)
            for kind, handler in EXCEPTION_HANDLERS.items()}


def _unrouted_public_page(request: Request[Any, Any, Any]) -> bool:
    # No route matched (Litestar sets ``route_handler`` only after routing succeeds): an
    # unknown path, or a method the path does not take. The routes under /public/ that
    # matched answer through their own handlers, the feeds and exports in problem JSON.
    path = request.scope["path"]
    return (
        request.scope.get("route_handler") is None
        and (path == "/public" or path.startswith("/public/"))
        and wants_page(request)
    )


def unknown_pages_in_html(handlers: ExceptionHandlersMap,
                          page_headers: Mapping[str, str]) -> ExceptionHandlersMap:
    """The app's ``handlers`` with a browser's 404 (or 405) under /public/ answered as a
    page; every other answer is the handlers' own."""
    return {kind: _retold(handler, page_headers, _unrouted_public_page)
            for kind, handler in handlers.items()}
