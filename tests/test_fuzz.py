"""Fuzz the whole API from its own OpenAPI document with schemathesis, once per role.

A real server (``registry serve``) runs on a fresh database; schemathesis
generates requests from /schema/openapi.json and checks every answer: no 5xx,
status codes, content types, headers and bodies as documented. The run is
bounded (examples per operation and a time budget) so CI stays short.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from registry.settings import Settings
from tests.conftest import issue
from tests.logcheck import logged_errors

# Every check runs, positive_data_acceptance included: tests/schemathesis.toml states, per
# operation, which refusals a valid-by-schema request may rightly get, and why.
CONFIG = Path(__file__).parent / "schemathesis.toml"
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "8")
MAX_SECONDS = os.environ.get("FUZZ_MAX_SECONDS", "90")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(database_url: str, base_settings: Settings) -> Iterator[str]:
    port = _free_port()
    log_path = base_settings.home / f"fuzz-server-{port}.log"
    log_file = log_path.open("w")
    env = {**os.environ, "DATABASE_URL": database_url, "REGISTRY_HOME": str(base_settings.home),
           "REGISTRY_LOG_FORMAT": "json"}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "registry", "serve", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=log_file, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:  # noqa: S310 - local URL
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log_path.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
        errors = logged_errors(log_path.read_text())
        assert not errors, errors[:5]


@pytest.mark.parametrize("role", ["regulator", "bureau", "admin", None])
async def test_no_request_breaks_the_api(server: str, database_url: str, role: str | None,
                                         tmp_path: Path) -> None:
    headers: list[str] = []
    if role:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        assert pool is not None
        try:
            token = await issue(pool, role, f"fuzz {role}")
        finally:
            await pool.close()
        headers = ["-H", f"Authorization: Bearer {token}"]
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    result = await asyncio.to_thread(
        subprocess.run,
        [st, "--config-file", str(CONFIG), "run", f"{server}/schema/openapi.json", *headers,
         "--checks", "all", "--max-examples", MAX_EXAMPLES,
         "--max-time", MAX_SECONDS, "--seed", "20261128", "--warnings", "off",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=int(MAX_SECONDS) + 120, check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout[-15000:] + result.stderr[-3000:]
    assert "Tested:" in result.stdout
