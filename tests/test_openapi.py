"""The OpenAPI document is complete: every route, its auth, its error answers."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/log/", "/public", "/robots.txt")


async def test_document_lists_every_route_with_its_errors(client: Client) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "Problem" in doc["components"]["schemas"]
    app_paths = {
        route.path
        for route in client.app.routes
        if not route.path.startswith("/schema")
    }
    documented = set(doc["paths"])
    normalise = lambda p: p.replace(":uuid", "").replace(":path", "").replace(":str", "").replace(":int", "")  # noqa: E731
    assert {normalise(p) for p in app_paths} <= documented | {"/"}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary") or operation.get("description"), (method, path)
            responses = operation["responses"]
            if not path.startswith(PUBLIC_PREFIXES):
                assert operation.get("security") == [{"bearer": []}], (method, path)
                assert {"401", "403"} <= set(responses), (method, path)
                for status in ("401", "403"):
                    content = responses[status]["content"]
                    assert "application/problem+json" in content, (method, path)


async def test_docs_ui_is_served(client: Client) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200
    assert "html" in page.headers["content-type"]
