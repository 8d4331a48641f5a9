# ruff: noqa: S603 - a bench script running our own interpreter and module, and wrk
"""Audited writes with two credit bureaus' witnesses attached vs the same without (not a test).

    .venv/bin/python tests/bench/bench_witnessing.py                    # 32 connections, 10 s
    .venv/bin/python tests/bench/bench_witnessing.py --duration 5 --rounds 5
    .venv/bin/python tests/bench/bench_witnessing.py --interval-ms 0   # a round per checkpoint

It starts its own embedded PostgreSQL under a temporary folder (deleted at the end) with
two databases, each migrated with the audit log initialised, one authority and a
regulator token; two witnesses as a bureau runs them (`registry witness keygen`, then
`registry witness serve`, each its own process and state directory, trusting the log's
key); and two services as ``registry serve`` runs them (uvicorn, one process each, the
same event loop), one per database:

- "witnessed": REGISTRY_WITNESSES names both witnesses (quorum 2), so every checkpoint
  the integrator signs is sent to them and their cosignatures are stored;
- "plain": the same service and settings with no witnesses.

Debian's ``wrk`` posts a new ``vc_firm`` on every request (``POST /v1/subjects``, each
with a valid credit code never sent before, the Lua of bench_writes.py) and counts 201s;
any other answer stops the benchmark. Both are warmed for 3 s; then ``--rounds``
rounds, each a run of ``--duration`` s of the witnessed server then one of the plain
server, at ``--connections``; medians of requests/s, p50 and p99. Ratio = the median over
the rounds of witnessed requests/s / plain requests/s (a round's two runs are adjacent in
time, so the machine's drift touches both alike); the goal is >= 0.9. It also prints what
the witnessing did meanwhile (cosignatures stored, the newest witnessed size against the
log's), the CPU time each process used, and the servers' warnings.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
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
from registry.keys import load_log_key  # noqa: E402
from registry.settings import Settings  # noqa: E402
from tests.bench.bench_bureau import free_port  # noqa: E402
from tests.bench.bench_search import wrk  # noqa: E402
from tests.bench.bench_writes import load, log_problems, lua  # noqa: E402
from tests.bench.harness import bench_database, create_database  # noqa: E402

Result = tuple[float, float, float]  # requests/s, p50 ms, p99 ms
TARGETS = ("witnessed", "plain")


def registry(*args: str, home: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True,
                          text=True, check=False, cwd=ROOT,
                          env={**os.environ, "REGISTRY_HOME": str(home)})  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"registry {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def start_witness(home: Path, name: str, log_vkey: str) -> tuple[subprocess.Popen[str], str]:
    """`registry witness serve` with a new key and state under ``home``: (process, setting)."""
    folder = home / name.split(".")[0]
    (folder / "state").mkdir(parents=True, mode=0o700)
    vkey = registry("witness", "keygen", "--name", name, "--out", str(folder / "key"),
                    home=folder).strip()  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "registry", "witness", "serve", "--key", str(folder / "key"),
         "--log-key", log_vkey, "--state", str(folder / "state"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=(folder / "witness.err").open("wb"), text=True, cwd=ROOT,
        env={**os.environ, "REGISTRY_HOME": str(folder)},
    )  # fmt: skip
    assert process.stdout is not None
    if "listening on" not in process.stdout.readline():
        raise SystemExit(f"witness {name} did not start: {(folder / 'witness.err').read_text()}")
    return process, f"{vkey} http://127.0.0.1:{port}"


def start_server(name: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """``registry serve``'s server (uvicorn, the app factory) with its own log file."""
    errors = Path(env["REGISTRY_HOME"]) / f"{name}.err"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "registry.api.app:create_app", "--factory",
         "--port", str(port), "--loop", SERVER_LOOP, "--no-access-log", "--log-level",
         "warning"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors.open("wb"),
    )  # fmt: skip
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"{name} exited: {errors.read_text()[-2000:]}")
        time.sleep(0.1)
    raise SystemExit(f"{name} did not start")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def witnessing_figures(url: str) -> tuple[int, int, int, int]:
    """(log size, newest size both witnesses cosigned, cosignatures stored, sizes cosigned)."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT size FROM tlog_head),"
            " (SELECT coalesce(max(tree_size), 0) FROM (SELECT tree_size FROM tlog_cosignatures"
            "   GROUP BY tree_size HAVING count(*) >= 2) q),"
            " (SELECT count(*) FROM tlog_cosignatures),"
            " (SELECT count(DISTINCT tree_size) FROM tlog_cosignatures)"
        )
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])
    finally:
        await conn.close()


async def wait_witnessed(url: str, within: float = 30.0) -> float:
    """Seconds until the newest checkpoint is cosigned by both (after the load stopped)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        size, witnessed, _, _ = await witnessing_figures(url)
        if witnessed == size:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise SystemExit(f"the log's last checkpoint was not witnessed within {within} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs (medians)")
    parser.add_argument("--interval-ms", type=int, metavar="MS",
                        help="REGISTRY_WITNESS_INTERVAL_MS of the witnessed server "
                        "(default: the setting's default)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    load_at_start = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="bench-witnessing-"))
    # Registered before the servers start, so it runs after their own exit hooks.
    atexit.register(shutil.rmtree, home, True)
    procs: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    results: dict[str, list[Result]] = {target: [] for target in TARGETS}
    try:
        witnessed_url, settings = bench_database(home, "witnessed")
        plain_url = asyncio.run(create_database(witnessed_url, "plain"))
        token, shown = asyncio.run(load(witnessed_url, settings))
        plain_token, _ = asyncio.run(load(plain_url, settings))
        log_vkey = load_log_key(settings).verifier
        witnesses = []
        for name in ("bureau-a.example/witness", "bureau-b.example/witness"):
            process, setting = start_witness(home, name, log_vkey)
            procs.append(process)
            witnesses.append(setting)
        base_env = {**os.environ, "REGISTRY_HOME": str(home), "REGISTRY_LOG_FORMAT": "json",
                    "REGISTRY_PROFILE_WARM_INTERVAL_MS": "0", "PYTHONPATH": str(ROOT)}  # fmt: skip
        witnessing_env = {"REGISTRY_WITNESSES": ";".join(witnesses)}
        if args.interval_ms is not None:
            witnessing_env["REGISTRY_WITNESS_INTERVAL_MS"] = str(args.interval_ms)
        ports = {target: free_port() for target in TARGETS}
        procs.append(start_server("witnessed", {
            **base_env, "DATABASE_URL": witnessed_url, **witnessing_env}, ports["witnessed"]))
        procs.append(start_server("plain", {**base_env, "DATABASE_URL": plain_url},
                                  ports["plain"]))
        served = Settings.from_env({**base_env, **witnessing_env})
        tokens = {"witnessed": token, "plain": plain_token}
        work = home / "lua"
        work.mkdir()
        runs = 0

        def measure(target: str, duration: int) -> Result:
            nonlocal runs
            script = lua(work / f"{target}-{runs}.lua", runs, "/v1/subjects", tokens[target])
            runs += 1
            return wrk(f"http://127.0.0.1:{ports[target]}", script, args.connections, duration)

        for target in TARGETS:  # pools filled, code paths and PostgreSQL warm
            measure(target, 3)
        for _ in range(args.rounds):
            for target in TARGETS:
                results[target].append(measure(target, args.duration))
        catch_up = asyncio.run(wait_witnessed(witnessed_url))
        cpu = {name: cpu_seconds(proc.pid) for name, proc in
               zip(("witness a", "witness b", "witnessed", "plain"), procs, strict=True)}
        size, witnessed, stored, sizes = asyncio.run(witnessing_figures(witnessed_url))
        plain_size, _, plain_stored, _ = asyncio.run(witnessing_figures(plain_url))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    problems = {name: log_problems(home / f"{name}.err") for name in TARGETS}

    def med(target: str, i: int) -> float:
        return statistics.median(run[i] for run in results[target])

    # Each round's witnessed run beside the plain run right after it: the machine's drift
    # (other load, caches warming) touches both alike.
    paired = [w[0] / p[0] for w, p in zip(results["witnessed"], results["plain"], strict=True)]
    ratio = statistics.median(paired)
    print(
        "\nPOST /v1/subjects with two witnesses attached vs without: a new vc_firm per request,"
        " each with a valid credit code never sent before\n"
        "  witnessed: REGISTRY_WITNESSES names two `registry witness serve` processes (quorum"
        " 2): each new checkpoint is sent to both, their cosignatures verified and stored\n"
        "  plain:     the same service and settings, no witnesses\n"
        f"  each: one uvicorn process ({SERVER_LOOP} loop), pool max {served.pool_max}, its"
        f" own database in one embedded PostgreSQL (synchronous_commit="
        f"{shown['synchronous_commit']}, fsync={shown['fsync']}); checkpoint batch window"
        f" {served.batch_window_ms} ms; witness request timeout {served.witness_timeout_ms} ms,"
        f" rounds at most every {served.witness_interval_ms} ms\n"
        f"  wrk, {args.connections} connections; warm-up 3 s each; {args.rounds} alternating"
        f" runs of {args.duration} s, medians; {os.cpu_count()} cores; load average at start"
        f" {' '.join(f'{x:.2f}' for x in load_at_start)}, at end"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    print(f"{'server':<10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}   runs (req/s)")
    for target in TARGETS:
        each = " ".join(f"{run[0]:.0f}" for run in results[target])
        print(f"{target:<10}{med(target, 0):>8.0f}{med(target, 1):>9.1f}{med(target, 2):>9.1f}"
              f"   {each}")  # fmt: skip
    print(f"\nratio witnessed / plain = {ratio:.2f} (median of the rounds' ratios "
          f"{' '.join(f'{r:.2f}' for r in paired)}; ratio of the medians "
          f"{med('witnessed', 0) / med('plain', 0):.2f})  goal >= 0.9: "
          f"{'met' if ratio >= 0.9 else 'missed'}")
    print(f"witnessed log: {size} leaves; {sizes} checkpoint sizes cosigned ({stored}"
          f" cosignatures stored); the last checkpoint witnessed {catch_up:.2f} s after the"
          f" load stopped (newest witnessed size {witnessed})")
    print(f"plain log: {plain_size} leaves, {plain_stored} cosignatures")
    print("CPU seconds used in all (warm-up and runs): "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items()))
    for name, lines in problems.items():
        if lines:
            print(f"{name} log: {len(lines)} lines at warning or above, the first:")
            for line in lines[:5]:
                print(f"  {line[:300]}")
        else:
            print(f"{name} log: nothing at warning or above")


if __name__ == "__main__":
    main()
