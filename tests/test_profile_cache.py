"""The bureau profile cache: used when fresh, never stale after a write or a day boundary.

Fresh answers are compared with what the regulator sees; that the shared cache is
really read is shown by planting a marker in a cached list and seeing it served to a
process that has not seen the subject yet (each process also remembers what it sent).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.api.app import create_app
from registry.bureau import profile_sql
from registry.bureau.profile_cache import _fill
from registry.bureau.profile_memo import ProfileMemo, Shown
from registry.bureau.runtime import bureau_runtime
from registry.bureau.views import BureauRecord
from registry.clock import ManualClock
from registry.db.changes import CHANGES, PROFILES_CHANNEL, ChangeEpoch
from registry.db.types import Conn
from registry.db.writes import audited_write, write_transaction
from registry.settings import Settings
from tests.bureau_helpers import (
    credit_code,
    listed_entry,
    lookup,
    organisation,
    practitioner,
    resident_id,
)
from tests.credit_helpers import Client, penalty, record
from tests.test_token_cache import eventually


async def _cached(db: asyncpg.Pool, sid: str) -> asyncpg.Record:
    """The subject's cache row once a fill has written its lists (the filler runs every 100 ms)."""
    for _ in range(300):
        row = await db.fetchrow(
            "SELECT * FROM bureau_profile_cache WHERE subject_id = $1", uuid.UUID(sid)
        )
        if row is not None and row["records"] is not None:
            return row
        await asyncio.sleep(0.01)
    raise AssertionError("the profile cache was not filled")


async def _profile(client: Client, bureau: dict[str, str], n: int) -> dict[str, Any]:
    response = await client.get(f"/v1/bureau/profiles/{credit_code(n)}", headers=bureau)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _regulator_items(
    client: Client, regulator: dict[str, str], ids: list[str]
) -> list[dict[str, Any]]:
    out = []
    for rid in ids:
        full = (await client.get(f"/v1/records/{rid}", headers=regulator)).json()
        out.append({f: full[f] for f in BureauRecord.__struct_fields__})
    return out


async def test_a_filled_profile_is_served_from_the_cache_and_the_memo(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    db: asyncpg.Pool,
    settings: Settings,
    database_url: str,
    clock: ManualClock,
) -> None:
    org = await organisation(client, regulator, 1)
    await record(client, regulator, penalty(org, "寧罰〔2026〕1號"))
    first = await _profile(client, bureau, 1)
    row = await _cached(db, org)
    assert row["generation"] >= 1
    # Plant a marker in the shared cache without a write (so no new generation).
    await db.execute(
        "UPDATE bureau_profile_cache SET records = convert_to('[{\"marker\": 1}]', 'UTF8')"
        " WHERE subject_id = $1",
        uuid.UUID(org),
    )
    # This process remembers the lists it sent for this generation: the marker stays out.
    assert await _profile(client, bureau, 1) == first
    # Another process (its own memo) reads the shared cache: the marker is served as is.
    other = create_app(settings, clock=clock, database_url=database_url, configure_logs=False)
    async with AsyncTestClient(app=other) as second:
        served = await _profile(second, bureau, 1)
    assert served["records"] == [{"marker": 1}]
    assert served["subject"] == first["subject"]


def _shown(generation: int, size: int, day: dt.date) -> Shown:
    return Shown(uuid.uuid4(), "organisation", generation, 1, day, None, b"x" * size)


def test_the_memo_is_bounded_by_bytes() -> None:
    memo = ProfileMemo(ChangeEpoch(), max_bytes=100)
    day = dt.date(2026, 3, 2)
    memo.put("a", _shown(1, 40, day), 0)
    memo.put("b", _shown(1, 40, day), 0)
    assert memo.usable("a", day) is not None  # a is now the most recently used
    memo.put("c", _shown(1, 40, day), 0)
    assert memo.usable("b", day) is None
    assert memo.usable("a", day) is not None
    assert memo.usable("c", day) is not None
    assert memo.held_bytes <= 100
    memo.put("a", _shown(2, 10, day), 0)
    replaced = memo.usable("a", day)
    assert replaced is not None and replaced.generation == 2
    assert memo.usable("a", day - dt.timedelta(days=1)) is None  # before as_of


