"""Prometheus metrics of one running registry, served at ``/metrics`` to an admin token.

Two kinds:
- counted as they happen, on the request path: HTTP requests by route template, method
  and status, and their latency (``observe_request``, from the edge middleware);
- read when scraped, from the running parts themselves, so they cost nothing between
  scrapes: the log (size, leaves committed but not yet in a checkpoint, checkpoint age:
  one read of PostgreSQL per scrape), the integrator, the pool, the token cache, the
  bureau runtime (access-record queue, rate-limit refusals, profile memo, warmer), the
  expiry task and the witnesses' cosignatures (per witness, labelled by its configured name).

Each app has its own ``CollectorRegistry`` (``Services.metrics``), never the client's
process-wide default: two apps in one process count apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from registry.services import Services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A path no route matched (404s): one label value, not one per path tried.
UNMATCHED = "(unmatched)"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The metrics of one app: its registry, the request counters, the scrape-time reads."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "registry_http_requests", "HTTP requests answered, by route template",
            ("method", "route", "status"), registry=self.registry,
        )
        self.latency = Histogram(
            "registry_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer",
            ("method", "route"), buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.feed_pages = Counter(
            "registry_public_feed_page_cache", "Public feed pages answered, by whether the "
            "rendered page was held (hit) or rendered (miss)", ("result",), registry=self.registry,
        )
        self._live = _Live()
        self.registry.register(self._live)

    def observe_request(self, method: str, route: str | None, status: int, seconds: float) -> None:
        shown = route or UNMATCHED
        self.requests.labels(method, shown, str(status)).inc()
        self.latency.labels(method, shown).observe(seconds)

    async def scrape(self, services: Services) -> bytes:
        """The text exposition, with the log's figures read now."""
        row = await services.pool.fetchrow(
            "SELECT h.size, extract(epoch FROM now() - h.updated_at) AS age,"
            " (SELECT next_index FROM tlog_sequence) AS committed FROM tlog_head h"
        )
        self._live.services = services
        self._live.log = None if row is None else (
            int(row["size"]), float(row["age"]), int(row["committed"]))
        return generate_latest(self.registry)


