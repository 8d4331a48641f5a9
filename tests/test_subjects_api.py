"""Subjects through the real app: each kind, masking, duplicates, versions, history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import bearer, issue

FIRM = {"kind": "vc_firm", "name": "西寧創新投資有限公司", "credit_code": "91630100MA752LKX1M"}
MANAGER = {
    "kind": "vc_manager",
    "name": "青海高原創業投資管理有限公司",
    "credit_code": "91630104MA7X3TQK5Y",
    "registered_region": "630104",
    "filing_number": "P1000001",
    "filing_date": "2024-05-01",
    "legal_representative": "張三",
}
PERSON_ID = "630102199003071231"
PERSON = {"kind": "practitioner", "name": "李四", "document_type": "resident_id",
          "document_number": PERSON_ID}

Client = AsyncTestClient[Litestar]


async def create(client: Client, headers: dict[str, str], body: Mapping[str, object]) -> dict[str, Any]:
    response = await client.post("/v1/subjects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_regulator_creates_and_reads_each_kind(client: Client, regulator: dict[str, str]) -> None:
    for body in (FIRM, MANAGER, PERSON):
        created = await create(client, regulator, body)
        assert created["kind"] == body["kind"]
        assert created["version"] == 1
        # The log's actor: the token by id and its authority, never its name.
        assert created["created_by"].startswith("regulator:")
        assert created["created_by"].endswith("@11630100MB1234567J")
        read = (await client.get(f"/v1/subjects/{created['id']}", headers=regulator)).json()
        assert read["name"] == body["name"]
    assert read["document_number"] == PERSON_ID
    assert read["document_number_masked"] is False


async def test_bureau_reads_no_subject_here(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    """Bureaus reach practitioners only through the bureau routes (purpose, access record)."""
    created = await create(client, regulator, PERSON)
    response = await client.get(f"/v1/subjects/{created['id']}", headers=bureau)
    assert response.status_code == 403
    assert PERSON_ID not in response.text and "630102" not in response.text


async def test_document_number_is_encrypted_at_rest(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    await create(client, regulator, PERSON)
    dump = await db.fetchval("SELECT string_agg(t::text, '|') FROM subjects t")
    objects = await db.fetchval("SELECT string_agg(encode(body, 'escape'), '|') FROM tlog_objects")
    leaves = await db.fetchval("SELECT string_agg(encode(leaf, 'escape'), '|') FROM tlog_leaves")
    for text in (dump, objects, leaves):
        assert PERSON_ID not in text
        assert PERSON_ID.encode().hex() not in text


async def test_duplicate_credit_code_is_409(client: Client, regulator: dict[str, str]) -> None:
    await create(client, regulator, FIRM)
    again = await client.post("/v1/subjects", json={**FIRM, "kind": "vc_manager"}, headers=regulator)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["field"] == "credit_code"


async def test_duplicate_practitioner_document_is_409(client: Client, regulator: dict[str, str]) -> None:
    await create(client, regulator, PERSON)
    again = await client.post("/v1/subjects", json={**PERSON, "name": "別人"}, headers=regulator)
    assert again.status_code == 409


async def test_lookup_by_document_finds_practitioner(client: Client, regulator: dict[str, str]) -> None:
    created = await create(client, regulator, PERSON)
    found = await client.post("/v1/subjects/lookup", headers=regulator,
                              json={"document_type": "resident_id", "document_number": PERSON_ID.lower()})
    assert found.status_code == 200
    assert found.json()["id"] == created["id"]
    missing = await client.post("/v1/subjects/lookup", headers=regulator,
                                json={"document_type": "resident_id", "document_number": "630104198512310024"})
    assert missing.status_code == 404


async def test_update_needs_current_version(client: Client, regulator: dict[str, str]) -> None:
    created = await create(client, regulator, MANAGER)
    url = f"/v1/subjects/{created['id']}"
    ok = await client.patch(url, json={"version": 1, "name": "新名稱有限公司"}, headers=regulator)
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == 2
    assert ok.json()["receipt"]["log_index"] == ok.json()["log_index"]
    stale = await client.patch(url, json={"version": 1, "name": "又一個名稱"}, headers=regulator)
    assert stale.status_code == 409
    assert stale.json()["field"] == "version"
    practitioner_field = await client.patch(
        url, json={"version": 2, "document_type": "passport", "document_number": "E12345678"},
        headers=regulator)
    assert practitioner_field.status_code == 422


async def test_deactivate_keeps_subject_and_history(client: Client, regulator: dict[str, str]) -> None:
    created = await create(client, regulator, FIRM)
    url = f"/v1/subjects/{created['id']}"
    off = await client.post(f"{url}/deactivate", json={"version": 1}, headers=regulator)
    assert off.status_code == 200, off.text
    assert off.json()["status"] == "inactive"
    twice = await client.post(f"{url}/deactivate", json={"version": 2}, headers=regulator)
    assert twice.status_code == 409
    history = (await client.get(f"{url}/history", headers=regulator)).json()
    assert [h["log_index"] for h in history] == [created["log_index"], off.json()["log_index"]]
    # The leaf is an object, not JSON in a string; its canonical JSON is the logged leaf.
    assert history[1]["leaf"]["action"] == "subject.deactivate"
    assert history[1]["leaf"]["index"] == history[1]["log_index"]
    assert (await client.get(url, headers=regulator)).json()["status"] == "inactive"


async def test_affiliations_over_time(client: Client, regulator: dict[str, str]) -> None:
    firm = await create(client, regulator, FIRM)
    person = await create(client, regulator, {
        **PERSON,
        "affiliations": [{"organisation_id": firm["id"], "role": "投資經理", "valid_from": "2020-01-01"}],
    })
    affiliations = person["affiliations"]
    assert isinstance(affiliations, list) and len(affiliations) == 1
    ended = await client.post(f"/v1/affiliations/{affiliations[0]['id']}/end",
                              json={"valid_to": "2025-06-30"}, headers=regulator)
    assert ended.status_code == 200, ended.text
    assert ended.json()["affiliation"]["valid_to"] == "2025-06-30"
    again = await client.post(f"/v1/affiliations/{affiliations[0]['id']}/end",
                              json={"valid_to": "2025-07-30"}, headers=regulator)
    assert again.status_code == 409
    bad = await client.post(f"/v1/subjects/{person['id']}/affiliations", headers=regulator,
                            json={"organisation_id": person["id"], "role": "x", "valid_from": "2020-01-01"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "organisation_id"


async def test_list_subjects_pages_with_cursor(client: Client, regulator: dict[str, str]) -> None:
    for body in (FIRM, MANAGER, PERSON):
        await create(client, regulator, body)
    first = (await client.get("/v1/subjects?limit=2", headers=regulator)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await client.get(f"/v1/subjects?limit=2&cursor={first['next_cursor']}",
                               headers=regulator)).json()
    ids = [s["id"] for s in first["items"] + second["items"]]
    assert len(set(ids)) == 3 and second["next_cursor"] is None
    only = (await client.get("/v1/subjects?kind=practitioner", headers=regulator)).json()
    assert [s["kind"] for s in only["items"]] == ["practitioner"]


async def test_revoked_token_stops_at_once(client: Client, db: asyncpg.Pool,
                                           admin: dict[str, str]) -> None:
    token = await issue(db, "regulator", "to be revoked")
    assert (await client.get("/v1/subjects", headers=bearer(token))).status_code == 200
    listed = (await client.get("/v1/admin/tokens", headers=admin)).json()
    token_id = next(t["id"] for t in listed if t["name"] == "to be revoked")
    revoked = await client.post(f"/v1/admin/tokens/{token_id}/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    after = await client.get("/v1/subjects", headers=bearer(token))
    assert after.status_code == 401
    assert token not in revoked.text


async def test_admin_issues_token_shown_once(client: Client, admin: dict[str, str], db: asyncpg.Pool) -> None:
    issued = await client.post("/v1/admin/tokens", json={"role": "bureau", "name": "征信甲"}, headers=admin)
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    assert (await client.get("/v1/admin/tokens", headers=admin)).text.count(token) == 0
    stored = await db.fetchval("SELECT count(*) FROM api_tokens WHERE token_hash = sha256($1::bytea)",
                               token.encode())
    assert stored == 1
