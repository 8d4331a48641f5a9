"""The serious-dishonesty list through the HTTP API: every step, legal and illegal, and its leaves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from registry.clock import ManualClock
from tests.credit_helpers import Client, actions, log_size, penalty, record, subject


def day(text: str) -> datetime:
    """02:00 UTC: 10:00 in Xining on that calendar day."""
    return datetime.fromisoformat(text).replace(hour=2, tzinfo=UTC)


async def proposed(client: Client, regulator: dict[str, str], kind: str = "vc_firm") -> dict[str, Any]:
    sid = await subject(client, regulator, kind=kind)
    serious = await record(client, regulator, penalty(sid, grade="serious"))
    response = await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": sid, "criterion": "拒不履行行政處罰決定", "legal_basis": "國辦發〔2020〕49號",
        "record_ids": [serious["id"]]})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_full_lifecycle_with_leaves(client: Client, regulator: dict[str, str],
                                          db: asyncpg.Pool, clock: ManualClock) -> None:
    start = await log_size(db)
    entry = await proposed(client, regulator)
    eid = entry["id"]
    assert entry["state"] == "proposed"
    assert entry["created_by"].startswith("regulator:")
    early_list = await client.post(f"/v1/blacklist/{eid}/list", json={}, headers=regulator)
    assert early_list.status_code == 409
    assert "'proposed'" in early_list.json()["detail"]
    notified = await client.post(f"/v1/blacklist/{eid}/notify", headers=regulator,
                                 json={"channel": "registered_mail", "on": "2026-03-02"})
    assert notified.status_code == 200, notified.text
    assert notified.json()["objection_deadline"] == "2026-03-12"
    clock.set(day("2026-03-12"))
    in_window = await client.post(f"/v1/blacklist/{eid}/list", json={}, headers=regulator)
    assert in_window.status_code == 409
    assert "2026-03-13" in in_window.json()["detail"]
    clock.set(day("2026-03-13"))
    listed = await client.post(f"/v1/blacklist/{eid}/list", json={}, headers=regulator)
    assert listed.status_code == 200, listed.text
    assert listed.json()["planned_removal_on"] == "2029-03-14"
    early_removal = await client.post(f"/v1/blacklist/{eid}/remove", headers=regulator,
                                      json={"reason": "period_ended"})
    assert early_removal.status_code == 409
    assert "2029-03-14" in early_removal.json()["detail"]
    withdraw = await client.post(f"/v1/blacklist/{eid}/withdraw", headers=regulator,
                                 json={"reason": "x"})
    assert withdraw.status_code == 409
    assert "use 'remove'" in withdraw.json()["detail"]
    removed = await client.post(f"/v1/blacklist/{eid}/remove", headers=regulator,
                                json={"reason": "decision_revoked"})
    assert removed.status_code == 200
    assert removed.json()["state"] == "removed"
    again = await client.post(f"/v1/blacklist/{eid}/remove", headers=regulator,
                              json={"reason": "decision_revoked"})
    assert again.status_code == 409
    assert "final" in again.json()["detail"]
    assert await actions(db, start) == [
        "subject.create", "record.create", "blacklist.propose", "blacklist.notify",
        "blacklist.list", "blacklist.remove"]


async def test_withdraw_a_proposal_and_stale_version(client: Client, regulator: dict[str, str]) -> None:
    entry = await proposed(client, regulator)
    stale = await client.post(f"/v1/blacklist/{entry['id']}/withdraw", headers=regulator,
                              json={"reason": "決定已撤銷", "version": 7})
    assert stale.status_code == 409
    assert stale.json()["field"] == "version"
    done = await client.post(f"/v1/blacklist/{entry['id']}/withdraw", headers=regulator,
                             json={"reason": "決定已撤銷", "version": 1})
    assert done.status_code == 200
    assert done.json()["withdrawal_reason"] == "決定已撤銷"
    notify = await client.post(f"/v1/blacklist/{entry['id']}/notify", headers=regulator,
                               json={"channel": "in_person"})
    assert notify.status_code == 409


async def test_practitioner_can_be_listed(client: Client, regulator: dict[str, str]) -> None:
    entry = await proposed(client, regulator, kind="practitioner")
    assert entry["state"] == "proposed"


async def test_proposal_needs_a_serious_record_of_that_subject(client: Client,
                                                              regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    general = await record(client, regulator, penalty(sid, grade="general"))
    body = {"subject_id": sid, "criterion": "c", "legal_basis": "b", "record_ids": [general["id"]]}
    refused = await client.post("/v1/blacklist", headers=regulator, json=body)
    assert refused.status_code == 409
    assert "serious" in refused.json()["detail"]
    other = await subject(client, regulator, code="91630104MA7X3TQK5Y")
    foreign = await record(client, regulator, penalty(other, number="X9", grade="serious"))
    mixed = await client.post("/v1/blacklist", headers=regulator,
                              json={**body, "record_ids": [foreign["id"]]})
    assert mixed.status_code == 422
    assert mixed.json()["field"] == "record_ids"
    empty = await client.post("/v1/blacklist", headers=regulator, json={**body, "record_ids": []})
    assert empty.status_code == 400


async def test_bad_dates_and_channels(client: Client, regulator: dict[str, str]) -> None:
    entry = await proposed(client, regulator)
    future = await client.post(f"/v1/blacklist/{entry['id']}/notify", headers=regulator,
                               json={"channel": "mail", "on": "2026-03-05"})
    assert future.status_code == 422
    assert future.json()["field"] == "on"
    blank = await client.post(f"/v1/blacklist/{entry['id']}/notify", headers=regulator,
                              json={"channel": "   "})
    assert blank.status_code == 422
    assert blank.json()["field"] == "channel"
    reason = await client.post(f"/v1/blacklist/{entry['id']}/remove", headers=regulator,
                               json={"reason": "whim"})
    assert reason.status_code == 400
    assert reason.json()["field"] == "reason"


async def test_list_by_state(client: Client, regulator: dict[str, str], bureau: dict[str, str]) -> None:
    first = await proposed(client, regulator)
    await client.post(f"/v1/blacklist/{first['id']}/notify", headers=regulator, json={"channel": "m"})
    page = (await client.get("/v1/blacklist", params={"state": "notified"}, headers=regulator)).json()
    assert [i["id"] for i in page["items"]] == [first["id"]]
    none = (await client.get("/v1/blacklist", params={"state": "listed"}, headers=regulator)).json()
    assert none["items"] == []
    bad = await client.get("/v1/blacklist", params={"state": "limbo"}, headers=regulator)
    assert bad.status_code == 422
    assert bad.json()["field"] == "state"
    assert (await client.get("/v1/blacklist", headers=bureau)).status_code == 403


async def test_revoking_the_decision_ends_its_listings(client: Client, regulator: dict[str, str],
                                                       db: asyncpg.Pool, clock: ManualClock) -> None:
    """A listing never outlives its basis: revoking the serious record removes a listed entry
    and withdraws a mere proposal, in the same transaction as the revocation."""
    entry = await proposed(client, regulator)
    eid = entry["id"]
    record_id = entry["record_ids"][0]
    await client.post(f"/v1/blacklist/{eid}/notify", headers=regulator,
                      json={"channel": "registered_mail", "on": "2026-03-02"})
    clock.set(day("2026-03-13"))
    assert (await client.post(f"/v1/blacklist/{eid}/list", json={}, headers=regulator)).status_code == 200
    start = await log_size(db)
    current = (await client.get(f"/v1/records/{record_id}", headers=regulator)).json()
    revoked = await client.post(f"/v1/records/{record_id}/revoke", headers=regulator,
                                json={"version": current["version"], "reason": "復議撤銷"})
    assert revoked.status_code == 200, revoked.text
    after = (await client.get(f"/v1/blacklist/{eid}", headers=regulator)).json()
    assert after["state"] == "removed"
    assert after["removal_reason"] == "decision_revoked"
    assert await actions(db, start) == ["record.revoke", "blacklist.remove"]

    person = await subject(client, regulator, kind="practitioner")
    basis = await record(client, regulator, penalty(person, number="寧發改罰〔2026〕2號", grade="serious"))
    other = (await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": person, "criterion": "拒不履行行政處罰決定", "legal_basis": "國辦發〔2020〕49號",
        "record_ids": [basis["id"]]})).json()
    other_record = basis["id"]
    version = (await client.get(f"/v1/records/{other_record}", headers=regulator)).json()["version"]
    await client.post(f"/v1/records/{other_record}/revoke", headers=regulator,
                      json={"version": version, "reason": "撤銷"})
    withdrawn = (await client.get(f"/v1/blacklist/{other['id']}", headers=regulator)).json()
    assert withdrawn["state"] == "withdrawn"
