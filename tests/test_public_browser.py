"""The public page in a real browser: Debian's headless chromium driven by Playwright.

The app runs under uvicorn (tests/browser_helpers.py) against this test's database;
records are created through its HTTP API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import playwright.async_api as playwright_api
import pytest

from registry.clock import ManualClock
from registry.settings import Settings
from tests.browser_helpers import CHROMIUM, launch, serving
from tests.conftest import bearer, issue
from tests.credit_helpers import penalty
from tests.public_helpers import ADULT_ID, ADULT_MASKED, FIRM_NAME

HEADING = "信用西宁 · 创业投资领域信用信息公示"


@pytest.fixture
def live_server(settings: Settings, database_url: str, clock: ManualClock) -> Iterator[str]:
    from registry.api.app import create_app

    with serving(create_app(settings, clock=clock, database_url=database_url,
                            configure_logs=False)) as url:
        yield url


def test_a_chinese_font_is_installed() -> None:
    """Without a CJK font the screenshot shows boxes while the DOM still reads right."""
    listed = subprocess.run(
        ["fc-list", ":lang=zh"],  # noqa: S607 - fontconfig's fc-list from PATH, fixed arguments
        capture_output=True, text=True, check=False)
    assert listed.stdout.strip(), "install fonts-wqy-microhei (see .ci/run)"


async def test_page_in_headless_chromium(live_server: str, db: asyncpg.Pool, tmp_path: Path) -> None:
    """Search, open a detail page, read the masked number and the objection mark; screenshot renders."""
    assert shutil.which("chromium") or os.path.exists(CHROMIUM), (  # noqa: ASYNC240 - one stat
        "install Debian's chromium (see .ci/run)")
    headers = bearer(await issue(db, "regulator"))
    async with httpx.AsyncClient(base_url=live_server, headers=headers) as api:
        firm = await api.post("/v1/subjects", json={"kind": "vc_firm", "name": FIRM_NAME,
                                                   "credit_code": "91630100MA752LKX1M"})
        assert firm.status_code == 201, firm.text
        person = await api.post("/v1/subjects", json={
            "kind": "practitioner", "name": "李四", "document_type": "resident_id",
            "document_number": ADULT_ID})
        assert person.status_code == 201, person.text
        for n in range(25):
            made = await api.post("/v1/records", json=penalty(firm.json()["id"], f"寧發改罰〔2026〕{n + 100}號"))
            assert made.status_code == 201, made.text
        mine = await api.post("/v1/records", json=penalty(person.json()["id"], "寧金罰〔2026〕1號"))
        assert mine.status_code == 201, mine.text
        filed = await api.post("/v1/objections", json={
            "target_type": "credit_record", "target_id": mine.json()["id"], "grounds": "有誤"})
        assert filed.status_code == 201, filed.text

    async with playwright_api.async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844},
                                          java_script_enabled=False)
            await page.goto(f"{live_server}/public/")
            assert (await page.text_content("#site-title")) == HEADING
            assert await page.get_attribute("html", "lang") == "zh-CN"
            assert (await page.text_content("h2")) == "最新行政处罚公示"
            assert await page.locator(".item").count() == 20
            next_link = page.locator("a[rel=next]")
            assert await next_link.count() == 1
            await next_link.click()
            assert await page.locator(".item").count() == 6

            await page.goto(f"{live_server}/public/")
            await page.fill("input[name=q]", "李四")
            await page.click("button[type=submit]")
            assert "李四" in (await page.text_content("h2") or "")
            items = page.locator(".item")
            assert await items.count() == 1
            assert (await items.first.locator(".mark").text_content()) == "异议处理中"
            await items.first.locator("a").click()
            body = await page.text_content("body") or ""
            assert ADULT_MASKED in body
            assert ADULT_ID not in body
            assert "寧金罰〔2026〕1號" in body
            assert "如何核验" in body
            proof = page.locator("a[href^='/log/proof/inclusion']")
            assert await proof.count() == 1
            await proof.click()
            assert '"hashes"' in (await page.content())

            await page.goto(f"{live_server}/public/")
            shot = tmp_path / "public.png"
            await page.screenshot(path=str(shot), full_page=True)
            png = shot.read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            assert len(png) > 20_000
            box = await page.locator("#site-title").bounding_box()
            assert box is not None
            assert box["width"] > 100
            assert box["height"] > 10
        finally:
            await browser.close()


async def test_api_docs_render_without_internet(live_server: str) -> None:
    """Swagger UI draws the API from local files only: every other host is cut off, and the
    page's CSP (no inline script) holds with the script running."""
    refused: list[str] = []
    problems: list[str] = []

    async def local_only(route: playwright_api.Route) -> None:
        if route.request.url.startswith(live_server):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    async with playwright_api.async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.route("**/*", local_only)
            await page.goto(f"{live_server}/schema/swagger")
            title = page.locator(".swagger-ui .info .title")
            await title.wait_for(timeout=20_000)
            assert "credit registry" in (await title.text_content() or "").lower()
            assert await page.locator(".opblock").count() > 20  # the operations are drawn
        finally:
            await browser.close()
    assert not refused, refused
    assert not problems, problems
