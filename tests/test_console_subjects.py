"""Subjects at the console: the search is the public page's over every subject, a subject's
page shows what the registry holds about it (relations, records, history with log
indexes, who looked), and the new-subject form calls the API's use case, with each
refusal in Chinese at its field."""

from __future__ import annotations

import html
import re
import uuid

import asyncpg

from tests.bureau_helpers import credit_code, lookup, practitioner, resident_id
from tests.conftest import OTHER_AUTHORITY, bearer, issue
from tests.console_helpers import Client, signed_in_regulator, submit
from tests.credit_helpers import actions, log_size, penalty, record

NEW = "/console/subjects/new"
# A valid credit code with its last (check) character changed.
GOOD_CODE = credit_code(4101)
BAD_CODE = GOOD_CODE[:-1] + ("1" if GOOD_CODE[-1] != "1" else "2")


def _error_at(page: str, field: str) -> str:
    """The Chinese message the form shows right after ``field`` (console_macros.html)."""
    found = re.search(rf'<p id="{field}-error" class="error">([^<]*)</p>', page)
    assert found, f"no error shown at {field}"
    return html.unescape(found.group(1))


def _value_of(page: str, field: str) -> str:
    found = re.search(rf'<input id="{field}" name="{field}" type="[a-z]+" value="([^"]*)"', page)
    assert found, f"no input {field}"
    return html.unescape(found.group(1))


