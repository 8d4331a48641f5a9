"""Shared helpers of the bureau tests: identifiers, subjects, listing, replaying the feed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg

from registry.clock import ManualClock
from registry.identifiers import resident_id_check_character, uscc_check_character
from tests.credit_helpers import Client, penalty, record

PURPOSE = "credit_assessment"


def day(text: str) -> datetime:
    """02:00 UTC: 10:00 in Xining on that calendar day."""
    return datetime.fromisoformat(text).replace(hour=2, tzinfo=UTC)


def credit_code(n: int) -> str:
    first = f"9163010{n:010d}"
    return first + uscc_check_character(first)


def resident_id(n: int, born: str = "19900307") -> str:
    first = f"630102{born}{n % 1000:03d}"
    return first + resident_id_check_character(first)


async def organisation(client: Client, headers: dict[str, str], n: int) -> str:
    response = await client.post(
        "/v1/subjects",
        headers=headers,
        json={"kind": "vc_firm", "name": f"西寧創投{n}有限公司", "credit_code": credit_code(n)},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def practitioner(
    client: Client, headers: dict[str, str], number: str, org: str | None = None
) -> str:
    body: dict[str, Any] = {
        "kind": "practitioner",
        "name": "李四",
        "document_type": "resident_id",
        "document_number": number,
    }
    if org is not None:
        body["affiliations"] = [
            {"organisation_id": org, "role": "投資經理", "valid_from": "2024-01-01"}
        ]
    response = await client.post("/v1/subjects", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def listed_entry(
    client: Client, regulator: dict[str, str], clock: ManualClock, sid: str, number: str
) -> str:
    """A listed blacklist entry of ``sid``: notified today, listed 11 days later (clock moved)."""
    serious = await record(client, regulator, penalty(sid, number, grade="serious"))
    proposed = await client.post(
        "/v1/blacklist",
        headers=regulator,
        json={
            "subject_id": sid,
            "criterion": "拒不履行行政處罰決定",
            "legal_basis": "國辦發〔2020〕49號",
            "record_ids": [serious["id"]],
        },
    )
    assert proposed.status_code == 201, proposed.text
    eid = proposed.json()["id"]
    notified = await client.post(
        f"/v1/blacklist/{eid}/notify",
        headers=regulator,
        json={"channel": "registered_mail"},
    )
    assert notified.status_code == 200, notified.text
    clock.advance(days=11)
    listed = await client.post(f"/v1/blacklist/{eid}/list", json={}, headers=regulator)
    assert listed.status_code == 200, listed.text
    return str(eid)


async def lookup(client: Client, bureau: dict[str, str], number: str) -> Any:
    return await client.post(
        "/v1/bureau/profiles/lookup",
        headers=bureau,
        json={"document_type": "resident_id", "document_number": number, "purpose": PURPOSE},
    )


async def wait_integrated(db: asyncpg.Pool) -> None:
    """Until every committed leaf is in the signed tree (the feed serves only those)."""
    for _ in range(500):
        size = await db.fetchval("SELECT size FROM tlog_head")
        if size == await db.fetchval("SELECT count(*) FROM tlog_leaves"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the integrator did not catch up")


async def read_feed(
    client: Client, bureau: dict[str, str], since: str | None = None, limit: int = 7
) -> tuple[list[dict[str, Any]], str]:
    """Every item from ``since`` to the served head, page by page; and the last cursor."""
    items: list[dict[str, Any]] = []
    cursor = since
    while True:
        params: dict[str, Any] = {"limit": limit, "purpose": PURPOSE}
        if cursor:
            params["since"] = cursor
        response = await client.get("/v1/bureau/changes", headers=bureau, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not page["more"]:
            return items, cursor


def replay(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Apply the feed to an empty copy: subject id -> profile-shaped dict."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        key = (item["object_type"], item["object_id"])
        if item["op"] == "delete":
            objects.pop(key, None)
        else:
            objects[key] = item
    out: dict[str, dict[str, Any]] = {}
    for (object_type, _), item in sorted(objects.items()):
        sid = item["subject_id"]
        profile = out.setdefault(
            sid, {"subject": None, "affiliations": [], "records": [], "listings": []}
        )
        if object_type == "subject":
            profile["subject"] = item["subject"]
        elif object_type == "affiliation":
            profile["affiliations"].append(item["affiliation"])
        elif object_type == "credit_record":
            profile["records"].append(item["record"])
        else:
            profile["listings"].append(item["listing"])
    return out


def normalised(profile: dict[str, Any]) -> dict[str, Any]:
    """Lists sorted by id, so a replayed copy and a profile compare regardless of order."""
    return {
        key: sorted(value, key=lambda v: v["id"]) if isinstance(value, list) else value
        for key, value in profile.items()
    }
