"""Idempotency-Key: the answer commits with the write, refusals use up nothing, keys are the
token's own, and concurrent duplicates never write twice (registry/credit/idempotency.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

import registry.credit.idempotency as idempotency
from registry.bootstrap import close_services, open_services
from registry.clock import ManualClock, SystemClock
from registry.db.types import Conn
from registry.errors import Conflict, InvalidInput
from registry.services import Services
from registry.settings import Settings
from registry.tokens import issue_token
from tests.conftest import OTHER_AUTHORITY, bearer, issue
from tests.credit_helpers import Client, actions, log_size, penalty, subject
from tests.logcheck import assert_log_consistent


class Injected(Exception):
    """A failure injected by a test."""


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def unnamed(body: dict[str, Any]) -> dict[str, Any]:
    """A record body without the authority (filled in from the token)."""
    return {k: v for k, v in body.items() if k not in ("authority_code", "authority_name")}


async def keys(db: asyncpg.Pool) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM idempotency_keys")
    return count


async def test_a_refused_request_leaves_the_key_free(client: Client, regulator: dict[str, str],
                                                     db: asyncpg.Pool) -> None:
    """422, 403 and 409 with a key, then the corrected request with the same key: it runs."""
    sid = await subject(client, regulator)
    start = await log_size(db)
    headers = keyed(regulator, "retry-me")
    future = await client.post("/v1/records", headers=headers,
                               json=penalty(sid, decision_date="2027-01-01"))
    assert future.status_code == 422 and future.json()["field"] == "decision_date"
    foreign = await client.post("/v1/records", headers=headers,
                                json=penalty(sid, authority_code="11630100MB7654321F"))
    assert foreign.status_code == 403
    assert await keys(db) == 0
    fixed = await client.post("/v1/records", headers=headers, json=penalty(sid))
    assert fixed.status_code == 201, fixed.text
    assert "Idempotent-Replayed" not in fixed.headers

    # A conflict is a refusal too: the number is taken, the next one is not.
    other = keyed(regulator, "second")
    taken = await client.post("/v1/records", headers=other, json=penalty(sid))
    assert taken.status_code == 409 and taken.json()["field"] == "decision_number"
    free = await client.post("/v1/records", headers=other, json=penalty(sid, "寧發改罰〔2026〕2號"))
    assert free.status_code == 201, free.text
    assert await actions(db, start) == ["record.create", "record.create"]
    assert await keys(db) == 2
    await assert_log_consistent(db)


async def test_a_replay_is_the_first_answer(client: Client, regulator: dict[str, str],
                                            db: asyncpg.Pool) -> None:
    """Same key and body: the same bytes, marked replayed; another body: 422."""
    sid = await subject(client, regulator)
    start = await log_size(db)
    headers = keyed(regulator, "once")
    first = await client.post("/v1/records", headers=headers, json=penalty(sid))
    again = await client.post("/v1/records", headers=headers, json=penalty(sid))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    body = first.json()
    assert body["receipt"]["log_index"] == body["log_index"] == start
    changed = await client.post("/v1/records", headers=headers, json=penalty(sid, facts="另一事實"))
    assert changed.status_code == 422
    assert changed.json()["field"] == "Idempotency-Key"
    assert await actions(db, start) == ["record.create"]
    row = await db.fetchrow("SELECT status, receipt_index, through_index, checkpoint"
                            " FROM idempotency_keys")
    assert row is not None
    assert (row["status"], row["receipt_index"], row["through_index"]) == (201, start, start)
    assert row["checkpoint"] == body["receipt"]["checkpoint"]


async def test_keys_belong_to_their_token(client: Client, regulator: dict[str, str],
                                          db: asyncpg.Pool) -> None:
    """One key from two tokens is two requests: each is written, neither is a replay of
    the other's nor refused as 'another request'."""
    sid = await subject(client, regulator)
    colleague = bearer(await issue(db, "regulator"))  # the same authority
    elsewhere = bearer(await issue(db, "regulator", authority=OTHER_AUTHORITY[0]))
    start = await log_size(db)
    mine = await client.post("/v1/records", headers=keyed(regulator, "shared"),
                             json=unnamed(penalty(sid)))
    # Another body under the same key: not "already used for a different request".
    theirs = await client.post("/v1/records", headers=keyed(colleague, "shared"),
                               json=unnamed(penalty(sid, "寧發改罰〔2026〕2號")))
    # The very same body under the same key: not a replay of the first token's answer.
    same = await client.post("/v1/records", headers=keyed(elsewhere, "shared"),
                             json=unnamed(penalty(sid)))
    for answer in (mine, theirs, same):
        assert answer.status_code == 201, answer.text
        assert "Idempotent-Replayed" not in answer.headers
    assert len({mine.json()["id"], theirs.json()["id"], same.json()["id"]}) == 3
    assert same.json()["authority_code"] == OTHER_AUTHORITY[0]
    assert await actions(db, start) == ["record.create"] * 3
    assert await db.fetchval("SELECT count(DISTINCT token_id) FROM idempotency_keys") == 3