def test_the_memo_trusts_only_what_was_read_since_the_last_change() -> None:
    changes = ChangeEpoch()
    memo = ProfileMemo(changes)
    day = dt.date(2026, 3, 2)
    read_in = changes.epoch
    shown = _shown(1, 10, day)
    memo.put("a", shown, read_in)
    assert memo.trusted("a", day, listening=True) is shown
    assert memo.trusted("a", day, listening=False) is None  # changes elsewhere unheard
    assert memo.trusted("a", day - dt.timedelta(days=1), listening=True) is None
    with changes.writing():  # a write of this process is open: ask the database
        assert memo.trusted("a", day, listening=True) is None
    assert memo.trusted("a", day, listening=True) is None  # ...and it ended since the read
    assert memo.usable("a", day) is shown  # still offered for a check
    memo.confirm("a", shown, read_in)  # a check that began before the write: not enough
    assert memo.trusted("a", day, listening=True) is None
    memo.confirm("a", shown, changes.epoch)
    assert memo.trusted("a", day, listening=True) is shown
    changes.heard()  # a notice of a change made elsewhere
    assert memo.trusted("a", day, listening=True) is None
    memo.confirm("a", _shown(1, 10, day), changes.epoch)  # another profile: not this one
    assert memo.trusted("a", day, listening=True) is None


