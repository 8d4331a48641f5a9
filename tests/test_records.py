"""Credit records through the HTTP API: recording, publicity windows, corrections, revocation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from registry.clock import ManualClock
from tests.credit_helpers import (
    AUTHORITY,
    SOURCE,
    Client,
    actions,
    log_size,
    penalty,
    record,
    subject,
)


async def test_penalty_carries_every_item_and_its_publicity(client: Client, regulator: dict[str, str],
                                                          db: asyncpg.Pool) -> None:
    """A general penalty of 2026-03-02 is shown 12 months: 公示截止期 2027-03-02."""
    sid = await subject(client, regulator)
    start = await log_size(db)
    body = await record(client, regulator, penalty(sid, penalty_types=["fine", "confiscation"],
                                                   confiscation_amount="0.000001",
                                                   licence_name="經營許可證", licence_number="QH-001",
                                                   remarks="無", source_code=SOURCE))
    assert body["fine_amount"] == "12.500000"
    assert body["confiscation_amount"] == "0.000001"
    assert body["status"] == "published"
    assert body["publicity_start"] == "2026-03-02"
    assert body["repair_from"] == "2026-06-03"
    assert body["publicity_end"] == "2027-03-03"
    assert body["publicity_deadline"] == "2027-03-02"
    assert body["under_objection"] is False
    assert body["receipt"]["log_index"] == body["log_index"]
    assert await actions(db, start) == ["record.create"]
    read = await client.get(f"/v1/records/{body['id']}", headers=regulator)
    assert read.json()["decision_number"] == "寧發改罰〔2026〕1號"


async def test_warning_only_is_not_published(client: Client, regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    body = await record(client, regulator, penalty(sid, penalty_types=["warning"], fine_amount=None))
    assert body["status"] == "not_published"
    assert body["publicity_deadline"] is None


async def test_old_decision_is_recorded_already_expired(client: Client, regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    body = await record(client, regulator, penalty(sid, grade="minor", decision_date="2025-01-01",
                                                   valid_until="2025-06-01"))
    assert body["status"] == "expired"
    assert body["publication_ended_on"] == "2025-04-02"


async def test_filing_and_commendation_carry_no_grade(client: Client, regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    base = {"subject_id": sid, "facts": "完成備案", "decision_date": "2026-01-05",
            "source_name": "西寧市發改委", "source_code": AUTHORITY}
    filing = await record(client, regulator, {**base, "record_kind": "filing"})
    assert filing["status"] == "published"
    assert filing["publicity_end"] is None
    graded = await client.post("/v1/records", json={**base, "record_kind": "commendation",
                                                    "grade": "minor"}, headers=regulator)
    assert graded.status_code == 422
    assert graded.json()["field"] == "grade"
    other = await record(client, regulator, {**base, "record_kind": "dishonesty_other",
                                             "grade": "serious"})
    assert other["penalty_types"] == ["other"]
    assert other["publicity_end"] == "2029-01-06"


async def test_bad_input_names_the_field(client: Client, regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    cases: dict[str, dict[str, Any]] = {
        "authority_code": {"authority_code": "91630100MA752LKX1A"},
        "fine_amount": {"fine_amount": "1.0000001"},
        "decision_date": {"decision_date": "2026-03-03"},
        "legal_basis": {"legal_basis": None},
        "penalty_types": {"penalty_types": []},
        "valid_until": {"valid_until": "2026-01-01"},
    }
    for field, change in cases.items():
        response = await client.post("/v1/records", json=penalty(sid, **change), headers=regulator)
        assert response.status_code in (400, 422), (field, response.text)
        assert response.json()["field"] == field, response.text
    bad_type = await client.post("/v1/records", json=penalty(sid, penalty_types=["flogging"]),
                                 headers=regulator)
    assert bad_type.status_code == 400
    assert "penalty_types" in bad_type.json()["field"]
    missing = await client.post("/v1/records", json=penalty("00000000-0000-0000-0000-000000000000"),
                                headers=regulator)
    assert missing.status_code == 422
    assert missing.json()["field"] == "subject_id"


async def test_bureau_cannot_record(client: Client, regulator: dict[str, str],
                                    bureau: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    response = await client.post("/v1/records", json=penalty(sid), headers=bureau)
    assert response.status_code == 403


async def test_decision_number_unique_per_authority(client: Client, regulator: dict[str, str]) -> None:
    sid = await subject(client, regulator)
    await record(client, regulator, penalty(sid))
    again = await client.post("/v1/records", json=penalty(sid), headers=regulator)
    assert again.status_code == 409
    assert again.json()["field"] == "decision_number"
    # Another authority may use the same number: tests/test_authorities.py.


async def test_idempotent_retry_replays_the_first_answer(client: Client, regulator: dict[str, str],
                                                         db: asyncpg.Pool) -> None:
    sid = await subject(client, regulator)
    start = await log_size(db)
    key = {"Idempotency-Key": "req-1", **regulator}
    first = await client.post("/v1/records", json=penalty(sid), headers=key)
    second = await client.post("/v1/records", json=penalty(sid), headers=key)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await actions(db, start) == ["record.create"]
    changed = await client.post("/v1/records", json=penalty(sid, facts="另一事實"), headers=key)
    assert changed.status_code == 422
    assert changed.json()["field"] == "Idempotency-Key"
    # Another key is another request; a refusal is not stored (it uses up no key), so
    # the same request is refused again the same way (tests/test_idempotency.py).
    dup_key = {"Idempotency-Key": "req-2", **regulator}
    refused = await client.post("/v1/records", json=penalty(sid), headers=dup_key)
    assert refused.status_code == 409
    replay = await client.post("/v1/records", json=penalty(sid), headers=dup_key)
    assert replay.status_code == 409
    assert "Idempotent-Replayed" not in replay.headers
    assert replay.content == refused.content
    assert await actions(db, start) == ["record.create"]


async def test_correction_is_a_new_version_and_keeps_the_old(client: Client,
                                                             regulator: dict[str, str],
                                                             db: asyncpg.Pool) -> None:
    sid = await subject(client, regulator)
    first = await record(client, regulator, penalty(sid))
    start = await log_size(db)
    corrected = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                                  json={"version": 1, "note": "罰款金額更正", "fine_amount": "10",
                                        "grade": "serious"})
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert body["version"] == 2
    assert body["previous_log_index"] == first["log_index"]
    assert body["fine_amount"] == "10.000000"
    assert body["publicity_deadline"] == "2029-03-02"
    stale = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                              json={"version": 1, "note": "x", "facts": "y"})
    assert stale.status_code == 409
    assert stale.json()["field"] == "version"
    versions = (await client.get(f"/v1/records/{first['id']}/versions", headers=regulator)).json()
    assert [v["action"] for v in versions] == ["record.create", "record.correct"]
    assert versions[0]["row"]["fine_amount"] == "12.500000"
    assert versions[1]["row"]["fine_amount"] == "10.000000"
    assert await actions(db, start) == ["record.correct"]


async def test_revocation_ends_publication_at_once(client: Client, regulator: dict[str, str],
                                                   db: asyncpg.Pool) -> None:
    sid = await subject(client, regulator)
    first = await record(client, regulator, penalty(sid))
    start = await log_size(db)
    revoked = await client.post(f"/v1/records/{first['id']}/revoke", headers=regulator,
                                json={"version": 1, "reason": "行政複議撤銷"})
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["publication_ended_on"] == "2026-03-02"
    again = await client.post(f"/v1/records/{first['id']}/revoke", headers=regulator,
                              json={"version": 2, "reason": "x"})
    assert again.status_code == 409
    correct = await client.post(f"/v1/records/{first['id']}/correct", headers=regulator,
                                json={"version": 2, "note": "x", "facts": "y"})
    assert correct.status_code == 409
    assert await actions(db, start) == ["record.revoke"]


async def test_listing_filters_and_keyset_cursor(client: Client, regulator: dict[str, str],
                                                 clock: ManualClock) -> None:
    sid = await subject(client, regulator)
    other = await subject(client, regulator, code="91630104MA7X3TQK5Y")
    for day in range(1, 8):
        await record(client, regulator, penalty(sid, number=f"A{day}", decision_date=f"2026-02-0{day}",
                                                grade="serious" if day % 2 else "general"))
    await record(client, regulator, penalty(other, number="B1"))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"subject_id": sid, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/records", params=params, headers=regulator)).json()
        seen += [item["decision_number"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"A{d}" for d in range(7, 0, -1)]
    serious = (await client.get("/v1/records", params={"grade": "serious", "date_from": "2026-02-03",
                                                       "date_to": "2026-02-06"},
                                headers=regulator)).json()
    assert [i["decision_number"] for i in serious["items"]] == ["A5", "A3"]
    by_authority = (await client.get("/v1/records", params={"authority_code": AUTHORITY,
                                                            "status": "published"},
                                     headers=regulator)).json()
    assert len(by_authority["items"]) == 8
    bad = await client.get("/v1/records", params={"cursor": "nonsense!"}, headers=regulator)
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"
    bad_status = await client.get("/v1/records", params={"status": "gone"}, headers=regulator)
    assert bad_status.status_code == 422
    assert bad_status.json()["field"] == "status"
    _ = datetime(2026, 1, 1, tzinfo=UTC)
