"""``/console/``: 待办, the official's work waiting today (``todo.py`` gathers it)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from registry.console.names import label
from registry.console.render import page
from registry.console.sessions import Officer
from registry.console.todo import LEAVING_WITHIN_DAYS, SECTION_LIMIT, todo_for
from registry.services import Services


@get("/")
async def dashboard(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                    services: NamedDependency[Services]) -> Response[str]:
    # The primary, not a replica: what the official has just done must be here.
    todo = await todo_for(services, officer.principal)
    return page(request, "console_dashboard.html", officer=officer, title="待办", todo=todo,
                leaving_days=LEAVING_WITHIN_DAYS, section_limit=SECTION_LIMIT, label=label)


DASHBOARD_HANDLERS = [dashboard]
