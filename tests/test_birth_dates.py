"""Minors are protected whatever the document type: a number that carries no birth date
(passport, permits, other) is registered with one, and that birth date decides."""

from __future__ import annotations

from typing import Any

import asyncpg

from registry.clock import ManualClock
from tests.bureau_helpers import PURPOSE, day, read_feed, wait_integrated
from tests.credit_helpers import Client, penalty, record

PASSPORT = "E12345678"


async def passport_holder(client: Client, regulator: dict[str, str], number: str,
                          born: str | None) -> Any:
    body: dict[str, Any] = {"kind": "practitioner", "name": "陳小明", "document_type": "passport",
                            "document_number": number}
    if born is not None:
        body["birth_date"] = born
    return await client.post("/v1/subjects", headers=regulator, json=body)


async def passport_lookup(client: Client, bureau: dict[str, str], number: str) -> Any:
    return await client.post("/v1/bureau/profiles/lookup", headers=bureau, json={
        "document_type": "passport", "document_number": number, "purpose": PURPOSE})


async def test_a_number_without_a_birth_date_needs_one(client: Client,
                                                       regulator: dict[str, str]) -> None:
    missing = await passport_holder(client, regulator, PASSPORT, None)
    assert missing.status_code == 422 and missing.json()["field"] == "birth_date"
    future = await passport_holder(client, regulator, PASSPORT, "2030-01-01")
    assert future.status_code == 422 and future.json()["field"] == "birth_date"
    differs = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "practitioner", "name": "李四", "document_type": "resident_id",
        "document_number": "630102199003071231", "birth_date": "1991-01-01"})
    assert differs.status_code == 422 and "differs" in differs.json()["detail"]
    same = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "practitioner", "name": "李四", "document_type": "resident_id",
        "document_number": "630102199003071231", "birth_date": "1990-03-07"})
    assert same.status_code == 201, same.text


async def test_a_minor_with_a_passport_is_disclosed_to_nobody(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool,
    clock: ManualClock,
) -> None:
    child = await passport_holder(client, regulator, PASSPORT, "2012-05-05")
    assert child.status_code == 201, child.text
    sid = child.json()["id"]
    assert child.json()["birth_date"] == "2012-05-05"  # to the regulator who sent it
    blob = bytes(await db.fetchval("SELECT birth_date_cipher FROM subjects WHERE id = $1",
                                   child.json()["id"]))
    assert b"2012" not in blob  # encrypted at rest
    rec = await record(client, regulator, penalty(sid))
    assert (await passport_lookup(client, bureau, PASSPORT)).status_code == 404
    await wait_integrated(db)
    items, _ = await read_feed(client, bureau)
    assert sid not in str(items) and rec["id"] not in str(items)
    public = await client.get("/public/feed.json")
    assert rec["id"] not in public.text and "陳小明" not in public.text
    # Of age on 2030-05-05: disclosed from then on.
    clock.set(day("2030-05-05"))
    found = await passport_lookup(client, bureau, PASSPORT)
    assert found.status_code == 200, found.text
    assert found.json()["subject"]["document_number"] != PASSPORT  # masked


async def test_a_corrected_birth_date_moves_the_line(
    client: Client, regulator: dict[str, str], bureau: dict[str, str],
) -> None:
    adult = await passport_holder(client, regulator, PASSPORT, "1990-01-01")
    assert adult.status_code == 201, adult.text
    assert (await passport_lookup(client, bureau, PASSPORT)).status_code == 200
    corrected = await client.patch(f"/v1/subjects/{adult.json()['id']}", headers=regulator,
                                   json={"version": 1, "birth_date": "2013-01-01"})
    assert corrected.status_code == 200, corrected.text
    assert (await passport_lookup(client, bureau, PASSPORT)).status_code == 404
    # A new document without a date keeps the one known.
    moved = await client.patch(f"/v1/subjects/{adult.json()['id']}", headers=regulator,
                               json={"version": 2, "document_type": "passport",
                                     "document_number": "E87654321"})
    assert moved.status_code == 200, moved.text
    assert (await passport_lookup(client, bureau, "E87654321")).status_code == 404
