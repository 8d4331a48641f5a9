"""What people read is Simplified Chinese (zh-CN) and Beijing time; stored data stays as typed.

信用西宁 and its readers are on the mainland (DOMAIN.md "Language, time and the calendar").
The registry's own words come from ``registry.publish.labels`` and the templates; the
values a regulator typed (names, decision numbers, facts) are never converted.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from registry.clock import ManualClock
from registry.identifiers import DocumentType
from registry.publish import feed, labels
from tests.public_helpers import FIRM_NAME, Client, firm, listing, person, record

SITE_TITLE = "信用西宁 · 创业投资领域信用信息公示"

# The 雙公示 administrative-penalty columns in their simplified form, in template order,
# exactly as DOMAIN.md lists them (copied from it, line breaks and all).
DOMAIN_TEXT = """
    行政相对人名称 · 行政相对人类别 · 行政相对人代码_1(统一社会信用代码) ·
    行政相对人代码_2(工商注册号) · 行政相对人代码_3(组织机构代码) ·
    行政相对人代码_4(税务登记号) · 行政相对人代码_5(事业单位证书号) ·
    行政相对人代码_6(社会组织登记证号) · 法定代表人 · 法定代表人证件类型 ·
    法定代表人证件号码 · 证件类型 · 证件号码 · 行政处罚决定书文号 · 违法行为类型 ·
    违法事实 · 处罚依据 · 处罚类别 · 处罚内容 · 罚款金额(万元) ·
    没收违法所得、没收非法财物的金额(万元) · 暂扣或吊销证照名称及编号 · 处罚决定日期 ·
    处罚有效期 · 公示截止期 · 处罚机关 · 处罚机关统一社会信用代码 · 数据来源单位 ·
    数据来源单位统一社会信用代码 · 备注"""
DOMAIN_COLUMNS = [name.strip() for name in DOMAIN_TEXT.split("·")]

# Traditional-only characters (each one changes under a Traditional→Simplified
# conversion), taken from the registry's labels as they were in Traditional script.
# No runtime converter: the project has none as a dependency for this.
TRADITIONAL_ONLY = frozenset(
    "來備內冊別創劃務勵單嚴國執實寧對據數暫書會業構機決沒灣為產異碼稅稱組結統編織罰萬處號"
    "計記許註認證議護財責資輕違銷錄關陸領額類體"
    "與當監項屬閱讀題覽頁門網時間區個這們說開發經過還請"
)
TEMPLATES = Path(__file__).resolve().parents[1] / "registry" / "templates"
CONSOLE = Path(__file__).resolve().parents[1] / "registry" / "console"
ATOM = {"a": "http://www.w3.org/2005/Atom"}


def _traditional(text: str) -> set[str]:
    return {ch for ch in text if ch in TRADITIONAL_ONLY}


def test_no_label_holds_a_traditional_character() -> None:
    """Every label the registry shows people (kinds, grades, penalty and document types,
    categories, reasons, headings, column names, the objection mark) is Simplified."""
    found = {label: _traditional(label) for label in labels.all_labels() if _traditional(label)}
    assert found == {}


def test_no_template_holds_a_traditional_character() -> None:
    """The page templates are Simplified and say lang="zh-CN"."""
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert _traditional(text) == set(), template.name
    assert 'lang="zh-CN"' in (TEMPLATES / "public_base.html").read_text(encoding="utf-8")


def test_a_converter_changes_no_label() -> None:
    """OpenCC's Traditional→Simplified conversion leaves every label and template as it is
    (opencc is a runtime dependency of search, so it is always installed: never skipped)."""
    import opencc

    convert = opencc.OpenCC("t2s").convert
    changed = {label: convert(label) for label in labels.all_labels() if convert(label) != label}
    assert changed == {}
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert convert(text) == text, template.name


def _console_strings() -> list[str]:
    """Every string constant in the console's modules that holds a CJK character: the
    console's own words (sign-in, refusals, reasons) live there and in its templates."""
    import ast

    found: list[str] = []
    for module in CONSOLE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and any("\u4e00" <= ch <= "\u9fff" for ch in node.value)):
                found.append(node.value)
    return found


