# ruff: noqa: S603, S607 - a bench script running fixed local tools (wrk, pgbench, psql, uvicorn)
"""Bureau API throughput: profiles, bulk lookup and the change feed vs bare baselines.

A script, not a pytest test:

    .venv/bin/python tests/bench/bench_bureau.py                        # 100k subjects, 1M records
    .venv/bin/python tests/bench/bench_bureau.py --subjects 20000 --records 200000 --duration 5

It starts its own embedded PostgreSQL under a temporary folder (deleted at the
end), loads subjects (80 % organisations, 20 % practitioners with encrypted
document numbers) and published records with COPY, writes real audit-log leaves
and version bodies for the first ``--feed`` of those objects (integrated into a
signed tree, so the feed serves them), then serves:

- the real service: ``uvicorn registry.api.app:create_app --factory --loop asyncio`` (one
  process, JSON logs to /dev/null, rate limit off), and
- ``tests/bench/bare_app.py``: bare Litestar + asyncpg, one indexed point SELECT,

both in subprocesses, and measures with ``wrk`` (``apt-get install -y wrk``; one
thread per core, for both servers): profile lookups/s and p99 at 32 and 128
connections vs the bare app, over 2000 random credit codes (both servers warmed
for 3 s, then ``--rounds`` alternating runs each, medians reported); bulk lookup (1000
credit codes per request) identifiers/s vs ``pgbench -S`` transactions/s against
the same server (Unix socket), repeated (the same 1000: served from the process's
memo) and first touch (8000 codes the server never answered for), twice: with every
profile built ahead by the service's warmer (how it runs; how long that took after
the load is a row too), and with warming off (every profile built by PostgreSQL
during the request); change-feed rows/s read sequentially in pages of 5000 (each page
recording an access per practitioner it carries, as the service always does). Rows beyond
``--feed`` carry no leaf (a bench shortcut: ``registry log verify`` would reject this
database).
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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402 - after the path set-up above
import httpx  # noqa: E402

from registry.cli import SERVER_LOOP  # noqa: E402
from registry.clock import SystemClock  # noqa: E402
from registry.db.embedded import start_embedded  # noqa: E402
from registry.db.migrate import migrate  # noqa: E402
from registry.identifiers import resident_id_check_character, uscc_check_character  # noqa: E402
from registry.keys import load_log_key, load_pii_cipher  # noqa: E402
from registry.settings import Settings  # noqa: E402
from registry.tlog.integrator import initialise_log, integrate_once  # noqa: E402
from registry.tlog.leaf import commitment, encode_leaf, object_body  # noqa: E402
from registry.tokens import issue_token  # noqa: E402
from tests.bench.harness import bench_database  # noqa: E402

SUBJECT_COLUMNS = (
    "id", "kind", "name", "status", "credit_code", "registered_region", "filing_number",
    "filing_date", "legal_representative", "document_type", "document_cipher",
    "document_lookup", "version", "created_at", "created_by", "updated_at", "updated_by",
    "log_index",
)  # fmt: skip
RECORD_COLUMNS = (
    "id", "subject_id", "record_kind", "grade", "decision_number", "violation_type", "facts",
    "legal_basis", "penalty_types", "penalty_content", "fine_amount", "confiscation_amount",
    "licence_name", "licence_number", "decision_date", "valid_until", "authority_name",
    "authority_code", "source_name", "source_code", "remarks", "published", "publicity_start",
    "repair_from", "publicity_end", "publicity_deadline", "publicity_reason", "status",
    "publication_ended_on", "status_reason", "under_objection", "previous_log_index",
    "correction_note", "version", "created_at", "created_by", "updated_at", "updated_by",
    "log_index",
)  # fmt: skip


def credit_code(n: int) -> str:
    first = f"9163010{n:010d}"
    return first + uscc_check_character(first)


def resident_id(n: int) -> str:
    born = date(1960, 1, 1) + timedelta(days=n // 900)
    first = f"630102{born:%Y%m%d}{n % 900 + 100:03d}"
    return first + resident_id_check_character(first)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(url: str, settings: Settings, n_subjects: int, n_records: int, feed: int) -> str:
    """Fill the database; return a bureau token."""
    conn = await asyncpg.connect(url)
    key = load_log_key(settings, create_dev=True)
    pii = load_pii_cipher(settings, create_dev=True)
    await migrate(conn)
    await initialise_log(conn, key, settings.log_origin)
    now = datetime.now(UTC)
    today = (now + timedelta(hours=8)).date()
    rng = random.Random(7)
    n_orgs = n_subjects * 4 // 5
    leaves: list[tuple[Any, ...]] = []
    objects: list[tuple[Any, ...]] = []

    def log_it(object_type: str, row: dict[str, Any]) -> int:
        index = len(leaves)
        if index >= feed:
            return 0
        row["log_index"] = index
        body = object_body(row)
        salt = os.urandom(16)
        leaf = encode_leaf(
            index=index, time=now, actor="system:bench", action=f"{object_type}.create",
            object_ref=f"{object_type}/{row['id']}", commit=commitment(salt, body),
        )  # fmt: skip
        leaves.append((index, leaf, now))
        objects.append((index, object_type, str(row["id"]), body, salt))
        return index

    t0 = time.perf_counter()
    subject_ids: list[uuid.UUID] = []
    subject_rows: list[tuple[Any, ...]] = []
    for i in range(n_subjects):
        sid = uuid.uuid4()
        subject_ids.append(sid)
        row: dict[str, Any] = dict.fromkeys(SUBJECT_COLUMNS)
        row.update(id=sid, status="active", version=1, created_at=now, created_by="system:bench",
                   updated_at=now, updated_by="system:bench", log_index=0)  # fmt: skip
        if i < n_orgs:
            row.update(kind="vc_firm", name=f"西寧創投{i}有限公司", credit_code=credit_code(i))
        else:
            number = resident_id(i)
            row.update(kind="practitioner", name="李四", document_type="resident_id",
                       document_cipher=pii.encrypt("resident_id", number),
                       document_lookup=pii.lookup_hash("resident_id", number))  # fmt: skip
        log_it("subject", row)
        subject_rows.append(tuple(row[c] for c in SUBJECT_COLUMNS))
    await conn.copy_records_to_table("subjects", records=subject_rows, columns=SUBJECT_COLUMNS)
    del subject_rows
    authority = credit_code(999_999_999)
    batch: list[tuple[Any, ...]] = []
    for i in range(n_records):
        decided = today - timedelta(days=rng.randrange(0, 300))
        row = {
            "id": uuid.uuid4(), "subject_id": subject_ids[rng.randrange(n_subjects)],
            "record_kind": "penalty", "grade": "general",
            "decision_number": f"寧罰〔2026〕{i}號", "violation_type": "未按規定備案",
            "facts": "未按規定報送年度報告", "legal_basis": "《創業投資企業管理暫行辦法》第二十八條",
            "penalty_types": ["fine"], "penalty_content": "罰款人民幣十二萬五千元",
            "fine_amount": Decimal("12.500000"), "confiscation_amount": None,
            "licence_name": None, "licence_number": None, "decision_date": decided,
            "valid_until": decided + timedelta(days=365), "authority_name": "西寧市發改委",
            "authority_code": authority, "source_name": "西寧市發改委", "source_code": authority,
            "remarks": None, "published": True, "publicity_start": decided,
            "repair_from": decided + timedelta(days=92),
            "publicity_end": decided + timedelta(days=366),
            "publicity_deadline": decided + timedelta(days=365), "publicity_reason": "general",
            "status": "published", "publication_ended_on": None, "status_reason": None,
            "under_objection": False, "previous_log_index": None, "correction_note": None,
            "version": 1, "created_at": now, "created_by": "system:bench", "updated_at": now,
            "updated_by": "system:bench", "log_index": 0,
        }  # fmt: skip
        log_it("credit_record", row)
        batch.append(tuple(row[c] for c in RECORD_COLUMNS))
        if len(batch) == 50_000:
            await conn.copy_records_to_table(
                "credit_records", records=batch, columns=RECORD_COLUMNS
            )
            batch = []
    if batch:
        await conn.copy_records_to_table("credit_records", records=batch, columns=RECORD_COLUMNS)
    await conn.copy_records_to_table(
        "tlog_leaves", records=leaves, columns=("idx", "leaf", "created_at")
    )
    await conn.copy_records_to_table(
        "tlog_objects", records=objects,
        columns=("log_index", "object_type", "object_id", "body", "salt"),
    )  # fmt: skip
    await conn.execute("UPDATE tlog_sequence SET next_index = $1", len(leaves))
    await conn.execute("ANALYZE")
    print(f"loaded {n_subjects} subjects, {n_records} records, {len(leaves)} leaves"
          f" in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    token, _ = await issue_token(
        pool, SystemClock(), role="bureau", name="bench", actor="admin:bench"
    )
    t0 = time.perf_counter()
    while (await integrate_once(conn, key, settings.log_origin, max_batch=100_000)).size < len(
        leaves
    ) + 1:
        pass
    print(f"integrated {len(leaves) + 1} leaves in {time.perf_counter() - t0:.1f} s", flush=True)
    await pool.close()
    await conn.close()
    return token


def start(
    module: str, env: dict[str, str], port: int, probe: str, *, loop: str = "auto"
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", module, "--factory", "--port", str(port),
           "--loop", loop, "--no-access-log", "--log-level", "warning"]  # fmt: skip
    # Logs go to a file: an unread pipe would fill up and stall the server.
    errors = Path(env["REGISTRY_HOME"]) / f"{module.split('.')[-1].split(':')[0]}.err"
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors.open("wb")
    )
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{module} exited: {errors.read_text()[-2000:]}")
        time.sleep(0.1)
    raise SystemExit(f"{module} did not start")


def _ms(text: str, out: str) -> float:
    """A wrk latency (us, ms, s or m) in milliseconds; ``out`` is shown if it is none."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise SystemExit(f"unexpected wrk latency {text!r}:\n{out}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, script: Path, connections: int, duration: int) -> tuple[float, float, int]:
    """(successful requests/s, p99 ms, failed requests). Failures are counted, not
    hidden: the service answers 503 when a request waits over 2 s for a connection,
    and wrk stops waiting for an answer after 2 s."""
    # One load-generator thread per core: more only take CPU from the servers measured.
    threads = min(os.cpu_count() or 2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
         str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    sock_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    broken = sock_errors is not None and any(int(n) for n in sock_errors.groups()[:3])
    if "99%" not in out or broken:
        raise SystemExit(f"wrk saw errors:\n{out}")
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if done is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    seconds = float(done.group(2)) * (0.001 if done.group(3) == "ms" else 1.0)
    # wrk gives up on a request after 2 s: a failure like a 503.
    failures = int(failed.group(1)) if failed else 0
    failures += int(sock_errors.group(4)) if sock_errors else 0
    # Anchored: "99%" also ends a figure in the thread stats (a spread of 79.99%).
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1), out)  # type: ignore[union-attr]
    return (int(done.group(1)) - failures) / seconds, p99, failures


