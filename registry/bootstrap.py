"""Bringing the registry up and down: database, migrations, keys, log check, integrator,
the token cache, the witnesses' cosignatures.

Start-up refuses to serve a log that does not match itself (see tlog/startup.py):
better no service than a service that signs over a damaged history.
"""

from __future__ import annotations

import asyncpg
import structlog

from registry.bureau.runtime import start_bureau, stop_bureau
from registry.clock import Clock, SystemClock
from registry.credit.expiry import start_expiry, stop_expiry
from registry.credit.objections import recount_provisional_deadlines
from registry.db.changes import hear_changes
from registry.db.embedded import database_url, shown
from registry.db.listener import DatabaseListener
from registry.db.migrate import migrate
from registry.db.pool import ACQUIRE_TIMEOUT, BoundedPool, create_pool
from registry.db.replica import ReadRoute
from registry.domain.policy import Policy
from registry.keys import load_log_key, open_pii_cipher
from registry.metrics_port import MetricsPort
from registry.services import Services
from registry.settings import Settings
from registry.tlog.integrator import Integrator, initialise_log
from registry.tlog.startup import check_log_at_start
from registry.tlog.witnessing import Witnessing
from registry.token_cache import TokenCache
from registry.working_calendar import LIBRARY, build_calendar

log = structlog.get_logger(__name__)

# How long a read waits for a replica connection before the primary lends one instead.
REPLICA_ACQUIRE_TIMEOUT = 0.5


async def open_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    url: str | None = None,
    policy: Policy | None = None,
) -> Services:
    url = url or database_url(settings.home, settings.database_url)
    # A bounded wait for a connection: overload answers 503 + Retry-After, not a hang.
    pool = await create_pool(
        url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        acquire_timeout=ACQUIRE_TIMEOUT,
    )
    try:
        key = load_log_key(settings, create_dev=True)
        async with pool.acquire() as conn:
            applied = await migrate(conn)
            if applied:
                log.info("migrations_applied", names=[m.name for m in applied])
            # After migrating (the check reads key_fingerprints), before anything is written:
            # refuses a key other than the one the stored document numbers are under.
            opened = await open_pii_cipher(conn, settings, create=settings.dev_keys)
            if opened.created:
                log.info("pii_key_created", path=str(opened.created))
            if opened.recorded:
                log.info("pii_key_fingerprint_recorded", fingerprint=opened.fingerprint)
            pii = opened.cipher
            if await initialise_log(conn, key, settings.log_origin):
                log.info("log_initialised", origin=settings.log_origin, verifier=key.verifier)
            await check_log_at_start(conn, key, settings.log_origin)
        integrator = Integrator(
            pool,
            lambda: load_log_key(settings),
            settings.log_origin,
            settings.batch_window_ms / 1000,
        )
        await integrator.start()
        # Its own connection for LISTEN (not from the pool). A database that refuses it
        # leaves the token cache and the profile memo off, every request asking the
        # database, until it reconnects.
        reads = await _read_route(settings, pool)
        listener = DatabaseListener(url)
        tokens = TokenCache(pool, listener)
        hear_changes(listener)
        await listener.start()
    except BaseException:
        await pool.close()
        raise
    services = Services(
        settings=settings,
        pool=pool,
        clock=clock or SystemClock(),
        pii=pii,
        integrator=integrator,
        tokens=tokens,
        reads=reads,
        listener=listener,
        # REGISTRY_POLICY_* (docs/operations.md): read once here, like Settings.from_env.
        policy=policy or settings.policy,
        # The library's holiday notices, REGISTRY_CALENDAR_FILE's in place for its years.
        calendar=build_calendar(settings.calendar_overrides),
    )
    known = services.calendar.years
    log.info("working_calendar", library=LIBRARY, first_year=min(known, default=None),
             last_year=max(known, default=None),
             file=str(settings.calendar_file) if settings.calendar_file else None,
             file_years=[n.year for n in settings.calendar_overrides])
    try:
        # Before serving: deadlines counted while a year was unknown are counted again
        # with this calendar (also every expiry pass; the calendar changes only at start).
        recount = await recount_provisional_deadlines(services)
    except BaseException:
        await close_services(services)
        raise
    if recount.provisional:
        log.warning("deadlines_still_provisional", count=recount.provisional,
                    unknown_years=sorted(recount.unknown_years),
                    hint="add the years' holiday notices to REGISTRY_CALENDAR_FILE")
    if settings.witnesses:
        try:
            await _start_witnessing(services)
        except BaseException:
            await close_services(services)
            raise
    if settings.expiry_interval_ms:
        # Publicity ends by itself: records and listings past their end leave publication.
        start_expiry(services, settings.expiry_interval_ms / 1000)
    # Bureau access records are buffered; stopping flushes them (close_services).
    start_bureau(services)
    if settings.metrics_port:
        try:
            await _open_metrics_port(services, settings.metrics_port)
        except BaseException:
            await close_services(services)
            raise
    return services


async def _read_route(settings: Settings, primary: asyncpg.Pool) -> ReadRoute:
    """The route of reads that may lag: to DATABASE_READ_URL's replica while it is fresh."""
    if not settings.database_read_url:
        return ReadRoute(primary)
    # No connection made now (min_size 0): a replica that is down must not stop the start;
    # the route finds it when it comes up. A short budget: a borrow it cannot serve at
    # once goes to the primary instead.
    replica = await create_pool(
        settings.database_read_url, min_size=0, max_size=settings.pool_max,
        acquire_timeout=REPLICA_ACQUIRE_TIMEOUT,
    )
    assert isinstance(replica, BoundedPool)
    route = ReadRoute(primary, replica, max_lag=settings.read_max_lag_ms / 1000)
    await route.start()
    log.info("read_replica_configured", database=shown(settings.database_read_url),
             max_lag_s=route.max_lag)
    return route


async def _start_witnessing(services: Services) -> None:
    """Ask REGISTRY_WITNESSES to cosign each new checkpoint (registry/tlog/witnessing.py)."""
    settings = services.settings
    witnessing = Witnessing(
        services.pool, settings.witnesses, settings.witness_quorum,
        timeout=settings.witness_timeout_ms / 1000,
        interval=settings.witness_interval_ms / 1000,
    )
    services.witnessing = witnessing
    services.integrator.listen_for_heads(witnessing.notice)
    await witnessing.start(services.integrator.head)
    log.info("witnessing_started", witnesses=[w.name for w in settings.witnesses],
             quorum=settings.witness_quorum)


async def _open_metrics_port(services: Services, port: int) -> None:
    """The metrics without a token, on the loopback interface only (registry/metrics_port.py)."""

    async def scrape() -> bytes:
        return await services.metrics.scrape(services)

    services.metrics_port = MetricsPort(port, scrape)
    await services.metrics_port.start()


async def close_services(services: Services) -> None:
    if services.metrics_port is not None:
        await services.metrics_port.stop()
    await stop_expiry(services)
    await stop_bureau(services)
    if services.witnessing is not None:
        await services.witnessing.stop()
        services.witnessing = None
    await services.integrator.stop()
    await services.listener.close()
    await services.reads.stop()
    await services.pool.close()


__all__ = ["asyncpg", "close_services", "open_services"]
