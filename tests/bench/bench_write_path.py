"""The audited write on PostgreSQL's side alone, without HTTP (not a test).

    .venv/bin/python tests/bench/bench_write_path.py                 # 1, 4 and 32 tasks
    .venv/bin/python tests/bench/bench_write_path.py --tasks 32 --seconds 3

It starts its own embedded PostgreSQL under a temporary folder (deleted at the end),
migrates it and initialises the log, then runs, for ``--seconds`` each, with ``--tasks``
asyncpg tasks each on its own connection, in one process:

- **bare**: one autocommit INSERT of a subject-like row into a table of its own (a
  primary key and a unique credit code, nothing else);
- **audited**: ``registry/db/audit.py`` ``insert_with_leaf`` of a new subject, as
  ``POST /v1/subjects`` runs it: the row with its index, leaf and stored body in one
  autocommit statement, with the subjects table's indexes and triggers;
- **audited, asynchronous commit**: the same statement with ``synchronous_commit`` off
  for its own transaction, so the sequence lock is no longer held while the commit
  waits for the disk.

Each writes new rows only (a new credit code each time). Compare the columns across task
counts: bare grows with the tasks, the audited write does not, because every write holds
the log's sequence row from its index to the end of its commit. The Python that prepares
each audited write (the leaf, the predicted row) is in the figure too, as in the service.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402 - after the path set-up above

import registry.db.audit as audit  # noqa: E402
from registry.db.shapes import TableShapes, stored_form  # noqa: E402
from registry.db.types import Conn  # noqa: E402
from registry.identifiers import uscc_check_character  # noqa: E402
from registry.settings import Settings  # noqa: E402
from tests.bench.bench_writes import load  # noqa: E402
from tests.bench.harness import bench_database  # noqa: E402

SYNC_SQL = audit._INSERT_WITH_LEAF_SQL
ASYNC_SQL = SYNC_SQL.replace(
    audit._TAKE, audit._TAKE + " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"
)


def credit_code(n: int) -> str:
    body = f"9163{n:013d}"[:17]
    return body + uscc_check_character(body)


async def rate(pool: asyncpg.Pool, tasks: int, seconds: float,
               one: Callable[[Conn], Awaitable[None]]) -> float:
    """Writes per second of ``tasks`` tasks, each on its own connection."""
    done = 0
    stop = time.monotonic() + seconds

    async def task() -> None:
        nonlocal done
        async with pool.acquire() as conn:
            while time.monotonic() < stop:
                await one(conn)
                done += 1

    await asyncio.gather(*(task() for _ in range(tasks)))
    return done / seconds


async def main(url: str, settings: Settings, task_counts: list[int], seconds: float) -> None:
    await load(url, settings)
    pool = await asyncpg.create_pool(url, min_size=max(task_counts), max_size=max(task_counts))
    await pool.execute("CREATE TABLE bare_subjects (id uuid PRIMARY KEY, kind text, name text,"
                       " credit_code text UNIQUE, created_at timestamptz)")
    shape = await TableShapes().of(pool, "subjects")
    serial = iter(range(10**9))

    async def bare(conn: Conn) -> None:
        await conn.execute("INSERT INTO bare_subjects VALUES ($1, $2, $3, $4, $5)", uuid.uuid4(),
                           "vc_firm", "西宁创投有限公司", credit_code(next(serial)),
                           datetime.now(UTC))

    async def audited(conn: Conn) -> None:
        now = datetime.now(UTC)
        values = {
            "id": uuid.uuid4(), "kind": "vc_firm", "name": "西宁创投有限公司", "status": "active",
            "credit_code": credit_code(next(serial)), "registered_region": None,
            "filing_number": None, "filing_date": None, "legal_representative": None,
            "document_type": None, "document_cipher": None, "document_lookup": None,
            "version": 1, "created_at": now, "created_by": "admin:bench", "updated_at": now,
            "updated_by": "admin:bench", "search_text": "XINING",
        }
        await audit.insert_with_leaf(conn, time=now, actor="admin:bench",
                                     action="subject.create", object_type="subject",
                                     stored=stored_form("subjects", shape, values))

    async def audited_async(conn: Conn) -> None:
        audit._INSERT_WITH_LEAF_SQL = ASYNC_SQL
        try:
            await audited(conn)
        finally:
            audit._INSERT_WITH_LEAF_SQL = SYNC_SQL

    print(f"writes/s, {seconds:g} s each, one connection per task"
          f" (synchronous_commit={await pool.fetchval('SHOW synchronous_commit')})")
    print(f"{'tasks':>5} {'bare':>8} {'audited':>9} {'audited, async commit':>22}"
          f" {'audited/bare':>13}")
    for tasks in task_counts:
        await rate(pool, tasks, 1.0, bare)  # warm the connections and the plans
        await rate(pool, tasks, 1.0, audited)
        b = await rate(pool, tasks, seconds, bare)
        a = await rate(pool, tasks, seconds, audited)
        c = await rate(pool, tasks, seconds, audited_async)
        print(f"{tasks:>5} {b:>8.0f} {a:>9.0f} {c:>22.0f} {a / b:>13.2f}", flush=True)
    await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="1,4,32", help="task counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per measurement")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-write-path-"))
    # Registered before PostgreSQL starts, so it runs after the hook that stops it.
    atexit.register(shutil.rmtree, home, True)
    url, settings = bench_database(home)
    asyncio.run(main(url, settings, [int(t) for t in args.tasks.split(",")], args.seconds))
