"""Credit-record timing: recording a penalty end to end vs a plain INSERT; listing at scale.

A script, not a pytest test:

    .venv/bin/python tests/bench/bench_records.py                 # 2000 writes, 100k rows
    .venv/bin/python tests/bench/bench_records.py 4000 1000000    # writes, rows to list over

It starts its own embedded PostgreSQL under a temporary folder (deleted at the
end) and serves the real app with uvicorn in this process. 16 concurrent httpx
clients POST /v1/records (validation, publicity, audited write with its leaf,
wait for the signed checkpoint = the receipt); then 16 concurrent asyncpg
workers run a plain single-row INSERT of the same row, no leaf, no receipt. The
ratio is the cost of auditability. Then COPY fills credit_records with many
rows (over 1000 subjects and 20 authorities) and times listing pages through
the API: first pages with each filter and pages deep behind a cursor.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
import shutil
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg
import httpx
import structlog
import uvicorn

from registry.api.app import create_app
from registry.authorities import add_authority
from registry.clock import SystemClock
from registry.db.types import Conn
from registry.identifiers import uscc_check_character
from registry.settings import Settings
from registry.tokens import issue_token
from tests.bench.logless_app import take_the_log_out

CLIENTS = 16


def code(n: int) -> str:
    body = f"1163010{n:010d}"[:17]
    return body + uscc_check_character(body)


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def penalty(subject_id: str, n: int) -> dict[str, object]:
    return {
        "subject_id": subject_id, "record_kind": "penalty", "grade": "general",
        "decision_number": f"寧罰〔2026〕{n}號", "violation_type": "未按規定備案",
        "facts": "未按規定報送年度報告", "legal_basis": "第二十八條", "penalty_types": ["fine"],
        "penalty_content": "罰款", "fine_amount": "12.5", "decision_date": "2026-01-05",
        "valid_until": "2027-01-05", "authority_name": "西寧市發改委", "authority_code": code(1),
        "source_name": "西寧市發改委", "source_code": code(1),
    }


async def run_concurrently(n: int, one: object) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await one(i)  # type: ignore[operator]
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return time.perf_counter() - t0, latencies


async def fill(conn: Conn, rows: int, subjects: list[uuid.UUID]) -> None:
    """COPY ``rows`` credit records (not audited: listing speed only)."""
    columns = ["id", "subject_id", "record_kind", "grade", "decision_number", "facts",
               "penalty_types", "decision_date", "authority_name", "authority_code",
               "source_name", "source_code", "published", "publicity_start", "repair_from",
               "publicity_end", "publicity_reason", "status", "version", "created_at",
               "created_by", "updated_at", "updated_by", "log_index"]
    rng = random.Random(7)
    authorities = [code(100 + a) for a in range(20)]
    now = datetime.now(UTC)
    chunk = 50_000
    for start in range(0, rows, chunk):
        buf = io.StringIO()
        for i in range(start, min(rows, start + chunk)):
            decided = date(2023, 1, 1) + timedelta(days=rng.randrange(1200))
            grade = rng.choice(("minor", "general", "serious"))
            status = rng.choice(("published", "published", "expired", "revoked"))
            auth = rng.choice(authorities)
            buf.write("\t".join([
                str(uuid.uuid4()), str(rng.choice(subjects)), "penalty", grade, f"B{i}", "facts",
                "{fine}", decided.isoformat(), "authority", auth, "source", auth, "t",
                decided.isoformat(), decided.isoformat(), (decided + timedelta(days=365)).isoformat(),
                "bench", status, "1", now.isoformat(), "bench", now.isoformat(), "bench", "0",
            ]) + "\n")
        data = buf.getvalue().encode()
        await conn.copy_to_table("credit_records", source=io.BytesIO(data), columns=columns)
    await conn.execute("ANALYZE credit_records")


async def main(writes: int, rows: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    try:
        from registry.db.embedded import start_embedded

        uri = start_embedded(root / "home")
        admin = await asyncpg.connect(uri)
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        base, _, query = uri.partition("?")
        url = f"{base.rsplit('/', 1)[0]}/bench?{query}"
        settings = replace(Settings.from_env({"REGISTRY_HOME": str(root / "home")}),
                           expiry_interval_ms=0, pool_max=20, log_format="json")
        # Per-request log lines would dominate the timing and the output.
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
        pool = await asyncpg.create_pool(url, min_size=CLIENTS, max_size=CLIENTS)
        assert pool is not None
        # The records below are in the name of authority code(1): the token's.
        await add_authority(pool, SystemClock(), code=code(1), name="西寧市發改委",
                            actor="admin:bench")
        token, _ = await issue_token(pool, SystemClock(), role="regulator", name="bench",
                                     actor="admin:bench", authority_code=code(1))
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers,
                                     limits=limits, timeout=60) as client:
            made = await client.post("/v1/subjects", json={
                "kind": "vc_firm", "name": "bench", "credit_code": "91630100MA752LKX1M"})
            sid = made.json()["id"]

            async def post(i: int) -> None:
                r = await client.post("/v1/records", json=penalty(sid, i))
                assert r.status_code == 201, r.text

            await run_concurrently(200, lambda i: post(1_000_000 + i))  # warm-up
            api_s, api_lat = await run_concurrently(writes, post)

            async def insert(i: int) -> None:
                await pool.execute(
                    "INSERT INTO credit_records (id, subject_id, record_kind, grade, decision_number,"
                    " violation_type, facts, legal_basis, penalty_types, penalty_content,"
                    " fine_amount, decision_date, valid_until, authority_name, authority_code,"
                    " source_name, source_code, published, publicity_start, repair_from,"
                    " publicity_end, publicity_deadline, publicity_reason, status, version,"
                    " created_at, created_by, updated_at, updated_by, log_index) VALUES ($1, $2,"
                    " 'penalty', 'general', $3, 'v', 'f', 'b', '{fine}', 'c', 12.5, '2026-01-05',"
                    " '2027-01-05', 'a', $4, 's', $4, true, '2026-01-05', '2026-04-06',"
                    " '2027-01-06', '2027-01-05', 'r', 'published', 1, now(), 'bench', now(),"
                    " 'bench', 0)", uuid.uuid4(), uuid.UUID(sid), f"P{i}", code(2))

            sql_s, sql_lat = await run_concurrently(writes, insert)
            put_back = take_the_log_out()
            try:
                free_s, free_lat = await run_concurrently(writes, lambda i: post(2_000_000 + i))
            finally:
                put_back()
            print(f"writes: {writes} with {CLIENTS} concurrent clients")
            print(f"  API  POST /v1/records: {writes / api_s:8.1f} records/s  "
                  f"p50 {p(api_lat, .5):6.1f} ms  p99 {p(api_lat, .99):6.1f} ms")
            print(f"  API, log taken out   : {writes / free_s:8.1f} records/s  "
                  f"p50 {p(free_lat, .5):6.1f} ms  p99 {p(free_lat, .99):6.1f} ms"
                  "  (tests/bench/logless_app.py: the ceiling of any log design)")
            print(f"  plain INSERT         : {writes / sql_s:8.1f} rows/s     "
                  f"p50 {p(sql_lat, .5):6.1f} ms  p99 {p(sql_lat, .99):6.1f} ms")
            print(f"  ratio plain/API throughput: {(writes / sql_s) / (writes / api_s):.1f}x; "
                  f"p99 ratio {p(api_lat, .99) / p(sql_lat, .99):.1f}x; API/plain"
                  f" {sql_s / api_s:.2f} (goal 0.5), without the log"
                  f" {sql_s / free_s:.2f}")

            subjects = [uuid.uuid4() for _ in range(1000)]
            async with pool.acquire() as conn:
                await conn.copy_records_to_table(
                    "subjects", records=[(s, "vc_firm", f"s{i}", "active", code(10_000 + i), 1,
                                          datetime.now(UTC), "b", datetime.now(UTC), "b", 0)
                                         for i, s in enumerate(subjects)],
                    columns=["id", "kind", "name", "status", "credit_code", "version",
                             "created_at", "created_by", "updated_at", "updated_by", "log_index"])
                t0 = time.perf_counter()
                await fill(conn, rows, subjects)
                fill_s = time.perf_counter() - t0
                total = await conn.fetchval("SELECT count(*) FROM credit_records")
            print(f"listing over {total} records (COPY of {rows} took {fill_s:.1f} s)")
            queries: dict[str, dict[str, str]] = {
                "no filter": {},
                "subject": {"subject_id": str(subjects[3])},
                "authority+status": {"authority_code": code(105), "status": "published"},
                "grade+date range": {"grade": "serious", "date_from": "2024-01-01",
                                     "date_to": "2024-06-30"},
            }
            for name, params in queries.items():
                lat: list[float] = []
                cursor = None
                for _ in range(100):
                    page: dict[str, str | int] = {
                        **params, "limit": 50, **({"cursor": cursor} if cursor else {})}
                    t0 = time.perf_counter()
                    r = await client.get("/v1/records", params=page)
                    lat.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text
                    cursor = r.json()["next_cursor"]
                print(f"  list {name:<18}: 100 consecutive pages of 50, "
                      f"p50 {p(lat, .5):6.1f} ms  p99 {p(lat, .99):6.1f} ms")
        await pool.close()
        server.should_exit = True
        await serving
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(args[0] if args else 2000, args[1] if len(args) > 1 else 100_000))
