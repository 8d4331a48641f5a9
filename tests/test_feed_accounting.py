"""The change feed is a query about practitioners like any other: it needs a purpose, and
each page records one access per practitioner it discloses, durable before the page is
sent (503 and none of the page if it cannot be); organisations and deletes are not
recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from litestar import Litestar

from registry.bureau.feed import encode_cursor
from registry.clock import ManualClock
from registry.settings import Settings
from tests.bureau_helpers import (
    PURPOSE,
    day,
    listed_entry,
    lookup,
    organisation,
    practitioner,
    resident_id,
    wait_integrated,
)
from tests.conftest import bearer, issue
from tests.credit_helpers import Client, actions, log_size, penalty, record
from tests.logcheck import assert_log_consistent

FEED = "/v1/bureau/changes"


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    """Expiry every 50 ms, so a coming of age reaches the feed within the test."""
    return replace(base_settings, expiry_interval_ms=50)


async def _feed_rows(db: asyncpg.Pool) -> list[asyncpg.Record]:
    """The feed's access rows now: no waiting, a page sent means its rows are stored."""
    return list(await db.fetch("SELECT * FROM bureau_access WHERE channel = 'feed' ORDER BY id"))


async def _page(
    client: Client,
    bureau: dict[str, str],
    since: str | None = None,
    limit: int = 100,
    purpose: str = PURPOSE,
) -> Any:
    params: dict[str, Any] = {"limit": limit, "purpose": purpose}
    if since:
        params["since"] = since
    return await client.get(FEED, headers=bureau, params=params)


def _disclosed(page: dict[str, Any], practitioners: set[str]) -> Counter[str]:
    """The practitioners with an ``upsert`` in the page, each once: its expected rows."""
    return Counter(
        {i["subject_id"] for i in page["items"] if i["op"] == "upsert"} & practitioners
    )


