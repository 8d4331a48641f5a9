"""DATABASE_READ_URL: bureau and public reads from a real streaming replica, within the bound.

The primary is an embedded PostgreSQL of this module's own (whatever server the rest of
the suite uses, even TEST_DATABASE_URL's), and the replica a hot standby of it made with
the embedded PostgreSQL's own ``pg_basebackup -R``, started on a port of its own. Replay is
paused to make it lag, and the standby is stopped to make it fail; every database involved
is real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.bureau.runtime import bureau_runtime
from registry.db.embedded import start_embedded
from registry.db.replica import ReadRoute
from registry.services import Services
from registry.settings import Settings
from tests.conftest import PgServer, new_database
from tests.credit_helpers import subject
from tests.fault_helpers import free_port
from tests.standby import Standby, make_standby

Client = AsyncTestClient[Litestar]
CODE = "91630100MA752LKX1M"
MAX_LAG_S = 1.0


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> PgServer:
    """A primary whose files are here to copy: the suite's server may be another machine's."""
    return PgServer(start_embedded(tmp_path_factory.mktemp("replica-primary") / "home"))


@pytest.fixture(scope="module")
def standby(primary: PgServer) -> Iterator[Standby]:
    found = make_standby(primary.uri, free_port())
    try:
        yield found
    finally:
        found.kill()


@pytest.fixture
async def database_url(primary: PgServer) -> AsyncIterator[str]:
    """An empty database on this module's primary (the app migrates it at start)."""
    async with new_database(primary, None) as url:
        yield url


@pytest.fixture
def settings(base_settings: Settings, standby: Standby, database_url: str) -> Settings:
    database = urlsplit(database_url).path.lstrip("/")
    return replace(base_settings, database_read_url=standby.url_for(database),
                   read_max_lag_ms=int(MAX_LAG_S * 1000))


def _services(app: Litestar) -> Services:
    services: Services = app.state.services
    return services


async def _until(check: object, what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


async def _bureau_name(client: Client, bureau: dict[str, str]) -> str:
    answer = await client.get(f"/v1/bureau/profiles/{CODE}", headers=bureau)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["subject"]["name"])


@pytest.fixture
async def fresh(app: Litestar, client: Client) -> ReadRoute:
    reads = _services(app).reads
    assert reads.replica is not None
    await _until(lambda: reads.staleness() <= MAX_LAG_S / 4, "the replica is found fresh")
    return reads


async def test_bureau_reads_come_from_the_replica_and_regulators_from_the_primary(
    fresh: ReadRoute, client: Client, regulator: dict[str, str], bureau: dict[str, str],
    standby: Standby, admin: dict[str, str], app: Litestar,
) -> None:
    memo = bureau_runtime(_services(app)).profile_memo
    org = await subject(client, regulator, code=CODE)
    await _until(lambda: fresh.staleness() <= MAX_LAG_S / 4, "the replica has the new subject")
    # Within the bound the replica answers, and it has the subject.
    before = fresh.replica_reads
    assert await _bureau_name(client, bureau) == "西寧創新投資有限公司"
    assert fresh.replica_reads == before + 1
    await standby.execute("SELECT pg_wal_replay_pause()")
    try:
        renamed = await client.patch(f"/v1/subjects/{org}", headers=regulator,
                                     json={"name": "西寧更名投資有限公司", "version": 1})
        assert renamed.status_code == 200, renamed.text
        # At once: the regulator reads the primary; the bureau the paused replica, which
        # proves where each read went (only the replica can still have the old name).
        mine = await client.get(f"/v1/subjects/{org}", headers=regulator)
        assert mine.json()["name"] == "西寧更名投資有限公司"
        trusted = memo.trusted_hits
        if fresh.staleness() <= MAX_LAG_S:
            assert await _bureau_name(client, bureau) == "西寧創新投資有限公司"
        # Read from a replica that lacks a change already learnt of: never sent again
        # without a check.
        assert memo.trusted_hits == trusted
        # Past the bound the replica is bypassed: nothing older than the bound is served.
        await _until(lambda: fresh.staleness() > MAX_LAG_S, "the paused replica falls behind")
        lagging = fresh.bypassed["lagging"]
        assert await _bureau_name(client, bureau) == "西寧更名投資有限公司"
        assert fresh.bypassed["lagging"] == lagging + 1
        metrics = (await client.get("/metrics", headers=admin)).text
        assert "registry_read_replica_fresh 0.0" in metrics
        assert 'registry_read_replica_bypassed_total{reason="lagging"}' in metrics
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
    await _until(lambda: fresh.staleness() <= MAX_LAG_S / 4, "the resumed replica catches up")
    before = fresh.replica_reads
    assert await _bureau_name(client, bureau) == "西寧更名投資有限公司"
    assert fresh.replica_reads == before + 1
    assert "registry_read_replica_fresh 1.0" in (await client.get("/metrics", headers=admin)).text
    # Fresh past every change learnt of: a profile read there is trusted like the primary's,
    # and the repeat needs no statement at all.
    trusted = memo.trusted_hits
    assert await _bureau_name(client, bureau) == "西寧更名投資有限公司"
    assert memo.trusted_hits == trusted + 1


