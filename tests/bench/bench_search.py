# ruff: noqa: S603, S607 - a bench script running fixed local tools (wrk, uvicorn)
"""Subject search through the HTTP API against the same SQL run directly (not a test).

    .venv/bin/python tests/bench/bench_search.py                       # 100,000 subjects
    .venv/bin/python tests/bench/bench_search.py --subjects 20000 --duration 5 --rounds 1

It starts its own embedded PostgreSQL under a temporary folder (deleted at the end),
loads company-like subjects with COPY (names from place names such as 西宁, 青海, 海东,
a brand and 创业投资, 股权投资…, a third of them in Traditional characters, a few with
full-width Latin letters) and 0–3 published penalties each (decision numbers in the
subject's script), leaves ``subjects.search_text`` empty as a database upgraded to
migration 0013 has it and times the backfill `registry migrate` runs (rows/s), then
starts the service as ``registry serve`` runs it (uvicorn, one process, the asyncio
loop) and measures, at each fixed concurrency of ``--connections`` (4 and 16):

- the public page search, ``GET /public/?q=``, and
- the regulators' listing, ``GET /v1/subjects?q=&limit=50``,

with Debian's ``wrk`` (requests/s, p50, p99), over a fixed set of substring queries of
2–4 characters (parts of names, in either script and sometimes full-width, of decision
numbers, of credit codes); and, as the baseline, the very statements each request runs
(captured from the service's own functions for each query) sent straight to PostgreSQL
with asyncpg by as many concurrent workers as wrk has connections, in the same run.
Ratio = HTTP requests/s / direct-SQL requests/s. Rounds alternate; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
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
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402 - after the path set-up above
import opencc  # noqa: E402

from registry import subjects  # noqa: E402
from registry.authorities import add_authority  # noqa: E402
from registry.cli import SERVER_LOOP  # noqa: E402
from registry.clock import SystemClock, today  # noqa: E402
from registry.db.migrate import (  # noqa: E402
    backfill_record_search,
    backfill_subject_search,
    migrate,
)
from registry.db.types import Conn  # noqa: E402
from registry.domain.policy import Policy  # noqa: E402
from registry.identifiers import uscc_check_character  # noqa: E402
from registry.keys import load_log_key  # noqa: E402
from registry.publish import page  # noqa: E402
from registry.services import Services  # noqa: E402
from registry.settings import Settings  # noqa: E402
from registry.text import clean_query  # noqa: E402
from registry.tlog.integrator import initialise_log  # noqa: E402
from registry.tokens import issue_token  # noqa: E402
from tests.bench.bench_bureau import RECORD_COLUMNS, free_port, start  # noqa: E402
from tests.bench.harness import bench_database  # noqa: E402

AUTHORITY = ("11630100MB1234567J", "西寧市發展和改革委員會")
SUBJECT_COLUMNS = (
    "id", "kind", "name", "status", "credit_code", "legal_representative", "version",
    "created_at", "created_by", "updated_at", "updated_by", "log_index",
)  # fmt: skip
PLACES = [
    "西宁", "西宁市", "青海", "青海省", "海东", "格尔木", "德令哈", "城东", "城中", "城西",
    "城北", "大通", "湟中", "湟源", "玉树", "果洛", "海北", "黄南", "柴达木", "兰州", "西安",
    "北京", "深圳", "",
]  # fmt: skip
BRANDS = ["三江源", "昆仑", "祁连", "高原", "雪域", "丝路", "青藏", "河湟", "日月山", "湟水"]
CHARS = list("鼎盛华汇金源祥瑞德信泰恒达丰江河宏远聚嘉禾新元启明润通和众博智创领航")
TRADES = [
    "创业投资", "股权投资", "创投", "资本", "投资管理", "基金管理", "私募基金管理", "产业投资",
    "科技投资", "天使投资",
]  # fmt: skip
FORMS = ["有限公司", "有限责任公司", "合伙企业（有限合伙）", "股份有限公司", "中心（有限合伙）"]
DEPARTMENTS = ["发改", "金融", "市监"]
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code(rng: random.Random) -> str:
    region = rng.choice(["630100", "630102", "630103", "630104", "630105", "632100", "110105"])
    first = "91" + region + "".join(rng.choice(ALPHABET) for _ in range(9))
    return first + uscc_check_character(first)


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def company_name(rng: random.Random) -> str:
    brand = rng.choice(BRANDS) if rng.random() < 0.3 else "".join(rng.sample(CHARS, 2))
    name = rng.choice(PLACES) + brand + rng.choice(TRADES) + rng.choice(FORMS)
    return ("ＸＩＮＩＮＧ" if rng.random() < 0.02 else "") + name


def generate(n: int, seed: int = 7) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """Subjects (rows for COPY) and their records (as dicts), deterministic for ``seed``."""
    rng = random.Random(seed)
    s2t = opencc.OpenCC("s2t")
    now = datetime.now(UTC)
    day = (now + timedelta(hours=8)).date()
    subject_rows: list[tuple[Any, ...]] = []
    records: list[dict[str, Any]] = []
    codes: set[str] = set()
    serial = 0
    for _ in range(n):
        traditional = rng.random() < 0.35
        name = company_name(rng)
        code = credit_code(rng)
        while code in codes:
            code = credit_code(rng)
        codes.add(code)
        sid = uuid.uuid4()
        subject_rows.append((sid, "vc_firm", s2t.convert(name) if traditional else name, "active",
                             code, "王五", 1, now, "system:bench", now, "system:bench", 0))
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
            serial += 1
            number = (f"宁{rng.choice(DEPARTMENTS)}罚〔{2019 + serial % 8}〕"
                      f"{serial // 8 + 1}号")  # unique per authority
            decided = day - timedelta(days=rng.randrange(0, 300))
            records.append({
                "id": uuid.uuid4(), "subject_id": sid, "record_kind": "penalty",
                "grade": "general",
                "decision_number": s2t.convert(number) if traditional else number,
                "violation_type": "未按規定備案", "facts": "未按規定報送年度報告",
                "legal_basis": "《創業投資企業管理暫行辦法》第二十八條", "penalty_types": ["fine"],
                "penalty_content": "罰款人民幣十二萬五千元", "fine_amount": Decimal("12.5"),
                "confiscation_amount": None, "licence_name": None, "licence_number": None,
                "decision_date": decided, "valid_until": decided + timedelta(days=365),
                "authority_name": AUTHORITY[1], "authority_code": AUTHORITY[0],
                "source_name": AUTHORITY[1], "source_code": AUTHORITY[0], "remarks": None,
                "published": True, "publicity_start": decided,
                "repair_from": decided + timedelta(days=92),
                "publicity_end": decided + timedelta(days=366),
                "publicity_deadline": decided + timedelta(days=365), "publicity_reason": "general",
                "status": "published", "publication_ended_on": None, "status_reason": None,
                "under_objection": False, "previous_log_index": None, "correction_note": None,
                "version": 1, "created_at": now, "created_by": "system:bench",
                "updated_at": now, "updated_by": "system:bench", "log_index": serial,
            })  # fmt: skip
    return subject_rows, records


def queries(subject_rows: list[tuple[Any, ...]], records: list[dict[str, Any]],
            count: int, seed: int = 11) -> list[str]:
    """Substrings of 2–4 characters as people type them: 60 % parts of names (in the other
    script half the time, full-width now and then), 20 % of decision numbers, 20 % of
    credit codes (lower case half the time)."""
    rng = random.Random(seed)
    t2s, s2t = opencc.OpenCC("t2s"), opencc.OpenCC("s2t")
    found: list[str] = []
    while len(found) < count:
        size = rng.randint(2, 4)
        roll = rng.random()
        if roll < 0.6:
            text = rng.choice(subject_rows)[2].replace("ＸＩＮＩＮＧ", "")
            text = (s2t if rng.random() < 0.5 else t2s).convert(text)
        elif roll < 0.8:
            text = rng.choice(records)["decision_number"]
        else:
            text = rng.choice(subject_rows)[4]
            text = text.lower() if rng.random() < 0.5 else text
        start_at = rng.randrange(0, len(text) - size + 1)
        part = text[start_at : start_at + size]
        if rng.random() < 0.05:
            part = full_width(part)
        if part.strip() and clean_query(part, "q") == part:
            found.append(part)
    return found


async def load(url: str, settings: Settings, subject_rows: list[tuple[Any, ...]],
               records: list[dict[str, Any]]) -> tuple[str, float]:
    """Fill the database; (a regulator token, backfill rows/s)."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await initialise_log(conn, load_log_key(settings, create_dev=True), settings.log_origin)
        t0 = time.perf_counter()
        await conn.copy_records_to_table("subjects", records=subject_rows,
                                         columns=SUBJECT_COLUMNS)
        for i in range(0, len(records), 50_000):
            await conn.copy_records_to_table(
                "credit_records", columns=RECORD_COLUMNS,
                records=[tuple(r[c] for c in RECORD_COLUMNS) for r in records[i : i + 50_000]])
        await conn.execute("UPDATE tlog_sequence SET next_index = $1", len(records) + 1)
        print(f"loaded {len(subject_rows)} subjects, {len(records)} records in {time.perf_counter() - t0:.1f} s",
              flush=True)
        # As a database upgraded to migrations 0013 and 0017 has it: the columns empty,
        # then the backfills `registry migrate` runs after the SQL files.
        t0 = time.perf_counter()
        filled = await backfill_subject_search(conn)
        backfill_rate = filled / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        numbers = await backfill_record_search(conn)
        print(f"backfill folded {numbers} decision numbers at "
              f"{numbers / (time.perf_counter() - t0):.0f}/s", flush=True)
        # As autovacuum leaves a database after a load: the visibility map set, so the
        # public search's covering indexes (migration 0015) are read without the heap.
        await conn.execute("VACUUM ANALYZE subjects")
        await conn.execute("VACUUM ANALYZE credit_records")
        await conn.execute("ANALYZE")
        print(f"backfill folded {filled} subjects at {backfill_rate:.0f}/s", flush=True)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        await add_authority(pool, SystemClock(), code=AUTHORITY[0], name=AUTHORITY[1],
                            actor="admin:bench")
        token, _ = await issue_token(pool, SystemClock(), role="regulator", name="bench",
                                     actor="admin:bench", authority_code=AUTHORITY[0])
    finally:
        await pool.close()
    return token, backfill_rate


