"""GET /metrics: Prometheus metrics of the running app, to an admin token only (issue 18)."""

from __future__ import annotations

import re

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.credit_helpers import log_size, subject

Client = AsyncTestClient[Litestar]


def _value(text: str, series: str) -> float:
    """The value of one series (name with its labels, as exposed) in the text format."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert found, f"{series} not exposed:\n{text[:3000]}"
    return float(found.group(1))


async def test_metrics_count_requests_by_route_template_and_read_the_log(
    client: Client, admin: dict[str, str], regulator: dict[str, str], db: asyncpg.Pool
) -> None:
    first = await subject(client, regulator)
    second = await subject(client, regulator, code="91630100MA7XU5DW8B")
    for sid in (first, second):
        assert (await client.get(f"/v1/subjects/{sid}", headers=regulator)).status_code == 200
    assert (await client.get("/no/such/path")).status_code == 404

    answer = await client.get("/metrics", headers=admin)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    # Both reads under one series: the route's template, not each id.
    assert _value(text, 'registry_http_requests_total{method="GET",route="/v1/subjects/{subject_id}",status="200"}') == 2  # noqa: E501
    assert _value(text, 'registry_http_requests_total{method="POST",route="/v1/subjects",status="201"}') == 2
    assert _value(text, 'registry_http_requests_total{method="GET",route="(unmatched)",status="404"}') == 1
    assert first not in text and second not in text
    assert _value(text, "registry_log_size") == await log_size(db)
    assert _value(text, "registry_log_unintegrated_leaves") >= 0
    assert _value(text, "registry_integrator_batches_total") >= 1
    assert _value(text, "registry_pool_connections") >= 1 and _value(text, "registry_pool_in_use") >= 0
    assert "registry_http_request_duration_seconds_bucket" in text
    assert "registry_access_records_queued" in text


async def test_metrics_are_for_admins_only(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    for headers in (regulator, bureau):
        assert (await client.get("/metrics", headers=headers)).status_code == 403
