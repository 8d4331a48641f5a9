"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from msgspec import Struct

from registry.db.migrate import pending_migrations
from registry.services import Services


class Health(Struct):
    status: str
    checks: dict[str, str] | None = None


@get("/healthz", tags=["health"], summary="The process is up", cache=False)
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    tags=["health"],
    summary="Database reachable, migrations applied, log key loaded",
    description="200 when every check is `ok`; otherwise 503 with Retry-After and the checks "
    "that failed (a migration pending, the database unreachable, no log key).",
    # Documented, so that clients (and the fuzzer) know the not-ready answer is part of
    # the contract: it was answered during a deployment's migration and was undocumented.
    responses={503: ResponseSpec(data_container=Health, description="Not ready")},
    cache=False,
)
async def readyz(services: NamedDependency[Services]) -> Response[Any]:
    checks: dict[str, str] = {}
    try:
        async with services.pool.acquire(timeout=2) as conn:
            checks["database"] = "ok"
            pending = await pending_migrations(conn)
            checks["migrations"] = "ok" if not pending else f"{len(pending)} pending"
    except Exception as error:  # readiness reports any failure rather than raising it
        checks.setdefault("database", f"unreachable ({type(error).__name__})")
        checks.setdefault("migrations", "unknown")
    checks["log_key"] = "ok" if services.integrator.key is not None else "missing"
    ready = all(v == "ok" for v in checks.values())
    return Response(
        Health(status="ready" if ready else "not ready", checks=checks),
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "2"},
    )
