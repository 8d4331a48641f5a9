"""Accounting of bureau lookups: every personal query recorded (who, when, whom, why),
batched, flushed on shutdown, and listed for regulators."""

from __future__ import annotations

import asyncio

import asyncpg
from litestar.testing import AsyncTestClient

from registry.clock import ManualClock
from registry.settings import Settings
from tests.bureau_helpers import (
    PURPOSE,
    credit_code,
    lookup,
    organisation,
    practitioner,
    resident_id,
)
from tests.conftest import bearer, issue
from tests.credit_helpers import Client
from tests.logcheck import assert_log_consistent


async def _count(db: asyncpg.Pool, expected: int) -> int:
    """The number of access rows once the recorder's ~100 ms flush reached ``expected``."""
    count = 0
    for _ in range(300):
        count = await db.fetchval("SELECT count(*) FROM bureau_access")
        if count >= expected:
            return int(count)
        await asyncio.sleep(0.01)
    return int(count)


async def test_each_personal_lookup_is_recorded_and_listed_for_regulators(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    token = await issue(db, "bureau", "征信乙")
    bureau = bearer(token)
    token_id = await db.fetchval("SELECT id FROM api_tokens WHERE name = '征信乙'")
    await organisation(client, regulator, 21)
    first, second = resident_id(201), resident_id(202)
    p1 = await practitioner(client, regulator, first)
    p2 = await practitioner(client, regulator, second)

    assert (await lookup(client, bureau, first)).status_code == 200
    bulk = await client.post(
        "/v1/bureau/profiles/bulk",
        headers=bureau,
        json={
            "purpose": "investment_due_diligence",
            "identifiers": [
                {"credit_code": credit_code(21)},
                {"document_type": "resident_id", "document_number": first},
                {"document_type": "resident_id", "document_number": second},
                {"document_type": "resident_id", "document_number": resident_id(203)},
            ],
        },
    )
    assert bulk.status_code == 200
    # An organisation's profile touches no practitioner: not recorded.
    assert (
        await client.get(f"/v1/bureau/profiles/{credit_code(21)}", headers=bureau)
    ).status_code == 200
    assert await _count(db, 3) == 3

    listed = await client.get(
        "/v1/access-records", headers=regulator, params={"token_id": str(token_id)}
    )
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["subject_id"], i["purpose"], i["channel"]) for i in items] == [
        (p1, PURPOSE, "lookup"),
        (p1, "investment_due_diligence", "bulk"),
        (p2, "investment_due_diligence", "bulk"),
    ]
    assert {i["token_name"] for i in items} == {"征信乙"}
    assert all(i["at"].startswith("2026-03-02T02:00:00") for i in items)

    who = await client.get(f"/v1/subjects/{p1}/access-records", headers=regulator)
    assert [(i["token_id"], i["channel"]) for i in who.json()["items"]] == [
        (str(token_id), "lookup"),
        (str(token_id), "bulk"),
    ]
    page1 = await client.get("/v1/access-records", headers=regulator, params={"limit": 2})
    assert len(page1.json()["items"]) == 2
    assert page1.json()["next_cursor"]
    page2 = await client.get(
        "/v1/access-records",
        headers=regulator,
        params={"limit": 2, "cursor": page1.json()["next_cursor"]},
    )
    assert [i["id"] for i in page2.json()["items"]] == [items[2]["id"]]
    assert page2.json()["next_cursor"] is None
    bad = await client.get("/v1/access-records", headers=regulator, params={"cursor": "x!"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"

    assert (await client.get("/v1/access-records", headers=bureau)).status_code == 403
    missing = await client.get(
        "/v1/subjects/00000000-0000-0000-0000-000000000000/access-records", headers=regulator
    )
    assert missing.status_code == 404
    await assert_log_consistent(db)


async def test_200_concurrent_lookups_are_all_recorded(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    numbers = [resident_id(300 + i) for i in range(4)]
    for number in numbers:
        await practitioner(client, regulator, number)
    answers = await asyncio.gather(*(lookup(client, bureau, numbers[i % 4]) for i in range(200)))
    assert {a.status_code for a in answers} == {200}
    assert await _count(db, 200) == 200
    per_subject = await db.fetch("SELECT subject_id, count(*) FROM bureau_access GROUP BY 1")
    assert sorted(r["count"] for r in per_subject) == [50, 50, 50, 50]


async def test_buffered_records_are_flushed_on_clean_shutdown(
    settings: Settings, database_url: str, clock: ManualClock, db: asyncpg.Pool
) -> None:
    from registry.api.app import create_app

    app = create_app(settings, clock=clock, database_url=database_url, configure_logs=False)
    async with AsyncTestClient(app=app) as client:
        regulator = bearer(await issue(db, "regulator"))
        bureau = bearer(await issue(db, "bureau"))
        number = resident_id(400)
        await practitioner(client, regulator, number)
        answers = await asyncio.gather(*(lookup(client, bureau, number) for _ in range(30)))
        assert {a.status_code for a in answers} == {200}
    # The app is stopped: whatever was still buffered was written on the way out.
    assert await db.fetchval("SELECT count(*) FROM bureau_access") == 30


async def test_a_write_in_flight_at_shutdown_is_not_written_twice(db: asyncpg.Pool) -> None:
    """Stopping while a batch is being written: the batch lands once, the rest after it.

    The write commits and then is slow to return (as a COPY whose answer is still on
    its way): cancelling it there and keeping its rows wrote them twice."""
    from registry.db.batches import BatchWriter

    await db.execute("CREATE TABLE batch_probe (n int)")
    committed = asyncio.Event()

    async def write(conn: asyncpg.Connection, rows: list[tuple[int]]) -> None:
        await conn.executemany("INSERT INTO batch_probe VALUES ($1)", rows)
        committed.set()
        await asyncio.sleep(0.3)

    writer = BatchWriter(db, write, name="probe", keep_failed=True, interval=0.01)
    writer.start()
    for n in range(5):
        writer.add((n,))
    await asyncio.wait_for(committed.wait(), 5)
    writer.add((5,))  # arrives while the first batch is in flight
    await writer.stop()
    written = await db.fetch("SELECT n FROM batch_probe ORDER BY n")
    assert [r["n"] for r in written] == [0, 1, 2, 3, 4, 5]
    assert writer.written == 6
