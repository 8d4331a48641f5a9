"""End-to-end smoke: the app starts on a fresh database and a regulator creates a subject."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient


async def test_health_and_create_firm(
    client: AsyncTestClient[Litestar], regulator: dict[str, str]
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    response = await client.post(
        "/v1/subjects",
        json={"kind": "vc_firm", "name": "西寧創新投資有限公司", "credit_code": "91350100M000100Y43"},
        headers=regulator,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["receipt"]["log_index"] == body["log_index"]
    again = await client.get(f"/v1/subjects/{body['id']}", headers=regulator)
    assert again.json()["credit_code"] == "91350100M000100Y43"
