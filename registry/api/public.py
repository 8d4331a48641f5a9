"""Public routes for 信用西宁: the signed feed, the web page, the exchange exports.

No token: these are the anonymous audience. Everything shown goes through
``registry.publish.selection``; nothing here decides what is public.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, Final

from litestar import Request, Response, Router, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import FromPath, Parameter
from litestar.response import Stream
from litestar.types import ControllerRouterHandler
from msgspec import Struct

from registry.api.openapi import problem_responses
from registry.api.problems import PROBLEM_JSON
from registry.api.public_errors import html_exception_handlers
from registry.clock import today
from registry.errors import NotFound
from registry.publish import exports, feed, labels, page
from registry.publish.selection import BEIJING, check_as_of
from registry.services import Services
from registry.text import clean_query

FEED_CACHE: Final = "public, max-age=60, must-revalidate"
PAGE_CACHE: Final = "public, max-age=60"
EXPORT_CACHE: Final = "public, max-age=300"
DEFAULT_FEED_LIMIT: Final = 50
# Litestar adds "; charset=utf-8" to every text/* type itself: never write it twice.
HTML: Final = "text/html"

Before = Annotated[int | None, Parameter(ge=1, le=2**53 - 1,
                                         description="`seq` of the last entry of the previous page")]
Limit = Annotated[int, Parameter(ge=1, le=feed.MAX_PAGE)]


def _base(services: Services) -> str:
    # Configured, never the request's Host: a `Host: evil.example` must not put its links
    # into a page that caches serve to everyone (REGISTRY_PUBLIC_URL, docs/operations.md).
    return services.settings.public_url


def _not_modified(request: Request[Any, Any, Any], etag: str, validator: feed.Validator) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        return any(tag.strip() in (etag, "*", "W/" + etag) for tag in match.split(","))
    since = request.headers.get("if-modified-since")
    if since:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return when.tzinfo is not None and validator.last_modified <= when
    return False


async def _feed(
    request: Request[Any, Any, Any], services: Services, before: int | None, limit: int, fmt: str
) -> Response[bytes]:
    # One pool for the whole answer: the validator and the page from the same database.
    services = services.reading()
    day = today(services.clock)
    validator = await feed.validator(services, day)
    etag = validator.etag(fmt, before, limit)
    headers = {
        "ETag": etag,
        "Last-Modified": validator.last_modified_header,
        "Cache-Control": FEED_CACHE,
    }
    media = "application/json" if fmt == "json" else "application/atom+xml; charset=utf-8"
    if _not_modified(request, etag, validator):
        return Response(b"", status_code=304, headers=headers, media_type=media)
    base = _base(services)
    # Equal validators mean equal pages (feed.Validator), so a rendered page is
    # reused while the log has not grown and the day has not changed.
    cache_key = (etag, base)
    pages = services.feed_pages
    body = pages.get(cache_key)
    services.metrics.feed_pages.labels("hit" if body is not None else "miss").inc()
    if body is None:
        body = await _render_feed(services, validator, day, before, limit, fmt, base)
        pages[cache_key] = body
        if len(pages) > _FEED_PAGE_CACHE_SIZE:
            pages.popitem(last=False)
    return Response(body, media_type=media, headers=headers)


_FEED_PAGE_CACHE_SIZE: Final = 256


async def _render_feed(services: Services, validator: feed.Validator, day: date,
                       before: int | None, limit: int, fmt: str, base: str) -> bytes:
    result = await feed.feed_page(services, day, before, limit)
    path = f"{base}/public/feed.{fmt}"
    self_url = feed.page_url(path, before, limit, DEFAULT_FEED_LIMIT)
    next_url = (
        feed.page_url(path, result.next_before, limit, DEFAULT_FEED_LIMIT)
        if result.next_before is not None
        else None
    )
    verifier = services.integrator.key.verifier
    if fmt == "json":
        return feed.feed_json(result, self_url=self_url, next_url=next_url, verifier=verifier,
                              updated=validator.last_modified)
    return feed.feed_atom(result, base_url=base, self_url=self_url, next_url=next_url,
                          updated=validator.last_modified, verifier=verifier)


class FeedDocument(Struct):
    """The JSON feed (format ``https://registry.example/public-feed/v1``)."""

    version: str
    title: str
    feed_url: str
    next_url: str | None
    updated: str
    verifier_key: str
    signature_over: str
    entries: list[dict[str, Any]]


@get("/feed.json", summary="Disclosure feed (JSON), newest first, each entry signed",
     description="Keyset pages by `before`; see README 'Public disclosure' for the format.",
     responses={200: ResponseSpec(data_container=FeedDocument, description="A feed page"),
                304: ResponseSpec(None, description="Not modified"), **problem_responses(400)},
     media_type="application/json")
async def feed_json(request: Request[Any, Any, Any], services: NamedDependency[Services],
                    before: Before = None, limit: Limit = DEFAULT_FEED_LIMIT) -> Response[bytes]:
    return await _feed(request, services, before, limit, "json")


@get("/feed.atom", summary="Disclosure feed (Atom), newest first, each entry signed",
     responses={304: ResponseSpec(None, description="Not modified"), **problem_responses(400)},
     media_type="application/atom+xml")
async def feed_atom(request: Request[Any, Any, Any], services: NamedDependency[Services],
                    before: Before = None, limit: Limit = DEFAULT_FEED_LIMIT) -> Response[bytes]:
    return await _feed(request, services, before, limit, "atom")


# The pages run no script at all and style themselves inline: a CSP that allows nothing
# else means injected markup can neither run code nor load anything, and no other site may
# frame the pages (clickjacking).
PAGE_SECURITY: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# A page's refusal is a page in Chinese for a browser, problem JSON for anyone else
# (api/public_errors.py); the feeds and exports keep the app's plain handlers.
PAGE_ERRORS: Final = html_exception_handlers(PAGE_SECURITY)


@dataclass
class PageOperation(Operation):
    """A page's OpenAPI operation: each documented problem answer may also be the page
    (``text/html``) that a browser gets, so clients and fuzzers expect either."""

    def __post_init__(self) -> None:
        for response in (self.responses or {}).values():
            if isinstance(response, OpenAPIResponse) and PROBLEM_JSON in (response.content or {}):
                response.content = {**(response.content or {}),
                                    HTML: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}
                response.description += (
                    "; a browser (Accept: text/html) gets a page in Simplified Chinese")


def _html(body: str, status: int = 200) -> Response[str]:
    return Response(body, media_type=HTML, status_code=status,
                    headers={"Cache-Control": PAGE_CACHE, **PAGE_SECURITY})


def _next(path: str, q: str | None, before: int | None) -> str | None:
    if before is None:
        return None
    from urllib.parse import urlencode

    params: dict[str, Any] = {"before": before}
    if q:
        params["q"] = q
    return f"{path}?{urlencode(params)}"


Query = Annotated[str | None, Parameter(
    max_length=100,
    description="part of a name, a credit code (or its start) or a decision number; Simplified "
    "or Traditional, full- or half-width, any case (registry/search.py)",
)]


@get("/", summary="Public page: search, newest penalties", media_type=HTML,
     responses=problem_responses(400), exception_handlers=PAGE_ERRORS,
     operation_class=PageOperation)
async def home(services: NamedDependency[Services], q: Query = None,
               before: Before = None) -> Response[str]:
    q = clean_query(q, "q")
    day = today(services.clock)
    items, next_before = await page.list_page(
        services.reading(), day, what="search" if q else "penalties", q=q, before=before)
    heading = labels.search_heading(q) if q else labels.LATEST_PENALTIES
    return _html(page.render("public_list.html", heading=heading, items=items, q=q,
                             next_href=_next("/public/", q, next_before)))


@get("/penalties", summary="Public page: current penalties", media_type=HTML,
     responses=problem_responses(400), exception_handlers=PAGE_ERRORS,
     operation_class=PageOperation)
async def penalties(services: NamedDependency[Services], before: Before = None) -> Response[str]:
    items, next_before = await page.list_page(
        services.reading(), today(services.clock), what="penalties", q=None, before=before)
    return _html(page.render("public_list.html", heading=labels.PENALTIES, items=items, q=None,
                             next_href=_next("/public/penalties", None, next_before)))


@get("/blacklist", summary="Public page: the serious-dishonesty list", media_type=HTML,
     responses=problem_responses(400), exception_handlers=PAGE_ERRORS,
     operation_class=PageOperation)
async def blacklist(services: NamedDependency[Services], before: Before = None) -> Response[str]:
    items, next_before = await page.list_page(
        services.reading(), today(services.clock), what="blacklist", q=None, before=before)
    return _html(page.render("public_list.html", heading=labels.BLACKLIST_HEADING,
                             items=items, q=None,
                             next_href=_next("/public/blacklist", None, next_before)))


async def _detail(services: Services, what: str, item_id: uuid.UUID) -> Response[str]:
    services = services.reading()
    context = await page.detail(services, today(services.clock), what, item_id)
    if context is None:
        raise NotFound("no public item with this id (it may have left its publicity period)")
    return _html(page.render("public_detail.html", **context))


@get("/records/{item_id:uuid}", summary="Public page: one record", media_type=HTML,
     responses=problem_responses(404), exception_handlers=PAGE_ERRORS,
     operation_class=PageOperation)
async def record_detail(services: NamedDependency[Services],
                        item_id: FromPath[uuid.UUID]) -> Response[str]:
    return await _detail(services, "record", item_id)


@get("/blacklist/{item_id:uuid}", summary="Public page: one listing", media_type=HTML,
     responses=problem_responses(404), exception_handlers=PAGE_ERRORS,
     operation_class=PageOperation)
async def listing_detail(services: NamedDependency[Services],
                         item_id: FromPath[uuid.UUID]) -> Response[str]:
    return await _detail(services, "listing", item_id)


AsOf = Annotated[datetime | None, Parameter(
    description="RFC 3339 moment the export is taken at (default now; not in the future): "
                "a snapshot of that moment, each item in the version it had then (grade and "
                "corrections included) and exported if it was in publication on that day, "
                "even if it has since been revoked, repaired or has expired")]


def _export(services: Services, name: str, fmt: str, as_of: datetime | None) -> Stream:
    services = services.reading()
    now = services.clock.now()
    moment = check_as_of(as_of, now)
    # People read the file name: the moment in Beijing time, with its offset.
    stamp = moment.astimezone(BEIJING).strftime("%Y%m%dT%H%M%S+0800")
    if fmt == "csv":
        source = exports.stream_csv(services, name, moment, snapshot=as_of is not None)
        media = "text/csv"
    else:
        source = exports.stream_json(services, name, moment, snapshot=as_of is not None)
        media = "application/json"
    return Stream(
        source,
        media_type=media,
        headers={
            "Cache-Control": EXPORT_CACHE if as_of is not None else "public, max-age=60",
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"',
        },
    )


@get("/exports/{name:str}", summary="Exports for the exchange platform (CSV with BOM, or JSON)",
     description="`penalties.csv`, `penalties.json`, `blacklist.csv`, `blacklist.json`; streamed "
                 "from one REPEATABLE READ snapshot.",
     responses=problem_responses(400, 404, 422))
async def export(services: NamedDependency[Services], name: FromPath[str],
                 as_of: AsOf = None) -> Stream:
    base, _, fmt = name.partition(".")
    if base not in exports.EXPORTS or fmt not in ("csv", "json"):
        raise NotFound("exports are penalties.csv, penalties.json, blacklist.csv, blacklist.json")
    return _export(services, base, fmt, as_of)


ROBOTS: Final = (
    f"# {labels.SITE_TITLE}：欢迎抓取公示页面；导出文件和接口请勿抓取。\n"
    "User-agent: *\n"
    "Allow: /public/\n"
    "Disallow: /public/exports/\n"
    "Disallow: /v1/\n"
    "Disallow: /log/\n"
)


@get("/robots.txt", summary="Crawlers: the public page yes, exports and APIs no",
     media_type="text/plain")
async def robots() -> Response[str]:
    return Response(ROBOTS, media_type="text/plain",
                    headers={"Cache-Control": "public, max-age=86400"})


PUBLIC_ROUTER = Router(
    path="/public",
    route_handlers=[feed_json, feed_atom, home, penalties, blacklist, record_detail,
                    listing_detail, export],
    tags=["public disclosure"],
)
PUBLIC_HANDLERS: list[ControllerRouterHandler] = [PUBLIC_ROUTER, robots]
