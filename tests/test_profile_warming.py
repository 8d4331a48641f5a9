"""Profiles built ahead of lookups: the same lists a lookup builds, never from before a write.

The rest of the suite runs with warming off (tests/conftest.py), so each test here
either runs passes itself (``warm_once``) or starts a service with it on.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import date, datetime, time, timedelta

import asyncpg
from litestar.testing import AsyncTestClient

from registry.api.app import create_app
from registry.bureau import profile_sql
from registry.bureau.profile_warmer import _WARM_LOCK, ProfileWarmer
from registry.bureau.runtime import bureau_runtime
from registry.clock import ManualClock, today
from registry.db.migrate import load_migrations, migrate
from registry.services import Services
from registry.settings import Settings
from tests.bureau_helpers import (
    credit_code,
    listed_entry,
    organisation,
    practitioner,
    resident_id,
)
from tests.conftest import PgServer
from tests.credit_helpers import Client, penalty, record
from tests.fault_helpers import wait_until
from tests.test_expiry import one_pass_services

_LIST_COLUMNS = ("affiliations", "records", "listings")


async def _cache_row(db: asyncpg.Pool, sid: str | uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT * FROM bureau_profile_cache WHERE subject_id = $1", uuid.UUID(str(sid))
    )
    assert row is not None
    return row


def _warmer(
    settings: Settings, db: asyncpg.Pool, clock: ManualClock, batch: int = 200
) -> ProfileWarmer:
    services: Services = one_pass_services(settings, db, clock)
    return ProfileWarmer(services, interval=1.0, batch=batch)


async def test_a_pass_stores_exactly_what_a_lookup_would_build(
    client: Client,
    regulator: dict[str, str],
    db: asyncpg.Pool,
    clock: ManualClock,
    settings: Settings,
) -> None:
    """Every kind of list (records with a window that ends, a listing, an affiliation),
    compared byte for byte with the lists PostgreSQL builds for a lookup that missed."""
    org = await organisation(client, regulator, 1)
    listed = await organisation(client, regulator, 2)
    await record(client, regulator, penalty(org, "寧罰〔2026〕1號"))
    await record(
        client, regulator, penalty(org, "寧罰〔2026〕2號", grade="minor", penalty_types=["fine"])
    )
    await listed_entry(client, regulator, clock, listed, "寧罰〔2026〕3號")
    person = await practitioner(client, regulator, resident_id(3), org)
    on = today(clock)
    async with db.acquire() as conn:
        lookup_hash = await conn.fetchval(
            "SELECT document_lookup FROM subjects WHERE id = $1", uuid.UUID(person)
        )
        built = await conn.fetch(
            profile_sql.PROFILES["codes"], on, [credit_code(1), credit_code(2)]
        )
        built += await conn.fetch(profile_sql.PROFILES["document"], on, "resident_id", lookup_hash)
    assert len(built) == 3 and not any(row["cache_hit"] for row in built)
    # Two subjects with records, one with an affiliation: no list kind goes unchecked.
    assert sum(row["records_json"] != b"[]" for row in built) == 2
    assert sum(row["listings_json"] != b"[]" for row in built) == 1
    assert sum(row["affiliations_json"] != b"[]" for row in built) == 1

    warmer = _warmer(settings, db, clock)
    assert await warmer.warm_once() == 3
    for row in built:
        cached = await _cache_row(db, row["id"])
        assert cached["generation"] == row["lists_generation"]
        assert cached["as_of"] == on
        assert cached["valid_until"] == row["lists_valid_until"]
        for name in _LIST_COLUMNS:
            assert cached[name] == row[f"{name}_json"], name
    # The minor record's window ends ahead: the lists say so.
    assert (await _cache_row(db, org))["valid_until"] is not None
    # Nothing is due any more, and a lookup now reads the stored lists.
    assert await warmer.warm_once() == 0
    async with db.acquire() as conn:
        again = await conn.fetchrow(profile_sql.PROFILES["code"], on, credit_code(1))
        assert again is not None
    assert again["cache_hit"] is True


async def test_lists_built_before_a_write_commits_are_not_stored(
    client: Client,
    regulator: dict[str, str],
    db: asyncpg.Pool,
    clock: ManualClock,
    settings: Settings,
) -> None:
    """The race the generation closes, forced: the pass reads its snapshot while a write
    is open, waits on the row the write's trigger locked, and the write commits first."""
    org = await organisation(client, regulator, 4)
    rec = await record(client, regulator, penalty(org, "寧罰〔2026〕4號"))
    before = await _cache_row(db, org)
    assert before["records"] is None
    warmer = _warmer(settings, db, clock)
    async with db.acquire() as writer:
        write = writer.transaction()
        await write.start()
        await writer.execute(
            "UPDATE credit_records SET facts = 'changed meanwhile' WHERE id = $1",
            uuid.UUID(rec["id"]),
        )
        warming = asyncio.create_task(warmer.warm_once())

        async def blocked() -> bool:
            waiting = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'INSERT INTO bureau_profile_cache%'"
            )
            return bool(waiting)

        assert await wait_until(blocked, 10, step=0.01), "the pass waits for the write's lock"
        await write.commit()
    assert await warming == 0
    after = await _cache_row(db, org)
    assert after["records"] is None
    assert after["generation"] == before["generation"] + 1
    # The next pass reads after the write and stores it.
    assert await warmer.warm_once() == 1
    assert "changed meanwhile" in (await _cache_row(db, org))["records"].decode()


