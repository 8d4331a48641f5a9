"""Bureau lookups with a read replica beside the primary vs the primary alone.

A script, not a pytest test:

    .venv/bin/python tests/bench/bench_replica.py                       # 20k subjects
    .venv/bin/python tests/bench/bench_replica.py --duration 5 --rounds 2

It loads the same data as bench_bureau.py (an embedded PostgreSQL of its own under a
temporary folder), makes a hot standby of it with the embedded PostgreSQL's own
``pg_basebackup -R`` (tests/standby.py), and serves two registries side by side, both
on the primary for writes and warming, rate limit off:

- "primary only": every read on the primary (no DATABASE_READ_URL);
- "with replica": DATABASE_READ_URL names the standby, so bureau profile reads go there
  while it is within REGISTRY_READ_MAX_LAG_MS.

Measured with ``wrk``: profile lookups (2000 random credit codes) at 32 connections,
and bulk lookups (1000 ids per request) at 8, alternating rounds, medians reported,
ratio = with replica / primary only. The replica server's /metrics say how many
requests were read on the replica and how many were sent to the primary instead.

What this machine can show: both databases, both servers and wrk share two cores,
so a replica here adds no capacity; it measures what the route costs and that the
reads really move. On separate machines the replica takes the bureaus' read load off
the primary.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402 - after the path set-up above
import httpx  # noqa: E402

from registry.cli import SERVER_LOOP  # noqa: E402
from registry.db.embedded import start_embedded  # noqa: E402
from tests.bench.bench_bureau import (  # noqa: E402
    credit_code,
    free_port,
    load,
    lua_get,
    lua_post,
    start,
    wrk,
)
from tests.bench.harness import bench_database  # noqa: E402
from tests.standby import make_standby  # noqa: E402


async def _caught_up(primary: str, replica: str, within: float = 120.0) -> float:
    """Seconds until the replica has replayed what the primary had flushed when asked."""
    start_at = time.monotonic()
    p = await asyncpg.connect(primary)
    r = await asyncpg.connect(replica)
    try:
        target = await p.fetchval("SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint")
        while time.monotonic() - start_at < within:
            if await r.fetchval("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint") >= target:
                return time.monotonic() - start_at
            await asyncio.sleep(0.1)
    finally:
        await p.close()
        await r.close()
    raise SystemExit("the standby did not catch up")


def _metric(base: str, token: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


async def _admin_token(url: str) -> str:
    from registry.clock import SystemClock
    from registry.db.pool import create_pool
    from registry.tokens import issue_token

    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        token, _ = await issue_token(pool, SystemClock(), role="admin", name="bench metrics",
                                     actor="admin:bench")
    finally:
        await pool.close()
    return token


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per server")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    home = Path(tempfile.mkdtemp(prefix="bench-replica-"))
    atexit.register(shutil.rmtree, home, True)
    procs: list[subprocess.Popen[bytes]] = []
    standby = None
    try:
        url, settings = bench_database(home)
        token = asyncio.run(load(url, settings, args.subjects, args.records, 1000))
        admin = asyncio.run(_admin_token(url))
        primary_uri = start_embedded(home)
        standby = make_standby(primary_uri, free_port())
        replica_url = standby.url_for("bench")
        print(f"standby caught up in {asyncio.run(_caught_up(url, replica_url)):.1f} s", flush=True)
        env = {
            **os.environ,
            "REGISTRY_HOME": str(home),
            "DATABASE_URL": url,
            "REGISTRY_POLICY_BUREAU_RATE_PER_MINUTE": "0",
            "REGISTRY_LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT),
        }
        registry = "registry.api.app:create_app"
        alone_port, replica_port = free_port(), free_port()
        procs.append(start(registry, env, alone_port, "/healthz", loop=SERVER_LOOP))
        procs.append(start(registry, {**env, "DATABASE_READ_URL": replica_url}, replica_port,
                           "/healthz", loop=SERVER_LOOP))  # fmt: skip
        alone, beside = f"http://127.0.0.1:{alone_port}", f"http://127.0.0.1:{replica_port}"
        rng = random.Random(3)
        codes = [credit_code(rng.randrange(args.subjects * 4 // 5)) for _ in range(2000)]
        work = home / "lua"
        work.mkdir()
        get_lua = lua_get(work / "get.lua", "/v1/bureau/profiles/", codes, token)
        bulk_body = json.dumps({"identifiers": [{"credit_code": c} for c in codes[:1000]]}).encode()
        bulk_lua = lua_post(work / "bulk.lua", "/v1/bureau/profiles/bulk", bulk_body, token)
        for base in (alone, beside):
            wrk(base, get_lua, 32, 3)  # both warmed alike: memo, pools, buffers
        rows = []
        for name, script, conns, per in (("profile lookup, 32 conns (req/s; p99 ms)", get_lua, 32, 1),
                                         ("bulk lookup, 8 conns x 1000 ids (ids/s; p99 ms)", bulk_lua, 8, 1000)):
            runs: dict[str, list[tuple[float, float, int]]] = {alone: [], beside: []}
            for _ in range(args.rounds):
                for base in (alone, beside):
                    runs[base].append(wrk(base, script, conns, args.duration))
            (a_rate, a_p99), (b_rate, b_p99) = (
                (statistics.median(r[0] for r in runs[base]) * per,
                 statistics.median(r[1] for r in runs[base])) for base in (alone, beside)
            )
            failed = sum(r[2] for base in runs for r in runs[base])
            rows.append((name, f"{a_rate:,.0f}; {a_p99:.1f}", f"{b_rate:,.0f}; {b_p99:.1f}",
                         f"{b_rate / a_rate:.2f}", failed))  # fmt: skip
        replica_reads = _metric(beside, admin, "registry_read_replica_reads_total")
        bypassed = sum(_metric(beside, admin, f'registry_read_replica_bypassed_total{{reason="{r}"}}')
                       for r in ("lagging", "unavailable", "failed"))  # fmt: skip
        print(f"\nsubjects={args.subjects:,} records={args.records:,} duration={args.duration}s,"
              f" medians of {args.rounds} alternating rounds\n")
        print(f"{'measure':<50} {'primary only':>18} {'with replica':>18} {'ratio':>6} failed")
        for name, ours, theirs, ratio, failed in rows:
            print(f"{name:<50} {ours:>18} {theirs:>18} {ratio:>6} {failed}")
        print(f"\nwith replica: {replica_reads:,.0f} requests read on the replica, "
              f"{bypassed:,.0f} sent to the primary instead")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if standby is not None:
            standby.kill()


if __name__ == "__main__":
    main()
