"""Blacklist steps, objection and repair decisions at the console: each step's form is on the
page only when its rule allows it today (otherwise the rule's reason, in Chinese), and a
posted form goes through the same use case as the API, leaving the same audit leaves.

Data is made through the API (bearer tokens); the console is driven as a browser would
(``tests/console_helpers.py``). A console session lasts 8 hours, so a test that moves the
clock by days signs in again.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import asyncpg

from registry.clock import ManualClock
from tests.conftest import OTHER_AUTHORITY
from tests.console_helpers import Client, signed_in_regulator, submit
from tests.credit_helpers import actions, log_size, penalty, record, subject


def day(text: str) -> datetime:
    """10:00 in Xining on ``text``."""
    return datetime.fromisoformat(text).replace(hour=2, tzinfo=UTC)


def form_for(html: str, action: str) -> bool:
    """Whether the page has a form posting to ``action``."""
    return f'action="{action}"' in html


_FORM = re.compile(r"<form\b.*?</form>", re.S)
_TOKEN = re.compile(r'name="_csrf_token" value="[^"]+"')


def every_form_carries_the_token(html: str) -> int:
    """How many forms the page has, each checked to carry a CSRF token (a form without
    one would be refused when a browser posts it)."""
    forms = _FORM.findall(html)
    assert forms
    for form in forms:
        assert _TOKEN.search(form), form[:300]
    return len(forms)


def ids_are_unique(html: str) -> None:
    """No two elements share an id (a label names one field)."""
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def version_in(html: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found, "no step form carries the entry's version"
    return found.group(1)


async def serious_record(client: Client, headers: dict[str, str]) -> tuple[str, str]:
    sid = await subject(client, headers)
    rec = await record(client, headers, penalty(sid, grade="serious"))
    return sid, str(rec["id"])


async def proposed(client: Client, headers: dict[str, str]) -> tuple[str, str, str]:
    """(subject id, record id, entry id) of a proposal made through the API."""
    sid, rid = await serious_record(client, headers)
    answer = await client.post("/v1/blacklist", headers=headers, json={
        "subject_id": sid, "criterion": "拒不履行行政处罚决定", "legal_basis": "国办发〔2020〕49号",
        "record_ids": [rid]})
    assert answer.status_code == 201, answer.text
    return sid, rid, str(answer.json()["id"])


async def entry_api(client: Client, headers: dict[str, str], eid: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/blacklist/{eid}", headers=headers)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def test_an_entry_is_proposed_through_the_form_and_found_on_its_page(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """The basis records offered are the subject's serious records of this authority; the
    proposal is the API's (blacklist.propose) and its page shows state, basis and history."""
    sid, rid = await serious_record(client, regulator)
    general = await record(client, regulator, penalty(sid, "宁发改罚〔2026〕2号"))
    await signed_in_regulator(client, db)
    new_page = f"/console/blacklist/new?subject={sid}"
    form = await client.get(new_page)
    assert form.status_code == 200
    assert f'value="{rid}"' in form.text
    assert f'value="{general["id"]}"' not in form.text  # a general record is no basis

    # Nothing chosen: refused at the field, what was typed kept, nothing written.
    start = await log_size(db)
    missing = await submit(client, new_page, new_page,
                           {"criterion": "拒不履行行政处罚决定", "legal_basis": "国办发〔2020〕49号"})
    assert missing.status_code == 422
    assert 'id="record_ids-error"' in missing.text and "必填项为空" in missing.text
    assert 'value="拒不履行行政处罚决定"' in missing.text
    assert await log_size(db) == start

    answer = await submit(client, new_page, new_page, {
        "criterion": "拒不履行行政处罚决定", "legal_basis": "国办发〔2020〕49号", "record_ids": rid})
    assert answer.status_code == 303, answer.text[:500]
    location = answer.headers["location"]
    found = re.fullmatch(r"/console/blacklist/([0-9a-f-]{36})\?done=propose", location)
    assert found, location
    eid = found.group(1)
    assert (await entry_api(client, regulator, eid))["state"] == "proposed"
    assert await actions(db, start) == ["blacklist.propose"]

    entry_page = await client.get(location)
    assert entry_page.status_code == 200
    text = entry_page.text
    assert "已提请" in text and "已提请列入名单" in text
    assert f'href="/console/records/{rid}"' in text
    assert f'href="/console/subjects/{sid}"' in text
    assert "提请列入" in text and f'start={start}&amp;end={start + 1}' in text
    assert form_for(text, f"/console/blacklist/{eid}/notify")
    assert form_for(text, f"/console/blacklist/{eid}/withdraw")
    # Sign-out, notify, withdraw; the proposal form too.
    assert every_form_carries_the_token(text) == 3
    assert every_form_carries_the_token(form.text) == 2
    ids_are_unique(text)
    ids_are_unique(form.text)
    assert not form_for(text, f"/console/blacklist/{eid}/list")
    assert not form_for(text, f"/console/blacklist/{eid}/remove")
    assert "尚未告知当事人" in text