async def test_every_kind_of_write_is_seen_at_once_after_the_cache_was_filled(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    org = await organisation(client, regulator, 2)
    first = await record(client, regulator, penalty(org, "寧罰〔2026〕2號"))

    async def fresh_and_cached() -> dict[str, Any]:
        await _profile(client, bureau, 2)
        await _cached(db, org)
        return await _profile(client, bureau, 2)

    # A new record.
    await fresh_and_cached()
    second = await record(client, regulator, penalty(org, "寧罰〔2026〕3號"))
    body = await _profile(client, bureau, 2)
    assert sorted(r["id"] for r in body["records"]) == sorted([first["id"], second["id"]])
    # A correction.
    await fresh_and_cached()
    corrected = await client.post(
        f"/v1/records/{second['id']}/correct",
        headers=regulator,
        json={"version": second["version"], "note": "金額更正", "fine_amount": "20"},
    )
    assert corrected.status_code == 200, corrected.text
    body = await _profile(client, bureau, 2)
    assert sorted(body["records"], key=lambda r: r["id"]) == sorted(
        await _regulator_items(client, regulator, [first["id"], second["id"]]),
        key=lambda r: r["id"],
    )
    # An objection mark.
    await fresh_and_cached()
    objection = await client.post(
        "/v1/objections",
        headers=bureau,
        json={"target_type": "credit_record", "target_id": first["id"], "grounds": "有誤"},
    )
    assert objection.status_code == 201, objection.text
    body = await _profile(client, bureau, 2)
    assert {r["id"]: r["under_objection"] for r in body["records"]}[first["id"]] is True
    # A revocation.
    await fresh_and_cached()
    revoked = await client.post(
        f"/v1/records/{second['id']}/revoke",
        headers=regulator,
        json={"version": corrected.json()["version"], "reason": "復議撤銷"},
    )
    assert revoked.status_code == 200, revoked.text
    body = await _profile(client, bureau, 2)
    assert [r["id"] for r in body["records"]] == [first["id"]]
    # A listing.
    await fresh_and_cached()
    entry = await listed_entry(client, regulator, clock, org, "寧罰〔2026〕4號")
    body = await _profile(client, bureau, 2)
    assert [e["id"] for e in body["listings"]] == [entry]


async def test_an_affiliation_reaches_a_cached_practitioner_profile(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    org = await organisation(client, regulator, 3)
    number = resident_id(41)
    person = await practitioner(client, regulator, number)
    assert (await lookup(client, bureau, number)).json()["affiliations"] == []
    await _cached(db, person)
    response = await client.post(
        f"/v1/subjects/{person}/affiliations",
        headers=regulator,
        json={"organisation_id": org, "role": "投資經理", "valid_from": "2024-01-01"},
    )
    assert response.status_code == 201, response.text
    shown = (await lookup(client, bureau, number)).json()["affiliations"]
    assert [a["organisation_id"] for a in shown] == [org]


async def test_cached_lists_end_at_the_next_publicity_change(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    """A minor record's window ends while its lists sit in the cache: the day it
    ends it is gone, without any write."""
    org = await organisation(client, regulator, 4)
    minor = await record(
        client, regulator, penalty(org, "寧罰〔2026〕5號", grade="minor", penalty_types=["fine"])
    )
    kept = await record(client, regulator, penalty(org, "寧罰〔2026〕6號"))
    assert {r["id"] for r in (await _profile(client, bureau, 4))["records"]} == {
        minor["id"],
        kept["id"],
    }
    row = await _cached(db, org)
    assert row["valid_until"] == dt.date.fromisoformat(minor["publicity_end"])
    # The day before: still a hit, still shown.
    end = dt.datetime.combine(row["valid_until"], dt.time(2), tzinfo=dt.UTC)
    clock.set(end - timedelta(days=1))
    assert minor["id"] in {r["id"] for r in (await _profile(client, bureau, 4))["records"]}
    clock.set(end)
    assert [r["id"] for r in (await _profile(client, bureau, 4))["records"]] == [kept["id"]]


async def test_a_fill_computed_before_a_write_is_refused(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    """The race the generation closes: lists read, then a write commits, then the
    stale fill arrives. It must leave the cache empty."""
    org = await organisation(client, regulator, 5)
    today = dt.date(2026, 3, 2)
    async with db.acquire() as conn:
        read = await conn.fetchrow(profile_sql.PROFILES["code"], today, credit_code(5))
        assert read is not None
    assert read["cache_hit"] is False
    await record(client, regulator, penalty(org, "寧罰〔2026〕7號"))
    stale = (
        read["id"],
        read["lists_generation"],
        today,
        read["lists_valid_until"],
        read["affiliations_json"],
        read["records_json"],
        read["listings_json"],
    )
    async with db.acquire() as conn:
        await _fill(conn, [stale])
    row = await db.fetchrow("SELECT * FROM bureau_profile_cache WHERE subject_id = $1", read["id"])
    assert row is not None
    assert row["records"] is None
    assert row["generation"] > (read["lists_generation"])
    # A fill from a snapshot after the write is accepted.
    async with db.acquire() as conn:
        fresh = await conn.fetchrow(profile_sql.PROFILES["code"], today, credit_code(5))
        assert fresh is not None
        await _fill(
            conn,
            [
                (
                    fresh["id"],
                    fresh["lists_generation"],
                    today,
                    fresh["lists_valid_until"],
                    fresh["affiliations_json"],
                    fresh["records_json"],
                    fresh["listings_json"],
                )
            ],
        )
    row = await db.fetchrow("SELECT * FROM bureau_profile_cache WHERE subject_id = $1", read["id"])
    assert row is not None
    assert row["records"] == fresh["records_json"]
    assert "寧罰〔2026〕7號" in row["records"].decode()


async def _heard_since(epoch: int) -> None:
    """Until this process has heard of a change made elsewhere (the listener's notice)."""
    await eventually(lambda: CHANGES.epoch != epoch, "the change notice arrives")


async def test_direct_sql_and_truncate_invalidate_too(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """The triggers, not the service, keep the cache honest: any write path counts."""
    org = await organisation(client, regulator, 6)
    rec = await record(client, regulator, penalty(org, "寧罰〔2026〕8號"))
    await _profile(client, bureau, 6)
    before = await _cached(db, org)
    epoch = CHANGES.epoch
    await db.execute(
        "UPDATE credit_records SET facts = 'changed by hand' WHERE id = $1", uuid.UUID(rec["id"])
    )
    row = await db.fetchrow("SELECT * FROM bureau_profile_cache WHERE subject_id = $1", before[0])
    assert row is not None
    assert row["records"] is None and row["generation"] == before["generation"] + 1
    await _heard_since(epoch)  # this connection is not the service's: it is "elsewhere"
    assert (await _profile(client, bureau, 6))["records"][0]["facts"] == "changed by hand"
    await _cached(db, org)
    await db.execute("TRUNCATE blacklist_entries")
    row = await db.fetchrow("SELECT * FROM bureau_profile_cache WHERE subject_id = $1", before[0])
    assert row is not None
    assert row["records"] is None


async def _sent_from_memory(
    app: Litestar, client: Client, bureau: dict[str, str], n: int
) -> tuple[ProfileMemo, dict[str, Any]]:
    """Subject ``n``'s profile asked twice: the second answer comes from memory."""
    memo = bureau_runtime(app.state.services).profile_memo
    first = await _profile(client, bureau, n)
    hits = memo.trusted_hits
    assert await _profile(client, bureau, n) == first
    assert memo.trusted_hits == hits + 1
    return memo, first


async def test_a_repeat_reads_nothing_until_a_change_is_heard(
    app: Litestar,
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    db: asyncpg.Pool,
) -> None:
    """A profile read since the last change is sent from memory; a change made outside
    this process reaches the next answer once its notice arrives, and while no notice
    can be heard every answer is checked with PostgreSQL."""
    org = await organisation(client, regulator, 10)
    rec = await record(client, regulator, penalty(org, "寧罰〔2026〕10號"))
    memo, _ = await _sent_from_memory(app, client, bureau, 10)
    hits = memo.trusted_hits

    epoch = CHANGES.epoch
    await db.execute(
        "UPDATE credit_records SET facts = 'changed elsewhere' WHERE id = $1",
        uuid.UUID(rec["id"]),
    )
    await _heard_since(epoch)
    assert (await _profile(client, bureau, 10))["records"][0]["facts"] == "changed elsewhere"
    assert memo.trusted_hits == hits  # checked, not trusted

    listener = app.state.services.listener
    assert await db.fetchval("SELECT pg_terminate_backend($1)", listener.pid)
    await eventually(lambda: not listener.listening, "the listener is known lost")
    await db.execute(
        "UPDATE credit_records SET facts = 'changed while deaf' WHERE id = $1",
        uuid.UUID(rec["id"]),
    )
    assert (await _profile(client, bureau, 10))["records"][0]["facts"] == "changed while deaf"


async def test_a_write_answered_by_this_process_is_seen_without_its_notice(
    app: Litestar,
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Writes made here reach the next read through the process's own bookkeeping,
    not the notice (which arrives a moment later and may lose the race)."""
    # Notices are heard by no one: the listener looks its channel's subscribers up at
    # each notice (registry/db/listener.py ``_dispatch``).
    monkeypatch.setitem(app.state.services.listener._channels, PROFILES_CHANNEL, [])
    org = await organisation(client, regulator, 11)
    _, first = await _sent_from_memory(app, client, bureau, 11)
    renamed = await client.patch(
        f"/v1/subjects/{org}",
        headers=regulator,
        json={"version": first["subject"]["version"], "name": "本進程改名有限公司"},
    )
    assert renamed.status_code == 200, renamed.text
    assert (await _profile(client, bureau, 11))["subject"]["name"] == "本進程改名有限公司"


async def test_an_identifier_passed_to_another_subject_finds_that_subject(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    """A kept profile matches on the subject too: the new holder of a corrected credit
    code can have the same version and list generation as the profile kept for it."""
    first_holder = await organisation(client, regulator, 12)
    kept = await _profile(client, bureau, 12)
    moved = await client.patch(
        f"/v1/subjects/{first_holder}",
        headers=regulator,
        json={"version": kept["subject"]["version"], "credit_code": credit_code(13)},
    )
    assert moved.status_code == 200, moved.text
    new_holder = await client.post(
        "/v1/subjects",
        headers=regulator,
        json={"kind": "vc_firm", "name": "後來的持有人有限公司", "credit_code": credit_code(12)},
    )
    assert new_holder.status_code == 201, new_holder.text
    assert new_holder.json()["version"] == kept["subject"]["version"]  # the trap is set
    for _ in range(2):  # checked, then trusted: neither may be the first holder's
        body = await _profile(client, bureau, 12)
        assert body["subject"]["id"] == new_holder.json()["id"]
        assert body["subject"]["name"] == "後來的持有人有限公司"


async def test_a_profile_kept_on_an_adults_first_day_is_not_sent_for_the_day_before(
    client: Client,
    regulator: dict[str, str],
    bureau: dict[str, str],
    clock: ManualClock,
    db: asyncpg.Pool,
) -> None:
    """The lists may date from days before a profile was judged (the minor rule); a clock
    set back must not reach those days with the kept profile."""
    eve = clock.now().date()
    birthday = eve + timedelta(days=1)
    number = resident_id(14, born=f"{birthday.year - 18:04d}{birthday:%m%d}")
    person = await practitioner(client, regulator, number)
    assert (await lookup(client, bureau, number)).status_code == 404  # a minor today
    await _cached(db, person)  # the lists were kept all the same, as of the eve
    noon = dt.time(12, tzinfo=dt.UTC)
    clock.set(dt.datetime.combine(birthday, noon))
    assert (await lookup(client, bureau, number)).status_code == 200
    clock.set(dt.datetime.combine(eve, noon))
    assert (await lookup(client, bureau, number)).status_code == 404


async def test_cache_rows_are_never_deleted(db: asyncpg.Pool) -> None:
    """A deleted row would restart its subject's generation, and a kept profile could match."""
    await db.execute(
        "INSERT INTO bureau_profile_cache (subject_id, generation) VALUES ($1, 3)", uuid.uuid4()
    )
    for statement in ("DELETE FROM bureau_profile_cache", "TRUNCATE bureau_profile_cache"):
        with pytest.raises(asyncpg.RaiseError, match="never deleted"):
            await db.execute(statement)
    assert await db.fetchval("SELECT count(*) FROM bureau_profile_cache") == 1


async def test_an_audited_write_joins_only_a_counted_transaction(
    db: asyncpg.Pool, clock: ManualClock
) -> None:
    """Joining a transaction the process does not count would end the count at the
    savepoint, before the commit."""

    async def write(conn: Conn, index: int, now: dt.datetime) -> asyncpg.Record:
        raise AssertionError("never reached")

    async with db.acquire() as conn, conn.transaction():
        with pytest.raises(RuntimeError, match="write_transaction"):
            await audited_write(
                db, clock, actor="t", action="a", object_type="subject", write=write, conn=conn
            )


async def test_a_write_of_this_process_is_known_from_before_it_begins_until_it_ends(
    db: asyncpg.Pool,
) -> None:
    """Committed or rolled back, a write moves the epoch, and no profile is trusted while open."""
    before, open_before = CHANGES.epoch, CHANGES.writes_open

    async def failing_write() -> None:
        async with write_transaction(db) as conn:
            assert CHANGES.writes_open == open_before + 1
            assert not CHANGES.quiet_since(CHANGES.epoch)
            await conn.execute("UPDATE credit_records SET facts = facts WHERE false")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await failing_write()
    assert CHANGES.writes_open == open_before and CHANGES.epoch > before
    epoch = CHANGES.epoch
    async with write_transaction(db) as conn:
        await conn.execute("UPDATE credit_records SET facts = facts WHERE false")
    assert CHANGES.epoch > epoch


async def test_a_change_to_the_subject_itself_is_seen_at_once(
    client: Client, regulator: dict[str, str], bureau: dict[str, str], db: asyncpg.Pool
) -> None:
    """The process remembers whole profiles: a subject write (no new list generation)
    must still reach the next answer, through the subject's version."""
    org = await organisation(client, regulator, 7)
    await record(client, regulator, penalty(org, "寧罰〔2026〕9號"))
    first = await _profile(client, bureau, 7)
    await _cached(db, org)
    assert await _profile(client, bureau, 7) == first  # now from the memo
    renamed = await client.patch(
        f"/v1/subjects/{org}",
        headers=regulator,
        json={"version": first["subject"]["version"], "name": "改名創業投資有限公司"},
    )
    assert renamed.status_code == 200, renamed.text
    body = await _profile(client, bureau, 7)
    assert body["subject"]["name"] == "改名創業投資有限公司"
    assert body["subject"]["version"] == first["subject"]["version"] + 1
    assert body["subject"]["log_index"] == renamed.json()["log_index"]
    assert body["records"] == first["records"]
    deactivated = await client.post(
        f"/v1/subjects/{org}/deactivate",
        headers=regulator,
        json={"version": body["subject"]["version"]},
    )
    assert deactivated.status_code == 200, deactivated.text
    inactive = await _profile(client, bureau, 7)
    assert inactive["subject"]["status"] == "inactive"
    # A new credit code: the old one no longer finds the subject, though the memo holds it.
    moved = await client.patch(
        f"/v1/subjects/{org}",
        headers=regulator,
        json={"version": inactive["subject"]["version"], "credit_code": credit_code(8)},
    )
    assert moved.status_code == 200, moved.text
    gone = await client.get(f"/v1/bureau/profiles/{credit_code(7)}", headers=bureau)
    assert gone.status_code == 404
    assert (await _profile(client, bureau, 8))["subject"]["id"] == org