async def test_the_feed_needs_a_known_purpose(
    client: Client,
    app: Litestar,
    regulator: dict[str, str],
    bureau: dict[str, str],
    db: asyncpg.Pool,
) -> None:
    """Missing, blank or unknown: a 422 problem naming ``purpose`` with the accepted list,
    on every page (also a page of organisations only, or an empty one), with none of the
    page and nothing recorded. The OpenAPI document says the parameter is required."""
    await organisation(client, regulator, 601)
    await practitioner(client, regulator, resident_id(601))
    await wait_integrated(db)
    size = await db.fetchval("SELECT size FROM tlog_head")
    accepted = app.state.services.policy.bureau_query_purposes
    for params in (
        {},
        {"purpose": ""},
        {"purpose": "  "},
        {"purpose": "curiosity"},
        {"purpose": PURPOSE.upper()},
        {"purpose": "curiosity", "since": encode_cursor(size)},
    ):
        response = await client.get(FEED, headers=bureau, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["field"] == "purpose"
        assert all(purpose in problem["accepted"] for purpose in accepted)
        assert "items" not in problem
        assert "李四" not in response.text
    assert await db.fetchval("SELECT count(*) FROM bureau_access") == 0

    doc = (await client.get("/schema/openapi.json")).json()
    parameters = doc["paths"][FEED]["get"]["parameters"]
    [purpose] = [p for p in parameters if p["name"] == "purpose"]
    assert (purpose["in"], purpose["required"]) == ("query", True)
    assert "503" in doc["paths"][FEED]["get"]["responses"]


async def test_each_page_records_each_practitioner_it_discloses_once(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """One ``feed`` row per adult practitioner with an upsert (their subject, affiliation,
    records) per page, stored when the 200 arrives, with the token, its name and the purpose
    given; none for organisations or a minor, whose items the feed leaves out."""
    token = await issue(db, "bureau", "征信丁")
    bureau = bearer(token)
    token_id = await db.fetchval("SELECT id FROM api_tokens WHERE name = '征信丁'")
    org = await organisation(client, regulator, 602)
    first = await practitioner(client, regulator, resident_id(602), org)
    second = await practitioner(client, regulator, resident_id(603))
    child = await practitioner(client, regulator, resident_id(604, born="20150505"), org)
    for n, sid in enumerate((org, first, first, child)):
        await record(client, regulator, penalty(sid, f"寧罰〔2026〕{602 + n}號"))
    await wait_integrated(db)
    people = {first, second}

    # All in one page: each person once, however many of their items it holds.
    response = await _page(client, bureau)
    assert response.status_code == 200, response.text
    page = response.json()
    assert not page["more"]
    assert sum(1 for i in page["items"] if i["subject_id"] == first) == 4
    rows = await _feed_rows(db)
    assert Counter(str(r["subject_id"]) for r in rows) == Counter(people)
    for row in rows:
        assert (row["role"], row["found"], row["purpose"]) == ("bureau", True, PURPOSE)
        assert (row["token_id"], row["token_name"]) == (token_id, "征信丁")
        assert (row["document_type"], row["document_lookup"]) == (None, None)

    # Page by page: each page records whom it discloses, before it is answered.
    cursor, pages, before = None, 0, len(rows)
    while True:
        response = await _page(client, bureau, cursor, limit=2, purpose="regulatory_cooperation")
        assert response.status_code == 200, response.text
        page = response.json()
        rows = await _feed_rows(db)
        new = rows[before:]
        assert Counter(str(r["subject_id"]) for r in new) == _disclosed(page, people), page
        assert {r["purpose"] for r in new} <= {"regulatory_cooperation"}
        before, cursor, pages = len(rows), page["next_cursor"], pages + 1
        if not page["more"]:
            break
    assert pages > 2
    recorded = {str(r["subject_id"]) for r in rows}
    assert recorded == people
    assert child not in recorded
    assert org not in recorded


async def test_pages_of_organisations_and_deletes_record_nothing(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """Organisations are not personal data, an empty poll discloses nothing, and a
    ``delete`` tells only an id the bureau already holds: no rows for those pages."""
    org = await organisation(client, regulator, 611)
    await record(client, regulator, penalty(org, "寧罰〔2026〕611號"))
    await wait_integrated(db)
    response = await _page(client, bureau)
    assert response.status_code == 200, response.text
    assert {i["subject_id"] for i in response.json()["items"]} == {org}
    cursor = response.json()["next_cursor"]
    again = await _page(client, bureau, cursor)
    assert again.json()["items"] == []
    assert await _feed_rows(db) == []

    person = await practitioner(client, regulator, resident_id(611))
    shown = await record(client, regulator, penalty(person, "寧罰〔2026〕612號"))
    await wait_integrated(db)
    response = await _page(client, bureau, cursor)
    assert response.status_code == 200, response.text
    assert [str(r["subject_id"]) for r in await _feed_rows(db)] == [person]
    cursor = response.json()["next_cursor"]

    revoked = await client.post(
        f"/v1/records/{shown['id']}/revoke",
        headers=regulator,
        json={"version": shown["version"], "reason": "復議撤銷"},
    )
    assert revoked.status_code == 200, revoked.text
    await wait_integrated(db)
    response = await _page(client, bureau, cursor)
    assert response.status_code == 200, response.text
    assert [(i["object_id"], i["op"]) for i in response.json()["items"]] == [
        (shown["id"], "delete")
    ]
    assert len(await _feed_rows(db)) == 1


async def test_a_page_whose_records_cannot_be_written_is_withheld(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """Fail closed: a 503 problem with Retry-After and none of the page, not even its
    organisations; the cursor is not spent, so the same page comes once storage works
    again. A page with no practitioner needs no record and is served meanwhile."""
    org = await organisation(client, regulator, 621)
    number = resident_id(621)
    person = await practitioner(client, regulator, number, org)
    await record(client, regulator, penalty(person, "寧罰〔2026〕621號"))
    await wait_integrated(db)
    # NOT VALID: existing rows stay, every new row (the recorder's COPY) is refused.
    refuse = "ALTER TABLE bureau_access ADD CONSTRAINT refuse_all CHECK (false) NOT VALID"
    await db.execute(refuse)

    withheld = await _page(client, bureau)
    assert withheld.status_code == 503, withheld.text
    assert withheld.headers["content-type"].startswith("application/problem+json")
    assert int(withheld.headers["retry-after"]) >= 1
    for secret in (person, org, "李四", number[:6], "寧罰", "items"):
        assert secret not in withheld.text
    assert await db.fetchval("SELECT count(*) FROM bureau_access") == 0

    await db.execute("ALTER TABLE bureau_access DROP CONSTRAINT refuse_all")
    served = await _page(client, bureau)
    assert served.status_code == 200, served.text
    assert person in served.text
    assert [str(r["subject_id"]) for r in await _feed_rows(db)] == [person]
    cursor = served.json()["next_cursor"]

    await db.execute(refuse)
    other = await organisation(client, regulator, 622)
    await wait_integrated(db)
    organisations = await _page(client, bureau, cursor)
    assert organisations.status_code == 200, organisations.text
    assert {i["subject_id"] for i in organisations.json()["items"]} == {other}
    cursor = organisations.json()["next_cursor"]

    await record(client, regulator, penalty(person, "寧罰〔2026〕622號"))
    await wait_integrated(db)
    withheld = await _page(client, bureau, cursor)
    assert withheld.status_code == 503, withheld.text
    assert person not in withheld.text
    await db.execute("ALTER TABLE bureau_access DROP CONSTRAINT refuse_all")
    served = await _page(client, bureau, cursor)
    assert served.status_code == 200, served.text
    assert [i["subject_id"] for i in served.json()["items"]] == [person]
    assert [str(r["subject_id"]) for r in await _feed_rows(db)] == [person, person]
    await assert_log_consistent(db)


async def test_the_person_sees_the_feed_reads_of_them(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """Their access records list each page that carried them, among their lookups, with
    the bureau's token, its name and the purpose; so does the token's listing."""
    token = await issue(db, "bureau", "征信戊")
    bureau = bearer(token)
    token_id = await db.fetchval("SELECT id FROM api_tokens WHERE name = '征信戊'")
    number = resident_id(631)
    person = await practitioner(client, regulator, number)
    assert (await lookup(client, bureau, number)).status_code == 200
    await wait_integrated(db)
    response = await _page(client, bureau, purpose="subject_consent")
    assert response.status_code == 200, response.text

    listed = await client.get(f"/v1/subjects/{person}/access-records", headers=regulator)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["channel"], i["purpose"], i["found"], i["subject_id"]) for i in items] == [
        ("lookup", PURPOSE, True, person),
        ("feed", "subject_consent", True, person),
    ]
    assert {(i["token_id"], i["token_name"], i["role"]) for i in items} == {
        (str(token_id), "征信戊", "bureau")
    }
    by_token = await client.get(
        "/v1/access-records", headers=regulator, params={"token_id": str(token_id)}
    )
    assert [i["id"] for i in by_token.json()["items"]] == [i["id"] for i in items]


async def test_coming_of_age_is_recorded_once_on_its_page(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    """While a minor, the person's leaves give no item and no row; the page announcing
    their whole profile on their 18th birthday records them once."""
    org = await organisation(client, regulator, 641)
    person = await practitioner(client, regulator, resident_id(641, born="20080320"), org)
    await record(client, regulator, penalty(person, "寧罰〔2026〕641號"))
    await listed_entry(client, regulator, clock, person, "寧罰〔2026〕642號")  # now 2026-03-13
    await wait_integrated(db)
    response = await _page(client, bureau)
    assert response.status_code == 200, response.text
    assert person not in response.text
    assert await _feed_rows(db) == []

    start = await log_size(db)
    clock.set(day("2026-03-20"))
    for _ in range(300):
        if await actions(db, start):
            break
        await asyncio.sleep(0.02)
    assert await actions(db, start) == ["subject.came_of_age"]
    await wait_integrated(db)
    response = await _page(client, bureau, response.json()["next_cursor"])
    assert response.status_code == 200, response.text
    assert len([i for i in response.json()["items"] if i["subject_id"] == person]) == 5
    assert [r["subject_id"] for r in await _feed_rows(db)] == [uuid.UUID(person)]
