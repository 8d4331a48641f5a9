"""Expiry: what reached the end of its publicity leaves publication by itself.

``expire_once`` is one pass (the ``registry expire`` command and each tick of
the scheduled task): every published record whose ``publicity_end`` has come
becomes ``expired`` (``record.expire``), every listed entry whose
``planned_removal_on`` has come is removed with reason ``period_ended``
(``blacklist.remove``), and every practitioner recorded as a minor who has come
of age is announced (``subject.came_of_age``, registry/coming_of_age.py; the
scheduled task looks once a day), and provisional working-day deadlines are counted
again with the calendar of the running app (``objection.deadlines_recounted`` by
``system:calendar``, registry/credit/objections.py; what start-up already counted is
found unchanged, and one written meanwhile by a process with an older calendar is
caught here). What is due is ``registry.domain.disclosure``'s
``due_sql``. Each is its own audited change, so a crash mid-pass
leaves the rest for the next pass; two passes racing on one row cannot both
win (compare-and-set on version), the loser's 409 is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import date

import structlog

from registry.clock import today
from registry.coming_of_age import announce_adults
from registry.credit import blacklist as entries
from registry.credit.common import update_versioned
from registry.credit.objections import recount_provisional_deadlines
from registry.credit.ownership import SystemActor
from registry.domain.blacklist import RemovalReason
from registry.domain.disclosure import LISTINGS, RECORDS
from registry.errors import Conflict
from registry.services import Services
from registry.tasks import stop_task

log = structlog.get_logger(__name__)
SYSTEM = SystemActor("system:expiry")
ACTOR = SYSTEM.actor
DEFAULT_INTERVAL_S = 60.0
_BATCH = 500


@dataclass
class ExpiryResult:
    records: int = 0
    listings: int = 0
    adults: int = 0
    # Objections whose provisional deadlines moved.
    deadlines: int = 0


async def expire_once(services: Services, actor: str = ACTOR, *, adults: bool = True) -> ExpiryResult:
    """One pass; ``adults=False`` skips looking for practitioners who came of age (ages
    change at midnight, so the scheduled task looks once a day)."""
    # The system acts on every authority's decisions, as the publicity rules require.
    who = SystemActor(actor)
    on = today(services.clock)
    result = ExpiryResult()
    while True:
        due = await services.pool.fetch(
            f"SELECT id, version, publicity_end FROM credit_records WHERE {RECORDS.due_sql('$1')}"  # noqa: S608 - fixed text
            " ORDER BY publicity_end, id LIMIT $2", on, _BATCH)
        for row in due:
            with contextlib.suppress(Conflict):
                await update_versioned(
                    services, actor=actor, action="record.expire", object_type="credit_record",
                    object_id=row["id"], version=row["version"],
                    changes={"status": "expired", "publication_ended_on": row["publicity_end"],
                             "status_reason": "period_ended"})
                result.records += 1
        if len(due) < _BATCH:
            break
    while True:
        listed = await services.pool.fetch(
            f"SELECT id FROM blacklist_entries WHERE {LISTINGS.due_sql('$1')}"  # noqa: S608 - fixed text
            " ORDER BY planned_removal_on, id LIMIT $2", on, _BATCH)
        for row in listed:
            with contextlib.suppress(Conflict):
                await entries.remove(services, who, row["id"], RemovalReason.period_ended.value, None)
                result.listings += 1
        if len(listed) < _BATCH:
            break
    if adults:
        result.adults = await announce_adults(services, actor)
    result.deadlines = (await recount_provisional_deadlines(services)).moved
    if result.records or result.listings or result.adults or result.deadlines:
        log.info("expiry_pass", records=result.records, listings=result.listings,
                 adults=result.adults, deadlines=result.deadlines, day=on.isoformat())
    return result


class ExpiryTask:
    """Runs ``expire_once`` every ``interval`` seconds until stopped; a failed pass is logged
    and retried at the next tick (the service keeps serving)."""

    def __init__(self, services: Services, interval: float = DEFAULT_INTERVAL_S) -> None:
        if interval <= 0:
            raise ValueError(f"expiry interval must be > 0 seconds, got {interval}")
        self.services = services
        self.interval = interval
        self.passes = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="registry-expiry")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        looked: date | None = None  # the last day a pass looked for who came of age
        while True:
            try:
                day = today(self.services.clock)
                await expire_once(self.services, adults=day != looked)
                looked = day
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiry_pass_failed")
            self.passes += 1
            await asyncio.sleep(self.interval)


def start_expiry(services: Services, interval: float) -> ExpiryTask:
    task = ExpiryTask(services, interval)
    task.start()
    services.expiry = task
    return task


async def stop_expiry(services: Services) -> None:
    task, services.expiry = services.expiry, None
    if isinstance(task, ExpiryTask):
        await task.stop()
