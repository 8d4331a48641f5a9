"""What the fault tests and the crash script share: a ``registry serve`` subprocess, HTTP
writers that note every answer, and the checks that no acknowledged write was lost and
nothing is half written."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from registry.identifiers import uscc_check_character
from tests.conftest import bearer

_ROOT = Path(__file__).resolve().parent.parent
# Upper bound for any single request while the service is degraded: a hang is a failure.
REQUEST_BOUND = 12.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def free_port() -> int:
    """A port free on 127.0.0.1 a moment ago (for a server about to bind it)."""
    return _free_port()


def start_server(
    url: str, home: Path, *, serve_args: Sequence[str] = (), **env: str
) -> Server:
    """Spawn ``registry serve`` on a free port; returns at once (see ``wait_ready``)."""
    port = _free_port()
    log_path = home / f"faults-server-{port}.log"
    full_env = {
        **os.environ,
        "DATABASE_URL": url,
        "REGISTRY_HOME": str(home),
        "REGISTRY_LOG_FORMAT": "json",
        "REGISTRY_BATCH_WINDOW_MS": "2",
        **env,
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "registry", "serve", "--port", str(port), *serve_args],
            env=full_env, cwd=_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
        )
    return Server(process, f"http://127.0.0.1:{port}", log_path)


async def wait_ready(server: Server, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if not server.alive():
                raise AssertionError(f"server exited {server.process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{server.base}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"server not ready within {within}s:\n{server.log_tail()}")


@contextlib.contextmanager
def servers_stopped(*servers: Server) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


def credit_code(n: int) -> str:
    first17 = f"91630100MA{n:07d}"
    return first17 + uscc_check_character(first17)


def firm(n: int) -> dict[str, str]:
    return {"kind": "vc_firm", "name": f"故障測試創投{n}有限公司", "credit_code": credit_code(n)}


@dataclass
class Load:
    """What a group of writers saw: acknowledged writes (code -> receipt) and every status."""

    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: list[tuple[float, int | str]] = field(default_factory=list)
    slowest: float = 0.0
    bodies_5xx: list[tuple[int, str, str]] = field(default_factory=list)

    def count(self, status: int | str) -> int:
        return sum(1 for _, s in self.statuses if s == status)


async def writers(
    bases: list[str],
    token: str,
    load: Load,
    stop: asyncio.Event,
    *,
    clients: int = 8,
    per_client: int = 400,
    numbers: Iterator[int],
    pause_on_error: float = 0.05,
) -> None:
    """``clients`` concurrent HTTP clients POSTing distinct firms until ``stop`` (or the cap)."""

    async def one(i: int) -> None:
        async with httpx.AsyncClient(timeout=REQUEST_BOUND, headers=bearer(token)) as client:
            for _ in range(per_client):
                if stop.is_set():
                    return
                # Read at every request: a caller may point ``bases`` at a restarted server.
                base = bases[i % len(bases)]
                n = next(numbers)
                started = time.monotonic()
                try:
                    answer = await client.post(f"{base}/v1/subjects", json=firm(n))
                except httpx.TimeoutException:
                    load.statuses.append((started, "timeout"))
                    continue
                except httpx.TransportError:
                    load.statuses.append((started, "transport"))
                    await asyncio.sleep(pause_on_error)
                    continue
                finally:
                    load.slowest = max(load.slowest, time.monotonic() - started)
                load.statuses.append((started, answer.status_code))
                if answer.status_code == 201:
                    load.acked[credit_code(n)] = answer.json()
                elif answer.status_code >= 500:
                    load.bodies_5xx.append(
                        (answer.status_code, answer.headers.get("content-type", ""), answer.text)
                    )
                    await asyncio.sleep(pause_on_error)

    await asyncio.gather(*(one(i) for i in range(clients)))


async def wait_until(predicate: Any, within: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(step)
    return False


async def assert_acknowledged_present(conn: Any, load: Load) -> None:
    """Every 201 is stored with the log index its receipt named, and is in the signed tree."""
    rows = await conn.fetch(
        "SELECT credit_code, log_index FROM subjects WHERE credit_code = ANY($1::text[])",
        list(load.acked),
    )
    stored = {r["credit_code"]: r["log_index"] for r in rows}
    missing = sorted(set(load.acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    for code, body in load.acked.items():
        assert stored[code] == body["log_index"] == body["receipt"]["log_index"], code


async def assert_nothing_half_written(conn: Any) -> None:
    """Every subject has its leaf and stored body; every leaf its object; indexes 0..n-1."""
    orphans = await conn.fetchval(
        "SELECT count(*) FROM subjects s WHERE NOT EXISTS"
        " (SELECT 1 FROM tlog_leaves l WHERE l.idx = s.log_index) OR NOT EXISTS"
        " (SELECT 1 FROM tlog_objects o WHERE o.log_index = s.log_index"
        "  AND o.object_type = 'subject' AND o.object_id = s.id::text)"
    )
    assert orphans == 0, f"{orphans} subjects without their leaf or stored body"
    bare = await conn.fetchval(
        "SELECT count(*) FROM tlog_leaves l WHERE NOT EXISTS"
        " (SELECT 1 FROM tlog_objects o WHERE o.log_index = l.idx)"
    )
    assert bare == 0, f"{bare} leaves without their object"
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(min(idx), 0) AS lo, coalesce(max(idx), -1) AS hi,"
        " count(DISTINCT idx) AS distinct_n, (SELECT next_index FROM tlog_sequence) AS next"
        " FROM tlog_leaves"
    )
    assert (row["lo"], row["hi"], row["distinct_n"], row["next"]) == (
        0, row["n"] - 1, row["n"], row["n"]
    ), dict(row)


async def integrated(conn: Any) -> bool:
    row = await conn.fetchrow(
        "SELECT (SELECT size FROM tlog_head) AS size, (SELECT count(*) FROM tlog_leaves) AS n"
    )
    return bool(row["size"] == row["n"])


async def holds(value: bool) -> bool:
    return value
