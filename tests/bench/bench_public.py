"""Benchmark of the public surfaces against a bare Litestar + asyncpg app (not a test).

    .venv/bin/python tests/bench/bench_public.py [--records N] [--duration S] [--connections C]

Seeds N published penalties (10% of them against practitioners, whose numbers
are encrypted with the registry's key) straight into a fresh database, starts
the registry and ``bare_public_app.py`` under uvicorn (one worker each), then
measures with wrk the feed page (requests/s, p99) and with a streaming client
the CSV export (rows/s), and prints both side by side with their ratios.
Uses the embedded PostgreSQL unless DATABASE_URL names a server.
"""

# A benchmark launches its own servers and wrk with fixed arguments: no untrusted input.
# ruff: noqa: S603, S607

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from registry.db.migrate import migrate  # noqa: E402
from registry.identifiers import resident_id_check_character  # noqa: E402
from registry.keys import load_pii_cipher  # noqa: E402
from registry.settings import Settings  # noqa: E402

_SEED_RECORDS = """
INSERT INTO credit_records (id, subject_id, record_kind, grade, decision_number, violation_type,
    facts, legal_basis, penalty_types, penalty_content, fine_amount, decision_date, valid_until,
    authority_name, authority_code, source_name, source_code, published, publicity_start,
    repair_from, publicity_end, publicity_deadline, publicity_reason, status, version,
    created_at, created_by, updated_at, updated_by, log_index)
SELECT gen_random_uuid(), ($2::uuid[])[1 + i % cardinality($2::uuid[])], 'penalty', 'general',
    '寧發改罰〔2026〕' || i || '號', '未按規定備案', '未按規定報送年度報告，情節一般。',
    '《創業投資企業管理暫行辦法》第二十八條', '{fine}', '罰款人民幣十二萬五千元', 12.5,
    current_date - (i % 90), current_date + 300, '西寧市發展和改革委員會', '11630100MB1234567J',
    '西寧市發展和改革委員會', '11630100MB1234567J', true, current_date - (i % 90),
    current_date + 10, current_date + 300, current_date + 299, 'general: 3..12 months',
    'published', 1, now() - interval '1 day', 'regulator:bench', now() - interval '1 day',
    'regulator:bench', $1::bigint + i
FROM generate_series(1, $3::int) AS i
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def seed(url: str, settings: Settings, n: int) -> None:
    pii = load_pii_cipher(settings, create_dev=True)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        subjects = []
        for i in range(1000):
            sid = await conn.fetchval(
                "INSERT INTO subjects (id, kind, name, status, credit_code, legal_representative,"
                " version, created_at, created_by, updated_at, updated_by, log_index)"
                " VALUES (gen_random_uuid(), 'vc_firm', $1, 'active', $2, '王五', 1, now(), 'b',"
                " now(), 'b', 0) RETURNING id", f"西寧第{i}創業投資有限公司", f"BENCH{i:013d}")
            subjects.append(sid)
        for i in range(111):
            first17 = f"630102199001{i % 28 + 1:02d}{i:03d}"
            number = first17 + resident_id_check_character(first17)
            sid = await conn.fetchval(
                "INSERT INTO subjects (id, kind, name, status, document_type, document_cipher,"
                " document_lookup, version, created_at, created_by, updated_at, updated_by, log_index)"
                " VALUES (gen_random_uuid(), 'practitioner', $1, 'active', 'resident_id', $2, $3, 1,"
                " now(), 'b', now(), 'b', 0) RETURNING id", f"從業人員{i}",
                pii.encrypt("resident_id", number), pii.lookup_hash("resident_id", number))
            subjects.append(sid)
        await conn.execute(_SEED_RECORDS, 1_000_000, subjects, n)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


REGISTRY_SERVER = """
import sys, uvicorn
from registry.api.app import create_app
from registry.settings import Settings
app = create_app(Settings.from_env(), database_url=sys.argv[2])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start(cmd: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=30).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"couldn't start {cmd[:3]} on port {port}")


def wrk(url: str, duration: int, connections: int, script: str | None = None) -> tuple[float, float]:
    extra = ["-s", script] if script else []
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", *extra, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers from {url}:\n{out}")
    return rps, p99_ms


