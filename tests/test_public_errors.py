"""The public pages refuse a browser in Simplified Chinese, and everyone else in problem JSON.

A browser (its Accept names text/html) gets a small zh-CN page with the problem's status
and the headers that matter; the English detail never reaches it. Scripts (``*/*``,
JSON), the feeds and the exports keep RFC 9457 problem details.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.public_helpers import Client

# What Firefox and Chromium send when following a link.
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PROBLEM = "application/problem+json"


def _page(response: Any, status: int, *, code: str = "") -> str:
    """The error page's own text (its <main>, tags stripped), after checking it is one;
    Latin letters only in ``code``, a parameter the page names by its code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-language"] == "zh-CN"
    html: str = response.text
    assert '<html lang="zh-CN">' in html
    assert '<a href="/public/">返回首页</a>' in html
    main = re.search(r"<main>(.*?)</main>", html, re.DOTALL)
    assert main is not None
    text = re.sub(r"<[^>]+>", " ", main.group(1))
    # No English: not the problem's detail, not its title.
    assert not re.search(r"[A-Za-z]", text.replace(f"「{code}」", "")), text
    assert f"错误代码 {status}" in text
    return text


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_a_bad_page_position_names_it_in_chinese(client: Client) -> None:
    """`before=abc` on the home page: 400, 查询条件有误, naming 翻页位置, never `before`."""
    for path in ("/public/?before=abc", "/public/penalties?before=abc",
                 "/public/blacklist?before=0"):
        text = _page(await client.get(path, headers=BROWSER), 400)
        assert "查询条件有误" in text and "「翻页位置」" in text, path


async def test_an_unknown_item_is_a_chinese_404(client: Client) -> None:
    for path in (f"/public/records/{uuid.uuid4()}", f"/public/blacklist/{uuid.uuid4()}"):
        text = _page(await client.get(path, headers=BROWSER), 404)
        assert "未找到该公示信息" in text, path
        assert "该信息可能已过公示期、已被撤销或从未公示。" in text, path


async def test_a_control_character_in_the_search_names_the_search(client: Client) -> None:
    """api/body_guard.py's 400, refused before the handler runs, is retold as a page too."""
    text = _page(await client.get("/public/?q=a%00b", headers=BROWSER), 400)
    assert "「搜索内容」" in text


async def test_a_search_the_text_rules_refuse_is_a_page_naming_the_search(client: Client) -> None:
    """A bidirectional override in `q` (registry/text.py: 422) reads like any bad query."""
    text = _page(await client.get("/public/?q=a%E2%80%AEb", headers=BROWSER), 422)
    assert "查询条件有误" in text and "「搜索内容」" in text


async def test_a_parameter_without_a_chinese_name_is_named_by_its_code_only(
    client: Client,
) -> None:
    """A code is shown as it is; a name that is not a code is not repeated at all."""
    text = _page(await client.get("/public/?page=1&page=2", headers=BROWSER), 400, code="page")
    assert "「page」" in text
    response = await client.get("/public/?%3Cb%3E=1&%3Cb%3E=2", headers=BROWSER)
    text = _page(response, 400)
    assert "「查询参数」" in text
    assert "<b>" not in response.text and "&lt;b&gt;" not in response.text


async def test_error_pages_run_no_script_and_cannot_be_framed(client: Client) -> None:
    for path in ("/public/?before=abc", f"/public/records/{uuid.uuid4()}", "/public/nothing"):
        page = await client.get(path, headers=BROWSER)
        assert page.status_code >= 400, path
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, path
        assert "script-src" not in policy and "<script" not in page.text, path
        assert page.headers["x-frame-options"] == "DENY", path
        assert page.headers["referrer-policy"] == "no-referrer", path
        assert page.headers.get_list("x-content-type-options") == ["nosniff"], path


async def test_an_unknown_public_path_is_a_page_for_a_browser_only(client: Client) -> None:
    for path in ("/public/nothing-here", "/public/records/not-a-uuid"):
        text = _page(await client.get(path, headers=BROWSER), 404)
        assert "未找到该公示信息" in text, path
        for accept in ({"Accept": "application/json"}, {"Accept": PROBLEM}, {}):
            _problem(await client.get(path, headers=accept), 404)
    # Not under /public/: the API's own 404, whatever the client asks for.
    _problem(await client.get("/v1/nothing-here", headers=BROWSER), 404)


async def test_a_method_a_page_does_not_take_keeps_its_allow_header(client: Client) -> None:
    response = await client.request("DELETE", "/public/", headers=BROWSER)
    text = _page(response, 405)
    assert "不支持该访问方式" in text
    assert "GET" in response.headers["allow"]


async def test_scripts_keep_problem_json_on_the_pages(client: Client) -> None:
    """Without text/html in Accept (curl's */*, a JSON client) a page's refusal stays a
    problem naming the field in English, as on every other route."""
    for accept in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        body = _problem(await client.get("/public/?before=abc", headers=accept), 400)
        assert body["field"] == "before" and body["source"] == "query"
        _problem(await client.get(f"/public/records/{uuid.uuid4()}", headers=accept), 404)


async def test_feeds_and_exports_keep_problem_json_for_a_browser_too(client: Client) -> None:
    """Machines read them: a browser opening one gets the problem, not a page."""
    for path in ("/public/feed.json?before=abc", "/public/feed.atom?before=abc"):
        body = _problem(await client.get(path, headers=BROWSER), 400)
        assert body["field"] == "before", path
    _problem(await client.get("/public/exports/nothing.csv", headers=BROWSER), 404)


async def test_a_busy_database_is_a_503_page_that_keeps_retry_after(
    app: Litestar, db: asyncpg.Pool
) -> None:
    """The real database, told to give up on locks at once, while a writer holds the
    listings table: the handlers' 503 (busy, Retry-After) reaches the browser as a page."""
    name = await db.fetchval("SELECT current_database()")
    await db.execute(f"ALTER DATABASE \"{name}\" SET lock_timeout = '100ms'")
    async with AsyncTestClient(app=app) as client, db.acquire() as holder:
        async with holder.transaction():
            await holder.execute("LOCK TABLE blacklist_entries IN ACCESS EXCLUSIVE MODE")
            response = await client.get("/public/blacklist", headers=BROWSER)
            problem = await client.get("/public/blacklist")
        text = _page(response, 503)
        assert "服务暂时不可用，请稍后再试。" in text
        assert response.headers["retry-after"] == problem.headers["retry-after"] == "1"
        _problem(problem, 503)


async def test_the_document_says_a_page_may_answer_instead_of_a_problem(client: Client) -> None:
    """Each page's documented refusals list text/html beside problem JSON (schemathesis
    checks what is sent against it); operation ids and the feeds' documents are as before."""
    doc = (await client.get("/schema/openapi.json")).json()
    pages = {"/public": "PublicHome", "/public/penalties": "PublicPenaltiesPenalties",
             "/public/blacklist": "PublicBlacklistBlacklist",
             "/public/records/{item_id}": "PublicRecordsItemIdRecordDetail",
             "/public/blacklist/{item_id}": "PublicBlacklistItemIdListingDetail"}
    for path, operation_id in pages.items():
        operation = doc["paths"][path]["get"]
        assert operation["operationId"] == operation_id
        for status in ("400", "422", "503"):
            assert set(operation["responses"][status]["content"]) == {PROBLEM, "text/html"}
    for path in ("/public/feed.json", "/public/exports/{name}"):
        for status in ("400", "503"):
            content = doc["paths"][path]["get"]["responses"][status]["content"]
            assert set(content) == {PROBLEM}, path
