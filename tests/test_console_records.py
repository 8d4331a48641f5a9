"""Credit records at the console: recorded, read, corrected and revoked through the forms,
by the same use cases as the API (the same authority rules, the same audit leaves)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from registry.tlog.leaf import decode_leaf
from registry.tokens import hash_token
from tests.conftest import OTHER_AUTHORITY, TEST_AUTHORITY
from tests.console_helpers import Client, signed_in_regulator, submit
from tests.credit_helpers import actions, log_size, penalty, record, subject

# The form's fields for a general penalty with a fine (RecordIn's JSON names).
FORM: dict[str, Any] = {
    "record_kind": "penalty",
    "grade": "general",
    "decision_number": "宁发改罚〔2026〕7号",
    "violation_type": "未按规定备案",
    "facts": "未按规定报送年度报告\r\n经责令改正仍未报送",
    "legal_basis": "《创业投资企业管理暂行办法》第二十八条",
    "penalty_types": ["warning", "fine"],
    "penalty_content": "警告，并处罚款人民币五万元",
    "fine_amount": "5",
    "confiscation_amount": "",
    "licence_name": "",
    "licence_number": "",
    "decision_date": "2026-02-27",
    "valid_until": "2027-02-26",
    "source_name": "西宁市发展和改革委员会",
    "source_code": TEST_AUTHORITY[0],
    "remarks": "",
}


def _form_actions(html: str) -> list[str]:
    return re.findall(r'<form[^>]*action="([^"]+)"', html)


def _buttons(html: str) -> list[str]:
    """The labels of the page's buttons, the header's sign-out left out."""
    main = html.split('<main id="main">', 1)[1]
    return re.findall(r"<button[^>]*>([^<]*)</button>", main)


def _correction(current: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The correction form as the page fills it from the record ``current`` (API JSON),
    with ``changes`` typed over it."""
    fields = {name: current[name] or "" for name in (
        "grade", "decision_number", "violation_type", "facts", "legal_basis", "penalty_content",
        "fine_amount", "confiscation_amount", "licence_name", "licence_number",
        "decision_date", "valid_until", "source_name", "source_code", "remarks")}
    fields["penalty_types"] = current["penalty_types"]
    fields["version"] = str(current["version"])
    fields["note"] = "更正文号笔误"
    return {**fields, **changes}


