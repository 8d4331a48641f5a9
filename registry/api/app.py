"""``create_app()``: the Litestar application for every audience."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from registry.api.admin import AuthorityController, TokenController
from registry.api.auth import provide_principal
from registry.api.body_guard import screen_request
from registry.api.docs import docs_assets, front_door
from registry.api.health import healthz, readyz
from registry.api.middleware import edge
from registry.api.openapi import (
    AmountSchemaPlugin,
    StrictStructSchemaPlugin,
    openapi_config,
    state_query_text_rule,
)
from registry.api.prefer import preference_applied, provide_services
from registry.api.problems import EXCEPTION_HANDLERS
from registry.api.public import PAGE_SECURITY
from registry.api.public_errors import unknown_pages_in_html
from registry.api.subjects import AffiliationController, SubjectController
from registry.bootstrap import close_services, open_services
from registry.clock import Clock
from registry.domain.policy import Policy
from registry.imports.jobs import ImportJobs
from registry.logging import configure_logging
from registry.settings import Settings

VERSION = "0.1.0"


def _provide_import_jobs(state: State) -> ImportJobs:
    jobs: ImportJobs = state.import_jobs
    return jobs


def route_handlers() -> Sequence[ControllerRouterHandler]:
    from registry.api.blacklist import BlacklistController
    from registry.api.bureau import AccessRecordController, BureauController
    from registry.api.fund_managers import FundManagerController, SubjectFundManagerController
    from registry.api.imports import ImportController
    from registry.api.log import LOG_HANDLERS
    from registry.api.metrics import metrics
    from registry.api.objections import ObjectionController, RepairController
    from registry.api.public import PUBLIC_HANDLERS
    from registry.api.records import CreditHistoryController, RecordController
    from registry.console.router import console_router

    return [
        front_door,
        docs_assets(),
        healthz,
        readyz,
        metrics,
        SubjectController,
        AffiliationController,
        SubjectFundManagerController,
        FundManagerController,
        RecordController,
        ImportController,
        CreditHistoryController,
        BlacklistController,
        ObjectionController,
        RepairController,
        TokenController,
        AuthorityController,
        BureauController,
        AccessRecordController,
        Router(path="/log", route_handlers=LOG_HANDLERS, tags=["audit log"]),
        *PUBLIC_HANDLERS,
        console_router(),
    ]


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    database_url: str | None = None,
    policy: Policy | None = None,
    configure_logs: bool = True,
) -> Litestar:
    settings = settings or Settings.from_env()
    if configure_logs:
        configure_logging(settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await open_services(settings, clock=clock, url=database_url, policy=policy)
        app.state.services = services
        # Imports uploaded over HTTP run in the background of this app (imports/jobs.py).
        app.state.import_jobs = ImportJobs(services)
        app.state.import_jobs.start()
        try:
            yield
        finally:
            await app.state.import_jobs.stop()
            await close_services(services)

    handlers: list[Any] = list(route_handlers())
    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        dependencies={
            # A request's view of them: `Prefer: witnessed` rides on it (api/prefer.py).
            "services": Provide(provide_services, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "import_jobs": Provide(_provide_import_jobs, sync_to_thread=False),
        },
        # A browser's unknown page under /public/ gets the Chinese 404 page, not JSON
        # (api/public_errors.py); the routes' own refusals are their handlers' business.
        exception_handlers=unknown_pages_in_html(EXCEPTION_HANDLERS, PAGE_SECURITY),
        # Before any body is decoded: a body that is not JSON is a 415, nesting that would
        # overflow the decoder a 400 (api/body_guard.py).
        before_request=screen_request,
        # `Preference-Applied: witnessed` when a receipt honoured the preference; without
        # witnesses no receipt can, and no answer pays for the look.
        before_send=[preference_applied] if settings.witnesses else [],
        openapi_config=openapi_config(VERSION),
        plugins=[StrictStructSchemaPlugin(), AmountSchemaPlugin()],
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
        debug=False,
    )
    # Around routing and Litestar's exception layer, so that every answer, refusals before
    # a route included, has a request id and a log line (api/middleware.py).
    app.asgi_handler = edge(app.asgi_handler)
    state_query_text_rule(app)
    return app
