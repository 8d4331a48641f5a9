"""The running registry's shared parts, built once at start and handed to handlers."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
import msgspec

from registry.clock import Clock
from registry.db.listener import DatabaseListener
from registry.db.replica import ReadRoute
from registry.db.shapes import TableShapes
from registry.domain.policy import Policy
from registry.domain.working_days import WorkingCalendar
from registry.metrics import Metrics
from registry.metrics_port import MetricsPort
from registry.pii import PiiCipher
from registry.settings import Settings
from registry.tlog.integrator import Integrator
from registry.tlog.witnessing import Witnessing
from registry.token_cache import TokenCache
from registry.working_calendar import build_calendar


class Receipt(msgspec.Struct):
    """Proof that a write is in the audit log: its leaf index and a signed checkpoint including it."""

    log_index: int
    checkpoint: Annotated[str, msgspec.Meta(description=(
        "A C2SP signed checkpoint whose tree includes the write, signed by the log. With the "
        "request header `Prefer: witnessed` it is, when one including the write comes within "
        "REGISTRY_WITNESS_WAIT_MS, a checkpoint a quorum of the credit bureaus' witnesses "
        "cosigned, their cosignatures as further signature lines, and the answer carries "
        "`Preference-Applied: witnessed`; otherwise the log's alone, without that header."
    ))]


@dataclass
class WitnessedPreference:
    """One request's `Prefer: witnessed` (api/prefer.py): did its receipts get a witnessed
    checkpoint? None until a receipt is made; False once any of them did not."""

    applied: bool | None = None

    def record(self, witnessed: bool) -> None:
        self.applied = witnessed and self.applied is not False


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    pii: PiiCipher
    integrator: Integrator
    # Authenticates bearer tokens; revokers must call ``tokens.forget`` after the commit.
    tokens: TokenCache
    # Where reads that may lag a little go: a replica while it is fresh enough, else the
    # primary (registry/db/replica.py); bureau and public reads use ``reading()``.
    reads: ReadRoute
    # The connection that LISTENs for revocations and changes (registry/db/listener.py);
    # the token cache and the profile memo trust what they hold only while it listens.
    listener: DatabaseListener
    policy: Policy = field(default_factory=Policy)
    # The audited tables' columns, read from the catalog once (registry/db/shapes.py).
    shapes: TableShapes = field(default_factory=TableShapes)
    # The working days deadlines count: the library's years with the override file's
    # (REGISTRY_CALENDAR_FILE) in place, built once at start (registry/working_calendar.py).
    calendar: WorkingCalendar = field(default_factory=build_calendar)
    # Rendered public feed pages by (ETag, base URL) (registry/api/public.py): the running
    # app's own, so two apps in one process (tests) never answer with each other's pages.
    feed_pages: OrderedDict[tuple[str, str], bytes] = field(default_factory=OrderedDict)
    # Feed entry signatures by (key, SHA-256 of the entry) (registry/publish/feed.py).
    feed_signatures: OrderedDict[tuple[str, bytes], str] = field(default_factory=OrderedDict)
    # The background parts bootstrap starts and stops: the bureau API's (access recorder,
    # rate limiter, profile cache: registry/bureau/runtime.py ``bureau_runtime``) and the
    # expiry task (registry/credit/expiry.py). None while not running. Typed ``object``
    # here: their modules import this one, and Litestar resolves these annotations at run
    # time; the modules' accessors check the type.
    bureau: object | None = None
    expiry: object | None = None
    # This app's Prometheus metrics (registry/metrics.py), served at /metrics.
    metrics: Metrics = field(default_factory=Metrics)
    # The same metrics without a token on 127.0.0.1 (REGISTRY_METRICS_PORT, serve
    # --metrics-port; registry/metrics_port.py), started by bootstrap; None when off.
    metrics_port: MetricsPort | None = None
    # Collects the witnesses' cosignatures (registry/tlog/witnessing.py), started by
    # bootstrap; None when REGISTRY_WITNESSES names none.
    witnessing: Witnessing | None = None
    # Set on one request's view of these services when it sent `Prefer: witnessed`
    # (``preferring_witnessed``); ``receipt`` reads and fills it.
    witnessed_preference: WitnessedPreference | None = None

    def reading(self) -> Services:
        """These services with ``pool`` the read route's choice for one request (the replica
        while it is within REGISTRY_READ_MAX_LAG_MS, else the primary): for reads that may
        be that far behind, and never for a write (a standby refuses them)."""
        pool = self.reads.pool()
        if pool is self.pool:
            return self
        return dataclasses.replace(self, pool=pool)

    def preferring_witnessed(self, preference: WitnessedPreference) -> Services:
        """These services for one request that prefers witnessed receipts."""
        return dataclasses.replace(self, witnessed_preference=preference)

    async def receipt(self, log_index: int) -> Receipt:
        """The proof of a write: its leaf index and a signed checkpoint that includes it
        (with `Prefer: witnessed`, a cosigned one if it comes in time: see ``Receipt``)."""
        head = await self.integrator.wait_for(log_index)
        wanted = self.witnessed_preference
        if wanted is not None:
            witnessed = None
            if self.witnessing is not None:
                witnessed = await self.witnessing.witnessed_including(
                    log_index, self.settings.witness_wait_ms / 1000)
            wanted.record(witnessed is not None)
            if witnessed is not None:
                return Receipt(log_index=log_index, checkpoint=witnessed.note())
        return Receipt(log_index=log_index, checkpoint=head.checkpoint)
