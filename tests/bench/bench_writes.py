"""Audited subject writes through the HTTP API against a bare sign-and-INSERT app (not a test).

    .venv/bin/python tests/bench/bench_writes.py                        # 32 and 128 connections
    .venv/bin/python tests/bench/bench_writes.py --duration 5 --rounds 1

It starts its own embedded PostgreSQL under a temporary folder (deleted at the end),
migrates it, initialises the audit log and adds one authority and a regulator token of
it (no other data), then starts, each in one uvicorn process on the event loop
``registry serve`` uses:

- the service as ``registry serve`` runs it, measured on ``POST /v1/subjects``: token
  check, validation (GB 32100-2015 check character), the subject row and its audit-log
  leaf in one transaction, and the wait for the signed checkpoint that includes the
  leaf (the receipt in the 201 answer); and
- ``tests/bench/bare_write_app.py``, the baseline, on ``POST /subjects``: msgspec
  decoding, the same credit-code check, an Ed25519 signature of the row's canonical
  JSON, one autocommit INSERT into its own table (same pool size, same database).

Debian's ``wrk`` (``apt-get install -y wrk``) posts a new ``vc_firm`` on every request,
each with a valid credit code never sent before: the Lua script computes the check
character, and each code carries the run's number and the wrk thread's (given by
``setup``), so no two requests of the whole benchmark share one. Any answer other than
2xx stops the benchmark (the first failure's status and body are shown). Both servers
are warmed for 3 s; then, at each of ``--connections`` (32 and 128), ``--rounds``
alternating runs each of ``--duration`` seconds; medians of requests/s, p50 and p99.
Ratio = registry requests/s / bare requests/s; the goal is ratio >= 0.8.

A third server, ``tests/bench/logless_app.py``, is the registry with the audit log taken
out (an ablation): measured the same way, its ratio is the most any design of the log
could give the registry on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402 - after the path set-up above

from registry.authorities import add_authority  # noqa: E402
from registry.cli import SERVER_LOOP  # noqa: E402
from registry.clock import SystemClock  # noqa: E402
from registry.db.migrate import migrate  # noqa: E402
from registry.keys import load_log_key  # noqa: E402
from registry.settings import Settings  # noqa: E402
from registry.tlog.integrator import initialise_log  # noqa: E402
from registry.tokens import issue_token  # noqa: E402
from tests.bench.bench_bureau import free_port, start  # noqa: E402
from tests.bench.bench_search import AUTHORITY, wrk  # noqa: E402
from tests.bench.harness import bench_database  # noqa: E402
from tests.bench.logless_app import NO_LEAF  # noqa: E402

Result = tuple[float, float, float]  # requests/s, p50 ms, p99 ms

# Every request: a new organisation with a new, valid credit code. The code's first 17
# characters are "91", the run (3 digits), the wrk thread (3) and the thread's own
# counter (9); the 18th is the GB 32100-2015 check character, computed here.
LUA = """
local ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
local VALUE, WEIGHT = {}, {}
for i = 1, #ALPHABET do VALUE[ALPHABET:sub(i, i)] = i - 1 end
local w = 1
for i = 1, 17 do WEIGHT[i] = w; w = (w * 3) % 31 end

local function check_character(first17)
  local total = 0
  for i = 1, 17 do total = total + VALUE[first17:sub(i, i)] * WEIGHT[i] end
  local c = (31 - total % 31) % 31
  return ALPHABET:sub(c + 1, c + 1)
end

-- In the main state: give each thread its number (threads start after setup).
local threads, started = {}, 0
function setup(thread)
  thread:set("tid", started)
  started = started + 1
  table.insert(threads, thread)
end

-- In each thread's state.
local counter = 0
function request()
  counter = counter + 1
  if counter > 999999999 then error("credit-code serials used up") end
  local first17 = string.format("91%03d%03d%09d", RUN, tid, counter)
  local body = string.format(
    '{"kind":"vc_firm","name":"西寧創投%d號%d有限公司","credit_code":"%s"}',
    tid, counter, first17 .. check_character(first17))
  return wrk.format("POST", PATH, HEADERS, body)
