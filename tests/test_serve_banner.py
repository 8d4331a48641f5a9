"""`registry serve` says at start where it listens, where its docs are, and which database."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from tests.fault_helpers import Server, start_server, wait_ready


async def _banner(server: Server) -> dict[str, str]:
    try:
        await wait_ready(server)
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    for line in server.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and json.loads(line).get("event") == "serving":
            found: dict[str, str] = json.loads(line)
            return found
    raise AssertionError(f"no 'serving' line:\n{server.log_tail()}")


async def test_serve_names_its_address_docs_and_embedded_database(tmp_path: Path) -> None:
    server = start_server("", tmp_path)
    banner = await _banner(server)
    assert banner["url"] == f"{server.base}/"
    assert banner["api_docs"] == f"{server.base}/schema"
    assert banner["public_page"] == f"{server.base}/public/"
    assert banner["console"] == f"{server.base}/console/"
    assert banner["database"] == f"embedded PostgreSQL in {tmp_path / 'pgdata'}"


async def test_serve_names_a_configured_database_without_its_password(
    tmp_path: Path, database_url: str
) -> None:
    parts = urlsplit(database_url)
    assert parts.username and not parts.password, database_url
    host = parts.netloc.split("@", 1)[1]
    # The test server trusts local connections, so any password is accepted: one that must
    # not appear in the log.
    with_password = parts._replace(netloc=f"{parts.username}:s3cret-pw@{host}").geturl()
    server = start_server(with_password, tmp_path)
    banner = await _banner(server)
    assert banner["database"].endswith(parts.path)
    assert "s3cret-pw" not in server.log_tail(100_000)
