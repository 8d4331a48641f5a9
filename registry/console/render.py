"""The console's pages: Jinja2 templates ``registry/templates/console_*.html``.

Every page is personal (it shows what the signed-in official may do) and may show a
practitioner's document number unmasked, so none is ever stored by a cache
(``no-store``), and none may be framed or leak its address to another site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response

from registry.console.csrf import CSRF_FIELD, csrf_token
from registry.console.sessions import Officer

CONSOLE_TITLE: Final = "西宁市创业投资领域信用信息登记 · 监管工作台"
HTML: Final = "text/html; charset=utf-8"
CONSOLE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Language": "zh-CN",
}

_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
_ENV = Environment(
    loader=FileSystemLoader(str(_TEMPLATES)),
    autoescape=select_autoescape(["html"], default=True),
    auto_reload=False,
)


def render(request: Request[Any, Any, Any], name: str, *, officer: Officer | None,
           **context: Any) -> str:
    """``name`` rendered with what every console page needs: the title, who is signed in,
    and this request's CSRF token for its forms (``csrf_field``/``csrf_token``)."""
    return _ENV.get_template(name).render(
        console_title=CONSOLE_TITLE, officer=officer, csrf_field=CSRF_FIELD,
        csrf_token=csrf_token(request.scope), path=request.url.path, **context,
    )


def page(request: Request[Any, Any, Any], name: str, *, officer: Officer | None,
         status: int = 200, headers: dict[str, str] | None = None,
         **context: Any) -> Response[str]:
    html = render(request, name, officer=officer, **context)
    return Response(html, status_code=status, media_type=HTML,
                    headers={**CONSOLE_HEADERS, **(headers or {})})
