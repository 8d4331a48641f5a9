"""What fail-closed access accounting costs a bureau's practitioner lookup.

A script, not a pytest test:

    .venv/bin/python tests/bench/bench_access.py              # 3000 lookups a round
    .venv/bin/python tests/bench/bench_access.py 6000 3       # lookups a round, rounds

Like with like: the same ``POST /v1/bureau/profiles/lookup`` of the same practitioners,
served by the same app in this process, in alternating rounds:

- **durable** (the service as it runs): the answer waits until the batch holding its
  access row is committed (registry/bureau/access.py, group commit);
- **fire-and-forget** (the accounting before this release, the baseline): the row is
  queued and the answer goes out at once; the same rows are still written, by the same
  batch writer, so the database does the same work.

Both rounds read profiles the process already holds (every practitioner is looked up once
before measuring), so the difference is the wait for the access row, not a database read
of the profile. Two loads, each in alternating rounds, figures the medians over the rounds
and the ratio durable / fire-and-forget:

- 16 concurrent httpx clients in this process (latency percentiles as a client sees them;
  the client shares the server's event loop, so throughput is bounded by both);
- Debian's ``wrk`` with 32 connections from another process (the server's own throughput).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg
import httpx
import msgspec
import structlog
import uvicorn

from registry.api.app import create_app
from registry.authorities import add_authority
from registry.bureau.access import Access, AccessRecorder
from registry.clock import SystemClock
from registry.domain.policy import Policy
from registry.identifiers import resident_id_check_character
from registry.settings import Settings
from registry.tokens import issue_token
from tests.bench.bench_bureau import wrk

CLIENTS = 16
WRK_SECONDS = 8
PEOPLE = 500
AUTHORITY = ("11630100MB1234567J", "西寧市發展和改革委員會")
PURPOSE = "credit_assessment"

_durable_record = AccessRecorder.record


def _fire_and_forget(self: AccessRecorder, accesses: Sequence[Access]) -> Awaitable[None]:
    """The old accounting: queue the rows (still written by the batch writer), answer now."""
    pending = _durable_record(self, accesses)
    task = asyncio.ensure_future(pending)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


def number(i: int) -> str:
    first = f"630102199001{1 + i % 28:02d}{i % 1000:03d}"
    return first + resident_id_check_character(first)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def round_of(client: httpx.AsyncClient, lookups: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(lookups))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            response = await client.post("/v1/bureau/profiles/lookup", json={
                "document_type": "resident_id", "document_number": number(i % PEOPLE),
                "purpose": PURPOSE})
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"lookup answered {response.status_code}: {response.text}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return lookups / (time.perf_counter() - t0), latencies


async def main(lookups: int, rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    try:
        from registry.db.embedded import start_embedded

        uri = start_embedded(root / "home")
        admin = await asyncpg.connect(uri)
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        base, _, query = uri.partition("?")
        url = f"{base.rsplit('/', 1)[0]}/bench?{query}"
        settings = replace(
            Settings.from_env({"REGISTRY_HOME": str(root / "home")}),
            expiry_interval_ms=0, pool_max=20, log_format="json",
            # No rate limit: the bench measures accounting, not the limiter.
            policy=msgspec.structs.replace(Policy(), bureau_rate_per_minute=0),
        )
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        app = create_app(settings, database_url=url, configure_logs=False)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                               access_log=False, lifespan="on"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
        assert pool is not None
        await add_authority(pool, SystemClock(), code=AUTHORITY[0], name=AUTHORITY[1],
                            actor="admin:bench")
        regulator, _ = await issue_token(pool, SystemClock(), role="regulator", name="bench",
                                         actor="admin:bench", authority_code=AUTHORITY[0])
        bureau, _ = await issue_token(pool, SystemClock(), role="bureau", name="bench",
                                      actor="admin:bench")
        limits = httpx.Limits(max_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                     timeout=60) as client:
            for i in range(PEOPLE):
                made = await client.post("/v1/subjects", headers={
                    "Authorization": f"Bearer {regulator}"}, json={
                    "kind": "practitioner", "name": "李四", "document_type": "resident_id",
                    "document_number": number(i)})
                assert made.status_code == 201, made.text
            client.headers["Authorization"] = f"Bearer {bureau}"
            await round_of(client, PEOPLE)  # every profile held by the process
            figures: dict[str, list[tuple[float, float, float]]] = {"durable": [], "baseline": []}
            for _ in range(rounds):
                for mode in ("durable", "baseline"):
                    AccessRecorder.record = (  # type: ignore[method-assign]
                        _durable_record if mode == "durable" else _fire_and_forget)
                    rate, latencies = await round_of(client, lookups)
                    figures[mode].append((rate, pct(latencies, 0.5), pct(latencies, 0.99)))
            script = root / "lookup.lua"
            bodies = ",".join(json.dumps(json.dumps({
                "document_type": "resident_id", "document_number": number(i), "purpose": PURPOSE,
            })) for i in range(PEOPLE))
            script.write_text(
                f"bodies = {{{bodies}}}\n"
                f'headers = {{["Authorization"]="Bearer {bureau}", '
                '["Content-Type"]="application/json"}\n'
                "request = function()\n"
                '  return wrk.format("POST", "/v1/bureau/profiles/lookup", headers,'
                " bodies[math.random(#bodies)])\n"
                "end\n"
            )
            loaded: dict[str, list[tuple[float, float, int]]] = {"durable": [], "baseline": []}
            for _ in range(rounds):
                for mode in ("durable", "baseline"):
                    AccessRecorder.record = (  # type: ignore[method-assign]
                        _durable_record if mode == "durable" else _fire_and_forget)
                    loaded[mode].append(await asyncio.to_thread(
                        wrk, f"http://127.0.0.1:{port}", script, 32, WRK_SECONDS))
            AccessRecorder.record = _durable_record  # type: ignore[method-assign]
        rows = await pool.fetchval("SELECT count(*) FROM bureau_access")
        await pool.close()
        server.should_exit = True
        await serving

        def med(mode: str, k: int) -> float:
            return statistics.median(f[k] for f in figures[mode])

        print(f"{lookups} practitioner lookups a round, {rounds} rounds of each, "
              f"{CLIENTS} clients; {rows} access rows written")
        for mode, label in (("durable", "durable before the answer"),
                            ("baseline", "fire-and-forget (baseline)")):
            print(f"  {label:<28} {med(mode, 0):8.0f} lookups/s   p50 {med(mode, 1):6.1f} ms"
                  f"   p99 {med(mode, 2):6.1f} ms")
        print(f"  ratio durable / baseline: {med('durable', 0) / med('baseline', 0):.2f}")

        def wmed(mode: str, k: int) -> float:
            return statistics.median(f[k] for f in loaded[mode])

        print(f"wrk, 32 connections, {WRK_SECONDS} s a round, {rounds} rounds of each:")
        for mode, label in (("durable", "durable before the answer"),
                            ("baseline", "fire-and-forget (baseline)")):
            failed = sum(f[2] for f in loaded[mode])
            print(f"  {label:<28} {wmed(mode, 0):8.0f} lookups/s   p99 {wmed(mode, 1):6.1f} ms"
                  f"   failed {failed}")
        print(f"  ratio durable / baseline: {wmed('durable', 0) / wmed('baseline', 0):.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(*(args or [3000, 3])))