# ---- the baseline: the requests' own statements, straight to PostgreSQL ----------------

# (how, SQL, arguments): ``how`` is the connection method the request used.
Statement = tuple[str, str, tuple[Any, ...]]


class _Recorder:
    """A pool (and connection) stand-in that notes every statement a use case runs, in
    order, transactions included, and runs it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.conn: Conn | None = None
        self.statements: list[Statement] = []

    async def _run(self, how: str, sql: str, *args: Any) -> Any:
        self.statements.append((how, sql, args))
        target = self.conn if self.conn is not None else self.pool
        return await getattr(target, how)(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._run("fetch", sql, *args)
        return rows

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchval", sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        status: str = await self._run("execute", sql, *args)
        return status

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Recorder]:
        async with self.pool.acquire() as conn:
            self.conn = conn
            try:
                yield self
            finally:
                self.conn = None

    @contextlib.asynccontextmanager
    async def transaction(self, readonly: bool = False) -> AsyncIterator[None]:
        await self.execute("BEGIN READ ONLY" if readonly else "BEGIN")
        try:
            yield
        except BaseException:
            await self.execute("ROLLBACK")
            raise
        await self.execute("COMMIT")


async def capture(url: str, qs: list[str]) -> dict[str, dict[str, list[Statement]]]:
    """For each query, the statements the page search and the listing run for it."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    captured: dict[str, dict[str, list[Statement]]] = {"page": {}, "list": {}}
    try:
        day = today(SystemClock())
        for q in qs:
            recorder = _Recorder(pool)
            services = cast(Services, SimpleNamespace(pool=recorder, policy=Policy(), pii=None))
            await page.list_page(services, day, what="search", q=clean_query(q, "q"), before=None)
            captured["page"][q] = recorder.statements
            recorder = _Recorder(pool)
            services = cast(Services, SimpleNamespace(pool=recorder, policy=Policy(), pii=None))
            await subjects.list_subjects(services, kind=None, name_prefix=None, q=q, after=None,
                                         limit=50)
            captured["list"][q] = recorder.statements
    finally:
        await pool.close()
    return captured


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def direct(url: str, work: dict[str, list[Statement]], connections: int,
                 duration: float) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms): ``connections`` workers, each a request at a time
    (a random query's statements in order), for ``duration`` seconds."""
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    assert pool is not None
    plans = list(work.values())
    latencies: list[float] = []
    rng = random.Random(5)
    try:
        for statements in plans[:connections]:  # prepared on every connection alike
            async with pool.acquire() as conn:
                for how, sql, args in statements:
                    await getattr(conn, how)(sql, *args)
        stop = time.perf_counter() + duration

        async def worker() -> None:
            async with pool.acquire() as conn:
                while time.perf_counter() < stop:
                    statements = plans[rng.randrange(len(plans))]
                    t0 = time.perf_counter()
                    for how, sql, args in statements:
                        await getattr(conn, how)(sql, *args)
                    latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - t0
    finally:
        await pool.close()
    return len(latencies) / elapsed, pct(latencies, 0.5), pct(latencies, 0.99)


# ---- the service, through HTTP --------------------------------------------------------


def lua(path: Path, paths: list[str], token: str | None) -> Path:
    headers = f'{{["Authorization"]="Bearer {token}"}}' if token else "{}"
    path.write_text(
        f"paths = {{{','.join(json.dumps(p) for p in paths)}}}\n"
        f"headers = {headers}\n"
        "request = function()\n"
        '  return wrk.format("GET", paths[math.random(#paths)], headers)\n'
        "end\n"
    )
    return path


def _ms(out: str, percent: int) -> float:
    """A percentile of wrk's latency distribution (its own lines, not the Stdev column)."""
    found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if found is None:
        raise SystemExit(f"no {percent}% latency in wrk's output:\n{out}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, script: Path, connections: int, duration: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms); any failed request stops the benchmark."""
    threads = min(os.cpu_count() or 2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
         str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or re.search(r"Socket errors:.*timeout [1-9]", out):
        raise SystemExit(f"wrk saw failures:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rate, _ms(out, 50), _ms(out, 99)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400, help="distinct search texts")
    parser.add_argument("--connections", default="4,16",
                        help="concurrencies to measure at, comma-separated")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs (medians)")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.connections.split(",")]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    home = Path(tempfile.mkdtemp(prefix="bench-search-"))
    atexit.register(shutil.rmtree, home, True)
    server: subprocess.Popen[bytes] | None = None
    try:
        url, settings = bench_database(home)
        subject_rows, records = generate(args.subjects)
        qs = queries(subject_rows, records, args.queries)
        n_records = len(records)
        token, backfill_rate = asyncio.run(load(url, settings, subject_rows, records))
        del subject_rows, records
        captured = asyncio.run(capture(url, qs))
        env = {**os.environ, "REGISTRY_HOME": str(home), "DATABASE_URL": url,
               "REGISTRY_LOG_FORMAT": "json", "REGISTRY_PROFILE_WARM_INTERVAL_MS": "0",
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        port = free_port()
        server = start("registry.api.app:create_app", env, port, "/healthz", loop=SERVER_LOOP)
        base = f"http://127.0.0.1:{port}"
        work = home / "lua"
        work.mkdir()
        scripts = {
            "page": lua(work / "page.lua", [f"/public/?q={quote(q)}" for q in qs], None),
            "list": lua(work / "list.lua", [f"/v1/subjects?q={quote(q)}&limit=50" for q in qs],
                        token),
        }
        results: dict[tuple[str, int], dict[str, list[tuple[float, float, float]]]] = {}
        for surface, script in scripts.items():
            wrk(base, script, 4, 3)  # warm the server and PostgreSQL's buffers
            asyncio.run(direct(url, captured[surface], 4, 3))
            for connections in concurrencies:
                runs: dict[str, list[tuple[float, float, float]]] = {"http": [], "sql": []}
                for _ in range(args.rounds):
                    runs["http"].append(wrk(base, script, connections, args.duration))
                    runs["sql"].append(asyncio.run(
                        direct(url, captured[surface], connections, args.duration)))
                results[surface, connections] = runs
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)

    def med(runs: list[tuple[float, float, float]], i: int) -> float:
        return statistics.median(run[i] for run in runs)

    titles = {"page": "public page search", "list": "regulators' listing"}
    print(f"\n{args.subjects} subjects, {n_records} published records; {len(qs)} queries of "
          f"2–4 characters; {args.rounds} alternating runs of {args.duration} s, medians; "
          f"one uvicorn process ({SERVER_LOOP} loop); {os.cpu_count()} cores")
    print(f"backfill (registry migrate after 0013): {backfill_rate:,.0f} subjects/s\n")
    print(f"{'surface':<22}{'conns':>6}  {'path':<6}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'ratio':>8}  goal (p99 < 50 ms, ratio >= 0.5)")
    for (surface, connections), runs in results.items():
        http_rate, sql_rate = med(runs["http"], 0), med(runs["sql"], 0)
        met = med(runs["http"], 2) < 50 and http_rate / sql_rate >= 0.5
        for path in ("http", "sql"):
            first = path == "http"
            print(f"{titles[surface] if first else '':<22}{connections if first else '':>6}  "
                  f"{path:<6}{med(runs[path], 0):>8.0f}{med(runs[path], 1):>9.1f}"
                  f"{med(runs[path], 2):>9.1f}"
                  + (f"{http_rate / sql_rate:>8.2f}  {'met' if met else 'missed'}" if first else ""))


if __name__ == "__main__":
    main()
