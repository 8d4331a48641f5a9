"""The regulators' console in a real browser: Debian's headless chromium driven by
Playwright (tests/browser_helpers.py), JavaScript off, as an official would use it.

One walk through the day's work (sign in, a wrong credit code, a penalty, a blacklist
proposal found on 待办, an import with one bad row, sign out), one form filled with the
keyboard alone, and screenshots of 待办 at phone and desktop widths, kept in
``artefacts/console/`` for people to look at after a CI run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import playwright.async_api as playwright_api
import pytest
from playwright.async_api import ViewportSize

from registry.clock import ManualClock
from registry.settings import Settings
from tests.browser_helpers import ARTEFACTS, launch, serving
from tests.conftest import TEST_AUTHORITY, issue
from tests.test_import import FIRM, template_row, write_csv

FIRM_NAME = "西寧創新投資有限公司"  # tests/test_import.py's template rows name this firm
WRONG_CHECK = FIRM[:-1] + ("A" if FIRM[-1] != "A" else "B")
PHONE = ViewportSize(width=375, height=812)
DESKTOP = ViewportSize(width=1280, height=900)
UUID = r"[0-9a-f-]{36}"


@pytest.fixture
def console(settings: Settings, database_url: str, clock: ManualClock) -> Iterator[str]:
    from registry.api.app import create_app

    with serving(create_app(settings, clock=clock, database_url=database_url,
                            configure_logs=False)) as url:
        yield url


async def _sign_in(page: playwright_api.Page, base: str, token: str) -> None:
    await page.goto(f"{base}/console/")
    assert "/console/sign-in" in page.url  # no session: sent to sign in
    await page.fill("#token", token)
    await page.get_by_role("button", name="登录").click()
    assert page.url == f"{base}/console/"


async def _text(page: playwright_api.Page) -> str:
    return await page.text_content("main") or ""


async def test_a_day_at_the_console(console: str, db: asyncpg.Pool, tmp_path: Path) -> None:
    token = await issue(db, "regulator", name="张科长")
    async with playwright_api.async_playwright() as pw:
        browser = await launch(pw)
        try:
            context = await browser.new_context(viewport=DESKTOP, java_script_enabled=False)
            page = await context.new_page()
            await _sign_in(page, console, token)
            assert "张科长" in (await page.text_content("header") or "")

            # A firm with a wrong check character: the Chinese reason at the field.
            await page.goto(f"{console}/console/subjects/new")
            await page.select_option("#kind", "vc_firm")
            await page.fill("#name", FIRM_NAME)
            await page.fill("#credit_code", WRONG_CHECK)
            await page.get_by_role("button", name="登记").click()
            assert "校验位不符" in (await page.text_content("#credit_code-error") or "")
            assert await page.get_attribute("#credit_code", "aria-invalid") == "true"
            assert await page.input_value("#name") == FIRM_NAME  # what was typed is kept
            await page.fill("#credit_code", FIRM)
            await page.get_by_role("button", name="登记").click()
            found = re.fullmatch(rf"{console}/console/subjects/({UUID})", page.url)
            assert found, page.url
            subject_id = found.group(1)

            # A serious penalty, recorded through the form.
            await page.get_by_role("link", name="登记信用信息").click()
            await page.select_option("#record_kind", "penalty")
            await page.select_option("#grade", "serious")
            await page.fill("#decision_number", "宁发改罚〔2026〕88号")
            await page.fill("#violation_type", "未按规定备案")
            await page.fill("#facts", "未按规定报送年度报告")
            await page.fill("#legal_basis", "《创业投资企业管理暂行办法》第二十八条")
            await page.select_option("#penalty_types", ["fine"])
            await page.fill("#penalty_content", "罚款人民币十二万五千元")
            await page.fill("#fine_amount", "12.5")
            await page.fill("#decision_date", "2026-03-02")
            await page.fill("#valid_until", "2027-03-01")
            await page.get_by_role("button", name="登记").click()
            found = re.fullmatch(rf"{console}/console/records/({UUID})", page.url)
            assert found, (page.url, (await _text(page))[:500])
            record_id = found.group(1)
            assert "宁发改罚〔2026〕88号" in await _text(page)

            # Proposed for the blacklist: there it is on 待办, waiting to be notified.
            await page.goto(f"{console}/console/subjects/{subject_id}")
            await page.get_by_role("link", name="提请列入严重失信名单").click()
            await page.check(f"#record-{record_id}")
            await page.fill("#criterion", "拒不履行行政处罚决定")
            await page.fill("#legal_basis", "国办发〔2020〕49号")
            await page.get_by_role("button", name="提请列入").click()
            found = re.fullmatch(rf"{console}/console/blacklist/({UUID})(\?.*)?", page.url)
            assert found, (page.url, (await _text(page))[:500])
            await page.goto(f"{console}/console/")
            entry_link = page.locator(f"a[href='/console/blacklist/{found.group(1)}']")
            assert await entry_link.count() >= 1
            assert FIRM_NAME in await _text(page)

            # 待办 at phone and desktop widths, kept for people to look at.
            shots = ARTEFACTS / "console"
            shots.mkdir(parents=True, exist_ok=True)
            for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
                await page.set_viewport_size(size)
                shot = shots / f"dashboard-{name}.png"
                await page.screenshot(path=str(shot), full_page=True)
                assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
                # Nothing wider than the screen: no sideways scrolling of the page.
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= size["width"], (name, width)
            await page.set_viewport_size(DESKTOP)

            # An upload with one bad row: the preview names its row, column and reason.
            rows = [template_row("宁发改罚〔2026〕201号"),
                    template_row("宁发改罚〔2026〕202号", cf_xdr_shxym=WRONG_CHECK)]
            upload = write_csv(tmp_path / "双公示.csv", rows)
            await page.goto(f"{console}/console/imports/new")
            await page.set_input_files("#file", str(upload))
            await page.get_by_role("button", name="上传并预检").click()
            assert re.fullmatch(rf"{console}/console/imports/{UUID}", page.url), page.url
            for _ in range(100):  # the page refreshes itself; a person would wait too
                if await page.locator("#problems-heading").count():
                    break
                await page.wait_for_timeout(100)
                await page.reload()
            problems = page.locator("section[aria-labelledby=problems-heading] tbody tr")
            assert await problems.count() == 1
            cells = [await cell.text_content() or "" for cell in await problems.first.locator(
                "td").all()]
            assert cells[0] == "3"  # the header is row 1, the bad row the file's third
            assert cells[1] == "行政相对人代码_1(统一社会信用代码)"
            assert "校验位不符" in cells[3]

            # Signing out ends the session: 待办 asks to sign in again.
            await page.get_by_role("button", name="退出登录").click()
            assert "您已退出登录" in await _text(page)
            await page.goto(f"{console}/console/")
            assert "/console/sign-in" in page.url
            await context.close()
        finally:
            await browser.close()


async def test_a_form_filled_with_the_keyboard_alone(console: str, db: asyncpg.Pool) -> None:
    token = await issue(db, "regulator")
    async with playwright_api.async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page(viewport=DESKTOP, java_script_enabled=False)
            await _sign_in(page, console, token)
            await page.goto(f"{console}/console/subjects/new")
            keyboard = page.keyboard

            async def focused() -> str:
                return str(await page.evaluate(
                    "document.activeElement.id || document.activeElement.textContent.trim()"))

            # The first stop skips to the content; the form's fields follow in reading order.
            await keyboard.press("Tab")
            assert await focused() == "跳到正文"
            stops = []
            for _ in range(20):
                await keyboard.press("Tab")
                stops.append(await focused())
                if stops[-1] == "credit_code":
                    break
            assert stops[-3:] == ["kind", "name", "credit_code"], stops
            await keyboard.press("Shift+Tab")
            await keyboard.press("Shift+Tab")
            assert await focused() == "kind"
            await keyboard.press("ArrowDown")  # the first kind: 创业投资企业
            assert await page.input_value("#kind") == "vc_firm"
            await keyboard.press("Tab")
            await keyboard.type("西宁键盘创业投资有限公司")
            await keyboard.press("Tab")
            await keyboard.type("91630100MA752LKX1M")
            await keyboard.press("Enter")  # submits the form, as a browser does
            await page.wait_for_url(re.compile(rf"{console}/console/subjects/{UUID}"),
                                    timeout=10_000)
            assert "西宁键盘创业投资有限公司" in await _text(page)
            assert TEST_AUTHORITY[0] not in page.url
        finally:
            await browser.close()
