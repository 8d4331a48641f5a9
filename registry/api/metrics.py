"""``GET /metrics``: this process's Prometheus metrics (registry/metrics.py), for admins."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from registry.api.auth import BEARER, requires
from registry.api.openapi import problem_responses
from registry.metrics import CONTENT_TYPE
from registry.services import Services


@get(
    "/metrics",
    tags=["operations"],
    security=BEARER,
    middleware=[requires("admin")],
    responses=problem_responses(401, 403),
    summary="Prometheus metrics of this server process (admin token)",
    description="The text exposition format. Counters count since this process started; "
    "scrape every server process. The metrics are listed in docs/operations.md.",
    media_type=CONTENT_TYPE,
    cache=False,
)
async def metrics(services: NamedDependency[Services]) -> Response[bytes]:
    return Response(await services.metrics.scrape(services), media_type=CONTENT_TYPE)
