"""Hostile input gets a 4xx problem naming what was wrong, and the server keeps serving.

Every case of issue 15's list that is about the request as a whole (content types, sizes,
nesting, odd characters and numbers, query parameters) plus the edge's promises: a request
id and a log line on every answer (refusals included), HEAD wherever GET is, one charset,
links that never come from ``Host``, API docs that need no internet. Field-level rules
(record items, text normalisation) have their own modules: test_record_rules.py,
test_text_input.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from registry.api.body_guard import MAX_DEPTH
from tests.conftest import bearer, issue

Client = AsyncTestClient[Litestar]
PROBLEM = "application/problem+json"
_PATH_PARAM = re.compile(r"\{(\w+):(\w+)\}")
_FILLERS = {"uuid": str(uuid.uuid4()), "int": "1", "str": "x", "path": "x", "date": "2026-03-02"}


def _concrete(path: str) -> str:
    return _PATH_PARAM.sub(lambda m: _FILLERS.get(m.group(2), "x"), path)


def _body_routes(app: Litestar) -> Iterator[tuple[str, str]]:
    """(method, concrete path) of every route whose handler reads a body."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "data" not in handler.parsed_fn_signature.parameters:
                continue
            for method in sorted(handler.http_methods & {"POST", "PUT", "PATCH"}):
                yield method, _concrete(route.path)


def _get_routes(app: Litestar) -> Iterator[str]:
    for route in app.routes:
        if isinstance(route, HTTPRoute) and "GET" in route.methods and "{" not in route.path:
            yield route.path


@pytest.fixture
async def tokens(client: Client, db: Any) -> dict[str, dict[str, str]]:
    return {role: bearer(await issue(db, role)) for role in ("regulator", "bureau", "admin")}


async def _authorised(client: Client, method: str, path: str, tokens: dict[str, dict[str, str]],
                      *, extra: dict[str, str], content: bytes) -> Any:
    """The answer for the first role the route lets through (401/403 are someone else's)."""
    response = None
    for headers in tokens.values():
        response = await client.request(method, path, headers=headers | extra, content=content)
        if response.status_code not in (401, 403):
            return response
    return response


def _problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/xml",
     "application/json; charset=latin-1", "multipart/form-data; boundary=x"],
)
async def test_every_body_route_refuses_a_body_that_is_not_json(
    app: Litestar, client: Client, tokens: dict[str, dict[str, str]], content_type: str | None
) -> None:
    """415 naming Content-Type and what is accepted, on every route that reads a body."""
    routes = list(_body_routes(app))
    assert len(routes) >= 15, routes  # the enumeration itself works
    for method, path in routes:
        extra = {"Content-Type": content_type} if content_type else {}
        response = await _authorised(client, method, path, tokens, extra=extra, content=b'{"a": 1}')
        body = _problem(response, 415, "Content-Type")
        assert "application/json" in body["accepted"]
        assert body["source"] == "header"
        assert response.headers.get("accept-post" if method != "PATCH" else "accept-patch") \
            == "application/json"


async def test_json_with_its_charset_is_accepted(client: Client, regulator: dict[str, str]) -> None:
    body = json.dumps({"kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1M"})
    for content_type in ("application/json", "Application/JSON; charset=UTF-8",
                         'application/json; charset="utf-8"'):
        response = await client.post("/v1/subjects", content=body.encode(),
                                     headers={**regulator, "Content-Type": content_type})
        assert response.status_code in (201, 409), response.text


async def test_nesting_ten_thousand_levels_deep_is_a_400(
    client: Client, bureau: dict[str, str]
) -> None:
    for body in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        response = await client.post("/v1/bureau/profiles/bulk", content=body,
                                     headers={**bureau, "Content-Type": "application/json"})
        problem = _problem(response, 400, "body")
        assert str(MAX_DEPTH) in problem["accepted"]


