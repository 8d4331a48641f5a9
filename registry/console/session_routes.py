"""Signing in and out of the console.

Sign-in takes a regulator token once and opens a server-side session
(``sessions.py``); the token itself is never stored in the browser. The session
cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's
page sends it) and ``Secure`` when the console is served over HTTPS, limited to
``/console``. A bureau or admin token is refused with the reason, in Chinese.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from litestar import Request, Response, get, post
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect

from registry.console import texts
from registry.console.auth import safe_next
from registry.console.csrf import https
from registry.console.render import page
from registry.console.sessions import (
    COOKIE_NAME,
    SESSION_LENGTH,
    end_session,
    forget_expired,
    open_session,
)
from registry.services import Services

log = structlog.get_logger(__name__)


def _sign_in_page(request: Request[Any, Any, Any], *, next_path: str, error: str | None = None,
                  notice: str | None = None, status: int = 200) -> Response[str]:
    return page(request, "console_sign_in.html", officer=None, status=status,
                title=texts.SIGN_IN_TITLE, next_path=next_path, error=error, notice=notice)


@get("/sign-in", sync_to_thread=False)
def sign_in_form(
    request: Request[Any, Any, Any],
    wanted: Annotated[str | None, QueryParameter(name="next", max_length=2000)] = None,
    signed_out: FromQuery[bool] = False,
) -> Response[str]:
    return _sign_in_page(request, next_path=safe_next(wanted),
                         notice=texts.SIGNED_OUT if signed_out else None)


@post("/sign-in")
async def sign_in(request: Request[Any, Any, Any]) -> Response[str]:
    services: Services = request.app.state.services
    form = await request.form()
    token = str(form.get("token") or "").strip()
    next_path = safe_next(str(form.get("next") or ""))
    if not token:
        return _sign_in_page(request, next_path=next_path, error=texts.MISSING_CREDENTIAL, status=400)
    principal = await services.tokens.authenticate(token)
    if principal is None:
        return _sign_in_page(request, next_path=next_path, error=texts.UNKNOWN_CREDENTIAL, status=401)
    if principal.role != "regulator" or principal.authority_code is None:
        log.info("console_sign_in_refused", role=principal.role, token_id=str(principal.token_id))
        return _sign_in_page(request, next_path=next_path, error=texts.NOT_A_REGULATOR,
                             status=403)
    if not principal.authority_active:
        return _sign_in_page(request, next_path=next_path, error=texts.AUTHORITY_INACTIVE,
                             status=403)
    await forget_expired(services.pool, services.clock)
    session_id = await open_session(services.pool, services.clock, principal)
    log.info("console_signed_in", token_id=str(principal.token_id),
             authority=principal.authority_code)
    response: Response[str] = Redirect(next_path, status_code=303)
    response.set_cookie(COOKIE_NAME, session_id, path="/console", httponly=True,
                        samesite="strict", secure=https(request.scope),
                        max_age=int(SESSION_LENGTH.total_seconds()))
    response.headers["Cache-Control"] = "no-store"
    return response


@post("/sign-out")
async def sign_out(request: Request[Any, Any, Any]) -> Response[str]:
    # No officer needed: signing out of a session that already ended still clears the cookie.
    services: Services = request.app.state.services
    session_id = request.cookies.get(COOKIE_NAME)
    if session_id:
        await end_session(services.pool, services.clock, session_id)
    response: Response[str] = Redirect("/console/sign-in?signed_out=true", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/console")
    return response


SESSION_HANDLERS = [sign_in_form, sign_in, sign_out]
