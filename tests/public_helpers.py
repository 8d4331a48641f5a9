"""Seeding for the public-disclosure tests: subjects, penalties and a listing via the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.clock import ManualClock
from registry.identifiers import resident_id_check_character
from tests.credit_helpers import penalty

Client = AsyncTestClient[Litestar]
ADULT_ID = "630102199003071231"
ADULT_MASKED = "630102********1231"
MINOR_FIRST17 = "63010220100615123"
MINOR_ID = MINOR_FIRST17 + resident_id_check_character(MINOR_FIRST17)
MINOR_NAME = "未成年張小明"
FIRM_NAME = "西寧<b>創新</b>投資有限公司"
PERSON_NAME = "李四"


def at(day: str) -> datetime:
    """02:00 UTC of ``day``: 10:00 the same day in Xining."""
    return datetime.fromisoformat(day).replace(hour=2, tzinfo=UTC)


async def _subject(client: Client, headers: dict[str, str], body: dict[str, Any]) -> str:
    response = await client.post("/v1/subjects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def firm(client: Client, headers: dict[str, str], code: str = "91630100MA752LKX1M",
               name: str = FIRM_NAME) -> str:
    return await _subject(client, headers, {"kind": "vc_firm", "name": name, "credit_code": code,
                                            "legal_representative": "王五"})


async def person(client: Client, headers: dict[str, str], number: str = ADULT_ID,
                 name: str = PERSON_NAME) -> str:
    return await _subject(client, headers, {"kind": "practitioner", "name": name,
                                            "document_type": "resident_id",
                                            "document_number": number})


async def record(client: Client, headers: dict[str, str], subject_id: str, number: str,
                 **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/records", json=penalty(subject_id, number, **overrides),
                                 headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def listing(client: Client, headers: dict[str, str], clock: ManualClock,
                  subject_id: str) -> dict[str, Any]:
    """A serious penalty, then propose, notify, wait out the objection window and list."""
    serious = await record(client, headers, subject_id, "寧發改罰〔2026〕99號", grade="serious")
    proposed = await client.post("/v1/blacklist", headers=headers, json={
        "subject_id": subject_id, "criterion": "拒不履行行政處罰決定",
        "legal_basis": "國辦發〔2020〕49號", "record_ids": [serious["id"]]})
    assert proposed.status_code == 201, proposed.text
    eid = proposed.json()["id"]
    notified = await client.post(f"/v1/blacklist/{eid}/notify", headers=headers,
                                 json={"channel": "registered_mail"})
    assert notified.status_code == 200, notified.text
    clock.advance(days=11)
    listed = await client.post(f"/v1/blacklist/{eid}/list", json={}, headers=headers)
    assert listed.status_code == 200, listed.text
    data: dict[str, Any] = listed.json()
    return data


async def surfaces(client: Client) -> dict[str, str]:
    """Every public surface's body as text, for searching."""
    paths = ["/public/feed.json", "/public/feed.atom", "/public/", "/public/penalties",
             "/public/blacklist", "/public/exports/penalties.csv",
             "/public/exports/penalties.json", "/public/exports/blacklist.csv",
             "/public/exports/blacklist.json"]
    out: dict[str, str] = {}
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        out[path] = response.content.decode("utf-8")
    return out
