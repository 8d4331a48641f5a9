"""Bureau profiles and bulk lookup through the HTTP API: what bureaus see, and what they don't."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.bureau.views import BureauRecord
from registry.clock import ManualClock
from registry.domain.policy import Policy
from registry.settings import Settings
from tests.bureau_helpers import (
    PURPOSE,
    credit_code,
    listed_entry,
    lookup,
    organisation,
    practitioner,
    resident_id,
)
from tests.conftest import bearer, issue
from tests.credit_helpers import Client, penalty, record
from tests.logcheck import assert_log_consistent


async def test_profile_is_the_regulators_view_minus_hidden_items(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    """Published records and listings with all 雙公示 items; revoked, expired and
    not-yet-expired-but-past-their-end records are hidden."""
    org = await organisation(client, regulator, 1)
    shown = await record(client, regulator, penalty(org, "寧罰〔2026〕1號"))
    revoked = await record(client, regulator, penalty(org, "寧罰〔2026〕2號"))
    response = await client.post(
        f"/v1/records/{revoked['id']}/revoke",
        headers=regulator,
        json={"version": revoked["version"], "reason": "decision revoked on review"},
    )
    assert response.status_code == 200, response.text
    old = await record(
        client,
        regulator,
        penalty(org, "寧罰〔2024〕3號", decision_date="2024-01-05", valid_until="2024-06-01"),
    )
    assert old["status"] == "expired"
    minor = await record(
        client, regulator, penalty(org, "寧罰〔2026〕4號", grade="minor", penalty_types=["fine"])
    )
    assert minor["status"] == "published"
    assert minor["publicity_end"] is not None
    eid = await listed_entry(client, regulator, clock, org, "寧罰〔2026〕5號")

    profile = await client.get(f"/v1/bureau/profiles/{credit_code(1)}", headers=bureau)
    assert profile.status_code == 200, profile.text
    body = profile.json()
    assert body["subject"]["credit_code"] == credit_code(1)
    assert body["subject"]["id"] == org
    by_id = {r["id"]: r for r in body["records"]}
    assert shown["id"] in by_id
    assert minor["id"] in by_id
    assert revoked["id"] not in by_id
    assert old["id"] not in by_id
    assert [entry["id"] for entry in body["listings"]] == [eid]
    for rid, item in by_id.items():
        full = (await client.get(f"/v1/records/{rid}", headers=regulator)).json()
        assert item == {f: full[f] for f in BureauRecord.__struct_fields__}
        assert item["log_index"] == full["log_index"]
        assert "created_by" not in item
        assert "status" not in item

    # The minor record's window ends; expiry has not run yet: already hidden.
    clock.set(clock.now() + timedelta(days=120))
    later = (await client.get(f"/v1/bureau/profiles/{credit_code(1)}", headers=bureau)).json()
    assert minor["id"] not in {r["id"] for r in later["records"]}
    assert shown["id"] in {r["id"] for r in later["records"]}
    await assert_log_consistent(db)


async def test_practitioner_lookup_masks_the_number_and_shows_affiliations(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    org = await organisation(client, regulator, 2)
    number = resident_id(123)
    person = await practitioner(client, regulator, number, org)
    await record(client, regulator, penalty(person, "寧罰〔2026〕9號"))
    response = await lookup(client, bureau, number)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["subject"]["id"] == person
    assert body["subject"]["document_number"] == number[:6] + "*" * 8 + number[-4:]
    assert number not in response.text
    assert [a["organisation_id"] for a in body["affiliations"]] == [org]
    assert len(body["records"]) == 1
    await assert_log_consistent(db)


async def test_minors_are_answered_as_unknown(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    """Nothing is published about minors: the lookup is a 404 like an unknown number."""
    child = resident_id(7, born="20120101")
    await practitioner(client, regulator, child)
    assert (await lookup(client, bureau, child)).status_code == 404
    assert (await lookup(client, bureau, resident_id(8))).status_code == 404
    bulk = await client.post(
        "/v1/bureau/profiles/bulk",
        headers=bureau,
        json={
            "purpose": PURPOSE,
            "identifiers": [{"document_type": "resident_id", "document_number": child}],
        },
    )
    assert bulk.json()["results"] == [{"index": 0, "status": "not_found"}]


async def test_bulk_answers_each_identifier_in_order(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    await organisation(client, regulator, 3)
    await organisation(client, regulator, 4)
    number = resident_id(55)
    person = await practitioner(client, regulator, number)
    identifiers = [
        {"credit_code": credit_code(4)},
        {"credit_code": "91630100MA752LKX1N"},  # wrong check character
        {"credit_code": credit_code(99)},  # valid, unknown
        {"document_type": "resident_id", "document_number": number.lower()},
        {"document_type": "resident_id"},
        {"document_type": "passport", "document_number": "E12345678"},
        {"credit_code": credit_code(3)},
        {"document_type": "resident_id", "document_number": "630102199003071239"},
    ]
    response = await client.post(
        "/v1/bureau/profiles/bulk",
        headers=bureau,
        json={"purpose": PURPOSE, "identifiers": identifiers},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(identifiers)))
    assert [r["status"] for r in results] == [
        "found",
        "invalid",
        "not_found",
        "found",
        "invalid",
        "not_found",
        "found",
        "invalid",
    ]
    assert results[0]["profile"]["subject"]["credit_code"] == credit_code(4)
    assert results[6]["profile"]["subject"]["credit_code"] == credit_code(3)
    assert results[3]["profile"]["subject"]["id"] == person
    assert results[1]["error"]["field"] == "credit_code"
    assert "check character" in results[1]["error"]["reason"]
    assert results[1]["error"]["accepted"]
    assert results[4]["error"]["field"] == "document_number"
    assert results[7]["error"]["field"] == "document_number"


async def test_bulk_limits_and_purpose(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    too_many = [{"credit_code": credit_code(i)} for i in range(1001)]
    response = await client.post(
        "/v1/bureau/profiles/bulk", headers=bureau, json={"identifiers": too_many}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "identifiers"
    thousand = [{"credit_code": credit_code(i)} for i in range(1000)]
    response = await client.post(
        "/v1/bureau/profiles/bulk", headers=bureau, json={"identifiers": thousand}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 1000
    personal = [{"document_type": "resident_id", "document_number": resident_id(1)}]
    response = await client.post(
        "/v1/bureau/profiles/bulk", headers=bureau, json={"identifiers": personal}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "purpose"


async def test_purpose_is_required_and_checked(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    body = {"document_type": "resident_id", "document_number": resident_id(1)}
    missing = await client.post("/v1/bureau/profiles/lookup", headers=bureau, json=body)
    assert missing.status_code == 422
    problem = missing.json()
    assert problem["field"] == "purpose"
    assert "credit_assessment" in problem["accepted"]
    assert missing.headers["content-type"].startswith("application/problem+json")
    unknown = await client.post(
        "/v1/bureau/profiles/lookup", headers=bureau, json={**body, "purpose": "curiosity"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "purpose"


async def test_bad_credit_code_in_path_is_422_and_unknown_is_404(
    client: Client, bureau: dict[str, str]
) -> None:
    bad = await client.get("/v1/bureau/profiles/NOTACODE", headers=bureau)
    assert bad.status_code == 422
    assert bad.json()["field"] == "credit_code"
    unknown = await client.get(f"/v1/bureau/profiles/{credit_code(42)}", headers=bureau)
    assert unknown.status_code == 404


async def test_roles_and_revocation(
    client: Client, regulator: dict[str, str], admin: dict[str, str], db: asyncpg.Pool
) -> None:
    await organisation(client, regulator, 5)
    path = f"/v1/bureau/profiles/{credit_code(5)}"
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers=regulator)).status_code == 403
    feed = f"/v1/bureau/changes?purpose={PURPOSE}"
    assert (await client.get(feed, headers=regulator)).status_code == 403
    token = await issue(db, "bureau", "征信甲")
    assert (await client.get(path, headers=bearer(token))).status_code == 200
    token_id = await db.fetchval("SELECT id FROM api_tokens WHERE name = '征信甲'")
    revoked = await client.post(f"/v1/admin/tokens/{token_id}/revoke", headers=admin)
    assert revoked.status_code in (200, 201), revoked.text
    for method, url in (("GET", path), ("GET", feed)):
        answer = await client.request(method, url, headers=bearer(token))
        assert answer.status_code == 401, answer.text
    answer = await client.post(
        "/v1/bureau/profiles/lookup",
        headers=bearer(token),
        json={
            "document_type": "resident_id",
            "document_number": resident_id(1),
            "purpose": PURPOSE,
        },
    )
    assert answer.status_code == 401
    await assert_log_consistent(db)


async def test_bureau_files_an_objection_and_the_profile_shows_it(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    org = await organisation(client, regulator, 6)
    disputed = await record(client, regulator, penalty(org, "寧罰〔2026〕6號"))
    filed = await client.post(
        "/v1/objections",
        headers=bureau,
        json={"target_type": "credit_record", "target_id": disputed["id"], "grounds": "事實有誤"},
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["objection"]["filed_by"] == "bureau"
    body = (await client.get(f"/v1/bureau/profiles/{credit_code(6)}", headers=bureau)).json()
    [item] = body["records"]
    assert item["under_objection"] is True
    assert item["log_index"] == filed.json()["target_log_index"]
    await assert_log_consistent(db)


@pytest.fixture
async def limited_client(
    settings: Settings, database_url: str, clock: ManualClock
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    from registry.api.app import create_app

    app = create_app(
        settings,
        clock=clock,
        database_url=database_url,
        policy=Policy(bureau_rate_per_minute=3),
        configure_logs=False,
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_rate_limit_answers_429_with_retry_after(
    limited_client: Client, db: asyncpg.Pool
) -> None:
    """Three requests per minute per token: the fourth waits ~20 s; other tokens are unaffected."""
    first, second = bearer(await issue(db, "bureau", "a")), bearer(await issue(db, "bureau", "b"))
    path = f"/v1/bureau/profiles/{credit_code(1)}"
    for _ in range(3):
        assert (await limited_client.get(path, headers=first)).status_code == 404
    limited = await limited_client.get(path, headers=first)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 20
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.json()["status"] == 429
    assert (await limited_client.get(path, headers=second)).status_code == 404