async def test_lists_that_ran_out_are_built_again_for_the_new_day(
    client: Client,
    regulator: dict[str, str],
    db: asyncpg.Pool,
    clock: ManualClock,
    settings: Settings,
) -> None:
    org = await organisation(client, regulator, 5)
    minor = await record(
        client, regulator, penalty(org, "寧罰〔2026〕5號", grade="minor", penalty_types=["fine"])
    )
    kept = await record(client, regulator, penalty(org, "寧罰〔2026〕6號"))
    warmer = _warmer(settings, db, clock)
    assert await warmer.warm_once() == 1
    first = await _cache_row(db, org)
    assert first["valid_until"] == date.fromisoformat(minor["publicity_end"])
    # The day before the end nothing is due; on the day the lists are built again.
    end = datetime.combine(first["valid_until"], time(2), tzinfo=clock.now().tzinfo)
    clock.set(end - timedelta(days=1))
    assert await warmer.warm_once() == 0
    clock.set(end)
    assert await warmer.warm_once() == 1
    rebuilt = await _cache_row(db, org)
    assert rebuilt["as_of"] == first["valid_until"]
    assert minor["id"] not in rebuilt["records"].decode()
    assert kept["id"] in rebuilt["records"].decode()
    assert rebuilt["generation"] == first["generation"]


async def test_passes_take_turns_and_work_in_batches(
    client: Client,
    regulator: dict[str, str],
    db: asyncpg.Pool,
    clock: ManualClock,
    settings: Settings,
) -> None:
    """While another server's pass holds the turn a pass builds nothing; a pass works
    through more subjects than one batch holds."""
    subjects = [await organisation(client, regulator, n) for n in range(10, 15)]
    warmer = _warmer(settings, db, clock, batch=2)
    async with db.acquire() as other, other.transaction():
        await other.execute("SELECT pg_advisory_xact_lock($1)", _WARM_LOCK)
        assert await warmer.warm_once() == 0
    assert await warmer.warm_once() == len(subjects)
    assert warmer.built == len(subjects)
    for sid in subjects:
        assert (await _cache_row(db, sid))["records"] == b"[]"


async def test_the_service_builds_profiles_after_writes_by_itself(
    regulator: dict[str, str],
    bureau: dict[str, str],
    db: asyncpg.Pool,
    clock: ManualClock,
    settings: Settings,
    database_url: str,
) -> None:
    """With warming on, lists appear without any lookup, and again after each write."""
    app = create_app(
        replace(settings, profile_warm_interval_ms=20),
        clock=clock,
        database_url=database_url,
        configure_logs=False,
    )
    async with AsyncTestClient(app=app) as client:
        org = await organisation(client, regulator, 20)
        await record(client, regulator, penalty(org, "寧罰〔2026〕20號"))

        async def built(marker: str) -> bool:
            row = await _cache_row(db, org)
            return row["records"] is not None and marker in row["records"].decode()

        first_built = await wait_until(lambda: built("寧罰〔2026〕20號"), 10, step=0.01)
        assert first_built, "the first record's lists are built"
        await record(client, regulator, penalty(org, "寧罰〔2026〕21號"))
        rebuilt = await wait_until(lambda: built("寧罰〔2026〕21號"), 10, step=0.01)
        assert rebuilt, "the lists are built again after a write"
        warmer = bureau_runtime(app.state.services).profile_warmer
        assert warmer is not None and warmer.built >= 2
        # A lookup now reads the stored lists, and shows both records.
        async with db.acquire() as conn:
            read = await conn.fetchrow(profile_sql.PROFILES["code"], today(clock), credit_code(20))
            assert read is not None
        assert read["cache_hit"] is True
        shown = await client.get(f"/v1/bureau/profiles/{credit_code(20)}", headers=bureau)
        assert shown.status_code == 200, shown.text
        assert len(shown.json()["records"]) == 2


async def test_every_subject_has_a_cache_row_to_be_found_by(pg_server: PgServer) -> None:
    """Subjects from before migration 0007 get a generation-0 row; later ones one at insert."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server.uri)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(pg_server.url_for(name))
        try:
            before_0007 = [m for m in load_migrations() if m.version < 7]
            await migrate(conn, before_0007)
            insert = (
                "INSERT INTO subjects (id, kind, name, status, credit_code, version, created_at,"
                " created_by, updated_at, updated_by, log_index)"
                " VALUES ($1, 'vc_firm', 'x', 'active', $2, 1, now(), 't', now(), 't', 0)"
            )
            old, new = uuid.uuid4(), uuid.uuid4()
            await conn.execute(insert, old, credit_code(30))
            assert await conn.fetchval("SELECT count(*) FROM bureau_profile_cache") == 0
            await migrate(conn)
            await conn.execute(insert, new, credit_code(31))
            rows = {
                r["subject_id"]: r for r in await conn.fetch("SELECT * FROM bureau_profile_cache")
            }
            assert set(rows) == {old, new}
            assert rows[old]["generation"] == 0 and rows[old]["records"] is None
            assert rows[new]["generation"] == 1 and rows[new]["records"] is None
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_failing_passes_wait_longer_each_time(
    database_url: str, clock: ManualClock, settings: Settings
) -> None:
    """A database that is gone is retried at 1, 1, 2, 4, ... intervals, not every tick,
    and the service keeps running."""
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    await pool.close()
    warmer = ProfileWarmer(one_pass_services(settings, pool, clock), interval=0.01)
    assert warmer.next_wait() == 0.01
    warmer.start()
    try:

        async def failed_twice() -> bool:
            return warmer.failures_in_a_row >= 2

        assert await wait_until(failed_twice, 10, step=0.01), "two failed passes"
    finally:
        await warmer.stop()
    waits = []
    for failures in (1, 2, 3, 4, 50):
        warmer.failures_in_a_row = failures
        waits.append(warmer.next_wait())
    assert waits == [0.01, 0.02, 0.04, 0.08, 60.0]