async def test_public_pages_and_the_change_feed_read_from_the_replica(
    fresh: ReadRoute, client: Client, regulator: dict[str, str], bureau: dict[str, str],
) -> None:
    await subject(client, regulator, code=CODE)
    await _until(lambda: fresh.staleness() <= MAX_LAG_S / 4, "the replica has the subject")
    before = fresh.replica_reads
    for path, headers in (("/public/", {}), ("/public/feed.json", {}),
                          ("/v1/bureau/changes?purpose=credit_assessment", bureau)):
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.text)
    assert fresh.replica_reads == before + 3
    changes = (await client.get("/v1/bureau/changes?purpose=credit_assessment",
                                headers=bureau)).json()
    assert any(item["object_type"] == "subject" for item in changes["items"])


async def test_a_stopped_replica_is_bypassed_without_failing_a_request(
    fresh: ReadRoute, client: Client, regulator: dict[str, str], bureau: dict[str, str],
    standby: Standby,
) -> None:
    await subject(client, regulator, code=CODE)
    await _until(lambda: fresh.staleness() <= MAX_LAG_S / 4, "the replica has the subject")
    assert await _bureau_name(client, bureau) == "西寧創新投資有限公司"
    standby.stop()
    try:
        # Every answer is right and none fails: at first the replica's pool hands the
        # borrow to the primary ("failed"), then the route stops choosing it.
        for _ in range(20):
            assert await _bureau_name(client, bureau) == "西寧創新投資有限公司"
            await asyncio.sleep(0.05)
        assert fresh.bypassed["failed"] + fresh.bypassed["unavailable"] >= 1
        assert fresh.staleness() > MAX_LAG_S
    finally:
        standby.start()
    await _until(lambda: fresh.staleness() <= MAX_LAG_S / 4, "the restarted replica is used again")
    before = fresh.replica_reads
    assert await _bureau_name(client, bureau) == "西寧創新投資有限公司"
    assert fresh.replica_reads == before + 1


async def test_a_replica_url_that_is_not_a_standby_is_never_used(
    db: asyncpg.Pool, database_url: str,
) -> None:
    """The primary named as its own replica: no replay position, so never fresh."""
    from registry.db.pool import BoundedPool, create_pool

    replica = await create_pool(database_url, min_size=0, max_size=1, acquire_timeout=0.5)
    assert isinstance(replica, BoundedPool)
    route = ReadRoute(db, replica, max_lag=0.5, poll=0.05)
    await route.start()
    try:
        await asyncio.sleep(0.5)
        assert route.pool() is db and route.bypassed["unavailable"] == 1
    finally:
        await route.stop()


async def test_a_replica_that_dies_between_polls_hands_the_read_to_the_primary(
    db: asyncpg.Pool, database_url: str, standby: Standby,
) -> None:
    """The replica's pool lends the primary's connection instead, and the route hears of it."""
    from registry.db.pool import BoundedPool, create_pool

    database = urlsplit(database_url).path.lstrip("/")
    replica = await create_pool(standby.url_for(database), min_size=0, max_size=1,
                                acquire_timeout=0.5)
    assert isinstance(replica, BoundedPool)
    route = ReadRoute(db, replica, max_lag=60, poll=0.05)
    await route.start()
    try:
        await _until(lambda: route.staleness() <= 0.5, "a poll finds the replica fresh")
        route.poll = 3600  # no poll after the one under way: the route still believes it fresh
        await asyncio.sleep(0.2)
        assert await route.pool().fetchval("SELECT pg_is_in_recovery()") is True
        standby.stop()
        # The pool's idle connection learns its server is gone when the loop reads the
        # socket (a borrow in the same instant would get it, and its statement fail).
        await asyncio.sleep(0.1)
        try:
            chosen = route.pool()
            assert chosen is replica  # no poll since: the route cannot know yet
            assert await chosen.fetchval("SELECT pg_is_in_recovery()") is False  # the primary
            assert route.bypassed["failed"] == 1
            assert route.pool() is db and route.bypassed["unavailable"] == 1
        finally:
            standby.start()
    finally:
        await route.stop()
