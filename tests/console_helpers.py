"""Driving the console over HTTP as a browser would: fetch a page, take the CSRF token
from its form, post the form with it. The client keeps the cookies (CSRF and session)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import issue

Client = AsyncTestClient[Litestar]
_CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]*)"')
_POST_FORM = re.compile(r'<form\b[^>]*method="post"[^>]*>(.*?)</form>', re.DOTALL | re.IGNORECASE)


def csrf_in(html: str) -> str:
    """The page's CSRF token, after checking that every form posting on it carries it (a
    form without it would be refused with 403 when a person sends it)."""
    forms = _POST_FORM.findall(html)
    assert forms, "the page has no form that posts"
    tokens = {found.group(1) if (found := _CSRF_INPUT.search(form)) else "" for form in forms}
    assert "" not in tokens, "a form on the page posts without a CSRF token"
    assert len(tokens) == 1, tokens
    return tokens.pop()


async def csrf_from(client: Client, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, (path, page.status_code, page.text[:300])
    return csrf_in(page.text)


async def submit(client: Client, page_path: str, action: str, fields: dict[str, Any],
                 **kwargs: Any) -> Any:
    """Post ``fields`` to ``action`` the way the form on ``page_path`` does (with its token);
    redirects are not followed, so the answer can be looked at."""
    token = await csrf_from(client, page_path)
    return await client.post(action, data={**fields, "_csrf_token": token},
                             follow_redirects=False, **kwargs)


async def sign_in(client: Client, token: str, next_path: str = "") -> Any:
    return await submit(client, "/console/sign-in", "/console/sign-in",
                        {"token": token, "next": next_path})


async def signed_in_regulator(client: Client, db: asyncpg.Pool,
                              authority: str | None = None) -> str:
    """A regulator token of ``authority`` (default the suite's), signed in on ``client``."""
    token = await issue(db, "regulator", authority=authority)
    answer = await sign_in(client, token)
    assert answer.status_code == 303, answer.text[:500]
    return token
