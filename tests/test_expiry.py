"""Expiry: one pass at the edges of the publicity windows, moved with the ManualClock."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime

import asyncpg

from registry.clock import ManualClock
from registry.credit.expiry import expire_once
from registry.domain.policy import Policy
from registry.services import Services
from registry.settings import Settings
from tests.credit_helpers import Client, actions, log_size, penalty, record, subject


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(hour=2, tzinfo=UTC)


def one_pass_services(settings: Settings, db: asyncpg.Pool, clock: ManualClock) -> Services:
    """What `registry expire` builds, minus keys: expiry needs only the pool, clock and policy."""
    return Services(settings=settings, pool=db, clock=clock, pii=None,  # type: ignore[arg-type]
                    integrator=None, tokens=None, reads=None, listener=None, policy=Policy())  # type: ignore[arg-type]


async def test_record_expires_on_its_publicity_end(client: Client, regulator: dict[str, str],
                                                   db: asyncpg.Pool, clock: ManualClock,
                                                   settings: Settings) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid))
    assert rec["publicity_end"] == "2027-03-03"
    services = one_pass_services(settings, db, clock)
    start = await log_size(db)
    clock.set(day("2027-03-02"))
    assert (await expire_once(services)).records == 0
    assert (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()["status"] == "published"
    clock.set(day("2027-03-03"))
    assert (await expire_once(services)).records == 1
    now = (await client.get(f"/v1/records/{rec['id']}", headers=regulator)).json()
    assert now["status"] == "expired"
    assert now["status_reason"] == "period_ended"
    assert now["publication_ended_on"] == "2027-03-03"
    assert (await expire_once(services)).records == 0
    assert await actions(db, start) == ["record.expire"]


async def test_minor_edge_and_unpublished_untouched(client: Client, regulator: dict[str, str],
                                                   db: asyncpg.Pool, clock: ManualClock,
                                                   settings: Settings) -> None:
    """A minor record of 2026-01-31 is shown through 2026-04-30 (month-end clamping)."""
    sid = await subject(client, regulator)
    minor = await record(client, regulator, penalty(sid, grade="minor", decision_date="2026-01-31",
                                                    valid_until="2026-12-31"))
    assert minor["publicity_deadline"] == "2026-04-30"
    await record(client, regulator, penalty(sid, number="W1", penalty_types=["warning"]))
    services = one_pass_services(settings, db, clock)
    clock.set(day("2026-04-30"))
    assert (await expire_once(services)).records == 0
    clock.set(day("2026-05-01"))
    assert (await expire_once(services)).records == 1


async def test_listing_removed_when_its_period_ends(client: Client, regulator: dict[str, str],
                                                    db: asyncpg.Pool, clock: ManualClock,
                                                    settings: Settings) -> None:
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid, grade="serious"))
    entry = (await client.post("/v1/blacklist", headers=regulator, json={
        "subject_id": sid, "criterion": "c", "legal_basis": "b", "record_ids": [rec["id"]]})).json()
    await client.post(f"/v1/blacklist/{entry['id']}/notify", headers=regulator, json={"channel": "m"})
    clock.set(day("2026-03-13"))
    listed = (await client.post(f"/v1/blacklist/{entry['id']}/list", headers=regulator,
                                json={"planned_removal_on": "2027-06-01"})).json()
    assert listed["planned_removal_on"] == "2027-06-01"
    services = one_pass_services(settings, db, clock)
    start = await log_size(db)
    clock.set(day("2027-05-31"))
    assert (await expire_once(services)).listings == 0
    clock.set(day("2027-06-01"))
    result = await expire_once(services)
    assert result.listings == 1
    assert result.records == 0
    now = (await client.get(f"/v1/blacklist/{entry['id']}", headers=regulator)).json()
    assert now["state"] == "removed"
    assert now["removal_reason"] == "period_ended"
    clock.set(day("2029-03-03"))
    assert (await expire_once(services)).records == 1
    assert await actions(db, start) == ["blacklist.remove", "record.expire"]


async def test_cli_expire_does_one_pass(client: Client, regulator: dict[str, str],
                                        db: asyncpg.Pool, database_url: str,
                                        settings: Settings) -> None:
    """`registry expire` against the database: an old published record leaves publication."""
    sid = await subject(client, regulator)
    rec = await record(client, regulator, penalty(sid, grade="minor"))
    # Age it: the CLI runs on the system clock, so move the record back instead of the clock.
    await db.execute("UPDATE credit_records SET publicity_end = '2020-01-01' WHERE id = $1::uuid",
                     rec["id"])
    start = await log_size(db)
    env = {**os.environ, "DATABASE_URL": database_url, "REGISTRY_HOME": str(settings.home),
           "REGISTRY_LOG_FORMAT": "json"}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "registry", "expire"], env=env,
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "expired 1 records" in done.stdout
    assert await actions(db, start) == ["record.expire"]
