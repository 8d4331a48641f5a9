"""Bad input and wrong tokens get 4xx problem details that name the field, never a 500."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
PROBLEM = "application/problem+json"


def assert_problem(response: object, status: int, field: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(PROBLEM)  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1A"}, 422, "credit_code"),
        ({"kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1"}, 422, "credit_code"),
        ({"kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKXIM"}, 422, "credit_code"),
        ({"kind": "bank", "name": "甲", "credit_code": "91630100MA752LKX1M"}, 400, "kind"),
        ({"name": "甲", "credit_code": "91630100MA752LKX1M"}, 400, "kind"),
        ({"kind": "vc_firm", "name": "甲" * 201, "credit_code": "91630100MA752LKX1M"}, 400, "name"),
        ({"kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1M", "extra": 1}, 400, None),
        ({"kind": "vc_firm", "name": "   ", "credit_code": "91630100MA752LKX1M"}, 422, "name"),
        ({"kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1M", "filing_date": "2024-13-01"},
         400, "filing_date"),
        ({"kind": "practitioner", "name": "乙", "document_type": "resident_id",
          "document_number": "630102199003071230"}, 422, "document_number"),
        ({"kind": "practitioner", "name": "乙", "document_type": "resident_id",
          "document_number": "630102199002301231"}, 422, "document_number"),
        ({"kind": "practitioner", "name": "乙", "document_type": "driving_licence",
          "document_number": "X1"}, 422, "document_type"),
        ([1, 2, 3], 400, None),
    ],
)
async def test_bad_subject_bodies(
    client: Client, regulator: dict[str, str], body: object, status: int, field: str | None
) -> None:
    response = await client.post("/v1/subjects", json=body, headers=regulator)
    problem = assert_problem(response, status, field)
    assert "630102199003071230" not in response.text
    assert problem.get("accepted") or problem.get("errors")


async def test_unknown_field_is_named(client: Client, regulator: dict[str, str]) -> None:
    response = await client.post(
        "/v1/subjects", headers=regulator,
        json={"kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1M", "colour": "red"})
    body = assert_problem(response, 400)
    assert "colour" in str(body["detail"])


async def test_malformed_json(client: Client, regulator: dict[str, str]) -> None:
    response = await client.post(
        "/v1/subjects", content=b'{"kind": "vc_firm", "name": ', headers={
            **regulator, "content-type": "application/json"})
    assert_problem(response, 400, "body")


async def test_oversize_body_is_413(client: Client, regulator: dict[str, str]) -> None:
    response = await client.post(
        "/v1/subjects", content=b'{"name": "' + b"x" * (5 * 1024 * 1024) + b'"}',
        headers={**regulator, "content-type": "application/json"})
    assert_problem(response, 413)


async def test_missing_token_is_401(client: Client) -> None:
    assert_problem(await client.get("/v1/subjects"), 401)


async def test_wrong_token_is_401(client: Client) -> None:
    assert_problem(await client.get("/v1/subjects", headers={"Authorization": "Bearer nope"}), 401)
    assert_problem(await client.get("/v1/subjects", headers={"Authorization": "Basic abc"}), 401)


async def test_wrong_role_is_403(client: Client, bureau: dict[str, str]) -> None:
    body = {"kind": "vc_firm", "name": "甲", "credit_code": "91630100MA752LKX1M"}
    assert_problem(await client.post("/v1/subjects", json=body, headers=bureau), 403)
    assert_problem(await client.get("/v1/admin/tokens", headers=bureau), 403)


async def test_bad_path_and_query_parameters(client: Client, regulator: dict[str, str]) -> None:
    assert_problem(await client.get("/v1/subjects/not-a-uuid", headers=regulator), 404)
    assert_problem(
        await client.get("/v1/subjects/00000000-0000-0000-0000-000000000000", headers=regulator), 404)
    assert_problem(await client.get("/v1/subjects?limit=0", headers=regulator), 400, "limit")
    assert_problem(await client.get("/v1/subjects?kind=bank", headers=regulator), 422, "kind")
    assert_problem(await client.get("/v1/subjects?cursor=zzz", headers=regulator), 422, "cursor")
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.delete("/v1/subjects"), 405)
