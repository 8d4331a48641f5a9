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
        # The console's pages are for people, not an API (registry/console/router.py).
        if not route.path.startswith(("/schema", "/console"))
    }
    documented = set(doc["paths"])
    assert not [path for path in documented if path.startswith("/console")]
    assert any(route.path.startswith("/console/") for route in client.app.routes)

    def normalise(p: str) -> str:
        return p.replace(":uuid", "").replace(":path", "").replace(":str", "").replace(":int", "")

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


# ---- filters with a fixed set of values, and the bureaus' name lookup ----------------


async def _document(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _query_parameter(doc: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    [parameter] = [p for p in doc["paths"][path]["get"]["parameters"]
                   if p["in"] == "query" and p["name"] == name]
    found: dict[str, Any] = parameter
    return found


def _filters() -> list[tuple[str, str, tuple[str, ...]]]:
    """Each filter with a fixed set of values: path, parameter, the constant its route checks."""
    from registry import subjects
    from registry.api.records import GRADES
    from registry.credit import blacklist, records
    from registry.domain.objections import OBJECTION_STATES
    from registry.domain.repair import REPAIR_STATES

    return [
        ("/v1/blacklist", "state", blacklist.STATES),
        ("/v1/objections", "state", OBJECTION_STATES),
        ("/v1/repairs", "state", REPAIR_STATES),
        ("/v1/records", "grade", GRADES),
        ("/v1/records", "status", records.STATUSES),
        ("/v1/subjects", "kind", subjects.KINDS),
    ]


async def test_filters_with_fixed_values_are_documented_as_enums(client: Client) -> None:
    """A client (or a fuzzer) reads the accepted values from the document, the same constant
    the route checks against; a purpose stays free text (its values are deployment policy)."""
    doc = await _document(client)
    for path, name, values in _filters():
        assert _query_parameter(doc, path, name)["schema"]["enum"] == list(values), (path, name)
    assert "enum" not in _query_parameter(doc, "/v1/bureau/changes", "purpose")["schema"]


async def test_an_unknown_filter_value_is_still_our_422_naming_the_field(
    client: Client, regulator: dict[str, str]
) -> None:
    """The enum only documents: the route's own check answers, with the accepted list."""
    for path, name, values in _filters():
        response = await client.get(path, headers=regulator, params={name: "bogus"})
        assert response.status_code == 422, (path, response.text)
        body = response.json()
        assert body["field"] == name, (path, body)
        assert body["accepted"] == ", ".join(values), (path, body)


async def test_the_bureaus_name_lookup_is_documented(client: Client) -> None:
    """q required, organisations only and why, the page and its items as answered."""
    doc = await _document(client)
    operation = doc["paths"]["/v1/bureau/subjects"]["get"]
    assert _query_parameter(doc, "/v1/bureau/subjects", "q")["required"] is True
    assert "never found by name" in operation["description"]
    assert {"400", "401", "403", "422", "429"} <= set(operation["responses"])
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page == "#/components/schemas/OrganisationPage"
    item = doc["components"]["schemas"]["OrganisationMatch"]
    assert set(item["required"]) == {"credit_code", "name", "kind", "profile"}


async def test_a_duplicate_token_name_is_a_documented_409(client: Client,
                                                          admin: dict[str, str]) -> None:
    """The fuzzer once sent a name a live token held: the 409 was real but undocumented."""
    body = {"role": "bureau", "name": "征信机构甲"}
    assert (await client.post("/v1/admin/tokens", json=body, headers=admin)).status_code == 201
    again = await client.post("/v1/admin/tokens", json=body, headers=admin)
    assert again.status_code == 409
    doc = (await client.get("/schema/openapi.json")).json()
    assert "409" in doc["paths"]["/v1/admin/tokens"]["post"]["responses"]
