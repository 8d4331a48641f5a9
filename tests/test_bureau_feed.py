"""The bureau change feed: never skips or repeats, resumable, and its replay equals the profiles."""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from registry.bureau.feed import encode_cursor
from registry.clock import ManualClock
from registry.settings import Settings
from tests.bureau_helpers import (
    credit_code,
    day,
    listed_entry,
    lookup,
    normalised,
    organisation,
    practitioner,
    read_feed,
    replay,
    resident_id,
    wait_integrated,
)
from tests.credit_helpers import Client, penalty, record
from tests.logcheck import assert_log_consistent

FEED_TYPES = ("subject", "credit_record", "blacklist_entry", "affiliation")


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    """Expiry every 50 ms, so a window's end reaches the feed within the test."""
    return replace(base_settings, expiry_interval_ms=50)


async def _profiles(
    client: Client, bureau: dict[str, str], orgs: list[int], people: list[str]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for n in orgs:
        response = await client.get(f"/v1/bureau/profiles/{credit_code(n)}", headers=bureau)
        assert response.status_code == 200, response.text
        out[response.json()["subject"]["id"]] = response.json()
    for number in people:
        response = await lookup(client, bureau, number)
        if response.status_code == 200:
            out[response.json()["subject"]["id"]] = response.json()
    return out


def _assert_in_order(items: list[dict[str, Any]], after: int = -1) -> None:
    indexes = [item["log_index"] for item in items]
    assert indexes == sorted(set(indexes)), "the feed repeated or reordered an item"
    assert not indexes or indexes[0] > after


async def test_replaying_the_feed_gives_the_profiles(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    """After corrections, revocations, listings, objections and an expiry, the replayed
    feed equals the profile endpoint for every subject; minors never appear."""
    org1 = await organisation(client, regulator, 11)
    org2 = await organisation(client, regulator, 12)
    adult = resident_id(31)
    person = await practitioner(client, regulator, adult, org1)
    child = resident_id(32, born="20150505")
    minor_id = await practitioner(client, regulator, child, org2)
    await record(client, regulator, penalty(minor_id, "寧罰〔2026〕30號"))

    kept = await record(client, regulator, penalty(org1, "寧罰〔2026〕31號"))
    corrected = await record(client, regulator, penalty(org1, "寧罰〔2026〕32號"))
    response = await client.post(
        f"/v1/records/{corrected['id']}/correct",
        headers=regulator,
        json={"version": corrected["version"], "note": "金額更正", "fine_amount": "20"},
    )
    assert response.status_code == 200, response.text
    revoked = await record(client, regulator, penalty(org2, "寧罰〔2026〕33號"))
    response = await client.post(
        f"/v1/records/{revoked['id']}/revoke",
        headers=regulator,
        json={"version": revoked["version"], "reason": "復議撤銷"},
    )
    assert response.status_code == 200, response.text
    short = await record(client, regulator, penalty(person, "寧罰〔2026〕34號", grade="minor"))
    response = await client.post(
        "/v1/objections",
        headers=bureau,
        json={"target_type": "credit_record", "target_id": kept["id"], "grounds": "有誤"},
    )
    assert response.status_code == 201, response.text
    await listed_entry(client, regulator, clock, org2, "寧罰〔2026〕35號")

    await wait_integrated(db)
    items, cursor = await read_feed(client, bureau)
    _assert_in_order(items)
    assert {i["op"] for i in items if i["subject_id"] == minor_id} == {"delete"}
    assert child not in str(items)
    assert adult not in str(items)
    ops = {(i["object_id"], i["op"]) for i in items}
    assert (revoked["id"], "upsert") in ops
    assert (revoked["id"], "delete") in ops
    copy = replay(items)
    profiles = await _profiles(client, bureau, [11, 12], [adult, child])
    assert set(copy) == set(profiles) == {org1, org2, person}
    for sid, profile in profiles.items():
        assert normalised(copy[sid]) == normalised(profile), sid

    # The minor record's window ends: expiry writes record.expire, the feed says delete.
    clock.set(day("2026-07-01"))
    for _ in range(300):
        expired = await db.fetchval(
            "SELECT status FROM credit_records WHERE id = $1", uuid.UUID(short["id"])
        )
        if expired == "expired":
            break
        await asyncio.sleep(0.02)
    assert expired == "expired"
    # Nobody waits for the expiry's receipt: the feed itself has the leaf integrated.
    more, _ = await read_feed(client, bureau, since=cursor)
    _assert_in_order(items + more)
    assert [(i["object_id"], i["op"]) for i in more if i["object_type"] == "credit_record"] == [
        (short["id"], "delete")
    ]
    copy = replay(items + more)
    profiles = await _profiles(client, bureau, [11, 12], [adult])
    for sid, profile in profiles.items():
        assert normalised(copy[sid]) == normalised(profile), sid
    await assert_log_consistent(db)


async def test_feed_never_skips_or_repeats_under_concurrent_writes(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """A reader paging 3 items at a time while 60 writes commit concurrently sees every
    bureau-visible leaf exactly once, in index order."""
    orgs = [await organisation(client, regulator, 40 + i) for i in range(3)]
    done = asyncio.Event()

    async def write(i: int) -> None:
        await record(client, regulator, penalty(orgs[i % 3], f"寧罰〔2026〕{100 + i}號"))

    async def writers() -> None:
        await asyncio.gather(*(write(i) for i in range(60)))
        done.set()

    seen: list[dict[str, Any]] = []

    async def reader() -> str:
        cursor: str | None = None
        while True:
            finished = done.is_set()
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["since"] = cursor
            response = await client.get("/v1/bureau/changes", headers=bureau, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert all(i["log_index"] < page["tree_size"] for i in page["items"])
            seen.extend(page["items"])
            cursor = page["next_cursor"]
            if finished and not page["more"]:
                await wait_integrated(db)
                size = await db.fetchval("SELECT size FROM tlog_head")
                if size == page["tree_size"]:
                    return cursor
            if not page["items"]:
                await asyncio.sleep(0.005)

    await asyncio.gather(writers(), reader())
    _assert_in_order(seen)
    expected = await db.fetch(
        "SELECT log_index FROM tlog_objects WHERE object_type = ANY($1::text[]) ORDER BY log_index",
        list(FEED_TYPES),
    )
    assert [i["log_index"] for i in seen] == [r["log_index"] for r in expected]
    assert sum(1 for i in seen if i["object_type"] == "credit_record") == 60
    await assert_log_consistent(db)


async def test_malformed_cursor_is_422_naming_since(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    await organisation(client, regulator, 50)
    await wait_integrated(db)
    size = await db.fetchval("SELECT size FROM tlog_head")
    padded = encode_cursor(1) + "=="
    not_canonical = base64.urlsafe_b64encode(b'{"v":1, "next":1}').decode()
    wrong_version = base64.urlsafe_b64encode(b'{"next":1,"v":2}').decode().rstrip("=")
    for bad in ("garbage!", "", padded, not_canonical, wrong_version, encode_cursor(size + 5)):
        response = await client.get(
            "/v1/bureau/changes", headers=bureau, params={"since": bad} if bad else {"since": " "}
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["field"] == "since"
    ok = await client.get("/v1/bureau/changes", headers=bureau, params={"since": encode_cursor(0)})
    assert ok.status_code == 200
    assert (
        await client.get("/v1/bureau/changes", headers=bureau, params={"limit": 0})
    ).status_code == 400


async def test_an_empty_poll_keeps_the_cursor_and_only_serves_integrated_leaves(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    await organisation(client, regulator, 51)
    await wait_integrated(db)
    items, cursor = await read_feed(client, bureau, limit=100)
    assert [i["object_type"] for i in items] == ["subject"]
    again, same = await read_feed(client, bureau, since=cursor)
    assert again == []
    assert same == cursor
    await organisation(client, regulator, 52)
    await wait_integrated(db)
    new, _ = await read_feed(client, bureau, since=cursor)
    assert [i["subject"]["credit_code"] for i in new] == [credit_code(52)]