def test_the_console_speaks_simplified_chinese() -> None:
    import opencc

    convert = opencc.OpenCC("t2s").convert
    strings = _console_strings()
    assert len(strings) > 10  # the scan finds the console's words at all
    assert {text: convert(text) for text in strings if convert(text) != text} == {}
    assert 'lang="zh-CN"' in (TEMPLATES / "console_base.html").read_text(encoding="utf-8")


def test_penalty_columns_are_the_template_in_order() -> None:
    """The 雙公示 columns are DOMAIN.md's simplified list, in order; the codes stay."""
    assert [name for _, name in labels.PENALTY_COLUMNS] == DOMAIN_COLUMNS
    assert len(DOMAIN_COLUMNS) == 30
    assert labels.PENALTY_COLUMNS[0] == ("cf_xdr_mc", "行政相对人名称")
    assert labels.PENALTY_COLUMNS[-1] == ("bz", "备注")


def test_every_code_has_a_name() -> None:
    """Every document type has its Simplified name, and the names are the ones people know."""
    assert set(labels.DOCUMENT_TYPE_NAMES) == set(DocumentType)
    assert labels.DOCUMENT_TYPE_NAMES[DocumentType.RESIDENT_ID] == "居民身份证"
    assert set(labels.GRADE_NAMES) == {"minor", "general", "serious"}
    assert labels.GRADE_NAMES["serious"] == "严重"
    assert labels.PENALTY_TYPE_NAMES["fine"] == "罚款"
    assert labels.OBJECTION_MARK == "异议处理中"


def test_withdrawal_titles_name_the_reason() -> None:
    """An Atom withdrawal says what was taken down and why, in Chinese; a regulator's own
    reason is shown as typed."""
    coded = {"event": "withdrawal", "object": "credit_record/abc", "reason": "period_ended"}
    assert feed._entry_title(coded) == "撤下 信用记录 abc（公示期满）"
    removed = {"event": "withdrawal", "object": "blacklist_entry/x", "reason": "credit_repair_approved"}
    assert feed._entry_title(removed) == "撤下 严重失信主体名单 x（信用修复）"
    typed = {"event": "withdrawal", "object": "credit_record/abc", "reason": "決定被撤銷"}
    assert feed._entry_title(typed) == "撤下 信用记录 abc（決定被撤銷）"


def test_days_are_xining_days() -> None:
    """01:00 in Beijing is still the previous day in UTC: people read the Beijing day."""
    assert feed.page_day(datetime(2026, 3, 1, 17, 0, tzinfo=UTC)) == "2026-03-02"


async def test_page_is_simplified(client: Client, regulator: dict[str, str],
                                  clock: ManualClock) -> None:
    """lang="zh-CN", a Simplified heading and footer; a practitioner's document type and
    category and a listing's label Simplified; what the regulator typed is as typed."""
    pid = await person(client, regulator)
    rec = await record(client, regulator, pid, "寧發改罰〔2026〕61號")
    await listing(client, regulator, clock, pid)
    home = (await client.get("/public/")).text
    assert '<html lang="zh-CN">' in home
    assert SITE_TITLE in home
    assert "最新行政处罚公示" in home
    assert "日期和时间均为北京时间（UTC+8）" in home
    assert "信用西寧" not in home
    assert "行政处罚·一般 寧發改罰〔2026〕61號" in home  # label simplified, number as typed
    detail = (await client.get(f"/public/records/{rec['id']}")).text
    assert "行政处罚：李四" in detail
    assert "<th>行政相对人类别</th><td>自然人</td>" in detail
    assert "<th>证件类型</th><td>居民身份证</td>" in detail
    assert "未按規定報送年度報告" in detail  # facts as the regulator typed them
    blacklist = (await client.get("/public/blacklist")).text
    assert "创业投资领域严重失信主体名单" in blacklist
    assert "严重失信主体名单" in blacklist
    assert "「李四」的搜索结果" in (await client.get("/public/", params={"q": "李四"})).text
    robots = (await client.get("/robots.txt")).text
    assert robots.startswith("# 信用西宁")


