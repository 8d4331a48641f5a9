"""`registry serve` on its embedded PostgreSQL stops that PostgreSQL on SIGTERM and on
SIGINT alike: what a supervisor sends and what Ctrl-C sends."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.fault_helpers import start_server, wait_ready


def _postmaster_pid(home: Path) -> int:
    return int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) has stopped as well.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_stops_its_embedded_postgresql(tmp_path: Path, sent: signal.Signals) -> None:
    server = start_server("", tmp_path)  # no DATABASE_URL: the embedded default
    try:
        await wait_ready(server)
        postgres = _postmaster_pid(tmp_path)
        assert _alive(postgres)
        server.process.send_signal(sent)
        code = server.process.wait(timeout=30)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=10)
    left_running = not _gone_within(postgres, 15)
    if left_running:  # do not leave it to the rest of the suite
        os.kill(postgres, signal.SIGTERM)
    assert not left_running, (
        f"PostgreSQL {postgres} still runs after `registry serve` got {sent.name} "
        f"(exit {code}):\n{server.log_tail()}"
    )
    assert code in (0, 130 if sent == signal.SIGINT else 0), server.log_tail()

