"""The bureau change feed: never skips or repeats, resumable, and its replay equals the profiles."""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from litestar import Litestar

import registry.subjects
from registry.bureau.feed import encode_cursor
from registry.clock import ManualClock
from registry.coming_of_age import announce_adults
from registry.identifiers import DocumentType
from registry.settings import Settings
from tests.bureau_helpers import (
    PURPOSE,
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
from tests.credit_helpers import Client, actions, log_size, penalty, record
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
    """Leaves in index order, none twice; several items share a leaf's index only when a
    practitioner's version re-announces their profile (never the same object twice)."""
    indexes = [item["log_index"] for item in items]
    assert indexes == sorted(indexes), "the feed reordered an item"
    keys = [(item["log_index"], item["object_type"], item["object_id"]) for item in items]
    assert len(keys) == len(set(keys)), "the feed repeated an item"
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
    assert [i for i in items if i["subject_id"] == minor_id] == []
    assert minor_id not in str(items)
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
            params: dict[str, Any] = {"limit": 3, "purpose": PURPOSE}
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
            "/v1/bureau/changes", headers=bureau, params={"since": bad or " ", "purpose": PURPOSE}
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["field"] == "since"
    ok = await client.get(
        "/v1/bureau/changes", headers=bureau, params={"since": encode_cursor(0), "purpose": PURPOSE}
    )
    assert ok.status_code == 200
    zero: dict[str, int | str] = {"limit": 0, "purpose": PURPOSE}
    assert (await client.get("/v1/bureau/changes", headers=bureau, params=zero)).status_code == 400


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


async def _assert_replay_is_profiles(
    client: Client, bureau: dict[str, str], items: list[dict[str, Any]], orgs: list[int],
    people: list[str], expected: set[str],
) -> None:
    copy = replay(items)
    profiles = await _profiles(client, bureau, orgs, people)
    assert set(copy) == set(profiles) == expected
    for sid, profile in profiles.items():
        assert normalised(copy[sid]) == normalised(profile), sid


async def _entry(client: Client, regulator: dict[str, str], sid: str, number: str) -> str:
    serious = await record(client, regulator, penalty(sid, number, grade="serious"))
    response = await client.post(
        "/v1/blacklist",
        headers=regulator,
        json={"subject_id": sid, "criterion": "拒不履行行政處罰決定",
              "legal_basis": "國辦發〔2020〕49號", "record_ids": [serious["id"]]},
    )
    assert response.status_code == 201, response.text
    eid = str(response.json()["id"])
    response = await client.post(
        f"/v1/blacklist/{eid}/notify", headers=regulator, json={"channel": "registered_mail"}
    )
    assert response.status_code == 200, response.text
    return eid


async def test_only_listed_entries_reach_the_feed(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    """A blacklist proposal, its notice and a withdrawn proposal yield no item, not even the
    entry's id; its listing yields an upsert, and its removal a delete."""
    org = await organisation(client, regulator, 61)
    kept = await _entry(client, regulator, org, "寧罰〔2026〕61號")
    dropped = await _entry(client, regulator, org, "寧罰〔2026〕62號")
    await wait_integrated(db)
    items, cursor = await read_feed(client, bureau)
    assert [i for i in items if i["object_type"] == "blacklist_entry"] == []

    response = await client.post(
        f"/v1/blacklist/{dropped}/withdraw", headers=regulator, json={"reason": "復議撤銷"}
    )
    assert response.status_code == 200, response.text
    clock.advance(days=11)
    response = await client.post(f"/v1/blacklist/{kept}/list", json={}, headers=regulator)
    assert response.status_code == 200, response.text
    await wait_integrated(db)
    more, cursor = await read_feed(client, bureau, since=cursor)
    assert [(i["object_id"], i["op"]) for i in more if i["object_type"] == "blacklist_entry"] == [
        (kept, "upsert")
    ]
    await _assert_replay_is_profiles(client, bureau, items + more, [61], [], {org})

    response = await client.post(
        f"/v1/blacklist/{kept}/remove", headers=regulator, json={"reason": "decision_corrected"}
    )
    assert response.status_code == 200, response.text
    await wait_integrated(db)
    last, _ = await read_feed(client, bureau, since=cursor)
    assert [(i["object_id"], i["op"]) for i in last] == [(kept, "delete")]
    assert dropped not in str(items + more + last)
    _assert_in_order(items + more + last)
    await _assert_replay_is_profiles(client, bureau, items + more + last, [61], [], {org})


async def test_records_never_disclosed_never_reach_the_feed(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """A warning-only decision (never published) and one recorded after its period ended
    yield no item, and neither does revoking them; revoking a shown record yields its delete."""
    org = await organisation(client, regulator, 63)
    warning = await record(
        client, regulator, penalty(org, "寧罰〔2026〕63號", penalty_types=["warning"])
    )
    late = await record(client, regulator, penalty(
        org, "寧罰〔2024〕64號", grade="minor", decision_date="2025-01-02", valid_until="2025-04-01"
    ))
    shown = await record(client, regulator, penalty(org, "寧罰〔2026〕65號"))
    assert (warning["status"], late["status"], shown["status"]) == (
        "not_published", "expired", "published"
    )
    for revoked in (warning, late, shown):
        response = await client.post(
            f"/v1/records/{revoked['id']}/revoke",
            headers=regulator,
            json={"version": revoked["version"], "reason": "復議撤銷"},
        )
        assert response.status_code == 200, response.text
    await wait_integrated(db)
    items, _ = await read_feed(client, bureau)
    assert warning["id"] not in str(items)
    assert late["id"] not in str(items)
    assert [(i["object_id"], i["op"]) for i in items if i["object_type"] == "credit_record"] == [
        (shown["id"], "upsert"), (shown["id"], "delete")
    ]
    await _assert_replay_is_profiles(client, bureau, items, [63], [], {org})


async def test_a_minor_comes_of_age_in_the_feed(
    client: Client,
    app: Litestar,
    regulator: dict[str, str],
    bureau: dict[str, str],
    clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    """Nothing about a minor reaches the feed; on their 18th birthday the expiry pass writes
    ``subject.came_of_age`` once, and the feed then carries the person with their
    affiliations, records and listings in publication: the replay equals the profiles
    before and after, for a bureau that read all along and for one starting afresh."""
    org = await organisation(client, regulator, 21)
    number = resident_id(33, born="20080320")
    person = await practitioner(client, regulator, number, org)
    await record(client, regulator, penalty(person, "寧罰〔2026〕42號"))
    await listed_entry(client, regulator, clock, person, "寧罰〔2026〕43號")  # now 2026-03-13
    await wait_integrated(db)
    items, cursor = await read_feed(client, bureau)
    assert person not in str(items)
    assert (await lookup(client, bureau, number)).status_code == 404
    await _assert_replay_is_profiles(client, bureau, items, [21], [number], {org})

    start = await log_size(db)
    clock.set(day("2026-03-20"))
    for _ in range(300):
        if await actions(db, start):
            break
        await asyncio.sleep(0.02)
    assert await actions(db, start) == ["subject.came_of_age"]
    await wait_integrated(db)
    more, _ = await read_feed(client, bureau, since=cursor)
    _assert_in_order(items + more)
    came = [i for i in more if i["subject_id"] == person]
    assert {i["log_index"] for i in came} == {start}
    assert sorted((i["object_type"], i["op"]) for i in came) == [
        ("affiliation", "upsert"),
        ("blacklist_entry", "upsert"),
        ("credit_record", "upsert"),
        ("credit_record", "upsert"),
        ("subject", "upsert"),
    ]
    await _assert_replay_is_profiles(client, bureau, items + more, [21], [number], {org, person})
    afresh, _ = await read_feed(client, bureau)
    _assert_in_order(afresh)
    await _assert_replay_is_profiles(client, bureau, afresh, [21], [number], {org, person})
    # Announced once: the subject row written on the birthday is the state.
    services = replace(app.state.services, pool=db)
    assert await announce_adults(services, "system:test") == 0
    await assert_log_consistent(db)


async def test_a_minor_under_another_document_type_is_not_told(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    db: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A minor's resident-ID number stored under document_type 'other' (as accepted before
    such numbers were refused) still marks a minor: no feed item carries the person, and a
    lookup does not answer them."""
    org = await organisation(client, regulator, 64)
    number = resident_id(35, born="20150505")
    with monkeypatch.context() as patched:
        patched.setattr(
            registry.subjects, "validate_document",
            lambda doc_type, value, **_: (DocumentType.OTHER, value),
        )
        response = await client.post("/v1/subjects", headers=regulator, json={
            "kind": "practitioner", "name": "王小明", "document_type": "other",
            "document_number": number,
            "affiliations": [{"organisation_id": org, "role": "投資經理", "valid_from": "2024-01-01"}],
        })
    assert response.status_code == 201, response.text
    minor = response.json()["id"]
    await record(client, regulator, penalty(minor, "寧罰〔2026〕66號"))
    await wait_integrated(db)
    items, _ = await read_feed(client, bureau)
    assert minor not in str(items)
    assert "王小明" not in str(items)
    assert number[:6] + "*" not in str(items)
    answer = await client.post("/v1/bureau/profiles/lookup", headers=bureau, json={
        "document_type": "other", "document_number": number, "purpose": "credit_assessment"})
    assert answer.status_code in (404, 422), answer.text
    await _assert_replay_is_profiles(client, bureau, items, [64], [], {org})