async def test_feeds_are_simplified_and_in_beijing_time(client: Client, regulator: dict[str, str],
                                                       clock: ManualClock) -> None:
    """JSON and Atom titles, the author and the entries' labels are Simplified; the feed's
    `updated` is the Last-Modified instant written in Beijing time."""
    sid = await firm(client, regulator)
    rec = await record(client, regulator, sid, "寧發改罰〔2026〕62號")
    filed = await client.post("/v1/objections", headers=regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "事实认定有误"})
    assert filed.status_code == 201, filed.text
    await listing(client, regulator, clock, await person(client, regulator))

    response = await client.get("/public/feed.json")
    document = response.json()
    assert document["title"] == SITE_TITLE
    assert document["updated"].endswith("+08:00")
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert datetime.fromisoformat(document["updated"]) == modified
    marked = next(e for e in document["entries"] if e["object"] == f"credit_record/{rec['id']}")
    assert marked["objection_mark"] == "异议处理中"
    assert marked["items"]["cf_wsh"] == "寧發改罰〔2026〕62號"
    assert marked["items"]["cf_cflb"] == "罚款"

    root = ET.fromstring((await client.get("/public/feed.atom")).text)  # noqa: S314 - our own output
    assert root.findtext("a:title", namespaces=ATOM) == SITE_TITLE
    assert root.findtext("a:author/a:name", namespaces=ATOM) == "信用西宁"
    assert (root.findtext("a:updated", namespaces=ATOM) or "").endswith("+08:00")
    titles = [e.findtext("a:title", namespaces=ATOM) or "" for e in root.findall("a:entry", ATOM)]
    assert any(t.endswith("寧發改罰〔2026〕62號(异议处理中)") for t in titles), titles
    assert any(t.endswith("严重失信主体名单") for t in titles), titles
    typed = (FIRM_NAME, "寧發改罰〔2026〕62號", "寧發改罰〔2026〕99號")  # stored, never converted
    for title in titles:
        for value in typed:
            title = title.replace(value, "")
        assert _traditional(title) == set(), title


async def test_csv_headers_are_the_template(client: Client, regulator: dict[str, str],
                                            clock: ManualClock) -> None:
    """The penalties CSV header row is DOMAIN.md's list exactly; the blacklist's is Simplified;
    the cells hold the data as typed and the labels in Simplified."""
    sid = await firm(client, regulator)
    await record(client, regulator, sid, "寧發改罰〔2026〕63號")
    await listing(client, regulator, clock, await person(client, regulator))
    penalties = await client.get("/public/exports/penalties.csv")
    rows = list(csv.reader(io.StringIO(penalties.content.decode("utf-8-sig"))))
    assert rows[0] == DOMAIN_COLUMNS
    mine = next(row for row in rows[1:] if row[13] == "寧發改罰〔2026〕63號")
    assert mine[1] == "法人及非法人组织"
    assert mine[17] == "罚款"
    assert mine[25] == "西寧市發展和改革委員會"  # as typed
    blacklist = await client.get("/public/exports/blacklist.csv")
    header = next(csv.reader(io.StringIO(blacklist.content.decode("utf-8-sig"))))
    assert header == [name for _, name in labels.LISTING_COLUMNS]
    assert _traditional("".join(header)) == set()


@pytest.mark.parametrize(("as_of", "stamp"), [
    ("2026-03-02T01:30:00Z", "20260302T093000+0800"),
    ("2026-03-01T20:00:00-04:00", "20260302T080000+0800"),
])
async def test_export_file_names_are_in_beijing_time(client: Client, as_of: str, stamp: str) -> None:
    """The export's file name gives its moment in Beijing time, whatever offset was asked."""
    response = await client.get("/public/exports/penalties.csv", params={"as_of": as_of})
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == (
        f'attachment; filename="penalties-{stamp}.csv"')
