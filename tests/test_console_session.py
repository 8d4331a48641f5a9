"""Signing in to the console: who may, the session's cookie, its end, and the CSRF token
every form must carry."""

from __future__ import annotations

import asyncpg
import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.clock import ManualClock
from registry.console.sessions import COOKIE_NAME
from registry.settings import Settings
from registry.tokens import hash_token
from tests.browser_helpers import serving
from tests.conftest import OTHER_AUTHORITY, issue
from tests.console_helpers import Client, csrf_from, csrf_in, sign_in, signed_in_regulator


def _set_cookie(answer: object, name: str) -> str:
    headers = answer.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(f"{name}=")]
    assert found, headers
    return str(found[0])


async def test_without_a_session_a_page_sends_the_browser_to_sign_in(client: Client) -> None:
    answer = await client.get("/console/subjects?q=x", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/subjects%3Fq%3Dx"
    form = await client.get(answer.headers["location"])
    assert 'name="next" value="/console/subjects?q=x"' in form.text
    assert form.headers["cache-control"] == "no-store"


async def test_a_regulator_signs_in_and_lands_where_they_wanted(
        client: Client, db: asyncpg.Pool) -> None:
    token = await issue(db, "regulator", name="王科长")
    answer = await sign_in(client, token, "/console/subjects")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/subjects"
    home = await client.get("/console/")
    assert home.status_code == 200
    assert "王科长" in home.text and "退出登录" in home.text
    assert home.headers["content-language"] == "zh-CN"
    assert home.headers["cache-control"] == "no-store"


async def test_the_session_cookie_is_httponly_strict_and_limited_to_the_console(
        client: Client, db: asyncpg.Pool) -> None:
    csrf = _set_cookie(await client.get("/console/sign-in"), "registry_console_csrf").lower()
    assert "httponly" in csrf and "samesite=strict" in csrf and "path=/console" in csrf
    answer = await sign_in(client, await issue(db, "regulator"))
    cookie = _set_cookie(answer, COOKIE_NAME).lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    assert "max-age=28800" in cookie
    # Served over plain HTTP here: a Secure cookie would never come back.
    assert "secure" not in cookie.split("; ")


async def test_over_https_both_cookies_are_secure(app: Litestar, db: asyncpg.Pool) -> None:
    async with AsyncTestClient(app=app, base_url="https://registry.example") as secure_client:
        form = await secure_client.get("/console/sign-in")
        assert "secure" in _set_cookie(form, "registry_console_csrf").lower().split("; ")
        answer = await sign_in(secure_client, await issue(db, "regulator"))
        assert answer.status_code == 303
        assert "secure" in _set_cookie(answer, COOKIE_NAME).lower().split("; ")
        assert (await secure_client.get("/console/")).status_code == 200


async def test_bureau_and_admin_tokens_cannot_sign_in(client: Client, db: asyncpg.Pool) -> None:
    for role in ("bureau", "admin"):
        answer = await sign_in(client, await issue(db, role))
        assert answer.status_code == 403
        assert "征信机构和管理员的令牌不能登录" in answer.text
        assert COOKIE_NAME not in answer.headers.get("set-cookie", "")
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303


async def test_an_unknown_token_is_refused_in_chinese(client: Client) -> None:
    answer = await sign_in(client, "vcr_regulator_" + "A" * 43)
    assert answer.status_code == 401
    assert "令牌无效或已被撤销" in answer.text
    assert 'aria-invalid="true"' in answer.text


async def test_a_post_without_the_csrf_token_is_refused(client: Client, db: asyncpg.Pool) -> None:
    token = await issue(db, "regulator")
    await client.get("/console/sign-in")  # the CSRF cookie is set, the form field missing
    answer = await client.post("/console/sign-in", data={"token": token},
                               follow_redirects=False)
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert COOKIE_NAME not in answer.headers.get("set-cookie", "")
    # A token from another cookie's page does not do either.
    forged = await client.post("/console/sign-in", follow_redirects=False,
                               data={"token": token, "_csrf_token": "x" * 20})
    assert forged.status_code == 403


async def test_signing_out_ends_the_session_on_the_server(client: Client, db: asyncpg.Pool) -> None:
    await signed_in_regulator(client, db)
    session = client.cookies.get(COOKIE_NAME)
    token = await csrf_from(client, "/console/")
    out = await client.post("/console/sign-out", data={"_csrf_token": token},
                            follow_redirects=False)
    assert out.status_code == 303
    assert "您已退出登录" in (await client.get(out.headers["location"])).text
    # The old cookie, replayed, opens nothing: the session ended in the database.
    client.cookies.set(COOKIE_NAME, session or "", path="/console")
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303


async def test_revoking_the_token_ends_its_sessions(client: Client, db: asyncpg.Pool,
                                                    admin: dict[str, str]) -> None:
    token = await signed_in_regulator(client, db)
    assert (await client.get("/console/")).status_code == 200
    token_id = await db.fetchval("SELECT id FROM api_tokens WHERE token_hash = $1",
                                 hash_token(token))
    revoked = await client.post(f"/v1/admin/tokens/{token_id}/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303


async def test_deactivating_the_authority_ends_its_sessions(
        client: Client, db: asyncpg.Pool, admin: dict[str, str]) -> None:
    await signed_in_regulator(client, db, authority=OTHER_AUTHORITY[0])
    assert (await client.get("/console/")).status_code == 200
    answer = await client.post(f"/v1/admin/authorities/{OTHER_AUTHORITY[0]}/deactivate",
                               headers=admin, json={"version": 1})
    assert answer.status_code == 200, answer.text
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303


async def test_a_session_lasts_eight_hours(client: Client, db: asyncpg.Pool,
                                           clock: ManualClock) -> None:
    await signed_in_regulator(client, db)
    clock.advance(hours=7, minutes=59)
    assert (await client.get("/console/")).status_code == 200
    clock.advance(minutes=1)
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303


async def test_next_never_leads_to_another_site(client: Client, db: asyncpg.Pool) -> None:
    token = await issue(db, "regulator")
    for wanted in ("//evil.example/", "https://evil.example/", "/\\evil.example",
                   "/public/", "/console/\r\nSet-Cookie: x=1"):
        answer = await sign_in(client, token, wanted)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/", wanted


async def test_the_api_is_untouched_by_the_console_csrf(client: Client,
                                                        regulator: dict[str, str]) -> None:
    # Bearer-token API calls carry no CSRF token and need none.
    answer = await client.post("/v1/subjects", headers=regulator, json={})
    assert answer.status_code == 400  # the body's fault, not a missing CSRF token (403)
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_a_session_of_a_regulator_is_not_a_bearer_token(client: Client,
                                                              db: asyncpg.Pool) -> None:
    # The session cookie opens the console only; the API still wants the token.
    await signed_in_regulator(client, db)
    assert (await client.get("/v1/records")).status_code == 401


async def test_a_multipart_form_is_read_once_and_answered(
        settings: Settings, database_url: str, clock: ManualClock, db: asyncpg.Pool) -> None:
    """The CSRF middleware parses a multipart body into the form; the app's body guard must
    not wait to read the same body again (it did, for ever: the upload form hung). Over a
    real socket, so that a hang is a client timeout here, not a stuck test run."""
    from registry.api.app import create_app

    token = await issue(db, "regulator")
    app = create_app(settings, clock=clock, database_url=database_url, configure_logs=False)
    with serving(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=15) as browser:
            csrf = csrf_in((await browser.get("/console/sign-in")).text)
            answer = await browser.post(
                "/console/sign-in", data={"token": token, "_csrf_token": csrf},
                files={"attachment": ("note.txt", b"not needed", "text/plain")},
                follow_redirects=False)
    assert answer.status_code == 303
