"""待办 (``/console/``): what waits for the signed-in official's authority, each item a link
to the place to act, with its deadline; nothing of another authority's.

Data is made through the API with bearer tokens, then a console session is opened on the
same client (after any clock advance: a session lasts eight hours)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from registry.clock import ManualClock
from registry.working_calendar import build_calendar
from tests.conftest import OTHER_AUTHORITY
from tests.console_helpers import Client, signed_in_regulator
from tests.credit_helpers import penalty, record, subject
from tests.public_helpers import listing

THEIRS = OTHER_AUTHORITY[0]
SECTIONS = ("objections", "blacklist", "leaving", "repairs", "provisional")


def at(day: date) -> datetime:
    """10:00 Beijing time on ``day``."""
    return datetime(day.year, day.month, day.day, 2, tzinfo=UTC)


def section(html: str, name: str) -> str:
    """The text of the page's section ``name``."""
    found = re.search(rf'<section id="{name}".*?</section>', html, re.S)
    assert found, f"no section {name}"
    return found.group(0)


def part(html: str, heading: str) -> str:
    """The part of the blacklist section under the ``<h4>`` starting with ``heading``."""
    found = re.search(rf"<h4>{heading}.*?(?=<h4>|</section>)", section(html, "blacklist"), re.S)
    assert found, f"no part {heading}"
    return found.group(0)


def count(html: str, name: str) -> int:
    found = re.search(r'<span class="count">(\d+) 项</span>', section(html, name))
    assert found
    return int(found.group(1))


async def dashboard(client: Client, db: asyncpg.Pool, authority: str | None = None) -> str:
    await signed_in_regulator(client, db, authority=authority)
    page = await client.get("/console/")
    assert page.status_code == 200, page.text[:500]
    return page.text


async def objection(client: Client, headers: dict[str, str], target_type: str,
                    target_id: str) -> dict[str, Any]:
    answer = await client.post("/v1/objections", headers=headers, json={
        "target_type": target_type, "target_id": target_id, "grounds": "处罚对象认定有误"})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()["objection"]
    return body


