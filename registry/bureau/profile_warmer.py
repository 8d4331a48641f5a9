"""Building bureau profiles ahead of lookups, so a first lookup is a point read.

A lookup of a subject whose lists are not in the profile cache makes PostgreSQL
scan the subject's records and build JSON: about ten times the work of reading
stored lists (the first-touch rows of tests/bench/bench_bureau.py). Writes are rare
and lookups many, so this task does that work after each write instead: every
``interval`` seconds it asks for subjects whose lists are missing (never built, or
cleared by a write's trigger) or ran out (``valid_until`` reached: an item entered
or left publicity), and builds theirs in batches of ``batch`` with one statement
each (registry/bureau/profile_sql.py ``WARM``), until none is left.

Correctness does not depend on it: a lookup that finds no lists builds them itself,
and the warm statement stores lists only under the generation its snapshot read,
like a lookup's fill. Several servers on one database take turns (an advisory lock
held for each batch), so they do not build the same profiles twice.
"""

from __future__ import annotations

import asyncio

import structlog

from registry.bureau import profile_sql
from registry.clock import today
from registry.services import Services
from registry.tasks import stop_task

log = structlog.get_logger(__name__)

# pg_try_advisory_xact_lock key: "vcreg" and the task's number (migrations use 1).
_WARM_LOCK = 0x76637265_67000002
DEFAULT_BATCH = 200
# The longest wait between passes after failures.
_MAX_WAIT_S = 60.0


class ProfileWarmer:
    """Fills missing and outdated profile lists; ``warm_once`` is one full pass."""

    def __init__(self, services: Services, interval: float, batch: int = DEFAULT_BATCH) -> None:
        if interval <= 0 or batch < 1:
            raise ValueError("profile warming needs interval > 0 and batch >= 1")
        self.services = services
        self.interval = interval
        self.batch = batch
        # Lists stored since start (lists another writer got to first are not counted).
        self.built = 0
        # Passes that failed since the last one that did not (the wait grows with it).
        self.failures_in_a_row = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="registry-profile-warmer")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def warm_once(self) -> int:
        """Build what is due now, batch after batch; the number of lists stored."""
        stored = 0
        while True:
            built, due = await self._warm_batch()
            stored += built
            # Nothing stored: every due subject was written meanwhile; the next tick
            # tries again rather than spinning here.
            if due < self.batch or built == 0:
                break
        self.built += stored
        return stored

    async def _warm_batch(self) -> tuple[int, int]:
        """(lists stored, subjects that were due) for one batch; (0, 0) while another
        server holds the turn."""
        on = today(self.services.clock)
        async with self.services.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _WARM_LOCK):
                return 0, 0
            due = [row[0] for row in await conn.fetch(profile_sql.DUE, on, self.batch)]
            if not due:
                return 0, 0
            status = await conn.execute(profile_sql.WARM, on, sorted(due))
        # "INSERT 0 <rows>": rows whose generation was still the one read.
        return int(status.rsplit(" ", 1)[1]), len(due)

    async def _run(self) -> None:
        while True:
            try:
                stored = await self.warm_once()
                self.failures_in_a_row = 0
                if stored:
                    log.info("profiles_warmed", profiles=stored)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Lookups build what is missing meanwhile. Waiting longer after each
                # failure in a row keeps a database outage from logging every second.
                self.failures_in_a_row += 1
                log.exception("profile_warming_failed", failures=self.failures_in_a_row)
            await asyncio.sleep(self.next_wait())

    def next_wait(self) -> float:
        """Seconds until the next pass: 1, 1, 2, 4, ... intervals after 0, 1, 2, 3, ...
        failures in a row, at most ``_MAX_WAIT_S``."""
        doublings = min(max(self.failures_in_a_row - 1, 0), 16)
        return min(self.interval * (1 << doublings), _MAX_WAIT_S)