end

function response(status, headers, body)
  if status >= 300 and failure == nil then failure = status .. " " .. body end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local found = thread:get("failure")
    if found ~= nil then io.write("first failure: " .. found .. "\\n") end
  end
end
"""


def lua(path: Path, run: int, url_path: str, token: str | None) -> Path:
    if not 0 <= run <= 999:
        raise SystemExit("more than 1000 wrk runs: the credit-code layout has room for 1000")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    fields = ",".join(f"[{json.dumps(k)}]={json.dumps(v)}" for k, v in headers.items())
    path.write_text(
        f"RUN = {run}\nPATH = {json.dumps(url_path)}\nHEADERS = {{{fields}}}\n{LUA}",
        encoding="utf-8",
    )
    return path


async def load(url: str, settings: Settings) -> tuple[str, dict[str, str]]:
    """Schema, log and one regulator token; (the token, the server's commit settings)."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await initialise_log(conn, load_log_key(settings, create_dev=True), settings.log_origin)
        shown = {name: str(await conn.fetchval(f"SHOW {name}"))
                 for name in ("synchronous_commit", "fsync", "wal_sync_method")}  # fmt: skip
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        await add_authority(pool, SystemClock(), code=AUTHORITY[0], name=AUTHORITY[1],
                            actor="admin:bench")  # fmt: skip
        token, _ = await issue_token(pool, SystemClock(), role="regulator", name="bench",
                                     actor="admin:bench", authority_code=AUTHORITY[0])  # fmt: skip
    finally:
        await pool.close()
    return token, shown


async def written(url: str) -> tuple[int, int, int, int]:
    """(registry subjects, their audit-log leaves, subjects the ablation wrote without a
    leaf, bare rows) in the database."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM subjects WHERE log_index <> $1),"
            " (SELECT count(*) FROM tlog_leaves l JOIN subjects s ON s.log_index = l.idx),"
            " (SELECT count(*) FROM subjects WHERE log_index = $1),"
            " (SELECT count(*) FROM bare_subjects)",
            NO_LEAF,
        )
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])
    finally:
        await conn.close()


def log_problems(path: Path) -> list[str]:
    """Lines of a server's log at warning level or above, or not JSON (tracebacks)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                found.append(line)
            continue
        if not isinstance(entry, dict) or entry.get("level") in {"warning", "error", "critical"}:
            found.append(line)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", default="32,128",
                        help="concurrencies to measure at, comma-separated")  # fmt: skip
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs (medians)")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.connections.split(",")]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    load_at_start = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="bench-writes-"))
    # Registered before the servers start, so it runs after their own exit hooks.
    atexit.register(shutil.rmtree, home, True)
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[int, dict[str, list[Result]]] = {}
    try:
        url, settings = bench_database(home)
        served = Settings.from_env({**os.environ, "REGISTRY_HOME": str(home)})  # the servers'
        token, shown = asyncio.run(load(url, settings))
        env = {**os.environ, "REGISTRY_HOME": str(home), "DATABASE_URL": url,
               "REGISTRY_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}  # fmt: skip
        registry_port, logless_port, bare_port = free_port(), free_port(), free_port()
        procs.append(start("registry.api.app:create_app", env, registry_port, "/healthz",
                           loop=SERVER_LOOP))  # fmt: skip
        procs.append(start("tests.bench.logless_app:create_app", env, logless_port, "/healthz",
                           loop=SERVER_LOOP))  # fmt: skip
        procs.append(start("tests.bench.bare_write_app:create_app", env, bare_port, "/subjects",
                           loop=SERVER_LOOP))  # fmt: skip
        targets = {
            "registry": (f"http://127.0.0.1:{registry_port}", "/v1/subjects", token),
            "no log": (f"http://127.0.0.1:{logless_port}", "/v1/subjects", token),
            "bare": (f"http://127.0.0.1:{bare_port}", "/subjects", None),
        }
        work = home / "lua"
        work.mkdir()
        runs = 0

        def measure(target: str, connections: int, duration: int) -> Result:
            nonlocal runs
            base, url_path, bearer = targets[target]
            script = lua(work / f"{target}-{runs}.lua", runs, url_path, bearer)
            runs += 1
            return wrk(base, script, connections, duration)

        for target in targets:  # both pools filled, the code paths and PostgreSQL warm
            measure(target, 32, 3)
        for connections in concurrencies:
            results[connections] = {target: [] for target in targets}
            for _ in range(args.rounds):
                for target in targets:
                    result = measure(target, connections, args.duration)
                    results[connections][target].append(result)
        subjects, leaves, logless_rows, bare_rows = asyncio.run(written(url))
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    problems = {name: log_problems(home / f"{name}.err")
                for name in ("app", "logless_app", "bare_write_app")}

    def med(runs: list[Result], i: int) -> float:
        return statistics.median(run[i] for run in runs)

    threads = min(os.cpu_count() or 2, *concurrencies)
    print(
        "\nPOST /v1/subjects (registry) vs POST /subjects (bare app): a new vc_firm per request,"
        " each with a valid credit code never sent before\n"
        "  registry: token check, validation (GB 32100-2015 check character), the subject row"
        " and its audit-log leaf in one transaction, then the wait for the signed checkpoint"
        " that includes the leaf (the receipt in the 201 answer)\n"
        "  no log:   the registry with the audit log taken out (tests/bench/logless_app.py):"
        " the same request path, the row by one plain INSERT, no leaf, no wait for a"
        " checkpoint: the most any log design could reach here (an ablation, not a product)\n"
        "  bare:     msgspec decoding, the same credit-code check, Ed25519 signature of the"
        " row's canonical JSON, one autocommit INSERT (201 with the row)\n"
        f"  all: one uvicorn process each ({SERVER_LOOP} loop), pool max {served.pool_max},"
        f" one embedded PostgreSQL (synchronous_commit={shown['synchronous_commit']},"
        f" fsync={shown['fsync']}, wal_sync_method={shown['wal_sync_method']});"
        f" checkpoint batch window {served.batch_window_ms} ms\n"
        f"  wrk, {threads} threads; warm-up 3 s each; {args.rounds} alternating runs of"
        f" {args.duration} s, medians; {os.cpu_count()} cores; load average at start"
        f" {' '.join(f'{x:.2f}' for x in load_at_start)}, at end"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print(f"{'conns':>5}  {'server':<9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}"
          "  goal (ratio >= 0.8)")  # fmt: skip
    for connections, by_target in results.items():
        bare = med(by_target["bare"], 0)
        for target in targets:
            ratio = med(by_target[target], 0) / bare
            verdict = {"registry": f"  {'met' if ratio >= 0.8 else 'missed'}",
                       "no log": "  (ceiling of any log design)", "bare": ""}[target]
            print(f"{connections if target == 'registry' else '':>5}  {target:<9}"
                  f"{med(by_target[target], 0):>8.0f}{med(by_target[target], 1):>9.1f}"
                  f"{med(by_target[target], 2):>9.1f}"
                  + (f"{ratio:>8.2f}{verdict}" if target != "bare" else ""))  # fmt: skip
    print(f"\nwritten: {subjects} registry subjects ({leaves} with their leaf),"
          f" {logless_rows} without a log by the ablation, {bare_rows} bare rows")  # fmt: skip
    for name, lines in problems.items():
        if lines:
            print(f"{name} log: {len(lines)} lines at warning or above, the first:")
            for line in lines[:5]:
                print(f"  {line[:300]}")
        else:
            print(f"{name} log: nothing at warning or above")


if __name__ == "__main__":
    main()