class _Live(Collector):
    """Figures read from the running parts at scrape time."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.log: tuple[int, float, int] | None = None  # size, checkpoint age, committed

    def collect(self) -> Iterator[Metric]:
        services = self.services
        if services is None:
            return
        if self.log is not None:
            size, age, committed = self.log
            yield _gauge("registry_log_size", "Leaves in the latest signed checkpoint", size)
            yield _gauge("registry_log_unintegrated_leaves",
                         "Leaves committed but not yet in a signed checkpoint", committed - size)
            yield _gauge("registry_log_checkpoint_age_seconds",
                         "Seconds since the tree head last moved", age)
        integrator = services.integrator
        yield _counter("registry_integrator_batches",
                       "Integrations by this process that grew the log", integrator.batches)
        yield _counter("registry_integrator_leaves",
                       "Leaves those integrations added", integrator.leaves)
        yield _counter("registry_integrator_seconds",
                       "Time those integrations took", integrator.seconds)
        pool = services.pool
        yield _gauge("registry_pool_connections", "Connections the pool holds", pool.get_size())
        yield _gauge("registry_pool_in_use", "Connections lent out",
                     pool.get_size() - pool.get_idle_size())
        yield _gauge("registry_pool_max", "The pool's largest size", pool.get_max_size())
        # Pools made by registry/db/pool.py count their borrowers (tests may pass others).
        yield _gauge("registry_pool_waiting", "Borrowers waiting for a connection now",
                     getattr(pool, "waiting", 0))
        yield _counter("registry_pool_acquire_timeouts",
                       "Borrowers that waited their whole budget and were answered 503",
                       getattr(pool, "timeouts", 0))
        yield from _replica(services)
        tokens = services.tokens
        yield _counter("registry_token_cache_hits", "Tokens answered from memory", tokens.hits)
        yield _counter("registry_token_cache_misses", "Tokens read from PostgreSQL", tokens.misses)
        yield from _bureau(services)
        yield from _witnessing(services)
        expiry = services.expiry
        passes = getattr(expiry, "passes", 0)
        yield _counter("registry_expiry_passes", "Expiry passes run by this process", passes)


def _replica(services: Services) -> Iterator[Metric]:
    reads = services.reads
    if reads.replica is None:
        return
    staleness = reads.staleness()
    yield _gauge("registry_read_replica_fresh",
                 "1 while the read replica is within its lag bound and used, else 0",
                 1 if staleness <= reads.max_lag else 0)
    yield _gauge("registry_read_replica_staleness_seconds",
                 "How far behind a read from the replica could be now (+Inf: unknown)", staleness)
    yield _counter("registry_read_replica_reads", "Requests whose reads went to the replica",
                   reads.replica_reads)
    bypassed = CounterMetricFamily(
        "registry_read_replica_bypassed",
        "Requests that could have read from the replica and read from the primary, by why",
        labels=("reason",))
    for reason in ("lagging", "unavailable", "failed"):
        bypassed.add_metric((reason,), reads.bypassed[reason])
    yield bypassed


def _bureau(services: Services) -> Iterator[Metric]:
    from registry.bureau.runtime import BureauRuntime

    runtime = services.bureau
    if not isinstance(runtime, BureauRuntime):
        return
    yield _gauge("registry_access_records_queued",
                 "Bureau access records waiting to be written", runtime.recorder.queued())
    yield _counter("registry_access_records_written",
                   "Bureau access records written", runtime.recorder.written)
    yield _counter("registry_rate_limit_refusals",
                   "Bureau requests refused for their token's rate", runtime.limiter.refused)
    memo = runtime.profile_memo
    yield _counter("registry_profile_memo_hits",
                   "Bureau profiles sent without asking PostgreSQL", memo.trusted_hits)
    yield _counter("registry_profile_memo_checked",
                   "Bureau profiles sent from memory after one statement found them current",
                   memo.confirmed)
    yield _counter("registry_profile_memo_built",
                   "Bureau profiles built from the database (not held, or changed)", memo.built)
    warmer = runtime.profile_warmer
    if warmer is not None:
        yield _counter("registry_profile_warmer_built",
                       "Bureau profiles the warmer built ahead of a request", warmer.built)


def _witnessing(services: Services) -> Iterator[Metric]:
    # Labelled by witness name: names come from REGISTRY_WITNESSES (a few, configured),
    # never from requests.
    witnessing = services.witnessing
    if witnessing is None:
        return
    from registry.tlog.witnessing import FAILURE_KINDS, age_seconds

    collected = CounterMetricFamily(
        "registry_witness_cosignatures", "Verified cosignatures this process got and stored",
        labels=("witness",))
    failures = CounterMetricFamily(
        "registry_witness_failures", "add-checkpoint requests that gave no cosignature, by why",
        labels=("witness", "kind"))
    size = GaugeMetricFamily(
        "registry_witness_cosigned_size",
        "Tree size of the witness's newest stored cosignature (0: none yet)", labels=("witness",))
    age = GaugeMetricFamily(
        "registry_witness_cosignature_age_seconds",
        "Seconds since the witness's newest stored cosignature arrived (+Inf: none yet); "
        "grows while the log is idle too",
        labels=("witness",))
    up = GaugeMetricFamily(
        "registry_witness_up",
        "1 while the witness answers; 0 while its requests fail and are retried with backoff",
        labels=("witness",))
    now = datetime.now(UTC)
    for witness in witnessing.witnesses:
        name = (witness.name,)
        collected.add_metric(name, witness.collected)
        for kind in FAILURE_KINDS:
            failures.add_metric((witness.name, kind), witness.failures[kind])
        size.add_metric(name, 0 if witness.cosigned is None else witness.cosigned.size)
        age.add_metric(name, age_seconds(witness.cosigned, now))
        up.add_metric(name, 1 if witness.healthy else 0)
    yield from (collected, failures, size, age, up)
    yield _counter("registry_witnessing_rounds",
                   "Rounds of asking the witnesses to cosign the newest checkpoint",
                   witnessing.rounds)
    witnessed = 0 if witnessing.witnessed is None else witnessing.witnessed.size
    yield _gauge("registry_log_witnessed_size",
                 "Tree size of the newest checkpoint cosigned by a quorum of the witnesses "
                 "(REGISTRY_WITNESS_QUORUM; 0: none yet)", witnessed)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)
