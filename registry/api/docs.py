"""The API documentation, served whole from this server, and the front door ``/``.

The docs used to load their script from a CDN, so they were blank without internet (the
machines of the city's member units often have none). Swagger UI's files now come with
the installed ``swagger-ui-py`` package and are served under ``/schema/assets/``; the
page's one script of our own is a file too, so the page runs under the edge's default
Content-Security-Policy for HTML (api/middleware.py), which allows no inline script.
"""

from __future__ import annotations

from html import escape
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Final

from litestar import Request, get
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

DOCS_PATH: Final = "/swagger"
ASSETS: Final = "/schema/assets"


def _swagger_files() -> Path:
    # Found, not imported: the package's Python side (its framework adapters) is not used.
    spec = find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("couldn't find Swagger UI's files: install the package swagger-ui-py")
    return Path(spec.origin).parent / "static"


_OUR_FILES: Final = Path(__file__).parent.parent / "static"


class OfflineSwagger(OpenAPIRenderPlugin):
    """Swagger UI from local files only (``/schema/swagger``, and ``/schema``)."""

    def __init__(self) -> None:
        super().__init__(path=[DOCS_PATH, "/"])

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec = escape(self.get_openapi_json_route(request))
        return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/swagger-ui-standalone-preset.js"></script>
<script src="{ASSETS}/api-docs.js"></script>
</head>
<body><div id="swagger-ui" data-spec="{spec}"></div></body>
</html>
""".encode()


def docs_assets() -> ControllerRouterHandler:
    return create_static_files_router(
        path=ASSETS,
        directories=[_OUR_FILES, _swagger_files()],
        include_in_schema=False,
        # Files of the installed version: a day in caches, revalidated after.
        cache_control=None,
        name="docs_assets",
    )


@get("/", include_in_schema=False, sync_to_thread=False)
def front_door() -> Redirect:
    """``/`` leads to the public disclosure page, the registry's page for everyone."""
    return Redirect("/public/", status_code=302)