async def test_a_five_megabyte_string_is_a_413_stating_the_limit(
    client: Client, regulator: dict[str, str], settings: Any
) -> None:
    body = json.dumps({"kind": "vc_firm", "name": "甲" * (5 * 1024 * 1024 // 3),
                       "credit_code": "91630100MA752LKX1M"}).encode()
    response = await client.post("/v1/subjects", content=body,
                                 headers={**regulator, "Content-Type": "application/json"})
    problem = _problem(response, 413, "body")
    assert problem["limit_bytes"] == settings.max_body_bytes
    assert str(settings.max_body_bytes) in problem["detail"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        # A lone surrogate is not a character: no UTF-8 can hold it (the decoder refuses
        # the document, so the answer names the body and the byte).
        (b'{"kind": "vc_firm", "name": "\\ud800", "credit_code": "91630100MA752LKX1M"}', "body"),
        (b'{"kind": "vc_firm", "name": "\\u0000", "credit_code": "91630100MA752LKX1M"}', "name"),
        (b'{"kind": "vc_firm", "name": "a\\u202eb", "credit_code": "91630100MA752LKX1M"}', "name"),
        (b'{"kind": "vc_firm", "name": "\\u200b", "credit_code": "91630100MA752LKX1M"}', "name"),
        (b'{"kind": "vc_firm", "name": "\xff\xfe", "credit_code": "91630100MA752LKX1M"}', None),
        (b'{"kind": "vc_firm", "name": "x", "credit_code": 9' + b"9" * 400 + b"}", "credit_code"),
        (b'{"kind": "vc_firm", "name": "x", "credit_code": "91630100MA752LKX1M", '
         b'"filing_date": "2024-02-30"}', "filing_date"),
    ],
)
async def test_odd_characters_and_numbers_are_named(
    client: Client, regulator: dict[str, str], db: Any, raw: bytes, field: str | None
) -> None:
    response = await client.post("/v1/subjects", content=raw,
                                 headers={**regulator, "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    body = _problem(response, response.status_code, field)
    assert body.get("accepted") or body.get("errors"), body
    assert await db.fetchval("SELECT count(*) FROM subjects") == 0


async def test_a_number_of_400_digits_where_a_count_goes(
    client: Client, regulator: dict[str, str]
) -> None:
    response = await client.get("/v1/subjects?limit=" + "9" * 400, headers=regulator)
    body = _problem(response, 400, "limit")
    assert body["errors"][0]["source"] == "query"


async def test_a_missing_query_parameter_is_named_as_one(client: Client) -> None:
    """Not reported as `body`: an inclusion proof needs its `index`."""
    response = await client.get("/log/proof/inclusion?size=1")
    body = _problem(response, 400, "index")
    assert body["errors"][0]["source"] == "query"


@pytest.mark.parametrize("value", ["%00", "a%0Ab", "%7F", "%C2%85"])
async def test_control_characters_in_a_query_are_a_400_naming_the_parameter(
    client: Client, regulator: dict[str, str], value: str
) -> None:
    for path, headers in ((f"/v1/subjects?name_prefix={value}", regulator),
                          (f"/public/?q={value}", {})):
        response = await client.get(path, headers=headers)
        body = _problem(response, 400, "name_prefix" if "name_prefix" in path else "q")
        assert body["source"] == "query"
        assert "U+00" in body["reason"] or "U+007F" in body["reason"]


async def test_the_server_keeps_serving_and_logs_no_error(
    app: Litestar, client: Client, tokens: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The corpus once more over every body route, with a recorder on the error log."""
    import registry.api.problems as problems

    seen: list[tuple[str, str]] = []

    class Recorder:
        def __getattr__(self, level: str) -> Any:
            return lambda event, **_: seen.append((level, event))

    monkeypatch.setattr(problems, "log", Recorder())
    corpus = [b"[" * 10_000, b'"\\ud800"', b"\x00", b"9" * 400, b'{"a":' + b"1" * 400 + b"}",
              b"null", b"[]", b'{"version": 1e999}', b'{"\xc3\x28": 1}']
    for method, path in _body_routes(app):
        for raw in corpus:
            response = await _authorised(client, method, path, tokens,
                                         extra={"Content-Type": "application/json"}, content=raw)
            assert 400 <= response.status_code < 500, (method, path, raw[:20], response.text)
    assert not [s for s in seen if s[0] in ("error", "exception", "critical")], seen
    assert (await client.get("/healthz")).status_code == 200


async def test_refusals_before_a_route_carry_a_request_id_and_their_status_in_the_log(
    client: Client, bureau: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import registry.api.middleware as middleware

    lines: list[tuple[str, str, int]] = []
    monkeypatch.setattr(middleware, "log_request",
                        lambda method, path, status, ms, rid: lines.append((method, path, status)))
    for path, headers, status in (("/v1/subjects", {}, 401),
                                  ("/v1/subjects", bureau, 403),
                                  ("/no/such/route", {}, 404)):
        response = await client.get(path, headers={**headers, "X-Request-ID": "hostile-test-1"})
        assert response.status_code == status
        assert response.headers["x-request-id"] == "hostile-test-1"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert lines[-1] == ("GET", path, status)


async def test_head_wherever_get_is(app: Litestar, client: Client) -> None:
    paths = [p for p in _get_routes(app) if p.startswith(("/public", "/log", "/healthz", "/schema"))]
    assert "/public/" in paths or "/public" in paths
    for path in paths:
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b""
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        if "content-length" in got.headers:
            assert head.headers["content-length"] == got.headers["content-length"], path


async def test_options_and_405_list_head_with_get(client: Client) -> None:
    response = await client.request("DELETE", "/public/")
    assert response.status_code == 405
    assert "HEAD" in response.headers["allow"] and "GET" in response.headers["allow"]


async def test_the_front_door_leads_to_the_public_page(client: Client) -> None:
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/public/"


async def test_every_answer_names_one_charset(app: Litestar, client: Client) -> None:
    paths = [p for p in _get_routes(app) if p.startswith(("/public", "/log", "/healthz", "/schema"))]
    for path in [*paths, "/no/such/route"]:
        content_type = (await client.get(path)).headers.get("content-type", "")
        assert content_type.lower().count("charset") <= 1, (path, content_type)


async def test_links_come_from_the_configured_public_url_never_host(
    client: Client, settings: Any
) -> None:
    for path in ("/public/feed.json", "/public/feed.atom"):
        response = await client.get(path, headers={"Host": "evil.example",
                                                   "X-Forwarded-Host": "evil.example",
                                                   "X-Forwarded-Proto": "gopher"})
        assert response.status_code == 200
        assert "evil.example" not in response.text and "gopher" not in response.text
        assert settings.public_url + "/public/feed." in response.text


async def test_the_api_docs_need_no_internet(client: Client) -> None:
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/schema/assets/") for a in assets), assets
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200 and len(served.content) > 100, asset
    policy = page.headers["content-security-policy"]
    script_src = re.search(r"script-src ([^;]+)", policy)
    assert script_src and "unsafe-inline" not in script_src.group(1)
    assert "<script>" not in page.text and "frame-ancestors 'none'" in policy
    assert (await client.get("/schema")).status_code == 200


@pytest.mark.parametrize("filing_date", ["9999-12-31", "1900-01-01", "0001-01-01"])
async def test_absurd_filing_dates_are_refused(
    client: Client, regulator: dict[str, str], db: Any, filing_date: str
) -> None:
    response = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1M",
        "filing_date": filing_date})
    body = _problem(response, 422, "filing_date")
    assert "1990-01-01" in body["accepted"]
    assert await db.fetchval("SELECT count(*) FROM subjects") == 0


async def test_an_affiliation_cannot_end_in_the_year_9999(
    client: Client, regulator: dict[str, str]
) -> None:
    org = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1M"})
    person = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "practitioner", "name": "乙", "document_type": "resident_id",
        "document_number": "630102199003071231"})
    assert org.status_code == person.status_code == 201, (org.text, person.text)
    response = await client.post(
        f"/v1/subjects/{person.json()['id']}/affiliations", headers=regulator,
        json={"organisation_id": org.json()["id"], "role": "投资经理",
              "valid_from": "2020-01-01", "valid_to": "9999-12-31"})
    body = _problem(response, 422, "valid_to")
    assert "50 years" in body["reason"]


@pytest.mark.parametrize("query", ["q=a&q=b", "before=5.0", "before=1e3", "limit=5&limit=6"])
async def test_repeated_or_non_integer_query_values_are_a_400(client: Client, query: str) -> None:
    """Litestar would read the last value, or 5.0 as 5: the client would never know."""
    response = await client.get(f"/public/?{query}")
    body = _problem(response, 400)
    assert body["field"] in query and body["source"] == "query"
