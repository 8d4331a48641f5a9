"""Accounting of bureau lookups: every personal query recorded (who, when, whom, why),
durable before the answer is sent (503 and no data if it cannot be), batched, flushed on
shutdown, and listed for regulators."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.clock import ManualClock
from registry.db.types import Conn
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


async def _count(db: asyncpg.Pool) -> int:
    """The number of access rows now: no waiting, an answer sent means its row is stored."""
    return int(await db.fetchval("SELECT count(*) FROM bureau_access"))


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
    assert await _count(db) == 4

    listed = await client.get(
        "/v1/access-records", headers=regulator, params={"token_id": str(token_id)}
    )
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["subject_id"], i["found"], i["purpose"], i["channel"]) for i in items] == [
        (p1, True, PURPOSE, "lookup"),
        (p1, True, "investment_due_diligence", "bulk"),
        (p2, True, "investment_due_diligence", "bulk"),
        # The number nobody holds: recorded too, naming the document type only.
        (None, False, "investment_due_diligence", "bulk"),
    ]
    assert [i["document_type"] for i in items] == [None, None, None, "resident_id"]
    assert {i["token_name"] for i in items} == {"征信乙"}
    assert {i["role"] for i in items} == {"bureau"}
    assert {i["authority_code"] for i in items} == {None}
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
        params={"limit": 3, "cursor": page1.json()["next_cursor"]},
    )
    assert [i["id"] for i in page2.json()["items"]] == [items[2]["id"], items[3]["id"]]
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
    assert await _count(db) == 200
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

    async def write(conn: Conn, rows: list[tuple[Any, ...]]) -> None:
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


async def test_an_answer_is_sent_only_after_its_record_is_stored(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """No waiting for a flush tick: when the 200 arrives the row is already committed."""
    number = resident_id(410)
    person = await practitioner(client, regulator, number)
    assert (await lookup(client, bureau, number)).status_code == 200
    rows = await db.fetch("SELECT subject_id, found, channel FROM bureau_access")
    assert [tuple(r) for r in rows] == [(uuid.UUID(person), True, "lookup")]
    bulk = await client.post(
        "/v1/bureau/profiles/bulk",
        headers=bureau,
        json={
            "purpose": PURPOSE,
            "identifiers": [{"document_type": "resident_id", "document_number": number}] * 3,
        },
    )
    assert bulk.status_code == 200
    assert await _count(db) == 4


async def _break_accounting(db: asyncpg.Pool) -> None:
    # NOT VALID: existing rows stay, every new row (the recorder's COPY) is refused.
    await db.execute("ALTER TABLE bureau_access ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")


def _assert_withheld(response: Any, *secrets: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 503
    for secret in secrets:
        assert secret not in response.text


async def test_a_record_that_cannot_be_written_withholds_the_answer(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """Fail closed: if the access row cannot be stored the answer is a 503 problem with
    Retry-After and none of the data; once storage works again, so do the answers, and
    the refused ones left no rows."""
    org = await organisation(client, regulator, 22)
    number = resident_id(411)
    person = await practitioner(client, regulator, number, org)
    await _break_accounting(db)
    masked = number[:6]  # the start of the masked number every profile carries

    _assert_withheld(await lookup(client, bureau, number), person, "李四", masked)
    bulk = await client.post(
        "/v1/bureau/profiles/bulk",
        headers=bureau,
        json={
            "purpose": PURPOSE,
            "identifiers": [
                {"credit_code": credit_code(22)},
                {"document_type": "resident_id", "document_number": number},
            ],
        },
    )
    _assert_withheld(bulk, person, "李四", masked, credit_code(22))
    # A number nobody holds: the 404 says as much about the person as a profile would.
    _assert_withheld(await lookup(client, bureau, resident_id(412)))
    # Regulators' clear reads fail closed the same way.
    _assert_withheld(await client.get(f"/v1/subjects/{person}", headers=regulator), number)
    found = await client.post(
        "/v1/subjects/lookup",
        headers=regulator,
        json={"document_type": "resident_id", "document_number": number},
    )
    _assert_withheld(found, person, "李四")
    # Organisations are not personal data: their profiles do not depend on the accounting.
    assert (
        await client.get(f"/v1/bureau/profiles/{credit_code(22)}", headers=bureau)
    ).status_code == 200

    await db.execute("ALTER TABLE bureau_access DROP CONSTRAINT refuse_all")
    assert (await lookup(client, bureau, number)).status_code == 200
    assert (await client.get(f"/v1/subjects/{person}", headers=regulator)).status_code == 200
    rows = await db.fetch("SELECT channel FROM bureau_access ORDER BY id")
    assert [r["channel"] for r in rows] == ["lookup", "regulator_read"]


async def test_a_record_that_takes_too_long_withholds_the_answer(
    app: Litestar,
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    db: asyncpg.Pool,
) -> None:
    """The wait for the row is bounded: 503 when it runs out. A row already being
    written when its answer gave up may still land (a record of an answer refused: the
    safe side); one still queued is withdrawn."""
    from registry.bureau.runtime import bureau_runtime

    bureau_runtime(app.state.services).recorder.wait = 0.3
    number = resident_id(413)
    await practitioner(client, regulator, number)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE bureau_access IN ACCESS EXCLUSIVE MODE")
        first = asyncio.ensure_future(lookup(client, bureau, number))  # its COPY waits
        await asyncio.sleep(0.1)
        second = await lookup(client, bureau, number)  # queued behind it, then gives up
        _assert_withheld(await first, "李四")
        _assert_withheld(second, "李四")
    assert (await lookup(client, bureau, number)).status_code == 200
    # The first (in flight when it gave up) and the last; not the second.
    assert await _count(db) == 2


async def test_waiters_are_written_together_without_waiting_for_the_tick(
    db: asyncpg.Pool,
) -> None:
    """Group commit: a durable row is written at once when the writer is idle, rows
    arriving during a write go in the next one, started as soon as it ends; a failed
    write fails every waiter of its batch; a withdrawn row is never written."""
    from registry.db.batches import BatchError, BatchWriter

    await db.execute("CREATE TABLE batch_probe (n int CHECK (n >= 0))")
    writes: list[list[int]] = []
    release = asyncio.Event()

    async def write(conn: Conn, rows: list[tuple[Any, ...]]) -> None:
        writes.append([r[0] for r in rows])
        await release.wait()
        await conn.executemany("INSERT INTO batch_probe VALUES ($1)", rows)

    # A tick far beyond the test's patience: only the wake-ups can write in time.
    writer = BatchWriter(db, write, name="probe", keep_failed=False, interval=60)
    writer.start()
    try:
        first = writer.add_durable([(0,)])
        await asyncio.sleep(0.05)  # the writer took it and is writing
        second = writer.add_durable([(1,), (2,)])
        third = writer.add_durable([(3,)])
        withdrawn = writer.add_durable([(4,)])
        withdrawn.cancel()
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second, third), 5)
        assert writes == [[0], [1, 2, 3]]
        assert [r["n"] for r in await db.fetch("SELECT n FROM batch_probe ORDER BY n")] == [
            0,
            1,
            2,
            3,
        ]
        failing = [writer.add_durable([(5,)]), writer.add_durable([(-1,)])]
        results = await asyncio.wait_for(asyncio.gather(*failing, return_exceptions=True), 5)
        assert all(isinstance(r, BatchError) for r in results)
        assert await db.fetchval("SELECT count(*) FROM batch_probe") == 4
    finally:
        await writer.stop()
    refused = writer.add_durable([(6,)])
    with pytest.raises(BatchError):
        await refused