# Concurrency is tested on ``run_once`` itself, in the test's own event loop: the test
# client hands requests to the app one at a time, so through it nothing would overlap.


@pytest.fixture
async def services(settings: Settings, clock: ManualClock,
                   database_url: str) -> AsyncIterator[Services]:
    opened = await open_services(settings, clock=clock, url=database_url)
    yield opened
    await close_services(opened)


def token_work(services: Services, calls: list[int], *, hold: float = 0.0,
               refuse_first: bool = False) -> idempotency.Work:
    """A write (a token issue, joined to run_once's transaction without ``conn=``) that
    counts its runs, can stay in the transaction ``hold`` seconds after writing, or
    refuse its first run after that wait."""

    async def work(conn: Conn) -> idempotency.Answer:
        calls.append(len(calls))
        if refuse_first and len(calls) == 1:
            await asyncio.sleep(hold)
            raise InvalidInput("name", "refused by the test")
        _, written = await issue_token(services.pool, SystemClock(), role="bureau",
                                       name=f"idem {uuid.uuid4().hex[:8]}", actor="admin:test")
        await asyncio.sleep(0 if refuse_first else hold)  # written, not committed
        body = msgspec.json.encode({"id": str(written.row["id"]), "receipt": None})
        return idempotency.Answer(201, body, log_index=written.log_index)

    return work


async def test_concurrent_duplicates_write_once(services: Services, db: asyncpg.Pool) -> None:
    """Five requests with one key at once: the first writes and holds its transaction, the
    others wait on the key, then replay its answer. One write, one leaf, one answer."""
    token_id = uuid.uuid4()
    start = await log_size(db)
    calls: list[int] = []
    work = token_work(services, calls, hold=0.5)
    began = time.monotonic()
    sent = await asyncio.gather(*(
        idempotency.run_once(services, token_id, "racing", b"same", work) for _ in range(5)))
    assert time.monotonic() - began >= 0.5  # they really overlapped the first one
    assert calls == [0]
    assert [s.status for s in sent] == [201] * 5
    assert len({s.body for s in sent}) == 1
    assert sorted(s.replayed for s in sent) == [False, True, True, True, True]
    assert await actions(db, start) == ["token.issue"]
    assert await keys(db) == 1
    await assert_log_consistent(db)


async def test_a_waiting_duplicate_runs_when_the_first_is_refused(
    services: Services, db: asyncpg.Pool
) -> None:
    """The first request is refused inside its transaction while the second waits on the
    key: the rollback frees the key and the second writes (a first answer, not a replay)."""
    token_id = uuid.uuid4()
    calls: list[int] = []
    work = token_work(services, calls, hold=0.5, refuse_first=True)
    first, second = await asyncio.gather(
        idempotency.run_once(services, token_id, "first-fails", b"same", work),
        idempotency.run_once(services, token_id, "first-fails", b"same", work),
        return_exceptions=True,
    )
    outcomes = sorted([first, second], key=lambda r: isinstance(r, idempotency.Sent))
    assert isinstance(outcomes[0], InvalidInput)
    assert isinstance(outcomes[1], idempotency.Sent) and not outcomes[1].replayed
    assert calls == [0, 1]
    assert await keys(db) == 1