def _failed(count: int) -> str:
    return f" ({count} failed)" if count else ""


def lua_get(path: Path, prefix: str, codes: list[str], token: str | None) -> Path:
    headers = f'{{["Authorization"]="Bearer {token}"}}' if token else "{}"
    path.write_text(
        f"codes = {{{','.join(json.dumps(c) for c in codes)}}}\n"
        f"headers = {headers}\n"
        "request = function()\n"
        f'  return wrk.format("GET", "{prefix}" .. codes[math.random(#codes)], headers)\n'
        "end\n"
    )
    return path


def lua_post(path: Path, url_path: str, body: bytes, token: str) -> Path:
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        f'wrk.path = "{url_path}"\n'
    )
    return path


def pgbench(uri: str, duration: int) -> float:
    parsed = urlparse(uri)
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or ""])[0]
    port = str(query.get("port", [parsed.port or 5432])[0])
    user = parsed.username or "postgres"
    base = ["-h", host, "-p", port, "-U", user]
    env = {**os.environ, "PGPASSWORD": parsed.password or ""}
    subprocess.run(["psql", *base, "-d", "postgres", "-c", "CREATE DATABASE pgb"],
                   env=env, capture_output=True)  # fmt: skip
    subprocess.run(["pgbench", *base, "-i", "-s", "10", "-q", "pgb"], env=env,
                   capture_output=True, check=True)  # fmt: skip
    out = subprocess.run(
        ["pgbench", *base, "-S", "-c", "32", "-j", str(os.cpu_count() or 2), "-T", str(duration),
         "pgb"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]


def first_touch_bulk(port: int, token: str, codes: list[str], connections: int) -> float:
    """Identifiers/s of bulk lookups naming subjects this server never answered for, so
    none is in its memo: each profile is read from the shared cache or built by
    PostgreSQL. A few lines of HTTP/1.1 over asyncio streams rather than httpx: a
    1000-profile answer is ~9 MB, and reading it through httpx took a third of a core
    of this 2-core machine, which the server shares (wrk cannot send each body once)."""

    async def run() -> float:
        batches = [codes[i : i + 1000] for i in range(0, len(codes), 1000)]
        queue = list(batches)

        async def worker() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                while queue:
                    batch = queue.pop()
                    body = json.dumps({"identifiers": [{"credit_code": c} for c in batch]}).encode()
                    head = (
                        "POST /v1/bureau/profiles/bulk HTTP/1.1\r\nHost: bench\r\n"
                        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n"
                    )
                    writer.write(head.encode() + body)
                    answer = await reader.readuntil(b"\r\n\r\n")
                    status = int(answer.split(b" ", 2)[1])
                    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", answer)
                    if status != 200 or length is None:
                        raise SystemExit(f"bulk lookup answered {answer!r}")
                    await reader.readexactly(int(length.group(1)))
            finally:
                writer.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return sum(len(b) for b in batches) / (time.perf_counter() - t0)

    return asyncio.run(run())


async def _unbuilt(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM bureau_profile_cache WHERE records IS NULL")
        )
    finally:
        await conn.close()


def wait_warmed(url: str) -> float:
    """Seconds until the server's warmer has built every subject's profile lists."""
    t0 = time.perf_counter()
    while asyncio.run(_unbuilt(url)):
        if time.perf_counter() - t0 > 1800:
            raise SystemExit("profiles were not built within 30 minutes")
        time.sleep(0.5)
    return time.perf_counter() - t0


def feed_rate(base: str, token: str) -> tuple[float, int]:
    rows, cursor = 0, None
    t0 = time.perf_counter()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        while True:
            params: dict[str, Any] = {"limit": 5000, "purpose": "credit_assessment"}
            if cursor:
                params["since"] = cursor
            page = c.get("/v1/bureau/changes", params=params).raise_for_status().json()
            rows += len(page["items"])
            cursor = page["next_cursor"]
            if not page["more"]:
                break
    return rows / (time.perf_counter() - t0), rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--feed", type=int, default=200_000, help="objects given audit-log leaves")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk/pgbench run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating profile runs per server (medians)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    home = Path(tempfile.mkdtemp(prefix="bench-bureau-"))
    # Registered before the server starts, so it runs after the server's own exit hook.
    atexit.register(shutil.rmtree, home, True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        url, settings = bench_database(home)
        token = asyncio.run(load(url, settings, args.subjects, args.records, args.feed))
        env = {
            **os.environ,
            "REGISTRY_HOME": str(home),
            "DATABASE_URL": url,
            "REGISTRY_POLICY_BUREAU_RATE_PER_MINUTE": "0",
            "REGISTRY_LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT),
        }
        real_port, bare_port = free_port(), free_port()
        n_orgs = args.subjects * 4 // 5
        rng = random.Random(3)
        codes = [credit_code(rng.randrange(n_orgs)) for _ in range(2000)]
        # Subjects the profile runs below never ask for (they use ``codes`` only), for the
        # two first-touch rows: 8000 each.
        asked = set(codes)
        fresh = [c for c in (credit_code(n) for n in range(n_orgs)) if c not in asked]
        on_the_spot, built_ahead = fresh[:8000], fresh[8000:16000]
        # First, profiles built on the spot: the registry with warming off, nothing built.
        # The registry on the event loop ``registry serve`` uses.
        registry = "registry.api.app:create_app"
        cold = start(registry, {**env, "REGISTRY_PROFILE_WARM_INTERVAL_MS": "0"}, real_port,
                     "/healthz", loop=SERVER_LOOP)  # fmt: skip
        cold_rate = first_touch_bulk(real_port, token, on_the_spot, 8)
        cold.terminate()
        cold.wait(timeout=30)
        # Then the registry as it runs (warming on): every profile built after the load.
        procs.append(start(registry, env, real_port, "/healthz", loop=SERVER_LOOP))
        warm_seconds = wait_warmed(url)
        # The bare app on uvicorn's default loop (uvloop), its fastest: the stricter
        # comparison.
        procs.append(start("tests.bench.bare_app:create_app", env, bare_port, "/subjects/x"))
        real, bare = f"http://127.0.0.1:{real_port}", f"http://127.0.0.1:{bare_port}"
        work = Path(home) / "lua"
        work.mkdir()
        real_lua = lua_get(work / "real.lua", "/v1/bureau/profiles/", codes, token)
        bare_lua = lua_get(work / "bare.lua", "/subjects/", codes, None)
        rows: list[tuple[str, str, str, str]] = []
        # Both servers warmed alike first (the registry's memo, both pools, PostgreSQL's
        # buffers): the cold paths are what the first-touch bulk rows measure.
        wrk(real, real_lua, 32, 3)
        wrk(bare, bare_lua, 32, 3)
        for connections in (32, 128):
            # Alternating rounds, medians of each: one pair of runs on this shared
            # machine swings by ±20 %.
            real_runs, bare_runs = [], []
            for _ in range(args.rounds):
                real_runs.append(wrk(real, real_lua, connections, args.duration))
                bare_runs.append(wrk(bare, bare_lua, connections, args.duration))
            r_rate, r_p99, b_rate, b_p99 = (
                statistics.median(run[i] for run in runs)
                for runs, i in ((real_runs, 0), (real_runs, 1), (bare_runs, 0), (bare_runs, 1))
            )
            r_failed = sum(run[2] for run in real_runs)
            b_failed = sum(run[2] for run in bare_runs)
            rows.append((f"profile lookup, {connections} conns (req/s; p99 ms)",
                         f"{r_rate:,.0f}; {r_p99:.1f}{_failed(r_failed)}",
                         f"{b_rate:,.0f}; {b_p99:.1f}{_failed(b_failed)} (bare app)",
                         f"{r_rate / b_rate:.2f}"))  # fmt: skip
        bulk_body = json.dumps({"identifiers": [{"credit_code": c} for c in codes[:1000]]}).encode()
        bulk_lua = lua_post(work / "bulk.lua", "/v1/bureau/profiles/bulk", bulk_body, token)
        bulk_rate, _, bulk_failed = wrk(real, bulk_lua, 8, args.duration)
        ahead_rate = first_touch_bulk(real_port, token, built_ahead, 8)
        tps = pgbench(start_embedded(home), args.duration)  # the server's own database
        rows.append(("bulk lookup, 8 conns x 1000 ids, repeated (ids/s)",
                     f"{bulk_rate * 1000:,.0f}{_failed(bulk_failed)}", f"{tps:,.0f} (pgbench -S tps, 32 clients)",
                     f"{bulk_rate * 1000 / tps:.2f}"))  # fmt: skip
        rows.append(("bulk lookup, 8 conns x 1000 ids, first touch, built ahead (ids/s)",
                     f"{ahead_rate:,.0f}", f"{tps:,.0f} (pgbench -S tps, 32 clients)",
                     f"{ahead_rate / tps:.2f}"))  # fmt: skip
        rows.append(("bulk lookup, 8 conns x 1000 ids, first touch, built on the spot (ids/s)",
                     f"{cold_rate:,.0f}", f"{tps:,.0f} (pgbench -S tps, 32 clients)",
                     f"{cold_rate / tps:.2f}"))  # fmt: skip
        rows.append((f"profiles built ahead after the load ({args.subjects:,} subjects)",
                     f"{args.subjects / warm_seconds:,.0f}/s", f"{warm_seconds:.0f} s", "-"))  # fmt: skip
        feed_rps, feed_rows = feed_rate(real, token)
        rows.append((f"change feed, 1 reader, pages of 5000 ({feed_rows:,} rows)",
                     f"{feed_rps:,.0f} rows/s", "-", "-"))  # fmt: skip
        print(f"\nsubjects={args.subjects:,} records={args.records:,} feed leaves={args.feed:,}"
              f" duration={args.duration}s per run, profile rows: medians of {args.rounds}"
              " alternating rounds\n")  # fmt: skip
        print(f"{'measure':<72} {'registry':>16} {'baseline':>40} {'ratio':>6}")
        for name, ours, theirs, ratio in rows:
            print(f"{name:<72} {ours:>16} {theirs:>40} {ratio:>6}")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
