"""The console's routes under ``/console``: one router, its CSRF middleware, its pages for
refusals, and the ``officer`` dependency (``auth.py``). Not in the OpenAPI document: these
are pages for people, not an API (the API they share use cases with is)."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from registry.console.auth import CONSOLE_ERRORS, provide_officer
from registry.console.csrf import ConsoleCsrf
from registry.console.dashboard_routes import DASHBOARD_HANDLERS
from registry.console.decision_routes import DECISION_HANDLERS
from registry.console.import_routes import IMPORT_HANDLERS
from registry.console.record_routes import RECORD_HANDLERS
from registry.console.session_routes import SESSION_HANDLERS
from registry.console.subject_routes import SUBJECT_HANDLERS


def console_router() -> Router:
    return Router(
        path="/console",
        route_handlers=[*SESSION_HANDLERS, *DASHBOARD_HANDLERS, *SUBJECT_HANDLERS,
                        *RECORD_HANDLERS, *DECISION_HANDLERS, *IMPORT_HANDLERS],
        middleware=[ConsoleCsrf],
        dependencies={"officer": Provide(provide_officer)},
        exception_handlers=CONSOLE_ERRORS,
        include_in_schema=False,
    )