async def test_a_duplicate_waits_a_bounded_time(services: Services, db: asyncpg.Pool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """While the first request holds the key longer than the wait, the second gets 409
    (retry shortly); once the first committed, the retry replays it."""
    monkeypatch.setattr(idempotency, "_KEY_WAIT", "100ms")
    token_id = uuid.uuid4()
    start = await log_size(db)
    calls: list[int] = []
    work = token_work(services, calls, hold=1.0)
    first = asyncio.ensure_future(
        idempotency.run_once(services, token_id, "patience", b"same", work))
    await asyncio.sleep(0.3)
    with pytest.raises(Conflict) as refused:
        await idempotency.run_once(services, token_id, "patience", b"same", work)
    assert refused.value.extra["field"] == "Idempotency-Key"
    assert not (await first).replayed
    later = await idempotency.run_once(services, token_id, "patience", b"same", work)
    assert later.replayed
    assert calls == [0]
    assert await actions(db, start) == ["token.issue"]


async def test_a_crash_inside_the_transaction_claims_no_key(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed after the record was written, before the commit: no record, no leaf, no key;
    the retry with the same key is a first request."""
    sid = await subject(client, regulator)
    start = await log_size(db)

    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise Injected("after the record, before the commit")

    # Runs after the work wrote the record and its leaf, before the answer is stored.
    monkeypatch.setattr(idempotency, "last_leaf", crash)
    headers = keyed(regulator, "crash")
    failed = await client.post("/v1/records", headers=headers, json=penalty(sid))
    assert failed.status_code == 500
    assert await keys(db) == 0
    assert await db.fetchval("SELECT count(*) FROM credit_records") == 0
    assert await log_size(db) == start
    monkeypatch.undo()
    retried = await client.post("/v1/records", headers=headers, json=penalty(sid))
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.json()["log_index"] == start
    await assert_log_consistent(db)


async def test_a_crash_before_the_checkpoint_was_kept_is_repaired_by_the_replay(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """Committed with its answer, died before the checkpoint was stored: the replay gets a
    receipt for the same leaf and keeps it for the replays after it."""
    sid = await subject(client, regulator)
    headers = keyed(regulator, "late-receipt")
    first = await client.post("/v1/records", headers=headers, json=penalty(sid))
    assert first.status_code == 201
    await db.execute("UPDATE idempotency_keys SET checkpoint = NULL")
    replay = await client.post("/v1/records", headers=headers, json=penalty(sid))
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["receipt"]["log_index"] == first.json()["log_index"]
    assert {k: v for k, v in replay.json().items() if k != "receipt"} == {
        k: v for k, v in first.json().items() if k != "receipt"}
    kept = await db.fetchval("SELECT checkpoint FROM idempotency_keys")
    assert kept == replay.json()["receipt"]["checkpoint"]
    again = await client.post("/v1/records", headers=headers, json=penalty(sid))
    assert again.content == replay.content


async def test_keys_stored_by_the_previous_release_still_replay(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """A row with the whole answer in its body is sent as stored; an unanswered claim of
    the previous release is 'still running' (migration 0012 removes those)."""
    sid = await subject(client, regulator)
    token_id = uuid.UUID(await db.fetchval("SELECT id::text FROM api_tokens WHERE role ="
                                           " 'regulator' ORDER BY created_at DESC LIMIT 1"))
    body = penalty(sid)
    probe = await client.post("/v1/records", headers=keyed(regulator, "probe"), json=body)
    request = await db.fetchval("SELECT request_hash FROM idempotency_keys WHERE key = 'probe'")
    stored = b'{"id":"kept as it was","receipt":{"log_index":0,"checkpoint":"x"}}'
    await db.execute(
        "INSERT INTO idempotency_keys (token_id, key, request_hash, status, body, created_at)"
        " VALUES ($1, 'old', $2, 201, $3, now()), ($1, 'claimed', $2, NULL, NULL, now())",
        token_id, request, stored)
    old = await client.post("/v1/records", headers=keyed(regulator, "old"), json=body)
    assert old.content == stored and old.headers["Idempotent-Replayed"] == "true"
    claimed = await client.post("/v1/records", headers=keyed(regulator, "claimed"), json=body)
    assert claimed.status_code == 409
    assert probe.status_code == 201


async def test_a_bad_key_is_refused_before_anything_runs(client: Client,
                                                         regulator: dict[str, str],
                                                         db: asyncpg.Pool) -> None:
    sid = await subject(client, regulator)
    start = await log_size(db)
    long_key = await client.post("/v1/records", headers=keyed(regulator, "k" * 201),
                                 json=penalty(sid))
    assert long_key.status_code in (400, 422)
    assert await log_size(db) == start
