"""Who is at the console: the ``officer`` dependency, and the console's refusals as pages.

A console route names ``officer: Officer`` and gets the signed-in regulator, or the
browser is sent to the sign-in page (303, the page it wanted kept in ``next``). What
it may then do is decided by the same use cases as the API: a refusal there (another
authority's record, a step the rule does not allow yet) comes back as a ``Forbidden``
or ``Conflict`` and is shown as a page in Chinese, never as problem JSON.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.types import ExceptionHandlersMap

from registry.api.problems import EXCEPTION_HANDLERS
from registry.console import texts
from registry.console.render import page
from registry.console.sessions import COOKIE_NAME, Officer, find
from registry.errors import RegistryError, Unavailable
from registry.services import Services

SIGN_IN: Final = "/console/sign-in"


class SignInRequired(Exception):
    """No live session: the browser is sent to sign in, then back to ``wanted``."""

    def __init__(self, wanted: str) -> None:
        super().__init__(wanted)
        self.wanted = wanted


def safe_next(wanted: str | None) -> str:
    """Where to go after signing in: a console path of this site, never another site's
    (``//evil.example`` and ``/\\evil.example`` are other sites to a browser)."""
    if (not wanted or not wanted.startswith("/console/") or wanted.startswith("//")
            or "\\" in wanted or any(ord(ch) < 0x20 for ch in wanted)):
        return "/console/"
    return wanted


async def provide_officer(request: Request[Any, Any, Any]) -> Officer:
    services: Services = request.app.state.services
    session_id = request.cookies.get(COOKIE_NAME)
    officer = await find(services.pool, services.clock, session_id) if session_id else None
    if officer is None:
        query = request.scope.get("query_string", b"").decode("latin-1")
        wanted = request.url.path + (f"?{query}" if query else "")
        raise SignInRequired(wanted if request.method == "GET" else "/console/")
    return officer


def _to_sign_in(request: Request[Any, Any, Any], error: SignInRequired) -> Response[str]:
    target = f"{SIGN_IN}?next={quote(safe_next(error.wanted), safe='/')}"
    response: Response[str] = Response("", status_code=303, headers={"Location": target,
                                                                     "Cache-Control": "no-store"})
    if request.cookies.get(COOKIE_NAME):
        response.delete_cookie(COOKIE_NAME, path="/console")
    return response


def refusal_page(request: Request[Any, Any, Any], status: int, reason: str | None = None,
                 headers: dict[str, str] | None = None) -> Response[str]:
    heading, explanation = texts.refusal(status)
    return page(request, "console_error.html", officer=None, status=status, headers=headers,
                heading=heading, explanation=explanation, reason=reason)


def _registry_refusal(request: Request[Any, Any, Any], error: RegistryError) -> Response[str]:
    headers = ({"Retry-After": str(error.retry_after)} if isinstance(error, Unavailable)
               else None)
    return refusal_page(request, error.status, texts.reason_zh(error.detail), headers)


def _csrf_refusal(request: Request[Any, Any, Any], error: PermissionDeniedException) -> Response[str]:
    return refusal_page(request, 403, texts.CSRF_REFUSED)


def _http_refusal(request: Request[Any, Any, Any], error: HTTPException) -> Response[str]:
    return refusal_page(request, error.status_code)


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[str]:
    # The API's handler decides the status (a database that went away is a 503 with
    # Retry-After, not a 500) and logs it; the page says nothing of internals.
    problem = EXCEPTION_HANDLERS[Exception](request, error)
    status = problem.status_code or 500
    retry = problem.headers.get("Retry-After")
    return refusal_page(request, status, headers={"Retry-After": retry} if retry else None)


CONSOLE_ERRORS: Final[ExceptionHandlersMap] = {
    SignInRequired: _to_sign_in,
    RegistryError: _registry_refusal,
    PermissionDeniedException: _csrf_refusal,
    HTTPException: _http_refusal,
    Exception: _unexpected,
}
