"""GET /metrics: Prometheus metrics of the running app, to an admin token only, or without
one on the loopback-only ``--metrics-port`` (issue 18)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry import metrics_port
from tests.credit_helpers import log_size, subject
from tests.fault_helpers import free_port, servers_stopped, start_server, wait_ready

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


def _listening_addresses(port: int) -> set[str]:
    """The IPv4/IPv6 addresses a socket of this machine listens on at ``port`` (from /proc)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


async def test_metrics_port_serves_without_a_token_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    server = start_server("", tmp_path, serve_args=("--metrics-port", str(port)))
    with servers_stopped(server):
        await wait_ready(server)
        # 0100007F: 127.0.0.1 as /proc/net/tcp writes it; nothing on 0.0.0.0 or IPv6.
        assert _listening_addresses(port) == {"0100007F"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as plain:
            answer = await plain.get("/metrics")
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert _value(answer.text, "registry_log_size") >= 0
            assert _value(answer.text, "registry_pool_waiting") == 0
            assert (await plain.get("/v1/subjects")).status_code == 404
            assert (await plain.post("/metrics", content=b"x")).status_code == 405
        # The API's own /metrics still asks for a token.
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as api:
            assert (await api.get("/metrics")).status_code == 401
    banner = [json.loads(line) for line in server.log_path.read_text().splitlines()
              if line.startswith("{") and '"serving"' in line]
    assert banner and banner[0]["metrics"] == f"http://127.0.0.1:{port}/metrics"


async def test_a_silent_client_of_the_metrics_port_is_answered_408(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_port, "HEAD_TIMEOUT_S", 0.2)

    async def scrape() -> bytes:
        return b"registry_up 1\n"

    served = metrics_port.MetricsPort(0, scrape)
    await served.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET /metrics HTTP/1.1\r\n")  # and then nothing
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"registry_up 1\n")
        writer.close()
    finally:
        await served.stop()


async def test_each_cache_says_what_it_held_and_what_it_had_to_make(
    client: Client, admin: dict[str, str], regulator: dict[str, str], bureau: dict[str, str],
) -> None:
    await subject(client, regulator)
    for _ in range(2):
        assert (await client.get("/public/feed.json")).status_code == 200
        assert (await client.get("/v1/bureau/profiles/91630100MA752LKX1M",
                                 headers=bureau)).status_code == 200
    text = (await client.get("/metrics", headers=admin)).text
    assert _value(text, 'registry_public_feed_page_cache_total{result="miss"}') == 1
    assert _value(text, 'registry_public_feed_page_cache_total{result="hit"}') == 1
    # The first lookup built the profile; the second was sent from memory, trusted or
    # after one statement, depending on whether the write's notice had been heard.
    assert _value(text, "registry_profile_memo_built_total") == 1
    assert (_value(text, "registry_profile_memo_hits_total")
            + _value(text, "registry_profile_memo_checked_total")) == 1
