"""``/console/``: 待办, the official's work waiting today."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from registry.console.render import page
from registry.console.sessions import Officer


@get("/")
async def dashboard(request: Request[Any, Any, Any], officer: NamedDependency[Officer]) -> Response[str]:
    return page(request, "console_dashboard.html", officer=officer, title="待办")


DASHBOARD_HANDLERS = [dashboard]
