"""Reads that may be a little behind go to a streaming replica, while it is fresh enough.

``DATABASE_READ_URL`` names a hot standby of the primary. Bureau profiles, bulk
lookups, the change feed and public disclosure read from it (``ReadRoute.pool``);
regulators' reads and every write use the primary. The promise: nothing read
through the route is older than ``REGISTRY_READ_MAX_LAG_MS``.

How fresh the replica is, is measured, not guessed from timestamps (a standby
with nothing to replay looks ever older by ``pg_last_xact_replay_timestamp``, and
one cut off from the primary looks current by comparing its own positions). Every
``poll`` the route notes the primary's WAL flush position with the time it asked,
then asks the replica how far it has replayed. Once the replica has replayed past
a position noted at time T, it holds everything the primary had committed at T:
it is *fresh as of* T. A read at time t from the replica is at most t - T behind,
so the route sends reads there only while t - T is within the bound, and to the
primary otherwise (a metric and a log line say so). A replica that is down, not a
standby, or too slow to answer the poll stops being fresh within the bound.

A replica that dies between polls is caught at connection time: the replica's
pool falls back to the primary for that borrow (registry/db/pool.py) and tells
the route, which stops using it until a poll succeeds again. Only statements
already running on it when it dies fail.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from typing import Final

import asyncpg
import structlog

from registry.db.pool import BoundedPool
from registry.tasks import stop_task

log = structlog.get_logger(__name__)

# Byte positions, comparable across the primary and its standbys. The flush position:
# every commit acknowledged so far is before it, and it is what the primary streams
# (the insert position can sit past a page header no standby ever "replays" while idle).
_PRIMARY_POSITION: Final = "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint"
# NULL on a server that is not a standby: it is never fresh.
_REPLAYED: Final = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"
# Positions noted but not yet replayed; a replica that far behind is stale anyway.
_MAX_SAMPLES: Final = 10_000


class ReadRoute:
    """Chooses, per request, the pool its reads may use: the replica or the primary."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica: BoundedPool | None = None,
        *,
        max_lag: float = 2.0,
        poll: float | None = None,
    ) -> None:
        if max_lag <= 0:
            raise ValueError(f"the replica's lag bound must be > 0 s, got {max_lag}")
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag
        # Several polls within the bound, so one slow answer does not bypass the replica.
        self.poll = poll if poll is not None else min(0.25, max_lag / 4)
        self._samples: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=_MAX_SAMPLES
        )
        self._fresh_as_of = -math.inf  # time.monotonic(); -inf: never (or not since it failed)
        self._task: asyncio.Task[None] | None = None
        self._shown_state: str | None = None
        # For the metrics (registry/metrics.py): reads sent each way, and why not there.
        self.replica_reads = 0
        self.bypassed: collections.Counter[str] = collections.Counter()
        if replica is not None:
            replica.fallback = primary
            replica.on_fallback = self._failed_over

    # ---- the choice -------------------------------------------------------------------

    def pool(self) -> asyncpg.Pool:
        """Where a request that may read up to ``max_lag`` behind reads: one pool for the
        whole request, so its statements do not mix the replica's past with the present."""
        if self.replica is None:
            return self.primary
        if self.staleness() <= self.max_lag:
            self.replica_reads += 1
            return self.replica
        self.bypassed["lagging" if self._fresh_as_of > -math.inf else "unavailable"] += 1
        return self.primary

    def on_primary(self, pool: asyncpg.Pool) -> bool:
        """Whether reads through ``pool`` are the primary's present (no lag at all)."""
        return pool is self.primary

    def fresh_as_of(self) -> float:
        """The ``time.monotonic()`` before which every commit is on the replica (-inf: none
        known); only ever moves forward while the replica keeps answering."""
        return self._fresh_as_of

    def staleness(self) -> float:
        """How far behind a read from the replica could be now, in seconds (inf: unknown)."""
        return time.monotonic() - self._fresh_as_of

    # ---- following the replica ------------------------------------------------------------

    async def start(self) -> None:
        if self.replica is not None and self._task is None:
            self._task = asyncio.create_task(self._follow(), name="registry-read-replica")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self.replica is not None:
            await self.replica.close()

    async def _follow(self) -> None:
        while True:
            try:
                async with asyncio.timeout(max(self.poll * 4, 1.0)):
                    await self._measure()
            except Exception as error:
                # Down, refusing, too slow: not fresh from now on (reads go to the primary).
                self._fresh_as_of = -math.inf
                self._show("unavailable", error=f"{type(error).__name__}: {error}")
            await asyncio.sleep(self.poll)

    async def _measure(self) -> None:
        assert self.replica is not None
        asked_at = time.monotonic()
        position = await self.primary.fetchval(_PRIMARY_POSITION)
        self._samples.append((asked_at, int(position)))
        # The replica itself, never the primary in its place.
        async with self.replica.acquire(fallback=False) as conn:
            replayed = await conn.fetchval(_REPLAYED)
        if replayed is None:
            self._fresh_as_of = -math.inf
            self._show("not_a_standby")
            return
        fresh_as_of = None
        while self._samples and self._samples[0][1] <= replayed:
            fresh_as_of = self._samples.popleft()[0]
        if fresh_as_of is not None:
            self._fresh_as_of = max(self._fresh_as_of, fresh_as_of)
        self._show("in_use" if self.staleness() <= self.max_lag else "lagging")

    def _failed_over(self, error: BaseException) -> None:
        """The replica's pool could not lend a connection and lent the primary's instead."""
        self.bypassed["failed"] += 1
        self._fresh_as_of = -math.inf
        self._show("unavailable", error=f"{type(error).__name__}: {error}")

    def _show(self, state: str, **details: object) -> None:
        """One log line per change of state, not one per poll."""
        if state == self._shown_state:
            return
        self._shown_state = state
        staleness = self.staleness()
        shown = None if math.isinf(staleness) else round(staleness, 3)
        if state == "in_use":
            log.info("read_replica_in_use", staleness_s=shown, max_lag_s=self.max_lag)
        else:
            log.warning("read_replica_bypassed", reason=state, staleness_s=shown,
                        max_lag_s=self.max_lag, **details)