async def _own_record(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    return await record(client, headers, penalty(await subject(client, headers)))


async def test_a_penalty_recorded_through_the_form_is_the_apis_record(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """The form's post is POST /v1/records's use case: the record reads back through the
    API in the signed-in official's authority and name, with one record.create leaf."""
    token = await signed_in_regulator(client, db)
    subject_id = await subject(client, regulator)
    form_path = f"/console/records/new?subject={subject_id}"
    form = await client.get(form_path)
    assert form.status_code == 200
    assert "西寧創新投資有限公司" in form.text and TEST_AUTHORITY[1] in form.text
    # Every penalty type by its Chinese name, in one multi-select.
    assert '<select id="penalty_types" name="penalty_types" multiple' in form.text
    assert '<option value="licence_suspension">暂扣许可证、执照</option>' in form.text
    before = await log_size(db)

    answer = await submit(client, form_path, form_path, FORM)

    assert answer.status_code == 303, answer.text[:2000]
    record_id = answer.headers["location"].rsplit("/", 1)[1]
    assert answer.headers["location"] == f"/console/records/{record_id}"
    read = await client.get(f"/v1/records/{record_id}", headers=regulator)
    assert read.status_code == 200
    stored = read.json()
    assert stored["subject_id"] == subject_id
    assert stored["authority_code"] == TEST_AUTHORITY[0]
    assert stored["authority_name"] == TEST_AUTHORITY[1]
    assert stored["penalty_types"] == ["warning", "fine"]
    assert stored["fine_amount"] == "5.000000"
    assert stored["facts"] == "未按规定报送年度报告\n经责令改正仍未报送"
    assert stored["confiscation_amount"] is None and stored["licence_name"] is None
    assert stored["published"] is True
    token_id = await db.fetchval("SELECT id FROM api_tokens WHERE token_hash = $1",
                                 hash_token(token))
    assert stored["created_by"] == f"regulator:{token_id}@{TEST_AUTHORITY[0]}"
    # Its one audit leaf: record.create of this record, at the record's log index.
    assert await actions(db, before) == ["record.create"]
    leaf = decode_leaf(bytes(await db.fetchval("SELECT leaf FROM tlog_leaves WHERE idx = $1",
                                               stored["log_index"])))
    assert (leaf.action, leaf.object) == ("record.create", f"credit_record/{record_id}")
    assert leaf.actor == stored["created_by"]

    shown = await client.get(answer.headers["location"])
    assert shown.status_code == 200
    for words in ("警告、罚款", "一般", "公示中", "正在公示", "宁发改罚〔2026〕7号",
                  f"/log/entries?start={stored['log_index']}&amp;end={stored['log_index'] + 1}",
                  f"最后公示日</th><td>{stored['publicity_deadline']}"):
        assert words in shown.text, words
    assert _buttons(shown.text) == ["提交更正", "撤销"]


async def test_a_fine_without_its_amount_is_refused_at_the_field_keeping_what_was_typed(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """The record rule's refusal is shown in Chinese next to fine_amount; every other value,
    the chosen penalty types too, is back in the form; nothing is written."""
    await signed_in_regulator(client, db)
    form_path = f"/console/records/new?subject={await subject(client, regulator)}"
    before = await log_size(db)

    answer = await submit(client, form_path, form_path, {**FORM, "fine_amount": ""})

    assert answer.status_code == 422
    page = answer.text
    assert ('<p id="fine_amount-error" class="error">处罚类别含罚款，必须填写罚款金额</p>'
            in page)
    assert 'id="fine_amount" name="fine_amount" type="text" value="" aria-invalid="true"' in page
    assert 'aria-describedby="fine_amount-hint fine_amount-error"' in page
    assert 'value="宁发改罚〔2026〕7号"' in page
    assert ">未按规定报送年度报告\r\n经责令改正仍未报送</textarea>" in page
    assert '<option value="warning" selected>警告</option>' in page
    assert '<option value="fine" selected>罚款</option>' in page
    assert '<option value="detention">行政拘留</option>' in page
    assert '<option value="general" selected>一般</option>' in page
    assert 'value="2026-02-27"' in page
    assert page.count('class="error"') == 1
    assert await log_size(db) == before


async def test_a_decision_number_recorded_twice_is_refused_at_the_number(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    await signed_in_regulator(client, db)
    form_path = f"/console/records/new?subject={await subject(client, regulator)}"
    assert (await submit(client, form_path, form_path, FORM)).status_code == 303
    before = await log_size(db)

    again = await submit(client, form_path, form_path, FORM)

    assert again.status_code == 409
    assert ('<p id="decision_number-error" class="error">本机关已登记过该行政处罚决定书文号'
            in again.text)
    assert await log_size(db) == before


async def test_another_authority_sees_no_actions_and_is_refused_if_it_posts_anyway(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """A record of another authority shows no correct or revoke form, but the reason (the
    ownership rule the use cases apply); posting either form anyway is a 403 page and
    writes nothing."""
    mine = await _own_record(client, regulator)
    await signed_in_regulator(client, db, authority=OTHER_AUTHORITY[0])
    path = f"/console/records/{mine['id']}"

    shown = await client.get(path)

    assert shown.status_code == 200
    assert _buttons(shown.text) == []
    assert _form_actions(shown.text) == ["/console/sign-out"]
    assert (f"不能更正或撤销：该信息由其他机关登记（{TEST_AUTHORITY[1]} ({TEST_AUTHORITY[0]})），"
            "只有登记机关可以操作。") in shown.text
    before = await log_size(db)

    corrected = await submit(client, path, f"{path}/correct",
                             _correction(mine, decision_number="宁发改罚〔2026〕9号"))
    revoked = await submit(client, path, f"{path}/revoke",
                           {"version": "1", "reason": "决定已被撤销"})

    for answer in (corrected, revoked):
        assert answer.status_code == 403
        assert "无权操作" in answer.text
        assert "该信息由其他机关登记" in answer.text
    assert await log_size(db) == before
    now = (await client.get(f"/v1/records/{mine['id']}", headers=regulator)).json()
    assert (now["version"], now["status"], now["decision_number"]) == (
        1, "published", mine["decision_number"])


async def test_revoking_with_a_reason_then_the_revoke_button_is_gone_with_its_reason(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    await signed_in_regulator(client, db)
    mine = await _own_record(client, regulator)
    path = f"/console/records/{mine['id']}"
    assert f"{path}/revoke" in _form_actions((await client.get(path)).text)
    before = await log_size(db)

    answer = await submit(client, path, f"{path}/revoke",
                          {"version": str(mine["version"]), "reason": "复议决定撤销原处罚决定"})

    assert answer.status_code == 303 and answer.headers["location"] == path
    assert await actions(db, before) == ["record.revoke"]
    now = (await client.get(f"/v1/records/{mine['id']}", headers=regulator)).json()
    assert (now["status"], now["status_reason"], now["published"]) == (
        "revoked", "复议决定撤销原处罚决定", False)
    shown = (await client.get(path)).text
    assert _buttons(shown) == []
    assert _form_actions(shown) == ["/console/sign-out"]
    assert '<p class="reason" id="revoke-refused">不能撤销：该信息已撤销，不能再次撤销。</p>' in shown
    assert "不能更正：该信息已撤销，已撤销的信息不能再更正。" in shown
    assert "已撤销" in shown and "复议决定撤销原处罚决定" in shown
    # The versions table lists both leaves.
    assert shown.count('<td>登记信用信息</td>') == 1 and shown.count('<td>撤销信用信息</td>') == 1


async def test_a_correction_changes_only_what_was_edited_and_a_stale_one_is_refused(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """The form sends every field; the use case gets the edited ones and records a new
    version. Posting the same (now stale) version again is the Chinese 409, nothing written."""
    await signed_in_regulator(client, db)
    mine = await _own_record(client, regulator)
    path = f"/console/records/{mine['id']}"
    page = (await client.get(path)).text
    # Prefilled with the current version, amounts as typed.
    assert 'name="version" value="1"' in page and 'value="12.5"' in page
    before = await log_size(db)
    fields = _correction(mine, decision_number="宁发改罚〔2026〕2号", fine_amount="12.5")

    answer = await submit(client, path, f"{path}/correct", fields)

    assert answer.status_code == 303, answer.text[:2000]
    assert await actions(db, before) == ["record.correct"]
    now = (await client.get(f"/v1/records/{mine['id']}", headers=regulator)).json()
    assert now["version"] == 2 and now["decision_number"] == "宁发改罚〔2026〕2号"
    assert now["correction_note"] == "更正文号笔误"
    assert {k: now[k] for k in ("facts", "fine_amount", "penalty_types", "valid_until")} == {
        k: mine[k] for k in ("facts", "fine_amount", "penalty_types", "valid_until")}
    assert "<td>更正信用信息</td>" in (await client.get(path)).text
    before = await log_size(db)

    stale = await submit(client, path, f"{path}/correct",
                         {**fields, "decision_number": "宁发改罚〔2026〕3号"})

    assert stale.status_code == 409
    assert "该信息已被他人修改（您提交时依据的是第 1 版），请刷新页面" in stale.text
    assert 'value="宁发改罚〔2026〕3号"' in stale.text  # what was typed is kept
    assert await log_size(db) == before


async def test_a_correction_that_changes_nothing_or_breaks_a_rule_says_so(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    await signed_in_regulator(client, db)
    mine = await _own_record(client, regulator)
    path = f"/console/records/{mine['id']}"
    before = await log_size(db)

    unchanged = await submit(client, path, f"{path}/correct", _correction(mine))
    no_fine = await submit(client, path, f"{path}/correct", _correction(mine, fine_amount=""))

    assert unchanged.status_code == 422
    assert '<p class="alert" role="alert">没有修改任何项目' in unchanged.text
    assert no_fine.status_code == 422
    assert ('<p id="fine_amount-error" class="error">处罚类别含罚款，必须填写罚款金额</p>'
            in no_fine.text)
    assert await log_size(db) == before


async def test_an_unknown_record_or_subject_is_a_page_not_found(
        client: Client, db: asyncpg.Pool) -> None:
    await signed_in_regulator(client, db)
    missing = "00000000-0000-4000-8000-000000000000"
    for path in (f"/console/records/{missing}", f"/console/records/new?subject={missing}"):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert "未找到" in answer.text