async def test_notify_then_list_only_after_the_objection_window(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """During the window the list step is no form but the reason naming its last day; the
    day after, the form is there and listing works."""
    _, _, eid = await proposed(client, regulator)
    await signed_in_regulator(client, db)
    page_path = f"/console/blacklist/{eid}"
    page = await client.get(page_path)
    start = await log_size(db)
    notified = await submit(client, page_path, f"{page_path}/notify", {
        "channel": "registered_mail", "on": "", "version": version_in(page.text)})
    assert notified.status_code == 303, notified.text[:500]
    assert await actions(db, start) == ["blacklist.notify"]
    entry = await entry_api(client, regulator, eid)
    assert entry["state"] == "notified" and entry["notice_channel"] == "registered_mail"
    assert entry["objection_deadline"] == "2026-03-12"

    during = (await client.get(page_path)).text
    assert "已告知" in during and "挂号信邮寄送达" in during
    assert not form_for(during, f"{page_path}/list")
    assert "异议期至 2026-03-12 届满，届满后方可列入名单。" in during
    assert not form_for(during, f"{page_path}/notify")
    assert "已告知当事人，无需重复告知。" in during

    clock.set(day("2026-03-12"))  # the window's last day: still closed
    await signed_in_regulator(client, db)
    assert not form_for((await client.get(page_path)).text, f"{page_path}/list")

    clock.advance(days=1)
    await signed_in_regulator(client, db)
    after = (await client.get(page_path)).text
    assert form_for(after, f"{page_path}/list")
    assert "异议期至" not in after
    every_form_carries_the_token(after)
    listed = await submit(client, page_path, f"{page_path}/list",
                          {"planned_removal_on": "", "version": version_in(after)})
    assert listed.status_code == 303, listed.text[:500]
    entry = await entry_api(client, regulator, eid)
    assert entry["state"] == "listed" and entry["listed_on"] == "2026-03-13"
    shown = (await client.get(page_path)).text
    assert "严重失信主体名单条目 · 已列入名单" in shown and entry["planned_removal_on"] in shown
    assert form_for(shown, f"{page_path}/remove")
    assert not form_for(shown, f"{page_path}/withdraw")
    assert "已列入名单，不能撤回提请" in shown


async def test_a_stale_page_is_refused_with_nothing_written(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """The form carries the version it showed: a step posted from an older page is a 409
    shown on the fresh page, not a second write."""
    _, _, eid = await proposed(client, regulator)
    await signed_in_regulator(client, db)
    page_path = f"/console/blacklist/{eid}"
    await client.post(f"/v1/blacklist/{eid}/notify", headers=regulator,
                      json={"channel": "in_person"})
    start = await log_size(db)
    stale = await submit(client, page_path, f"{page_path}/withdraw",
                         {"reason": "决定已撤销", "version": "1"})
    assert stale.status_code == 409
    assert "该信息已被他人修改" in stale.text
    assert await log_size(db) == start
    assert (await entry_api(client, regulator, eid))["state"] == "notified"


async def test_remove_offers_only_the_reasons_the_rule_allows_today(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    _, _, eid = await proposed(client, regulator)
    await client.post(f"/v1/blacklist/{eid}/notify", headers=regulator, json={"channel": "m"})
    clock.set(day("2026-03-13"))
    assert (await client.post(f"/v1/blacklist/{eid}/list", headers=regulator,
                              json={})).status_code == 200
    planned = (await entry_api(client, regulator, eid))["planned_removal_on"]
    await signed_in_regulator(client, db)
    page_path = f"/console/blacklist/{eid}"
    text = (await client.get(page_path)).text
    # Before the planned removal day 'period_ended' is no option, and the page says when.
    assert 'value="period_ended"' not in text
    assert f"列入期限于 {planned} 结束，自 {planned} 起方可以期满为由移出。" in text
    assert 'value="decision_revoked"' in text
    start = await log_size(db)
    refused = await submit(client, page_path, f"{page_path}/remove",
                           {"reason": "period_ended", "version": version_in(text)})
    assert refused.status_code == 409
    assert f"列入期限于 {planned} 结束" in refused.text
    assert await log_size(db) == start
    removed = await submit(client, page_path, f"{page_path}/remove",
                           {"reason": "decision_revoked", "version": version_in(text)})
    assert removed.status_code == 303, removed.text[:500]
    assert await actions(db, start) == ["blacklist.remove"]
    entry = await entry_api(client, regulator, eid)
    assert entry["state"] == "removed" and entry["removal_reason"] == "decision_revoked"
    final = (await client.get(page_path)).text
    assert "严重失信主体名单条目 · 已移出名单" in final and "所依据的决定被撤销" in final
    assert "<button" not in final.split('id="steps-h"')[1].split("</section>")[0]
    assert "该条目已移出名单，办理已终结" in final


async def test_withdraw_a_proposal_with_its_reason(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    _, _, eid = await proposed(client, regulator)
    await signed_in_regulator(client, db)
    page_path = f"/console/blacklist/{eid}"
    version = version_in((await client.get(page_path)).text)
    start = await log_size(db)
    empty = await submit(client, page_path, f"{page_path}/withdraw",
                         {"reason": "  ", "version": version})
    assert empty.status_code == 422
    assert 'id="reason-error"' in empty.text
    assert await log_size(db) == start
    answer = await submit(client, page_path, f"{page_path}/withdraw",
                          {"reason": "处罚决定已被复议撤销", "version": version})
    assert answer.status_code == 303, answer.text[:500]
    entry = await entry_api(client, regulator, eid)
    assert entry["state"] == "withdrawn"
    assert entry["withdrawal_reason"] == "处罚决定已被复议撤销"
    assert await actions(db, start) == ["blacklist.withdraw"]
    text = (await client.get(page_path)).text
    assert "已撤回" in text and "该提请已撤回，办理已终结" in text


async def test_an_objection_to_a_notice_is_decided_from_its_page_and_listing_follows(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """Filed through the API during the window: after the window the list step waits for the
    decision (its reason says so); rejected at the console, the entry can be listed."""
    _, _, eid = await proposed(client, regulator)
    await client.post(f"/v1/blacklist/{eid}/notify", headers=regulator, json={"channel": "m"})
    filed = await client.post("/v1/objections", headers=regulator, json={
        "target_type": "blacklist_entry", "target_id": eid, "grounds": "未收到告知书"})
    assert filed.status_code == 201, filed.text
    objection = filed.json()["objection"]
    oid = objection["id"]
    clock.set(day("2026-03-20"))
    await signed_in_regulator(client, db)
    entry_path = f"/console/blacklist/{eid}"
    waiting = (await client.get(entry_path)).text
    assert "有异议尚未处理，处理后方可列入名单。" in waiting
    assert not form_for(waiting, f"{entry_path}/list")
    assert f'href="/console/objections/{oid}"' in waiting

    page_path = f"/console/objections/{oid}"
    text = (await client.get(page_path)).text
    assert "未收到告知书" in text and "待决定" in text
    assert objection["decide_due"] in text and objection["answer_due"] in text
    assert "已逾期" in text  # 2026-03-20 is past the decision deadline
    assert f'href="{entry_path}"' in text
    # Listings are not corrected: an upheld objection to one revokes it.
    assert 'value="correct"' not in text and 'value="revoke"' in text
    assert form_for(text, f"{page_path}/decide")
    assert every_form_carries_the_token(text) == 3  # sign-out, upheld, rejected
    ids_are_unique(text)

    start = await log_size(db)
    answer = await submit(client, page_path, f"{page_path}/decide",
                          {"outcome": "rejected", "note": "已于 3 月 2 日挂号寄送"})
    assert answer.status_code == 303, answer.text[:500]
    assert await actions(db, start) == ["objection.decide", "blacklist.objection_settled"]
    decided = (await client.get(f"/v1/objections/{oid}", headers=regulator)).json()
    assert decided["state"] == "rejected" and decided["decision_note"] == "已于 3 月 2 日挂号寄送"
    done = (await client.get(page_path)).text
    assert "异议不成立" in done and not form_for(done, f"{page_path}/decide")
    assert "该异议已于 2026-03-20 决定（异议不成立）" in done
    assert form_for((await client.get(entry_path)).text, f"{entry_path}/list")


async def test_an_upheld_objection_needs_an_action_and_revokes_the_record(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], bureau: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    filed = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "处罚对象认定有误"})
    assert filed.status_code == 201, filed.text
    oid = filed.json()["objection"]["id"]
    await signed_in_regulator(client, db)
    page_path = f"/console/objections/{oid}"
    text = (await client.get(page_path)).text
    assert "征信机构" in text and 'name="corrections.facts"' in text
    ids_are_unique(text)
    start = await log_size(db)
    no_action = await submit(client, page_path, f"{page_path}/decide",
                             {"outcome": "upheld", "action": "", "note": "认定有误"})
    assert no_action.status_code == 422
    assert 'id="action-error"' in no_action.text and "须选择对异议对象的处理" in no_action.text
    assert await log_size(db) == start
    upheld = await submit(client, page_path, f"{page_path}/decide",
                          {"outcome": "upheld", "action": "revoke", "note": "认定有误"})
    assert upheld.status_code == 303, upheld.text[:500]
    assert await actions(db, start) == ["objection.decide", "record.revoke"]
    now = (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()
    assert now["status"] == "revoked"


async def test_a_repair_application_is_approved_from_its_page(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    clock.set(day("2026-06-03"))
    applied = await client.post("/v1/repairs", headers=regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "已履行处罚决定"})
    assert applied.status_code == 201, applied.text
    rid = applied.json()["id"]
    await signed_in_regulator(client, db)
    page_path = f"/console/repairs/{rid}"
    text = (await client.get(page_path)).text
    assert "已履行处罚决定" in text and "提前停止公示行政处罚信息" in text
    assert 'value="approve"' in text and 'value="reject"' in text
    assert f'href="/console/records/{rec["id"]}"' in text
    assert every_form_carries_the_token(text) == 2
    start = await log_size(db)
    answer = await submit(client, page_path, f"{page_path}/decide",
                          {"outcome": "approve", "note": "已缴清罚款"})
    assert answer.status_code == 303, answer.text[:500]
    assert await actions(db, start) == ["repair.approve", "record.repair"]
    repair = (await client.get(f"/v1/repairs/{rid}", headers=regulator)).json()
    assert repair["state"] == "approved" and repair["decision_note"] == "已缴清罚款"
    done = (await client.get(page_path)).text
    assert "已批准" in done and 'value="approve"' not in done
    assert "该申请已于 2026-06-03 批准" in done


async def test_approval_is_not_offered_once_publication_ended(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """Revoked after the application: approving would repair nothing (the use case's check,
    asked by the page); rejecting stays possible."""
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    clock.set(day("2026-06-03"))
    applied = await client.post("/v1/repairs", headers=regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "g"})
    rid = applied.json()["id"]
    revoked = await client.post(f"/v1/records/{rec['id']}/revoke", headers=regulator,
                                json={"version": rec["version"], "reason": "复议撤销"})
    assert revoked.status_code == 200, revoked.text
    await signed_in_regulator(client, db)
    text = (await client.get(f"/console/repairs/{rid}")).text
    assert 'value="approve"' not in text and 'value="reject"' in text
    assert "该记录已不在公示中，无需信用修复，不能批准。" in text


async def test_another_authority_sees_no_buttons_and_its_posts_write_nothing(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock) -> None:
    """Whose decision it is comes from require_decider: the pages show why not, and a post
    made anyway is refused (403) by the use case with the log and the rows unchanged."""
    sid, rid, eid = await proposed(client, regulator)
    await client.post(f"/v1/blacklist/{eid}/notify", headers=regulator, json={"channel": "m"})
    filed = await client.post("/v1/objections", headers=regulator, json={
        "target_type": "credit_record", "target_id": rid, "grounds": "g"})
    oid = filed.json()["objection"]["id"]
    general = await record(client, regulator, penalty(sid, "宁发改罚〔2026〕7号"))
    clock.set(day("2026-06-03"))
    applied = await client.post("/v1/repairs", headers=regulator, json={
        "target_type": "credit_record", "target_id": general["id"], "grounds": "g"})
    assert applied.status_code == 201, applied.text
    repair_id = applied.json()["id"]

    await signed_in_regulator(client, db, authority=OTHER_AUTHORITY[0])
    refusal = "只有该机关可以办理"
    entry_path = f"/console/blacklist/{eid}"
    entry_page = (await client.get(entry_path)).text
    assert refusal in entry_page
    assert not any(form_for(entry_page, f"{entry_path}/{step}")
                   for step in ("notify", "list", "remove", "withdraw"))
    objection_page = (await client.get(f"/console/objections/{oid}")).text
    assert refusal in objection_page and not form_for(objection_page, f"/console/objections/{oid}/decide")
    repair_page = (await client.get(f"/console/repairs/{repair_id}")).text
    assert refusal in repair_page and 'value="approve"' not in repair_page
    # Nothing of this authority's records is offered as a basis either.
    assert f'value="{rid}"' not in (await client.get(f"/console/blacklist/new?subject={sid}")).text

    start = await log_size(db)
    versions = await db.fetchval(
        "SELECT (SELECT version FROM blacklist_entries WHERE id = $1)"
        " + (SELECT version FROM objections WHERE id = $2)"
        " + (SELECT version FROM repairs WHERE id = $3)", eid, oid, repair_id)
    posts = [
        (entry_path, f"{entry_path}/withdraw", {"reason": "x", "version": "2"}),
        (f"/console/objections/{oid}", f"/console/objections/{oid}/decide",
         {"outcome": "rejected", "note": "x"}),
        (f"/console/repairs/{repair_id}", f"/console/repairs/{repair_id}/decide",
         {"outcome": "approve", "note": "x"}),
        (f"/console/blacklist/new?subject={sid}", f"/console/blacklist/new?subject={sid}",
         {"criterion": "c", "legal_basis": "b", "record_ids": rid}),
    ]
    for page_path, action, fields in posts:
        answer = await submit(client, page_path, action, fields)
        assert answer.status_code == 403, (action, answer.status_code)
        assert refusal in answer.text
    assert await log_size(db) == start
    assert await db.fetchval(
        "SELECT (SELECT version FROM blacklist_entries WHERE id = $1)"
        " + (SELECT version FROM objections WHERE id = $2)"
        " + (SELECT version FROM repairs WHERE id = $3)", eid, oid, repair_id) == versions
    assert await db.fetchval("SELECT count(*) FROM blacklist_entries") == 1


async def test_an_unknown_step_or_entry_is_a_page_not_found(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    _, _, eid = await proposed(client, regulator)
    await signed_in_regulator(client, db)
    page_path = f"/console/blacklist/{eid}"
    start = await log_size(db)
    unknown = await submit(client, page_path, f"{page_path}/publish", {"version": "1"})
    assert unknown.status_code == 404
    missing = await client.get("/console/blacklist/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and "未找到" in missing.text
    assert await log_size(db) == start


async def test_an_upheld_objection_corrects_the_record_with_the_items_typed(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """Correction items are the API's ``corrections`` fields; a wrong one is refused at its
    own field, an empty one left as it is."""
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    filed = await client.post("/v1/objections", headers=regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "事实认定有误"})
    oid = filed.json()["objection"]["id"]
    await signed_in_regulator(client, db)
    page_path = f"/console/objections/{oid}"
    start = await log_size(db)
    wrong = await submit(client, page_path, f"{page_path}/decide", {
        "outcome": "upheld", "action": "correct", "corrections.valid_until": "明年",
        "corrections.facts": "未按规定报送季度报告"})
    assert wrong.status_code == 422
    assert 'id="corrections.valid_until-error"' in wrong.text
    assert 'value="明年"' in wrong.text
    assert await log_size(db) == start
    corrected = await submit(client, page_path, f"{page_path}/decide", {
        "outcome": "upheld", "action": "correct", "corrections.facts": "未按规定报送季度报告",
        "corrections.grade": "", "note": "更正违法事实"})
    assert corrected.status_code == 303, corrected.text[:800]
    assert await actions(db, start) == ["objection.decide", "record.correct"]
    now = (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()
    assert now["facts"] == "未按规定报送季度报告" and now["grade"] == "general"