async def proposal(client: Client, headers: dict[str, str], subject_id: str,
                   record_id: str) -> str:
    answer = await client.post("/v1/blacklist", headers=headers, json={
        "subject_id": subject_id, "criterion": "拒不履行行政处罚决定",
        "legal_basis": "国办发〔2020〕49号", "record_ids": [record_id]})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def notify(client: Client, headers: dict[str, str], entry_id: str) -> dict[str, Any]:
    answer = await client.post(f"/v1/blacklist/{entry_id}/notify", headers=headers,
                               json={"channel": "registered_mail"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def repair(client: Client, headers: dict[str, str], record_id: str) -> str:
    answer = await client.post("/v1/repairs", headers=headers, json={
        "target_type": "credit_record", "target_id": record_id, "grounds": "已整改并履行处罚"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_nothing_waiting_shows_each_section_empty(client: Client, db: asyncpg.Pool) -> None:
    """With nothing to do, every section says so, with a count of 0."""
    html = await dashboard(client, db)
    for name in SECTIONS:
        assert "暂无待办" in section(html, name), name
        assert count(html, name) == 0
    assert "今天是 <time datetime=\"2026-03-02\">2026-03-02</time>" in html


async def test_objections_show_their_deadlines_overdue_first(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """Each pending objection links to its page, its record and its subject, with both
    working-day deadlines; one past its answer deadline comes first, marked 已逾期."""
    sid = await subject(client, regulator)
    first = await record(client, regulator, penalty(sid, "宁发改罚〔2026〕1号"))
    second = await record(client, regulator, penalty(sid, "宁发改罚〔2026〕2号"))
    late = await objection(client, regulator, "credit_record", first["id"])
    clock.set(at(date.fromisoformat(late["answer_due"]) + timedelta(days=1)))
    fresh = await objection(client, regulator, "credit_record", second["id"])
    decided = await objection(client, regulator, "credit_record",
                              (await record(client, regulator,
                                            penalty(sid, "宁发改罚〔2026〕3号")))["id"])
    answer = await client.post(f"/v1/objections/{decided['id']}/decide", headers=regulator,
                               json={"outcome": "rejected"})
    assert answer.status_code == 200, answer.text

    html = section(await dashboard(client, db), "objections")
    assert count(html, "objections") == 2
    assert f"/console/objections/{decided['id']}" not in html  # decided: nothing waits
    late_at = html.index(f'href="/console/objections/{late["id"]}"')
    fresh_at = html.index(f'href="/console/objections/{fresh["id"]}"')
    assert late_at < fresh_at
    overdue = '<span class="flag">已逾期</span>'
    assert html.count(overdue) == 1 and late_at - 120 < html.index(overdue) < late_at
    for filed, rec in ((late, first), (fresh, second)):
        assert f"决定期限 <time datetime=\"{filed['decide_due']}\">" in html
        assert f"答复期限 <time datetime=\"{filed['answer_due']}\">" in html
        assert f'href="/console/records/{rec["id"]}"' in html
        assert "宁发改罚〔2026〕" in html
    assert f'href="/console/subjects/{sid}"' in html
    assert "（暂定）" not in html


async def test_a_notified_entry_shows_when_its_window_ends_then_may_be_listed(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """Inside its objection window an entry waits with the window's last day, in the rule's
    own words; the day after, it is under "may be listed". A proposal waits to be notified."""
    sid = await subject(client, regulator)
    serious = await record(client, regulator, penalty(sid, "宁发改罚〔2026〕9号", grade="serious"))
    notified = await proposal(client, regulator, sid, serious["id"])
    deadline = (await notify(client, regulator, notified))["objection_deadline"]
    other = await record(client, regulator, penalty(sid, "宁发改罚〔2026〕10号", grade="serious"))
    proposed = await proposal(client, regulator, sid, other["id"])

    html = await dashboard(client, db)
    assert count(html, "blacklist") == 2
    waiting = part(html, "尚不能列入")
    assert f'href="/console/blacklist/{notified}"' in waiting
    assert f"异议期届满日 <time datetime=\"{deadline}\">" in waiting
    assert f"异议期至 {deadline} 届满，届满后方可列入名单。" in waiting
    assert f"/console/blacklist/{notified}" not in part(html, "可以列入名单")
    assert f'href="/console/blacklist/{proposed}"' in part(html, "已提出，待告知当事人")

    clock.set(at(date.fromisoformat(deadline)))
    html = await dashboard(client, db)  # the window's last day: not yet
    assert f"/console/blacklist/{notified}" in part(html, "尚不能列入")
    clock.advance(days=1)
    html = await dashboard(client, db)
    listable = part(html, "可以列入名单")
    assert f'href="/console/blacklist/{notified}"' in listable
    assert f"异议期已于 <time datetime=\"{deadline}\">{deadline}</time> 届满" in listable
    assert f"/console/blacklist/{notified}" not in part(html, "尚不能列入")


async def test_an_entry_under_objection_waits_for_the_objection(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """After its window, an entry with an objection pending is not listable: the reason
    says why, and the objection is on the list of objections to decide."""
    sid = await subject(client, regulator)
    serious = await record(client, regulator, penalty(sid, "宁发改罚〔2026〕9号", grade="serious"))
    entry = await proposal(client, regulator, sid, serious["id"])
    await notify(client, regulator, entry)
    filed = await objection(client, regulator, "blacklist_entry", entry)
    clock.advance(days=11)
    html = await dashboard(client, db)
    waiting = part(html, "尚不能列入")
    assert f"/console/blacklist/{entry}" in waiting
    assert "有异议尚未处理，处理后方可列入名单。" in waiting
    objections = section(html, "objections")
    assert f'href="/console/objections/{filed["id"]}"' in objections
    assert "严重失信主体名单条目「拒不履行行政处罚决定」" in objections
    assert f'href="/console/blacklist/{entry}"' in objections


async def test_a_record_leaving_within_30_days_is_listed_and_a_later_one_not(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """A general penalty of 2025-03-20 is shown through 2026-03-20: it leaves within 30
    days of 2026-03-02. One of 2025-06-01 (shown through 2026-06-01) does not yet."""
    sid = await subject(client, regulator)
    soon = await record(client, regulator, penalty(sid, "宁发改罚〔2025〕5号",
                                                   decision_date="2025-03-20"))
    later = await record(client, regulator, penalty(sid, "宁发改罚〔2025〕6号",
                                                    decision_date="2025-06-01"))
    assert soon["publicity_deadline"] == "2026-03-20"
    html = section(await dashboard(client, db), "leaving")
    assert count(html, "leaving") == 1
    assert f'href="/console/records/{soon["id"]}"' in html
    assert "公示截止期 <time datetime=\"2026-03-20\">" in html
    assert "宁发改罚〔2025〕5号" in html
    assert later["id"] not in html


async def test_a_listing_leaving_publication_is_listed(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """A listing whose planned removal is near appears with its last day shown."""
    sid = await subject(client, regulator)
    listed = await listing(client, regulator, clock, sid)
    removal = date.fromisoformat(listed["planned_removal_on"])
    clock.set(at(removal - timedelta(days=31)))
    html = section(await dashboard(client, db), "leaving")
    assert listed["id"] not in html
    clock.advance(days=1)
    html = section(await dashboard(client, db), "leaving")
    assert f'href="/console/blacklist/{listed["id"]}"' in html
    last = (removal - timedelta(days=1)).isoformat()
    assert f"公示截止期 <time datetime=\"{last}\">" in html


async def test_repair_applications_awaiting_a_decision(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """An application links to its page, says its route and day, and links its record."""
    sid = await subject(client, regulator)
    old = await record(client, regulator, penalty(sid, "宁发改罚〔2025〕5号",
                                                  decision_date="2025-03-20"))
    repair_id = await repair(client, regulator, old["id"])
    html = section(await dashboard(client, db), "repairs")
    assert count(html, "repairs") == 1
    assert f'href="/console/repairs/{repair_id}"' in html
    assert "提前停止公示行政处罚信息" in html
    assert "申请日期 <time datetime=\"2026-03-02\">" in html
    assert f'href="/console/records/{old["id"]}"' in html


async def test_a_deadline_into_an_unpublished_year_is_provisional(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """Filed late in the last year the calendar knows: the answer deadline reaches into the
    next, is marked 暂定 and listed with the year whose notice is still missing."""
    unknown = max(build_calendar().years) + 1
    clock.set(at(date(unknown - 1, 12, 28)))
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(
        sid, "宁发改罚〔2026〕7号", decision_date=f"{unknown - 1}-12-28",
        valid_until=f"{unknown}-12-28"))
    filed = await objection(client, regulator, "credit_record", rec["id"])
    assert filed["answer_due_provisional"] is True
    html = await dashboard(client, db)
    assert "答复期限 <time datetime=\"{}\">{}</time>（暂定）".format(
        filed["answer_due"], filed["answer_due"]) in section(html, "objections")
    provisional = section(html, "provisional")
    assert count(html, "provisional") == 1 + filed["decide_due_provisional"]
    assert f'href="/console/objections/{filed["id"]}"' in provisional
    assert f"答复期限 <time datetime=\"{filed['answer_due']}\">" in provisional
    assert f"尚未公布 {unknown} 年的节假日安排" in provisional


async def test_another_authoritys_items_are_not_shown(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str],
        other_regulator: dict[str, str]) -> None:
    """Another authority's objections, entries, leaving records and repairs are on its own
    待办, never on ours (each body answers for its own decisions)."""
    sid = await subject(client, regulator)
    theirs = {"authority_code": THEIRS, "authority_name": OTHER_AUTHORITY[1]}
    old = await record(client, other_regulator, penalty(
        sid, "宁金罚〔2025〕1号", decision_date="2025-03-20", **theirs))
    serious = await record(client, other_regulator, penalty(
        sid, "宁金罚〔2026〕2号", grade="serious", **theirs))
    filed = await objection(client, regulator, "credit_record", serious["id"])
    entry = await proposal(client, other_regulator, sid, serious["id"])
    repair_id = await repair(client, regulator, old["id"])
    ids = [old["id"], serious["id"], filed["id"], entry, repair_id]

    ours = await dashboard(client, db)
    for name in SECTIONS:
        assert count(ours, name) == 0, name
    for item in ids:
        assert item not in ours

    html = await dashboard(client, db, authority=THEIRS)
    for item in ids:
        assert item in html
    assert (count(html, "objections"), count(html, "blacklist"), count(html, "leaving"),
            count(html, "repairs")) == (1, 1, 1, 1)
