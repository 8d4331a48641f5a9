"""Objections and credit repair end to end through the HTTP API, with the leaves each writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from registry.clock import ManualClock
from tests.credit_helpers import Client, actions, log_size, penalty, record, subject


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(hour=2, tzinfo=UTC)


async def object_to(client: Client, headers: dict[str, str], target_type: str,
                    target_id: Any) -> dict[str, Any]:
    response = await client.post("/v1/objections", headers=headers, json={
        "target_type": target_type, "target_id": target_id, "grounds": "處罰對象認定有誤"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_bureau_objection_upheld_with_correction(client: Client, regulator: dict[str, str],
                                                       bureau: dict[str, str], db: asyncpg.Pool,
                                                       clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    start = await log_size(db)
    filed = await object_to(client, bureau, "credit_record", rec["id"])
    objection = filed["objection"]
    assert objection["filed_by"] == "bureau"
    assert objection["state"] == "filed"
    assert objection["decide_due"] == "2026-03-05"
    assert objection["answer_due"] == "2026-03-16"
    shown = (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()
    assert shown["under_objection"] is True
    twice = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "again"})
    assert twice.status_code == 409
    clock.set(day("2026-03-16"))
    assert (await client.get("/v1/objections", params={"overdue": "true"},
                             headers=regulator)).json()["items"] == []
    clock.set(day("2026-03-17"))
    overdue = (await client.get("/v1/objections", params={"overdue": "true"}, headers=regulator)).json()
    assert [o["id"] for o in overdue["items"]] == [objection["id"]]
    pending = (await client.get("/v1/objections", params={"state": "filed"}, headers=regulator)).json()
    assert len(pending["items"]) == 1
    assert (await client.post(f"/v1/objections/{objection['id']}/decide", headers=bureau,
                              json={"outcome": "rejected"})).status_code == 403
    no_action = await client.post(f"/v1/objections/{objection['id']}/decide", headers=regulator,
                                  json={"outcome": "upheld"})
    assert no_action.status_code == 422
    assert no_action.json()["field"] == "action"
    no_fields = await client.post(f"/v1/objections/{objection['id']}/decide", headers=regulator,
                                  json={"outcome": "upheld", "action": "correct"})
    assert no_fields.status_code == 422
    assert no_fields.json()["field"] == "corrections"
    decided = await client.post(f"/v1/objections/{objection['id']}/decide", headers=regulator,
                                json={"outcome": "upheld", "action": "correct", "note": "金額有誤",
                                      "corrections": {"fine_amount": "2"}})
    assert decided.status_code == 200, decided.text
    assert decided.json()["objection"]["state"] == "upheld"
    now = (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()
    assert now["under_objection"] is False
    assert now["fine_amount"] == "2.000000"
    assert now["version"] == 3
    again = await client.post(f"/v1/objections/{objection['id']}/decide", headers=regulator,
                              json={"outcome": "rejected"})
    assert again.status_code == 409
    assert "decided once" in again.json()["detail"]
    assert await actions(db, start) == ["objection.file", "record.objection_filed",
                                        "objection.decide", "record.correct"]


async def test_objection_rejected_and_upheld_revoke(client: Client, regulator: dict[str, str],
                                                   db: asyncpg.Pool) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    start = await log_size(db)
    first = await object_to(client, regulator, "credit_record", rec["id"])
    assert first["objection"]["filed_by"] == "subject"
    rejected = await client.post(f"/v1/objections/{first['objection']['id']}/decide",
                                 headers=regulator, json={"outcome": "rejected", "action": "revoke"})
    assert rejected.status_code == 422
    rejected = await client.post(f"/v1/objections/{first['objection']['id']}/decide",
                                 headers=regulator, json={"outcome": "rejected", "note": "事實清楚"})
    assert rejected.status_code == 200
    second = await object_to(client, regulator, "credit_record", rec["id"])
    revoked = await client.post(f"/v1/objections/{second['objection']['id']}/decide",
                                headers=regulator, json={"outcome": "upheld", "action": "revoke"})
    assert revoked.status_code == 200
    now = (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()
    assert now["status"] == "revoked"
    assert now["under_objection"] is False
    assert await actions(db, start) == [
        "objection.file", "record.objection_filed", "objection.decide", "record.objection_settled",
        "objection.file", "record.objection_filed", "objection.decide", "record.revoke"]


async def test_objection_to_a_notified_listing_blocks_listing(client: Client,
                                                              regulator: dict[str, str],
                                                              bureau: dict[str, str],
                                                              db: asyncpg.Pool,
                                                              clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid, grade="serious"))
    entry = (await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": sid, "criterion": "c", "legal_basis": "b", "record_ids": [rec["id"]]})).json()
    proposed_only = await client.post("/v1/objections", headers=regulator, json={
        "target_type": "blacklist_entry", "target_id": entry["id"], "grounds": "g"})
    assert proposed_only.status_code == 409
    await client.post(f"/v1/blacklist/{entry['id']}/notify", headers=regulator, json={"channel": "m"})
    # A notice is not disclosed to bureaus: one cannot file about it (nor learn it exists);
    # the subject's objection in the notice period is recorded by the authority.
    unseen = await client.post("/v1/objections", headers=bureau, json={
        "target_type": "blacklist_entry", "target_id": entry["id"], "grounds": "g"})
    assert unseen.status_code == 404
    start = await log_size(db)
    filed = await object_to(client, regulator, "blacklist_entry", entry["id"])
    assert filed["objection"]["filed_by"] == "subject"
    clock.set(day("2026-03-20"))
    blocked = await client.post(f"/v1/blacklist/{entry['id']}/list", headers=regulator, json={})
    assert blocked.status_code == 409
    assert "objection pending" in blocked.json()["detail"]
    await client.post(f"/v1/objections/{filed['objection']['id']}/decide", headers=regulator,
                      json={"outcome": "rejected"})
    listed = await client.post(f"/v1/blacklist/{entry['id']}/list", headers=regulator, json={})
    assert listed.status_code == 200
    assert listed.json()["under_objection"] is False
    assert await actions(db, start) == ["objection.file", "blacklist.objection_filed",
                                        "objection.decide", "blacklist.objection_settled",
                                        "blacklist.list"]


async def test_repair_of_a_record_after_the_minimum_period(client: Client,
                                                           regulator: dict[str, str],
                                                           bureau: dict[str, str],
                                                           db: asyncpg.Pool,
                                                           clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    body = {"target_type": "credit_record", "target_id": rec["id"], "grounds": "已履行處罰"}
    early = await client.post("/v1/repairs", headers=bureau, json=body)
    assert early.status_code == 409
    assert "2026-06-03" in early.json()["detail"]
    clock.set(day("2026-06-03"))
    start = await log_size(db)
    applied = await client.post("/v1/repairs", headers=bureau, json=body)
    assert applied.status_code == 201, applied.text
    assert applied.json()["route"] == "penalty_publicity"
    twice = await client.post("/v1/repairs", headers=bureau, json=body)
    assert twice.status_code == 409
    pending = (await client.get("/v1/repairs", params={"state": "applied"}, headers=regulator)).json()
    assert len(pending["items"]) == 1
    rid = applied.json()["id"]
    approved = await client.post(f"/v1/repairs/{rid}/approve", headers=regulator, json={})
    assert approved.status_code == 200
    assert approved.json()["state"] == "approved"
    # One receipt, naming the repair's own leaf; its checkpoint also covers the record's
    # leaf written with it (repair.approve, then record.repair).
    receipt = approved.json()["receipt"]
    assert receipt["log_index"] == approved.json()["log_index"]
    tree_size = int(receipt["checkpoint"].split("\n")[1])
    assert tree_size >= receipt["log_index"] + 2
    now = (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()
    assert now["status"] == "repaired"
    assert now["publication_ended_on"] == "2026-06-03"
    again = await client.post(f"/v1/repairs/{rid}/reject", headers=regulator, json={})
    assert again.status_code == 409
    assert await actions(db, start) == ["repair.apply", "repair.approve", "record.repair"]
    history = (await client.get(f"/v1/subjects/{sid}/credit-history", headers=regulator)).json()
    assert [(h["object_type"], h["action"]) for h in history] == [
        ("credit_record", "record.create"), ("repair", "repair.apply"),
        ("repair", "repair.approve"), ("credit_record", "record.repair")]
    assert all(isinstance(h["log_index"], int) for h in history)


async def test_repair_rejected_keeps_publication(client: Client, regulator: dict[str, str],
                                                 db: asyncpg.Pool, clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    clock.set(day("2026-07-01"))
    applied = (await client.post("/v1/repairs", headers=regulator, json={
        "target_type": "credit_record", "target_id": rec["id"], "grounds": "g"})).json()
    start = await log_size(db)
    rejected = await client.post(f"/v1/repairs/{applied['id']}/reject", headers=regulator,
                                 json={"note": "未履行完畢"})
    assert rejected.status_code == 200
    assert rejected.json()["decision_note"] == "未履行完畢"
    assert (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()["status"] == "published"
    assert await actions(db, start) == ["repair.reject"]


async def test_repair_removes_a_listing(client: Client, regulator: dict[str, str],
                                        db: asyncpg.Pool, clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid, grade="serious"))
    entry = (await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": sid, "criterion": "c", "legal_basis": "b", "record_ids": [rec["id"]]})).json()
    await client.post(f"/v1/blacklist/{entry['id']}/notify", headers=regulator, json={"channel": "m"})
    clock.set(day("2026-03-13"))
    await client.post(f"/v1/blacklist/{entry['id']}/list", headers=regulator, json={})
    body = {"target_type": "blacklist_entry", "target_id": entry["id"], "grounds": "g"}
    clock.set(day("2027-03-13"))
    early = await client.post("/v1/repairs", headers=regulator, json=body)
    assert early.status_code == 409
    assert "2027-03-14" in early.json()["detail"]
    clock.set(day("2027-03-14"))
    start = await log_size(db)
    applied = await client.post("/v1/repairs", headers=regulator, json=body)
    assert applied.status_code == 201
    assert applied.json()["route"] == "blacklist_removal"
    await client.post(f"/v1/repairs/{applied.json()['id']}/approve", headers=regulator, json={})
    now = (await client.get(f"/v1/blacklist/{entry['id']}", headers=regulator)).json()
    assert now["state"] == "removed"
    assert now["removal_reason"] == "credit_repair_approved"
    assert await actions(db, start) == ["repair.apply", "repair.approve", "blacklist.remove"]