def export_rate(url: str) -> tuple[float, int, float]:
    started = time.perf_counter()
    lines = 0
    size = 0
    with httpx.stream("GET", url, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
            size += len(chunk)
    elapsed = time.perf_counter() - started
    return lines / elapsed, lines, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-public-"))
    env = {**os.environ, "REGISTRY_HOME": str(home), "REGISTRY_LOG_FORMAT": "json",
           "PYTHONPATH": str(ROOT)}
    url = os.environ.get("DATABASE_URL")
    if not url:
        from registry.db.embedded import start_embedded

        url = start_embedded(home)
    settings = Settings.from_env({"REGISTRY_HOME": str(home)})
    t0 = time.perf_counter()
    asyncio.run(seed(url, settings, args.records))
    print(f"seeded {args.records} records in {time.perf_counter() - t0:.1f}s", flush=True)

    reg_port, bare_port = free_port(), free_port()
    registry = start([sys.executable, "-c", REGISTRY_SERVER, str(reg_port), url], env, reg_port,
                     "/public/feed.json")
    bare = start([sys.executable, str(ROOT / "tests/bench/bare_public_app.py"), str(bare_port), url],
                 env, bare_port, "/feed")
    try:
        reg_feed = wrk(f"http://127.0.0.1:{reg_port}/public/feed.json", args.duration, args.connections)
        bare_feed = wrk(f"http://127.0.0.1:{bare_port}/feed", args.duration, args.connections)
        scripts = {}
        for name, path in (("registry", "/public/feed.json"), ("bare", "/feed")):
            script = home / f"{name}.lua"
            script.write_text(
                "request = function()\n"
                f"  return wrk.format('GET', '{path}?before=' .. math.random(1000002, {1_000_001 + args.records}))\n"
                "end\n")
            scripts[name] = str(script)
        reg_random = wrk(f"http://127.0.0.1:{reg_port}/public/feed.json", args.duration,
                         args.connections, scripts["registry"])
        bare_random = wrk(f"http://127.0.0.1:{bare_port}/feed", args.duration, args.connections,
                          scripts["bare"])
        reg_304 = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s",
                                  "-H", "If-None-Match: " + httpx.get(
                                      f"http://127.0.0.1:{reg_port}/public/feed.json").headers["etag"],
                                  f"http://127.0.0.1:{reg_port}/public/feed.json"],
                                 capture_output=True, text=True, check=True).stdout
        rps_304 = float(re.search(r"Requests/sec:\s+([\d.]+)", reg_304).group(1))  # type: ignore[union-attr]
        reg_export = export_rate(f"http://127.0.0.1:{reg_port}/public/exports/penalties.csv")
        bare_export = export_rate(f"http://127.0.0.1:{bare_port}/export.csv")
    finally:
        for process in (registry, bare):
            process.terminate()
            process.wait(timeout=10)

    print(f"\nN = {args.records} records; wrk -t2 -c{args.connections} -d{args.duration}s; "
          "one uvicorn worker each\n")
    print(f"{'measure':<34}{'registry':>14}{'bare':>14}{'ratio':>9}")
    print(f"{'same feed page requests/s':<34}{reg_feed[0]:>14.0f}{bare_feed[0]:>14.0f}"
          f"{reg_feed[0] / bare_feed[0]:>9.2f}")
    print(f"{'same feed page p99 (ms)':<34}{reg_feed[1]:>14.1f}{bare_feed[1]:>14.1f}"
          f"{reg_feed[1] / bare_feed[1]:>9.2f}")
    print(f"{'random feed pages requests/s':<34}{reg_random[0]:>14.0f}{bare_random[0]:>14.0f}"
          f"{reg_random[0] / bare_random[0]:>9.2f}")
    print(f"{'random feed pages p99 (ms)':<34}{reg_random[1]:>14.1f}{bare_random[1]:>14.1f}"
          f"{reg_random[1] / bare_random[1]:>9.2f}")
    print(f"{'feed 304 (If-None-Match) req/s':<34}{rps_304:>14.0f}{'-':>14}{'-':>9}")
    print(f"{'CSV export rows/s':<34}{reg_export[0]:>14.0f}{bare_export[0]:>14.0f}"
          f"{reg_export[0] / bare_export[0]:>9.2f}")
    print(f"{'CSV export rows / seconds':<34}{reg_export[1]:>8} {reg_export[2]:>5.1f}s"
          f"{bare_export[1]:>8} {bare_export[2]:>5.1f}s")


if __name__ == "__main__":
    main()