async def _firm(client: Client, headers: dict[str, str], name: str, code: str,
                kind: str = "vc_firm") -> str:
    answer = await client.post("/v1/subjects", headers=headers,
                               json={"kind": kind, "name": name, "credit_code": code})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_the_search_finds_subjects_by_name_and_by_credit_code(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """The public page's matcher: part of the name in either script, the credit code in any
    case; a subject that matches neither is not listed."""
    await signed_in_regulator(client, db)
    found = await _firm(client, regulator, "西寧鼎盛創業投資有限公司", credit_code(4201))
    other = await _firm(client, regulator, "格尔木远景资本管理有限公司", credit_code(4202),
                        kind="vc_manager")

    by_name = await client.get("/console/subjects", params={"q": "西宁鼎盛"})
    assert by_name.status_code == 200
    assert f'href="/console/subjects/{found}"' in by_name.text
    assert f'href="/console/subjects/{other}"' not in by_name.text
    assert "「西宁鼎盛」的搜索结果" in by_name.text

    by_code = await client.get("/console/subjects", params={"q": credit_code(4202).lower()})
    assert f'href="/console/subjects/{other}"' in by_code.text
    assert f'href="/console/subjects/{found}"' not in by_code.text
    assert "创业投资管理企业" in by_code.text

    nothing = await client.get("/console/subjects", params={"q": "不存在的名称"})
    assert "没有找到符合条件的主体" in nothing.text


async def test_a_practitioners_number_is_masked_in_the_results(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    await signed_in_regulator(client, db)
    number = resident_id(431)
    await practitioner(client, regulator, number)
    answer = await client.get("/console/subjects", params={"kind": "practitioner"})
    assert answer.status_code == 200
    assert "居民身份证" in answer.text
    assert number not in answer.text


async def test_the_subject_page_shows_relations_records_history_and_who_looked(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """A manager's page: its firm and its practitioner; a firm's page: its manager, its
    records (each linking to its console page) and every leaf with a proof to verify it;
    the practitioner's page: the clear number, recorded as a read, and the bureau's lookup."""
    await signed_in_regulator(client, db)
    firm = await _firm(client, regulator, "西宁启明创业投资有限公司", credit_code(4301))
    manager = await _firm(client, regulator, "西宁启明资本管理有限公司", credit_code(4302),
                          kind="vc_manager")
    named = await client.post(f"/v1/subjects/{firm}/fund-managers", headers=regulator,
                              json={"manager_id": manager, "valid_from": "2025-01-01"})
    assert named.status_code == 201, named.text
    number = resident_id(433)
    person = await practitioner(client, regulator, number, manager)
    penalty_record = await record(client, regulator, penalty(firm, "宁发改罚〔2026〕41号"))

    firm_page = await client.get(f"/console/subjects/{firm}")
    assert firm_page.status_code == 200
    text = firm_page.text
    assert f'href="/console/subjects/{manager}"' in text and "西宁启明资本管理有限公司" in text
    assert f'href="/console/records/{penalty_record["id"]}"' in text
    assert "宁发改罚〔2026〕41号" in text
    assert f'href="/console/records/new?subject={firm}"' in text
    # Every leaf about the firm: its creation, the relation, the record; each verifiable.
    size = await db.fetchval("SELECT size FROM tlog_head")
    indexes = [r["log_index"] for r in await db.fetch(
        "SELECT log_index FROM tlog_objects WHERE object_id = ANY($1::text[])",
        [firm, penalty_record["id"], str(named.json()["fund_manager"]["id"])])]
    assert len(indexes) == 3
    for index in indexes:
        assert f"/log/proof/inclusion?index={index}&amp;size={size}" in text
    assert "登记主体" in text and "登记管理人" in text and "登记信用信息" in text
    proof = await client.get(f"/log/proof/inclusion?index={indexes[0]}&size={size}")
    assert proof.status_code == 200

    manager_page = (await client.get(f"/console/subjects/{manager}")).text
    assert "受托管理的创业投资企业" in manager_page
    assert f'href="/console/subjects/{firm}"' in manager_page
    assert f'href="/console/subjects/{person}"' in manager_page
    assert number not in manager_page  # masked in the list of practitioners

    bureau = bearer(await issue(db, "bureau", "征信甲"))
    assert (await lookup(client, bureau, number)).status_code == 200
    person_page = await client.get(f"/console/subjects/{person}",
                                   params={"purpose": "enforcement"})
    assert person_page.status_code == 200
    assert number in person_page.text  # the regulators' view: clear
    assert "西宁启明资本管理有限公司" in person_page.text  # the affiliation
    assert "征信甲（征信机构）" in person_page.text
    assert "征信机构按证件查询" in person_page.text
    # This very read was recorded before the number was shown, with its purpose.
    read = await db.fetchrow("SELECT * FROM bureau_access WHERE channel = 'regulator_read'")
    assert read is not None
    assert str(read["subject_id"]) == person and read["purpose"] == "enforcement"
    assert "监管机构查看完整证件号码" in person_page.text and "行政执法" in person_page.text


async def test_the_proposal_link_needs_a_serious_record_of_ones_own_authority(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """The link to propose a listing is shown only when the rule would accept a basis;
    otherwise the rule's reason, in Chinese."""
    firm = await _firm(client, regulator, "西宁和瑞创业投资有限公司", credit_code(4401))
    await record(client, regulator, penalty(firm, "宁发改罚〔2026〕44号", grade="general"))
    await signed_in_regulator(client, db)
    link = f'href="/console/blacklist/new?subject={firm}"'
    general_only = (await client.get(f"/console/subjects/{firm}")).text
    assert link not in general_only
    assert "列入严重失信名单须依据至少一条仍然有效的严重失信记录" in general_only

    await record(client, regulator, penalty(firm, "宁发改罚〔2026〕45号", grade="serious"))
    assert link in (await client.get(f"/console/subjects/{firm}")).text

    # Another authority's officer (signing in again replaces the session): the serious
    # record is not theirs to rest a listing on.
    await signed_in_regulator(client, db, authority=OTHER_AUTHORITY[0])
    assert link not in (await client.get(f"/console/subjects/{firm}")).text


async def test_a_wrong_check_character_is_shown_in_chinese_at_the_credit_code(
        client: Client, db: asyncpg.Pool) -> None:
    await signed_in_regulator(client, db)
    before = await log_size(db)
    answer = await submit(client, NEW, NEW, {
        "kind": "vc_firm", "name": "西宁笃行创业投资有限公司", "credit_code": BAD_CODE,
        "registered_region": "西宁市城中区",
    })
    assert answer.status_code == 422
    assert _error_at(answer.text, "credit_code") == "校验位不符，可能有字符输入错误"
    assert 'aria-describedby="credit_code-hint credit_code-error"' in answer.text
    # What was typed is kept, the kind still chosen.
    assert _value_of(answer.text, "name") == "西宁笃行创业投资有限公司"
    assert _value_of(answer.text, "credit_code") == BAD_CODE
    assert _value_of(answer.text, "registered_region") == "西宁市城中区"
    assert '<option value="vc_firm" selected>' in answer.text
    assert await log_size(db) == before


async def test_a_good_form_registers_the_subject_through_the_use_case(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """303 to the new subject's page; the API reads the same subject; one subject.create
    leaf, by the signed-in regulator. The practitioners' part, left empty, is ignored."""
    await signed_in_regulator(client, db)
    before = await log_size(db)
    answer = await submit(client, NEW, NEW, {
        "kind": "vc_manager", "name": "西宁笃行资本管理有限公司", "credit_code": GOOD_CODE.lower(),
        "filing_number": "P1000001", "filing_date": "2024-05-06", "document_type": "",
        "document_number": "", "birth_date": "",
    })
    assert answer.status_code == 303, answer.text[:2000]
    location = answer.headers["location"]
    assert re.fullmatch(r"/console/subjects/[0-9a-f-]{36}", location)
    subject_id = location.rsplit("/", 1)[1]

    via_api = await client.get(f"/v1/subjects/{subject_id}", headers=regulator)
    assert via_api.status_code == 200
    body = via_api.json()
    assert body["kind"] == "vc_manager" and body["credit_code"] == GOOD_CODE
    assert body["filing_date"] == "2024-05-06" and body["filing_number"] == "P1000001"
    assert await actions(db, before) == ["subject.create"]
    leaf_index = await db.fetchval(
        "SELECT log_index FROM tlog_objects WHERE object_type = 'subject' AND object_id = $1",
        subject_id)
    assert leaf_index == body["log_index"] >= before

    shown = await client.get(location)
    assert shown.status_code == 200 and "西宁笃行资本管理有限公司" in shown.text
    assert f"/log/proof/inclusion?index={leaf_index}&amp;size=" in shown.text


async def test_a_practitioner_is_registered_with_a_passport_and_birth_date(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    """A number that carries no birth date needs one: refused in Chinese at birth_date,
    then registered once it is given."""
    await signed_in_regulator(client, db)
    fields = {"kind": "practitioner", "name": "张三", "document_type": "passport",
              "document_number": "E12345678", "credit_code": ""}
    refused = await submit(client, NEW, NEW, fields)
    assert refused.status_code == 422
    assert _error_at(refused.text, "birth_date") == "该证件号码不含出生日期，请填写出生日期。"
    assert _value_of(refused.text, "document_number") == "E12345678"

    answer = await submit(client, NEW, NEW, {**fields, "birth_date": "1988-04-09"})
    assert answer.status_code == 303, answer.text[:2000]
    subject_id = answer.headers["location"].rsplit("/", 1)[1]
    body = (await client.get(f"/v1/subjects/{subject_id}", headers=regulator)).json()
    assert body["document_number"] == "E12345678" and body["birth_date"] == "1988-04-09"


async def test_a_duplicate_credit_code_is_refused_in_chinese_with_the_existing_subject(
        client: Client, db: asyncpg.Pool, regulator: dict[str, str]) -> None:
    existing = await _firm(client, regulator, "西宁先到创业投资有限公司", credit_code(4501))
    await signed_in_regulator(client, db)
    before = await log_size(db)
    answer = await submit(client, NEW, NEW, {
        "kind": "vc_firm", "name": "西宁后到创业投资有限公司", "credit_code": credit_code(4501)})
    assert answer.status_code == 409
    assert _error_at(answer.text, "credit_code").startswith("该统一社会信用代码已登记为另一主体")
    assert f'href="/console/subjects/{existing}"' in answer.text
    assert _value_of(answer.text, "name") == "西宁后到创业投资有限公司"
    assert await log_size(db) == before


async def test_a_missing_name_is_refused_at_the_name(client: Client, db: asyncpg.Pool) -> None:
    await signed_in_regulator(client, db)
    answer = await submit(client, NEW, NEW, {"kind": "vc_firm", "credit_code": GOOD_CODE})
    assert answer.status_code == 422
    assert _error_at(answer.text, "name") == "必填项为空"
    assert _value_of(answer.text, "credit_code") == GOOD_CODE


async def test_pages_need_a_session_and_an_unknown_subject_is_a_404(
        client: Client, db: asyncpg.Pool) -> None:
    page = await client.get(f"/console/subjects/{uuid.uuid4()}", follow_redirects=False)
    assert page.status_code == 303
    await signed_in_regulator(client, db)
    missing = await client.get(f"/console/subjects/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "未找到" in missing.text
