"""Authorities: who may record and change which decision, through the real app.

Each finding of the issue that opened this ("a regulator corrected another
authority's fine, revoked its records, decided its objections, recorded a penalty
in the name of an authority in Beijing …") has a test here that fails without the
authority checks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from registry.clock import ManualClock
from registry.tlog.leaf import decode_leaf
from tests.conftest import OTHER_AUTHORITY, TEST_AUTHORITY, bearer, issue
from tests.credit_helpers import Client, penalty, record, subject

MINE, THEIRS = TEST_AUTHORITY[0], OTHER_AUTHORITY[0]
BEIJING = "11110000MB0000000U"  # a valid government code of no authority registered here


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(hour=2, tzinfo=UTC)


def refused_as_theirs(response: Any) -> None:
    """403 that says whose decision it is and whom the token acts for."""
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["owner"] == MINE and problem["acting_for"] == THEIRS
    assert TEST_AUTHORITY[1] in problem["detail"] and OTHER_AUTHORITY[1] in problem["detail"]


# ---- authorities and tokens -----------------------------------------------------------


async def test_admin_manages_authorities(client: Client, admin: dict[str, str],
                                         db: asyncpg.Pool) -> None:
    created = await client.post("/v1/admin/authorities", headers=admin,
                                json={"code": "11630100MB0000000T", "name": "西寧市金融辦"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["authority"]["active"] is True and body["receipt"]["log_index"] >= 0
    again = await client.post("/v1/admin/authorities", headers=admin,
                              json={"code": "11630100MB0000000T", "name": "x"})
    assert again.status_code == 409
    company = await client.post("/v1/admin/authorities", headers=admin,
                                json={"code": "91630100MA752LKX1M", "name": "某公司"})
    assert company.status_code == 422
    assert company.json()["field"] == "code" and "government" in company.json()["detail"]
    listed = (await client.get("/v1/admin/authorities", headers=admin)).json()
    assert [a["code"] for a in listed] == ["11630100MB0000000T"]
    leaf = decode_leaf(bytes(await db.fetchval(
        "SELECT leaf FROM tlog_leaves WHERE idx = $1", body["receipt"]["log_index"])))
    assert leaf.action == "authority.add" and leaf.object.startswith("authority/")


async def test_regulator_tokens_need_an_active_authority(client: Client, admin: dict[str, str],
                                                         db: asyncpg.Pool) -> None:
    none = await client.post("/v1/admin/tokens", headers=admin,
                             json={"role": "regulator", "name": "desk"})
    assert none.status_code == 422 and none.json()["field"] == "authority_code"
    unknown = await client.post("/v1/admin/tokens", headers=admin,
                                json={"role": "regulator", "name": "desk", "authority_code": BEIJING})
    assert unknown.status_code == 422 and "no authority" in unknown.json()["detail"]
    bureau = await client.post("/v1/admin/tokens", headers=admin,
                               json={"role": "bureau", "name": "征信", "authority_code": MINE})
    assert bureau.status_code == 422 and "belongs to no authority" in bureau.json()["detail"]
    await issue(db, "regulator", "seed")  # registers TEST_AUTHORITY
    issued = await client.post("/v1/admin/tokens", headers=admin,
                               json={"role": "regulator", "name": "desk", "authority_code": MINE})
    assert issued.status_code == 201, issued.text
    assert issued.json()["info"]["authority_code"] == MINE
    token = bearer(issued.json()["token"])
    sid = await subject(client, token)
    assert (await client.post("/v1/records", headers=token, json=penalty(sid))).status_code == 201

    deactivated = await client.post(f"/v1/admin/authorities/{MINE}/deactivate", headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    assert str(issued.json()["info"]["id"]) in deactivated.json()["refused_tokens"]
    refused = await client.get("/v1/records", headers=token)
    assert refused.status_code == 403 and "deactivated" in refused.json()["detail"]
    after = await client.post("/v1/admin/tokens", headers=admin,
                              json={"role": "regulator", "name": "desk 2", "authority_code": MINE})
    assert after.status_code == 422 and "deactivated" in after.json()["detail"]
    twice = await client.post(f"/v1/admin/authorities/{MINE}/deactivate", headers=admin)
    assert twice.status_code == 409


async def test_token_names_are_unique_among_live_tokens(client: Client, admin: dict[str, str]) -> None:
    first = await client.post("/v1/admin/tokens", headers=admin, json={"role": "bureau", "name": "征信甲"})
    assert first.status_code == 201
    clash = await client.post("/v1/admin/tokens", headers=admin, json={"role": "bureau", "name": "征信甲"})
    assert clash.status_code == 409 and clash.json()["field"] == "name"
    other_role = await client.post("/v1/admin/tokens", headers=admin,
                                   json={"role": "admin", "name": "征信甲"})
    assert other_role.status_code == 201
    revoked = await client.post(f"/v1/admin/tokens/{first.json()['info']['id']}/revoke", headers=admin)
    assert revoked.status_code == 200
    reused = await client.post("/v1/admin/tokens", headers=admin, json={"role": "bureau", "name": "征信甲"})
    assert reused.status_code == 201


async def test_the_log_names_the_token_by_id_and_authority(client: Client, db: asyncpg.Pool) -> None:
    token = await issue(db, "regulator", "窗口一號")
    token_id = await db.fetchval("SELECT id FROM api_tokens WHERE name = '窗口一號'")
    sid = await subject(client, bearer(token))
    row = await db.fetchrow("SELECT created_by, log_index FROM subjects WHERE id = $1", uuid.UUID(sid))
    assert row is not None
    assert row["created_by"] == f"regulator:{token_id}@{MINE}"
    leaf = decode_leaf(bytes(await db.fetchval("SELECT leaf FROM tlog_leaves WHERE idx = $1",
                                                row["log_index"])))
    assert leaf.actor == f"regulator:{token_id}@{MINE}"
    assert "窗口一號" not in leaf.actor and token not in leaf.actor


# ---- records: in the token's name, changed only by their authority -------------------


async def test_a_record_is_in_the_name_of_the_tokens_authority(client: Client,
                                                                regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    body = penalty(sid)
    del body["authority_code"], body["authority_name"]
    created = await record(client, regulator, body)
    assert (created["authority_code"], created["authority_name"]) == TEST_AUTHORITY
    beijing = await client.post("/v1/records", headers=regulator,
                                json=penalty(sid, "京罰〔2026〕1號", authority_code=BEIJING))
    assert beijing.status_code == 403
    assert BEIJING in beijing.json()["detail"] and MINE in beijing.json()["detail"]
    renamed = await client.post("/v1/records", headers=regulator,
                                json=penalty(sid, "寧發改罰〔2026〕9號", authority_name="北京市某局"))
    assert renamed.status_code == 422 and renamed.json()["field"] == "authority_name"


async def test_decision_numbers_are_unique_per_authority(client: Client, regulator: dict[str, str],
                                                         other_regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    number = "寧罰〔2026〕7號"
    mine = await record(client, regulator, penalty(sid, number))
    theirs = await client.post("/v1/records", headers=other_regulator, json=penalty(
        sid, number, authority_code=THEIRS, authority_name=OTHER_AUTHORITY[1]))
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != mine["id"]
    twice = await client.post("/v1/records", headers=regulator, json=penalty(sid, number))
    assert twice.status_code == 409 and twice.json()["field"] == "decision_number"


async def test_only_the_deciding_authority_corrects_or_revokes(client: Client,
                                                              regulator: dict[str, str],
                                                              other_regulator: dict[str, str],
                                                              db: asyncpg.Pool) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    before = await db.fetchval("SELECT count(*) FROM tlog_leaves")
    refused_as_theirs(await client.post(f"/v1/records/{rec['id']}/correct", headers=other_regulator,
                                        json={"version": 1, "note": "x", "fine_amount": "0.01"}))
    refused_as_theirs(await client.post(f"/v1/records/{rec['id']}/revoke", headers=other_regulator,
                                        json={"version": 1, "reason": "x"}))
    assert await db.fetchval("SELECT count(*) FROM tlog_leaves") == before
    assert await db.fetchval("SELECT fine_amount::text FROM credit_records WHERE id = $1",
                             uuid.UUID(rec["id"])) == "12.500000"
    moved = await client.post(f"/v1/records/{rec['id']}/correct", headers=regulator,
                              json={"version": 1, "note": "x", "authority_code": THEIRS})
    assert moved.status_code in (400, 422)
    own = await client.post(f"/v1/records/{rec['id']}/correct", headers=regulator,
                            json={"version": 1, "note": "更正", "fine_amount": "10"})
    assert own.status_code == 200, own.text
    # Any regulator reads every record; subjects are shared master data.
    assert (await client.get(f"/v1/records/{rec['id']}", headers=other_regulator)).status_code == 200
    renamed = await client.patch(f"/v1/subjects/{sid}", headers=other_regulator,
                                 json={"version": 1, "name": "西寧創新投資股份有限公司"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["updated_by"].endswith(f"@{THEIRS}")


async def test_a_token_of_no_authority_decides_nothing(client: Client, db: asyncpg.Pool,
                                                       regulator: dict[str, str]) -> None:
    """Regulator tokens issued before authorities existed: they read, but record nothing."""
    token = await issue(db, "regulator", "legacy")
    # As a token row of the old schema would be (no authority).
    await db.execute("UPDATE api_tokens SET authority_code = NULL WHERE name = 'legacy'")
    legacy = bearer(token)
    sid = await subject(client, regulator)
    refused = await client.post("/v1/records", headers=legacy, json=penalty(sid))
    assert refused.status_code == 403 and "belongs to no authority" in refused.json()["detail"]
    assert (await client.get("/v1/records", headers=legacy)).status_code == 200


# ---- the list, objections and repairs follow the decision ----------------------------


async def _listed_entry(client: Client, regulator: dict[str, str], clock: ManualClock,
                        *, listed: bool = True) -> tuple[str, dict[str, Any]]:
    sid = await subject(client, regulator)
    serious = await record(client, regulator, penalty(sid, grade="serious"))
    entry = (await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": sid, "criterion": "拒不履行行政處罰決定", "legal_basis": "國辦發〔2020〕49號",
        "record_ids": [serious["id"]]})).json()
    if listed:
        notified = await client.post(f"/v1/blacklist/{entry['id']}/notify", headers=regulator,
                                     json={"channel": "registered_mail"})
        assert notified.status_code == 200, notified.text
        clock.set(day("2026-03-13"))
        done = await client.post(f"/v1/blacklist/{entry['id']}/list", json={}, headers=regulator)
        assert done.status_code == 200, done.text
        entry = done.json()
    return serious["id"], entry


async def test_only_the_deciding_authority_handles_the_list(client: Client,
                                                           regulator: dict[str, str],
                                                           other_regulator: dict[str, str],
                                                           clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    serious = await record(client, regulator, penalty(sid, grade="serious"))
    proposal = {"subject_id": sid, "criterion": "c", "legal_basis": "b", "record_ids": [serious["id"]]}
    refused_as_theirs(await client.post("/v1/blacklist", headers=other_regulator, json=proposal))
    entry = (await client.post("/v1/blacklist", headers=regulator, json=proposal)).json()
    eid = entry["id"]
    refused_as_theirs(await client.post(f"/v1/blacklist/{eid}/notify", headers=other_regulator,
                                        json={"channel": "registered_mail"}))
    refused_as_theirs(await client.post(f"/v1/blacklist/{eid}/withdraw", headers=other_regulator,
                                        json={"reason": "x"}))
    assert (await client.post(f"/v1/blacklist/{eid}/notify", headers=regulator,
                              json={"channel": "registered_mail"})).status_code == 200
    clock.set(day("2026-03-13"))
    refused_as_theirs(await client.post(f"/v1/blacklist/{eid}/list", json={}, headers=other_regulator))
    assert (await client.post(f"/v1/blacklist/{eid}/list", json={}, headers=regulator)).status_code == 200
    refused_as_theirs(await client.post(f"/v1/blacklist/{eid}/remove", headers=other_regulator,
                                        json={"reason": "decision_revoked"}))


async def test_only_the_deciding_authority_decides_objections_and_repairs(
    client: Client, regulator: dict[str, str], other_regulator: dict[str, str],
    bureau: dict[str, str], clock: ManualClock,
) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    # Anyone with the right to object files against any authority's decision.
    filed = await client.post("/v1/objections", headers=other_regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "認定有誤"})
    assert filed.status_code == 201, filed.text
    oid = filed.json()["objection"]["id"]
    refused_as_theirs(await client.post(f"/v1/objections/{oid}/decide", headers=other_regulator,
                                        json={"outcome": "rejected"}))
    assert (await client.post(f"/v1/objections/{oid}/decide", headers=regulator,
                              json={"outcome": "rejected"})).status_code == 200
    clock.set(day("2026-06-03"))  # after the general grade's 3-month minimum
    applied = await client.post("/v1/repairs", headers=bureau, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "已整改"})
    assert applied.status_code == 201, applied.text
    rid = applied.json()["id"]
    refused_as_theirs(await client.post(f"/v1/repairs/{rid}/approve", headers=other_regulator,
                                        json={"note": "x"}))
    refused_as_theirs(await client.post(f"/v1/repairs/{rid}/reject", headers=other_regulator,
                                        json={"note": "x"}))
    assert (await client.post(f"/v1/repairs/{rid}/approve", headers=regulator,
                              json={"note": "同意"})).status_code == 200


# ---- who reads subjects ----------------------------------------------------------------


@pytest.mark.parametrize("role", ["bureau", "admin"])
async def test_subjects_answer_only_regulators(client: Client, regulator: dict[str, str],
                                               db: asyncpg.Pool, role: str) -> None:
    """Bureaus reach subjects through the bureau routes only; admins read no personal data."""
    sid = await subject(client, regulator, kind="practitioner")
    other = bearer(await issue(db, role))
    for path in (f"/v1/subjects/{sid}", "/v1/subjects", f"/v1/subjects/{sid}/history",
                 f"/v1/subjects/{sid}/credit-history", f"/v1/subjects/{sid}/access-records",
                 "/v1/records", "/v1/blacklist", "/v1/access-records"):
        response = await client.get(path, headers=other)
        assert response.status_code == 403, (path, response.text)
        assert "630102" not in response.text


# ---- blacklist integrity: a listing never outlives its basis --------------------------


async def test_a_correction_that_downgrades_the_basis_ends_the_listing(
    client: Client, regulator: dict[str, str], clock: ManualClock, db: asyncpg.Pool,
) -> None:
    rid, entry = await _listed_entry(client, regulator, clock)
    corrected = await client.post(f"/v1/records/{rid}/correct", headers=regulator,
                                  json={"version": 1, "note": "重新認定", "grade": "general"})
    assert corrected.status_code == 200, corrected.text
    row = await db.fetchrow("SELECT state, removal_reason FROM blacklist_entries WHERE id = $1",
                            uuid.UUID(entry["id"]))
    assert row is not None
    assert (row["state"], row["removal_reason"]) == ("removed", "decision_corrected")
    # The removal is its own leaf, committed with the correction.
    leaves = await db.fetch("SELECT leaf FROM tlog_leaves ORDER BY idx DESC LIMIT 2")
    assert [decode_leaf(bytes(r["leaf"])).action for r in leaves] == [
        "blacklist.remove", "record.correct"]


async def test_a_correction_that_downgrades_the_basis_withdraws_a_proposal(
    client: Client, regulator: dict[str, str], clock: ManualClock, db: asyncpg.Pool,
) -> None:
    rid, entry = await _listed_entry(client, regulator, clock, listed=False)
    assert (await client.post(f"/v1/records/{rid}/correct", headers=regulator, json={
        "version": 1, "note": "x", "penalty_content": "罰款"})).status_code == 200
    assert await db.fetchval("SELECT state FROM blacklist_entries WHERE id = $1",
                             uuid.UUID(entry["id"])) == "proposed"  # still serious: stays
    assert (await client.post(f"/v1/records/{rid}/correct", headers=regulator, json={
        "version": 2, "note": "x", "grade": "minor"})).status_code == 200
    row = await db.fetchrow("SELECT state, withdrawal_reason FROM blacklist_entries WHERE id = $1",
                            uuid.UUID(entry["id"]))
    assert row is not None
    assert (row["state"], row["withdrawal_reason"]) == ("withdrawn", "decision_corrected")


async def test_an_upheld_objection_that_downgrades_the_basis_ends_the_listing(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    rid, entry = await _listed_entry(client, regulator, clock)
    filed = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "credit_record", "target_id": rid, "grounds": "情節並不嚴重"})
    assert filed.status_code == 201, filed.text
    decided = await client.post(f"/v1/objections/{filed.json()['objection']['id']}/decide",
                                headers=regulator, json={"outcome": "upheld", "action": "correct",
                                                         "corrections": {"grade": "general"}})
    assert decided.status_code == 200, decided.text
    assert await db.fetchval("SELECT state FROM blacklist_entries WHERE id = $1",
                             uuid.UUID(entry["id"])) == "removed"
    public = await client.get("/public/blacklist.json")
    assert entry["id"] not in public.text


async def test_listing_rechecks_the_basis(client: Client, regulator: dict[str, str],
                                         clock: ManualClock, db: asyncpg.Pool) -> None:
    rid, entry = await _listed_entry(client, regulator, clock, listed=False)
    assert (await client.post(f"/v1/blacklist/{entry['id']}/notify", headers=regulator,
                              json={"channel": "registered_mail"})).status_code == 200
    # A basis changed behind the API's back (the API would have ended the entry).
    await db.execute("UPDATE credit_records SET grade = 'general' WHERE id = $1", uuid.UUID(rid))
    clock.set(day("2026-03-13"))
    refused = await client.post(f"/v1/blacklist/{entry['id']}/list", json={}, headers=regulator)
    assert refused.status_code == 409
    assert rid in refused.json()["detail"] and "general" in refused.json()["detail"]
    assert await db.fetchval("SELECT state FROM blacklist_entries WHERE id = $1",
                             uuid.UUID(entry["id"])) == "notified"


async def test_a_proposal_rests_only_on_serious_records_in_force(client: Client,
                                                                  regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    serious = await record(client, regulator, penalty(sid, grade="serious"))
    general = await record(client, regulator, penalty(sid, "寧罰〔2026〕2號"))
    mixed = await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": sid, "criterion": "c", "legal_basis": "b",
        "record_ids": [serious["id"], general["id"]]})
    assert mixed.status_code == 409 and general["id"] in mixed.json()["detail"]


async def test_a_second_open_objection_is_409(client: Client, regulator: dict[str, str],
                                             bureau: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    body = {"target_type": "credit_record", "target_id": rec["id"], "grounds": "認定有誤"}
    assert (await client.post("/v1/objections", headers=bureau, json=body)).status_code == 201
    for headers in (bureau, regulator):
        again = await client.post("/v1/objections", headers=headers, json=body)
        assert again.status_code == 409 and "already under objection" in again.json()["detail"]


async def test_a_bureau_reads_only_the_objections_and_repairs_it_filed(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool,
    clock: ManualClock,
) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    filed = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "認定有誤"})
    oid = filed.json()["objection"]["id"]
    other = bearer(await issue(db, "bureau", "征信乙"))
    assert (await client.get(f"/v1/objections/{oid}", headers=bureau)).status_code == 200
    assert (await client.get(f"/v1/objections/{oid}", headers=other)).status_code == 404
    assert (await client.get(f"/v1/objections/{oid}", headers=regulator)).status_code == 200
    clock.set(day("2026-06-03"))
    applied = await client.post("/v1/repairs", headers=regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "已整改"})
    assert applied.status_code == 201, applied.text
    assert (await client.get(f"/v1/repairs/{applied.json()['id']}", headers=bureau)).status_code == 404


async def test_a_bureau_files_only_about_what_it_can_see(
    client: Client, regulator: dict[str, str], bureau: dict[str, str],
) -> None:
    """Filing cannot probe for proposals, unpublished records or minors: answered as missing."""
    from tests.bureau_helpers import practitioner, resident_id

    sid = await subject(client, regulator)
    warning = await record(client, regulator, penalty(sid, "寧罰〔2026〕3號", penalty_types=["warning"]))
    assert warning["status"] == "not_published"
    serious = await record(client, regulator, penalty(sid, grade="serious"))
    proposal = (await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": sid, "criterion": "c", "legal_basis": "b",
        "record_ids": [serious["id"]]})).json()
    child = await practitioner(client, regulator, resident_id(7, born="20120101"))
    childs = await record(client, regulator, penalty(child, "寧罰〔2026〕5號"))
    for target_type, target in (("credit_record", warning["id"]),
                                ("blacklist_entry", proposal["id"]),
                                ("credit_record", childs["id"])):
        body = {"target_type": target_type, "target_id": target, "grounds": "x"}
        filed = await client.post("/v1/objections", headers=bureau, json=body)
        assert filed.status_code == 404, (target_type, filed.text)
        applied = await client.post("/v1/repairs", headers=bureau, json=body)
        assert applied.status_code == 404, (target_type, applied.text)
        # A regulator may (it sees them all).
        assert (await client.post("/v1/objections", headers=regulator, json=body)).status_code in (
            201, 409)
    shown = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "credit_record", "target_id": serious["id"], "grounds": "x"})
    assert shown.status_code == 201, shown.text


async def test_write_answers_show_only_the_number_the_caller_sent(
    client: Client, regulator: dict[str, str], other_regulator: dict[str, str], db: asyncpg.Pool,
) -> None:
    """A rename or a status change answers with the number masked and records nothing: a clear
    number leaves only through a recorded read (or back to whoever just sent it)."""
    from tests.bureau_helpers import resident_id

    number = resident_id(52)
    created = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "practitioner", "name": "王五", "document_type": "resident_id",
        "document_number": number})
    assert created.status_code == 201 and created.json()["document_number"] == number
    sid = created.json()["id"]
    renamed = await client.patch(f"/v1/subjects/{sid}", headers=other_regulator,
                                 json={"version": 1, "name": "王五一"})
    deactivated = await client.post(f"/v1/subjects/{sid}/deactivate", headers=other_regulator,
                                    json={"version": 2})
    for response in (renamed, deactivated):
        assert response.status_code == 200, response.text
        assert number not in response.text and response.json()["document_number_masked"] is True
    assert await db.fetchval("SELECT count(*) FROM bureau_access") == 0
    read = await client.get(f"/v1/subjects/{sid}", headers=other_regulator)
    assert read.json()["document_number"] == number
    assert await db.fetchval("SELECT count(*) FROM bureau_access WHERE channel = 'regulator_read'") == 1


async def test_a_token_of_no_authority_changes_no_subject(client: Client, db: asyncpg.Pool,
                                                          regulator: dict[str, str]) -> None:
    token = await issue(db, "regulator", "legacy desk")
    await db.execute("UPDATE api_tokens SET authority_code = NULL WHERE name = 'legacy desk'")
    refused = await client.post("/v1/subjects", headers=bearer(token), json={
        "kind": "vc_firm", "name": "某創投", "credit_code": "91630100MA752LKX1M"})
    assert refused.status_code == 403 and "belongs to no authority" in refused.json()["detail"]


async def test_concurrent_issues_of_one_name_give_one_token(client: Client, db: asyncpg.Pool) -> None:
    """The name check takes turns per (role, name): of racing issues, exactly one wins."""
    import asyncio

    from registry.clock import SystemClock
    from registry.errors import Conflict
    from registry.tokens import issue_token

    async def one() -> bool:
        try:
            await issue_token(db, SystemClock(), role="bureau", name="搶名", actor="admin:test")
        except Conflict:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await db.fetchval("SELECT count(*) FROM api_tokens WHERE name = '搶名'") == 1


async def test_an_upheld_objection_that_revokes_the_basis_removes_the_listing(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    rid, entry = await _listed_entry(client, regulator, clock)
    filed = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "credit_record", "target_id": rid, "grounds": "決定已被撤銷"})
    decided = await client.post(f"/v1/objections/{filed.json()['objection']['id']}/decide",
                                headers=regulator, json={"outcome": "upheld", "action": "revoke"})
    assert decided.status_code == 200, decided.text
    row = await db.fetchrow("SELECT state, removal_reason FROM blacklist_entries WHERE id = $1",
                            uuid.UUID(entry["id"]))
    assert row is not None
    assert (row["state"], row["removal_reason"]) == ("removed", "decision_revoked")


async def test_an_entry_ends_with_its_basis_whoever_else_shares_it(
    client: Client, regulator: dict[str, str], other_regulator: dict[str, str],
    clock: ManualClock, db: asyncpg.Pool,
) -> None:
    """An entry resting also on another authority's record (possible before authorities
    existed) still ends when the owner revokes its own record: a consequence, no decision."""
    rid, entry = await _listed_entry(client, regulator, clock)
    sid = await db.fetchval("SELECT subject_id FROM credit_records WHERE id = $1", uuid.UUID(rid))
    theirs = await client.post("/v1/records", headers=other_regulator, json=penalty(
        str(sid), "寧金罰〔2026〕1號", grade="serious", authority_code=THEIRS,
        authority_name=OTHER_AUTHORITY[1]))
    assert theirs.status_code == 201, theirs.text
    await db.execute("UPDATE blacklist_entries SET record_ids = record_ids || $2::uuid WHERE id = $1",
                     uuid.UUID(entry["id"]), uuid.UUID(theirs.json()["id"]))
    revoked = await client.post(f"/v1/records/{rid}/revoke", headers=regulator,
                                json={"version": 1, "reason": "行政復議撤銷"})
    assert revoked.status_code == 200, revoked.text
    assert await db.fetchval("SELECT state FROM blacklist_entries WHERE id = $1",
                             uuid.UUID(entry["id"])) == "removed"
