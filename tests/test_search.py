"""One search over subjects: folding, the three surfaces, the columns' upkeep, the indexes.

The rule (registry/search.py) is tested pure, then through the real app: the regulators'
listing (`GET /v1/subjects?q=`) and the public page (`/public/?q=`) find the same subjects
for 西宁 and 西寧, full-width and lower-case text, a credit code's start and a decision
number; the derived columns (a subject's name and code, each record's own number) follow
every write and stay out of the audit log; the migrations' backfills fold rows written
before them, and 0017 takes the numbers out of subjects written before it; the trigram
index narrows Chinese queries of two characters, also in a database whose LC_CTYPE is C.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry import subjects as subjects_module
from registry.clock import SystemClock
from registry.db import migrate as migrate_module
from registry.db.migrate import (
    SCHEMA_DIR,
    backfill_subject_search,
    load_migrations,
    migrate,
    run_backfills,
)
from registry.db.types import Conn, required
from registry.db.writes import audited_write
from registry.domain.disclosure import LISTINGS, RECORDS, Publication
from registry.identifiers import uscc_check_character
from registry.publish import page as page_module
from registry.search import (
    PART_SEPARATOR,
    contains,
    fold,
    like_pattern,
    record_search_number,
    search_key,
    subject_search_text,
)
from registry.settings import Settings
from registry.subjects import list_subjects
from registry.tlog.leaf import object_body
from registry.tlog.verify import verify_log
from tests.conftest import PgServer, new_database
from tests.credit_helpers import penalty
from tests.logcheck import assert_log_consistent, ensure_log, integrate_all

Client = AsyncTestClient[Litestar]


def code(n: int) -> str:
    first = f"91630100MA{n:07d}"
    return first + uscc_check_character(first)


async def firm(client: Client, headers: dict[str, str], name: str, n: int) -> dict[str, str]:
    response = await client.post("/v1/subjects", headers=headers, json={
        "kind": "vc_firm", "name": name, "credit_code": code(n)})
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def record(client: Client, headers: dict[str, str], subject_id: str, number: str) -> dict[str, str]:
    response = await client.post("/v1/records", headers=headers, json=penalty(subject_id, number))
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def found(client: Client, headers: dict[str, str], q: str, **params: str) -> list[str]:
    """Names the regulators' listing finds for ``q``."""
    response = await client.get("/v1/subjects", headers=headers, params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def page(client: Client, q: str) -> str:
    response = await client.get("/public/", params={"q": q})
    assert response.status_code == 200, response.text
    return response.text


# ---- the rule, pure -----------------------------------------------------------------


def test_fold_makes_the_two_scripts_full_width_and_case_one() -> None:
    """西寧/西宁, 創業投資/创业投资, ＸＩＮＩＮＧ/xining, a lower-case code: one folded form."""
    assert fold("西寧") == fold("西宁") == "西宁"
    assert fold("創業投資") == "创业投资"
    assert fold("ＸＩＮＩＮＧ") == fold("Xining") == "xining"
    assert fold("９１６３０１００ma752lkx1m") == fold("91630100MA752LKX1M")
    assert fold("寧發改罰〔2026〕7號") == "宁发改罚〔2026〕7号"
    for text in ("西寧市創業投資有限公司", "ＡＢＣ（有限合夥）", "乾隆"):
        assert fold(fold(text)) == fold(text)


def test_fold_converts_by_character_so_a_part_folds_as_in_the_whole() -> None:
    """A phrase rule would keep 乾 in 乾隆 but make 乾 alone 干: the query would miss."""
    assert contains("乾隆創投", "乾")
    assert contains("乾隆創投", "乾隆")
    assert fold("乾隆") == fold("乾") + fold("隆")


def test_the_spelling_is_ascii_and_searches_percent_and_underscore_as_typed() -> None:
    """Letters and digits stay (folded), every other character is five capitals."""
    key = search_key("西宁%_\\ ＸＩ9")
    assert re.fullmatch(r"(?:[V-Y][A-U]{4}){6}xi9", key)
    assert search_key("\U000F0000") == "Z" + search_key("\U000F0000")[1:] and len(
        search_key("\U000F0000")) == 6
    assert like_pattern("%") == "%" + search_key("%") + "%"
    assert "%" not in search_key("%") and "_" not in search_key("_")


def test_subject_text_holds_name_and_code_never_a_document() -> None:
    text = subject_search_text("西寧創投", "91630100MA752LKX1M")
    assert text.split(PART_SEPARATOR) == [search_key("西宁创投"), search_key("91630100ma752lkx1m")]
    # A practitioner: the name only (the code part is empty), never the document number.
    assert subject_search_text("李四", None) == search_key("李四") + PART_SEPARATOR


def test_a_record_holds_its_own_number_spelled() -> None:
    """Each record's number is its own column; a record without one holds "" (NULL is left
    to mean "not folded yet")."""
    assert record_search_number("寧罰〔2026〕2號") == search_key("宁罚〔2026〕2号")
    assert record_search_number(None) == record_search_number("") == ""


_TEXT = st.text(alphabet=st.sampled_from(list("西寧宁创創投资資乾隆市aAｂＢzZ1１9%_ 〔〕號号é\U000F0001")),
                max_size=12)


@given(text=_TEXT, query=_TEXT.filter(bool))
def test_the_spelled_match_is_the_folded_match(text: str, query: str) -> None:
    """The SQL form (LIKE on the spelled text) and the Python form agree for any text: the
    spelling re-synchronises at every character, so nothing matches across a boundary."""
    assert (search_key(query) in search_key(text)) == (fold(query) in fold(text)) == contains(
        text, query)


@given(name=_TEXT.filter(bool), code_=_TEXT.filter(bool), query=_TEXT.filter(bool))
def test_no_match_across_parts(name: str, code_: str, query: str) -> None:
    whole = subject_search_text(name, code_)
    spelled_match = like_pattern(query)[1:-1] in whole
    assert spelled_match == (contains(name, query) or contains(code_, query))


@given(name=_TEXT, code_=_TEXT)
def test_a_spelled_part_holds_no_separator(name: str, code_: str) -> None:
    """schema/0017_record_search.sql cuts the numbers off a subject's old search text at the
    second separator: only right if no spelled part holds one."""
    assert PART_SEPARATOR not in search_key(name) + search_key(code_)
    old = PART_SEPARATOR.join(search_key(part) for part in (name, code_, "寧罰〔2026〕2號"))
    assert PART_SEPARATOR.join(old.split(PART_SEPARATOR)[:2]) == subject_search_text(name, code_)


def test_a_derived_column_is_never_committed() -> None:
    row = {"id": "s", "name": "西寧創投", "log_index": 4}
    assert object_body({**row, "search_text": "anything"}) == object_body(row)
    assert object_body({**row, "search_number": "anything"}) == object_body(row)


# ---- through the app ----------------------------------------------------------------


async def test_either_script_finds_the_same_subject_on_both_surfaces(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """Today 西宁 found nothing while 西寧 found the firm: now both find it, everywhere."""
    xn = await firm(client, regulator, "西寧創新投資有限公司", 1)
    await firm(client, regulator, "青海高原資本管理有限公司", 2)
    await firm(client, regulator, "ＸＩＮＩＮＧ Capital 有限公司", 3)
    await record(client, regulator, xn["id"], "寧發改罰〔2026〕7號")
    for q in ("西宁", "西寧", "西宁创新", "創新投資", "创新投资有限"):
        assert await found(client, regulator, q) == ["西寧創新投資有限公司"], q
        assert "西寧創新投資有限公司" in await page(client, q), q
    for q in ("xining", "ＸＩＮＩＮＧ", "XiNiNg capital", "ｃａｐｉｔａｌ"):
        assert await found(client, regulator, q) == ["ＸＩＮＩＮＧ Capital 有限公司"], q
    assert await found(client, regulator, "高原") == ["青海高原資本管理有限公司"]
    await assert_log_consistent(db)


async def test_credit_code_and_its_start_in_any_width_and_case(
    client: Client, regulator: dict[str, str]
) -> None:
    await firm(client, regulator, "西寧甲創投有限公司", 1_100_000)
    await firm(client, regulator, "西寧乙創投有限公司", 1_200_000)
    one = code(1_100_000)
    for q in (one, one.lower(), one[:12].lower(), "".join(chr(ord(c) + 0xFEE0) for c in one[:14])):
        assert await found(client, regulator, q) == ["西寧甲創投有限公司"], q
    assert sorted(await found(client, regulator, "91630100ma")) == [
        "西寧乙創投有限公司", "西寧甲創投有限公司"]
    assert "西寧甲創投有限公司" not in await page(client, one.lower())  # no public record yet


async def test_decision_number_finds_its_subject_and_on_the_page_only_its_item(
    client: Client, regulator: dict[str, str]
) -> None:
    """Regulators find the subject by any record's number. The public page shows the item
    whose number it is, never the subject's other items: a revoked decision's number must not
    tell the public whom it was about."""
    xn = await firm(client, regulator, "西寧丙創投有限公司", 21)
    await record(client, regulator, xn["id"], "寧發改罰〔2026〕31號")
    revoked = await record(client, regulator, xn["id"], "寧發改罰〔2026〕42號")
    response = await client.post(f"/v1/records/{revoked['id']}/revoke", headers=regulator,
                                 json={"version": 1, "reason": "決定已撤銷"})
    assert response.status_code == 200, response.text
    for q in ("宁发改罚〔2026〕31", "〕31號", "2026〕42号"):
        assert await found(client, regulator, q) == ["西寧丙創投有限公司"], q
    shown = await page(client, "宁发改罚〔2026〕31号")
    assert "寧發改罰〔2026〕31號" in shown
    by_revoked = await page(client, "〔2026〕42")
    assert "西寧丙創投有限公司" not in by_revoked and "31號" not in by_revoked


async def test_percent_and_underscore_are_searched_as_typed(
    client: Client, regulator: dict[str, str]
) -> None:
    await firm(client, regulator, "百分之百_創投有限公司", 31)
    await firm(client, regulator, "100%資本有限公司", 32)
    assert await found(client, regulator, "%") == ["100%資本有限公司"]
    assert await found(client, regulator, "_") == ["百分之百_創投有限公司"]
    assert await found(client, regulator, "百_創") == ["百分之百_創投有限公司"]
    assert await found(client, regulator, "百%創") == []


async def test_unrelated_text_finds_nothing_and_blank_means_no_filter(
    client: Client, regulator: dict[str, str]
) -> None:
    await firm(client, regulator, "西寧丁創投有限公司", 41)
    for q in ("北京", "投資管理", "9111", "東寧", "Ｚ", "zq"):
        assert await found(client, regulator, q) == [], q
        assert "西寧丁" not in await page(client, q), q
    assert await found(client, regulator, " \u200b ") == ["西寧丁創投有限公司"]


async def test_q_combines_with_kind_name_prefix_and_cursor(
    client: Client, regulator: dict[str, str]
) -> None:
    for n in range(5):
        await firm(client, regulator, f"西寧第{n}創投有限公司", 50 + n)
    await firm(client, regulator, "青海西寧創投有限公司", 59)
    assert len(await found(client, regulator, "西宁")) == 6
    assert await found(client, regulator, "西宁", name_prefix="青海") == ["青海西寧創投有限公司"]
    assert await found(client, regulator, "西宁", kind="practitioner") == []
    first = await client.get("/v1/subjects", headers=regulator, params={"q": "西宁", "limit": "4"})
    rest = await client.get("/v1/subjects", headers=regulator, params={
        "q": "西宁", "limit": "4", "cursor": first.json()["next_cursor"]})
    names = [i["name"] for i in first.json()["items"] + rest.json()["items"]]
    assert len(names) == len(set(names)) == 6


async def test_renames_and_corrections_are_searched_from_their_commit(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """A record's number is found, by regulators and on the page, from the commit of the
    write that recorded it; after a correction, by the new number and never the old."""
    xn = await firm(client, regulator, "西寧戊創投有限公司", 61)
    rec = await record(client, regulator, xn["id"], "寧發改罰〔2026〕61號")
    assert await found(client, regulator, "〕61号") == ["西寧戊創投有限公司"]
    assert "寧發改罰〔2026〕61號" in await page(client, "宁发改罚〔2026〕61")
    renamed = await client.patch(f"/v1/subjects/{xn['id']}", headers=regulator,
                                 json={"version": 1, "name": "海東己資本有限公司"})
    assert renamed.status_code == 200, renamed.text
    assert await found(client, regulator, "海东") == ["海東己資本有限公司"]
    assert await found(client, regulator, "戊创投") == []
    assert await found(client, regulator, "〕61号") == ["海東己資本有限公司"]  # records kept
    corrected = await client.post(f"/v1/records/{rec['id']}/correct", headers=regulator, json={
        "version": 1, "note": "文號更正", "decision_number": "寧發改罰〔2026〕62號"})
    assert corrected.status_code == 200, corrected.text
    assert await found(client, regulator, "〕62号") == ["海東己資本有限公司"]
    assert await found(client, regulator, "〕61号") == []
    assert "寧發改罰〔2026〕62號" in await page(client, "宁发改罚〔2026〕62")
    assert "海東己資本有限公司" not in await page(client, "宁发改罚〔2026〕61")
    # A correction of other fields keeps the number found.
    again = await client.post(f"/v1/records/{rec['id']}/correct", headers=regulator, json={
        "version": 2, "note": "事實更正", "facts": "未按規定報送年度報告（更正）"})
    assert again.status_code == 200, again.text
    assert await found(client, regulator, "〕62号") == ["海東己資本有限公司"]
    stored = await db.fetchval("SELECT search_text FROM subjects WHERE id = $1",
                               uuid.UUID(xn["id"]))
    assert stored == subject_search_text("海東己資本有限公司", code(61))
    number = await db.fetchval("SELECT search_number FROM credit_records WHERE id = $1",
                               uuid.UUID(rec["id"]))
    assert number == record_search_number("寧發改罰〔2026〕62號")
    # The columns changed without a leaf, and the log still verifies: they are not audited.
    await assert_log_consistent(db)


@pytest.mark.parametrize("sample", [1000, 0])
async def test_a_page_walked_or_looked_through_finds_numbers_too(
    client: Client, regulator: dict[str, str], monkeypatch: pytest.MonkeyPatch, sample: int
) -> None:
    """The regulators' listing finds subjects by number whichever way it reads them: a page
    filled in the first window, the rest gathered through the records' trigram index, and a
    term of no trigram walked; each subject's records looked up as the walk goes (a term
    the sample of records finds) or collected first (one it does not: an empty sample)."""
    monkeypatch.setattr(subjects_module, "_NUMBER_SAMPLE", sample)
    names = []
    for n in range(3):
        names.append(f"玉樹第{n}資本有限公司")
        one = await firm(client, regulator, names[-1], 300 + n)
        await record(client, regulator, one["id"], f"玉發改罰〔2027〕{n + 5}號")
    await firm(client, regulator, "果洛無罰資本有限公司", 399)
    first = await client.get("/v1/subjects", headers=regulator,
                             params={"q": "玉发改罚〔2027", "limit": "2"})
    assert first.status_code == 200, first.text
    rest = await client.get("/v1/subjects", headers=regulator, params={
        "q": "玉发改罚〔2027", "limit": "2", "cursor": first.json()["next_cursor"]})
    seen = [i["name"] for i in first.json()["items"] + rest.json()["items"]]
    assert sorted(seen) == sorted(names)
    assert await found(client, regulator, "7〕6") == [names[1]]
    # Two digits make no trigram: walked, with each subject's records looked up.
    assert sorted(await found(client, regulator, "27")) == sorted(names)


async def test_rows_not_yet_folded_are_found_as_typed_then_folded_by_migrate(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows from before the migrations (NULL) are still searched, literally; `migrate` folds
    them (idempotently, queueing index entries for a bulk fill and merging them after), and
    the log verifies before and after."""
    monkeypatch.setattr(migrate_module, "_BULK_FILL", 1)
    xn = await firm(client, regulator, "西寧庚創投有限公司", 71)
    rec = await record(client, regulator, xn["id"], "寧發改罰〔2026〕71號")
    await db.execute("UPDATE subjects SET search_text = NULL")
    await db.execute("UPDATE credit_records SET search_number = NULL")
    await assert_log_consistent(db)
    assert await found(client, regulator, "西寧庚") == ["西寧庚創投有限公司"]
    assert await found(client, regulator, code(71)[:10].lower()) == ["西寧庚創投有限公司"]
    assert await found(client, regulator, "〔2026〕71號") == ["西寧庚創投有限公司"]
    assert "西寧庚創投有限公司" in await page(client, "西寧庚")
    assert "寧發改罰〔2026〕71號" in await page(client, "〔2026〕71號")
    # Folding needs the backfills.
    assert await found(client, regulator, "西宁庚") == []
    assert await found(client, regulator, "〔2026〕71号") == []
    async with db.acquire() as conn:
        assert await migrate(conn) == []
        assert await run_backfills(conn) == {
            "subjects.search_text": 0, "credit_records.search_number": 0}
        for index in ("subjects_search", "credit_records_search"):
            options = await conn.fetchval(
                "SELECT reloptions FROM pg_class WHERE oid = $1::regclass", index)
            assert options == ["fastupdate=off"], index  # the bulk fill's queue merged, off
    assert await found(client, regulator, "西宁庚") == ["西寧庚創投有限公司"]
    assert "西寧庚創投有限公司" in await page(client, "西宁庚")
    assert await found(client, regulator, "〔2026〕71号") == ["西寧庚創投有限公司"]
    assert "寧發改罰〔2026〕71號" in await page(client, "〔2026〕71号")
    stored = await db.fetchval("SELECT search_text FROM subjects WHERE id = $1",
                               uuid.UUID(xn["id"]))
    assert stored == subject_search_text("西寧庚創投有限公司", code(71))
    number = await db.fetchval("SELECT search_number FROM credit_records WHERE id = $1",
                               uuid.UUID(rec["id"]))
    assert number == record_search_number("寧發改罰〔2026〕71號")
    await assert_log_consistent(db)


async def test_a_walked_search_shows_what_a_gathered_one_shows(
    client: Client, regulator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The public page reads a rare term's items through its subjects and walks the newest
    items for a common one: both show the same items, and only those the term names."""
    one = await firm(client, regulator, "西寧壬創投有限公司", 81)
    two = await firm(client, regulator, "青海癸資本有限公司", 82)
    await record(client, regulator, one["id"], "寧發改罰〔2026〕81號")
    await record(client, regulator, two["id"], "寧發改罰〔2026〕82號")
    await record(client, regulator, two["id"], "寧發改罰〔2025〕83號")
    gathered = {q: await page(client, q) for q in ("西宁壬", "〔2026〕8", "〔2025〕")}
    monkeypatch.setattr(page_module, "_RARE", 0.0)
    monkeypatch.setattr(page_module, "_COMMON", 0.0)
    for q, text in gathered.items():
        walked = await page(client, q)
        assert re.findall(r"寧發改罰〔\d+〕\d+號", walked) == re.findall(
            r"寧發改罰〔\d+〕\d+號", text), q
    assert "〔2026〕82號" not in gathered["〔2025〕"]  # the subject's other item is not named
    assert "〔2025〕83號" in gathered["〔2025〕"]
    assert "西寧壬創投有限公司" in gathered["西宁壬"] and "青海" not in gathered["西宁壬"]


async def test_a_long_walk_ends_the_page_and_the_link_goes_on(
    client: Client, regulator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk that looked through its share of items without filling the page ends it there
    with a link below what it looked through; following the links finds every item once."""
    old = await firm(client, regulator, "海東子創投有限公司", 91)
    await record(client, regulator, old["id"], "寧發改罰〔2019〕1號")
    other = await firm(client, regulator, "玉樹丑資本有限公司", 92)
    for n in range(6):
        await record(client, regulator, other["id"], f"寧發改罰〔2026〕{n + 10}號")
    monkeypatch.setattr(page_module, "_RARE", 0.0)
    monkeypatch.setattr(page_module, "_COMMON", 0.0)
    monkeypatch.setattr(page_module, "_LOOK_THROUGH", 2)
    monkeypatch.setattr(page_module, "PAGE_SIZE", 1)
    seen: list[str] = []
    href: str | None = "/public/?q=海东子"
    pages = 0
    while href is not None and pages < 20:
        response = await client.get(href)
        assert response.status_code == 200, response.text
        seen += re.findall(r"寧發改罰〔\d+〕\d+號", response.text)
        link = re.search(r'href="(/public/\?before=\d+&amp;q=[^"]+)" rel="next"', response.text)
        href = link.group(1).replace("&amp;", "&") if link else None
        pages += 1
    assert seen == ["寧發改罰〔2019〕1號"]
    assert pages > 1  # it did stop early at least once


# ---- the index ------------------------------------------------------------------------

_PLACES = ["西宁", "西寧", "青海", "海东", "格尔木", "城东", "大通", "湟中"]
_WORDS = list("鼎盛华汇金源祥瑞德信泰恒达丰昆仑江河高原宏远聚嘉禾新元启明润通和众博智")


async def _many_subjects(conn: Conn, count: int) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        name = (f"{_PLACES[i % len(_PLACES)]}{_WORDS[i % len(_WORDS)]}"
                f"{_WORDS[(i // len(_WORDS)) % len(_WORDS)]}创业投资有限公司")
        rows.append((uuid.uuid4(), "vc_firm", name, "active", code(100_000 + i), 1, now, "t",
                     now, "t", 0, subject_search_text(name, code(100_000 + i))))
    await conn.copy_records_to_table("subjects", records=rows, columns=[
        "id", "kind", "name", "status", "credit_code", "version", "created_at", "created_by",
        "updated_at", "updated_by", "log_index", "search_text"])
    await conn.execute("VACUUM ANALYZE subjects")


async def _plan(conn: Conn, q: str) -> str:
    from registry.search import subject_condition

    condition, params = subject_condition("subjects", 2, q)
    rows = await conn.fetch(
        f"EXPLAIN SELECT * FROM subjects WHERE {condition} ORDER BY id LIMIT $1",  # noqa: S608
        50, *params)
    return "\n".join(r[0] for r in rows)


async def test_the_trigram_index_narrows_two_character_chinese_queries(db: asyncpg.Pool) -> None:
    indexes = await db.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'subjects'")
    defs = {r["indexname"]: r["indexdef"] for r in indexes}
    assert "gin (search_text gin_trgm_ops)" in defs["subjects_search"]
    async with db.acquire() as conn:
        await _many_subjects(conn, 20_000)
        # One name in 900 has 鼎盛; two characters, both Chinese: the index, not a scan.
        assert "subjects_search" in await _plan(conn, "鼎盛")
        assert "subjects_search" in await _plan(conn, "鼎盛創業")
        assert await conn.fetchval("SELECT show_trgm($1) <> '{}'", search_key("盛"))


async def test_the_index_narrows_chinese_under_the_c_locale_too(pg_server: PgServer) -> None:
    """Under LC_CTYPE=C pg_trgm makes no trigram of a Chinese character; the spelled column
    does not depend on it."""
    name = f"t_search_c_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_server.uri)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\''
                            " LC_COLLATE 'C' LC_CTYPE 'C'")
    finally:
        await admin.close()
    conn = await asyncpg.connect(pg_server.url_for(name))
    try:
        await migrate(conn)
        assert await conn.fetchval("SELECT show_trgm('西宁市') = '{}'")  # what the spelling avoids
        await _many_subjects(conn, 20_000)
        assert "subjects_search" in await _plan(conn, "鼎盛")
        assert await backfill_subject_search(conn) == 0
    finally:
        await conn.close()
        admin = await asyncpg.connect(pg_server.uri)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# ---- the migration ----------------------------------------------------------------------


def _check_block() -> str:
    sql = (SCHEMA_DIR / "0013_subject_search.sql").read_text("utf-8")
    match = re.search(r"^DO \$\$.*?^\$\$;", sql, re.S | re.M)
    assert match is not None
    return match.group(0)


async def test_without_pg_trgm_the_migration_says_what_to_install(db: asyncpg.Pool) -> None:
    """The check before CREATE EXTENSION, run against an extension no server has: it stops
    with the name of the missing extension and the packages that bring it."""
    block = _check_block()
    assert "name = 'pg_trgm'" in block
    await db.execute(block)  # the real server has pg_trgm: the check passes
    missing = block.replace("name = 'pg_trgm'", "name = 'pg_trgm_not_installed'")
    with pytest.raises(asyncpg.RaiseError) as refused:
        await db.execute(missing)
    assert "no pg_trgm extension" in str(refused.value)
    hint = refused.value.as_dict().get("hint", "")
    assert "postgresql-contrib" in hint and "postgresql<major>-contrib" in hint
    assert "registry migrate" in hint


def test_each_backfill_is_tied_to_its_migration() -> None:
    from registry.db.migrate import BACKFILLS

    names = {m.version: m.name for m in load_migrations()}
    assert [names[b.after] for b in BACKFILLS] == [
        "0013_subject_search.sql", "0017_record_search.sql"]
    for step in BACKFILLS:
        column = step.name.split(".")[1]
        assert f"ADD COLUMN {column} " in Path(SCHEMA_DIR / names[step.after]).read_text("utf-8")


async def test_0017_takes_the_numbers_out_of_subjects_and_folds_each_record(
    pg_server: PgServer, settings: Settings
) -> None:
    """A database at migration 0016, written as that release wrote it (each subject's search
    text with its records' numbers, records without a spelled number): `migrate` cuts the
    numbers off every subject's text in SQL and folds every record's number in the backfill
    (a record without a number gets ""); searches find them as before, and the log, whose
    leaves hold neither column, still verifies."""
    async with new_database(pg_server, None) as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        assert pool is not None
        try:
            async with pool.acquire() as conn:
                await migrate(conn, load_migrations()[:16])
            key = await ensure_log(pool, settings)
            firms: list[tuple[str, str, list[str | None]]] = [
                ("西寧辛創投有限公司", code(81), ["寧發改罰〔2025〕7號", "寧發改罰〔2026〕8號"]),
                ("海東壬資本有限公司", code(82), []), ("玉樹癸資本有限公司", code(83), [None])]
            ids = []
            for firm_name, firm_code, numbers in firms:
                ids.append(await _subject_as_0016_wrote_it(pool, firm_name, firm_code, numbers))
            async with pool.acquire() as conn:
                applied = [m.version for m in await migrate(conn)]
                assert applied == list(range(17, len(load_migrations()) + 1))
                texts = await conn.fetch("SELECT id, search_text FROM subjects")
                assert {r["id"]: r["search_text"] for r in texts} == {
                    subject_id: subject_search_text(firm_name, firm_code)
                    for subject_id, (firm_name, firm_code, _) in zip(ids, firms, strict=True)}
                record_rows = await conn.fetch(
                    "SELECT decision_number, search_number FROM credit_records")
                assert sorted((r["decision_number"] or "", r["search_number"]) for r in record_rows) == [
                    ("", ""),
                    ("寧發改罰〔2025〕7號", record_search_number("寧發改罰〔2025〕7號")),
                    ("寧發改罰〔2026〕8號", record_search_number("寧發改罰〔2026〕8號"))]
                assert await run_backfills(conn) == {
                    "subjects.search_text": 0, "credit_records.search_number": 0}
            assert await integrate_all(pool, key, settings.log_origin) == 6
            report = await verify_log(pool)
            assert report.ok, report.first_difference
            services = SimpleNamespace(pool=pool)
            for q, expected in (("宁发改罚〔2025〕7号", ["西寧辛創投有限公司"]), ("海东壬", ["海東壬資本有限公司"]),
                                ("〔2026〕", ["西寧辛創投有限公司"])):
                rows = await list_subjects(services, kind=None, name_prefix=None, after=None,  # type: ignore[arg-type]
                                           limit=50, q=q)
                assert [r["name"] for r in rows] == expected, q
        finally:
            await pool.close()


async def _subject_as_0016_wrote_it(
    pool: asyncpg.Pool, name: str, credit_code: str, numbers: list[str | None]
) -> uuid.UUID:
    """A subject and its records, audited, as the release of migration 0016 wrote them: the
    subject's search text spelled its name, code and the records' numbers."""
    subject_id = uuid.uuid4()
    old_text = PART_SEPARATOR.join(
        search_key(part) for part in [name, credit_code, *sorted(n for n in numbers if n)])

    async def subject(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(await conn.fetchrow(
            "INSERT INTO subjects (id, kind, name, status, credit_code, version, created_at,"
            " created_by, updated_at, updated_by, log_index, search_text) VALUES ($1, 'vc_firm',"
            " $2, 'active', $3, 1, $4, 'regulator:old', $4, 'regulator:old', $5, $6) RETURNING *",
            subject_id, name, credit_code, now, index, old_text))
        return row

    await audited_write(pool, SystemClock(), actor="regulator:old", action="subject.create",
                        object_type="subject", write=subject)
    for number in numbers:
        fields = penalty(str(subject_id), number or "unused")

        async def record(conn: Conn, index: int, now: datetime, number: str | None = number,
                         fields: dict[str, Any] = fields) -> asyncpg.Record:
            kind = "penalty" if number else "filing"
            row = required(await conn.fetchrow(
                "INSERT INTO credit_records (id, subject_id, record_kind, grade, decision_number,"
                " facts, penalty_types, decision_date, authority_name, authority_code,"
                " source_name, source_code, published, publicity_start, repair_from,"
                " publicity_reason, status, version, created_at, created_by, updated_at,"
                " updated_by, log_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9,"
                " $10, true, $8, $8, 'general', 'published', 1, $11, 'regulator:old', $11,"
                " 'regulator:old', $12) RETURNING *",
                uuid.uuid4(), subject_id, kind, "general" if number else None, number,
                fields["facts"], ["fine"] if number else [], date(2026, 1, 5),
                fields["authority_name"], fields["authority_code"], now, index))
            return row

        await audited_write(pool, SystemClock(), actor="regulator:old", action="record.create",
                            object_type="credit_record", write=record)
    return subject_id


# The partial indexes of the public search (schema/0015) and the rule they serve.
_PUBLIC_SEARCH_INDEXES = [
    ("credit_records_public_by_subject", RECORDS),
    ("credit_records_public_by_log_index", RECORDS),
    ("blacklist_listed_by_subject", LISTINGS),
]


@pytest.mark.parametrize(("index", "rule"), _PUBLIC_SEARCH_INDEXES)
async def test_public_search_indexes_cover_exactly_the_disclosed_items(
    db: asyncpg.Pool, index: str, rule: Publication
) -> None:
    """Each index's predicate is the disclosure rule's state part as PostgreSQL reads it:
    if the rule changed and the index did not, the search would fall back to reading
    every item (or, with a weaker predicate, the index would hold items it never needs)."""
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(
                f"CREATE INDEX rule_as_stated ON {rule.table} (id) WHERE {rule.disclosed_sql()}"
            )
            predicates = await conn.fetch(
                "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) AS predicate"
                " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = ANY($1)", [index, "rule_as_stated"])
        finally:
            await transaction.rollback()  # the stated rule's index was only for comparing
    found = {r["relname"]: r["predicate"] for r in predicates}
    assert found[index] == found["rule_as_stated"]
