"""`registry import` timing: a template CSV imported end to end vs a plain executemany INSERT.

A script, not a pytest test:

    .venv/bin/python tests/bench/bench_import.py                  # 100,000 rows
    .venv/bin/python tests/bench/bench_import.py --rows 20000     # quicker

It starts its own embedded PostgreSQL under a temporary folder (deleted at the end)
and makes two fresh databases with the same authority and subjects (``--subjects``
firms, registered through the use case, so with their leaves). In the first it runs
the real command, ``registry import FILE --authority CODE`` as a subprocess, on a
generated 双公示 template CSV of ``--rows`` rows spread over the subjects: start-up,
reading, every row checked as the API checks it, one audited write and leaf per
record in batches of ``--batch-size``, and the wait for the signed checkpoint. In the
second it inserts the same records, their column values computed beforehand, with
one asyncpg ``executemany`` (no checks, no leaves, no checkpoint). It prints both
rates and their ratio (the goal is import ≥ 0.5 × plain), and a ``--dry-run`` of the
same file, which is the reading and checking alone.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg
import structlog

from registry.authorities import add_authority
from registry.bootstrap import close_services, open_services
from registry.clock import SystemClock
from registry.credit import records
from registry.db.embedded import start_embedded
from registry.db.migrate import migrate
from registry.identifiers import uscc_check_character
from registry.imports.rows import check_record, from_template
from registry.imports.template import TEMPLATE_COLUMNS, SourceRow
from registry.publish.labels import PENALTY_COLUMNS
from registry.settings import Settings
from registry.subjects import register
from tests.bench.harness import create_database

AUTHORITY = ("11630100MB1234567J", "西宁市发展和改革委员会")
DECIDED = date(2026, 3, 2)


def code(n: int) -> str:
    body = f"9163010{n:010d}"[:17]
    return body + uscc_check_character(body)


def row(i: int, subjects: int) -> dict[str, str]:
    values = {key: "" for key, _ in PENALTY_COLUMNS}
    values.update({
        "cf_xdr_mc": f"西宁创新投资{i % subjects}有限公司", "cf_xdr_lb": "法人及非法人组织",
        "cf_xdr_shxym": code(i % subjects), "cf_wsh": f"宁发改罚〔2026〕{i}号",
        "cf_wfxw": "未按规定备案", "cf_sy": "未按规定报送年度报告",
        "cf_yj": "《创业投资企业管理暂行办法》第二十八条", "cf_cflb": "罚款",
        "cf_nr": "罚款人民币十二万五千元", "cf_nr_fk": "12.5", "cf_jdrq": DECIDED.isoformat(),
        "cf_yxq": "2027-03-01", "cf_cfjg": AUTHORITY[1], "cf_cfjgdm": AUTHORITY[0],
        "cf_sjly": AUTHORITY[1], "cf_sjlydm": AUTHORITY[0],
    })
    return values


def write_template(path: Path, rows: int, subjects: int) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([*TEMPLATE_COLUMNS, "失信程度"])
        for i in range(rows):
            values = row(i, subjects)
            out.writerow([values[key] for key, _ in PENALTY_COLUMNS] + ["一般"])


async def fresh_database(uri: str, name: str) -> str:
    url = await create_database(uri, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


async def prepare(settings: Settings, url: str, subjects: int) -> dict[str, uuid.UUID]:
    """The authority and the subjects, through the use cases (with their leaves)."""
    services = await open_services(settings, url=url)
    try:
        await add_authority(services.pool, SystemClock(), code=AUTHORITY[0], name=AUTHORITY[1],
                            actor="admin:bench")
        ids = {}
        for n in range(subjects):
            made = await register(services, "admin:bench", {
                "kind": "vc_firm", "name": f"西宁创新投资{n}有限公司", "credit_code": code(n)})
            ids[code(n)] = made.subject.row["id"]
        return ids
    finally:
        await close_services(services)


def timed_import(env: dict[str, str], path: Path, batch: int, *extra: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "registry", "import", str(path), "--authority", AUTHORITY[0],
         "--batch-size", str(batch), *extra],
        env=env, capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"registry import failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout.strip()


def plain_values(
    rows: int, subjects: int, ids: dict[str, uuid.UUID], policy: Any
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows as the import stores them (the same checks, the same publicity), computed now
    so that only the INSERT is timed: the column names and one tuple per row."""
    now = datetime.now(UTC)
    window: dict[str, Any] | None = None
    columns: list[str] = []
    out = []
    for i in range(rows):
        cells = [row(i, subjects)[key] for key, _ in PENALTY_COLUMNS] + ["一般"]
        source = SourceRow(i + 2, dict(zip([*TEMPLATE_COLUMNS, "失信程度"], cells, strict=True)))
        candidate = from_template(source, None)
        assert not isinstance(candidate, list), candidate
        values = check_record(candidate, AUTHORITY, DECIDED, code(i % subjects))
        assert isinstance(values, dict), values
        if window is None:  # every row has the same grade, types and dates
            holder: Any = SimpleNamespace(policy=policy)
            window = records.publicity_columns(records.window_for(holder, values, DECIDED),
                                               DECIDED)
        values.update(window)
        columns = list(values)
        out.append((uuid.uuid4(), ids[code(i % subjects)], *values.values(), now, "bench"))
    return columns, out


async def plain_insert(url: str, values: list[tuple[Any, ...]], columns: list[str]) -> float:
    conn = await asyncpg.connect(url)
    try:
        n = len(columns)
        sql = (f"INSERT INTO credit_records (id, subject_id, {', '.join(columns)}, version,"  # noqa: S608 - fixed names
               f" created_at, created_by, updated_at, updated_by, log_index) VALUES"
               f" ({', '.join(f'${i + 1}' for i in range(n + 2))}, 1, ${n + 3}, ${n + 4},"
               f" ${n + 3}, ${n + 4}, 0)")
        t0 = time.perf_counter()
        await conn.executemany(sql, values)
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def main(rows: int, subjects: int, batch: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="registry-bench-import-"))
    # Registered before the server starts, so it runs after the server's own exit hook
    # has stopped it (atexit runs last-in first-out): never delete a running data folder.
    atexit.register(shutil.rmtree, root, True)
    home = root / "home"
    uri = start_embedded(home)
    settings = replace(Settings.from_env({"REGISTRY_HOME": str(home)}),
                       expiry_interval_ms=0, profile_warm_interval_ms=0)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    file = root / "penalties.csv"
    write_template(file, rows, subjects)

    imported_url = await fresh_database(uri, "bench_import")
    await prepare(settings, imported_url, subjects)
    env = {**os.environ, "REGISTRY_HOME": str(home), "DATABASE_URL": imported_url,
           "REGISTRY_LOG_FORMAT": "json"}
    dry_s, dry_summary = timed_import(env, file, batch, "--dry-run")
    import_s, summary = timed_import(env, file, batch)
    assert summary.startswith(f"imported {rows},"), summary
    again_s, again = timed_import(env, file, batch)
    assert again.startswith(f"imported 0, skipped {rows}"), again

    plain_url = await fresh_database(uri, "bench_plain")
    ids = await prepare(settings, plain_url, subjects)
    t0 = time.perf_counter()
    columns, values = plain_values(rows, subjects, ids, settings.policy)
    prepare_s = time.perf_counter() - t0
    plain_s = await plain_insert(plain_url, values, columns)

    import_rate, plain_rate = rows / import_s, rows / plain_s
    print(f"import of {rows} template rows over {subjects} subjects, batches of {batch}")
    print(f"  registry import (end to end): {import_s:8.2f} s  {import_rate:10.0f} rows/s")
    print(f"  registry import --dry-run   : {dry_s:8.2f} s  {rows / dry_s:10.0f} rows/s  "
          f"({dry_summary})")
    print(f"  registry import, run again  : {again_s:8.2f} s  {rows / again_s:10.0f} rows/s  "
          "(every row skipped)")
    print(f"  plain executemany INSERT    : {plain_s:8.2f} s  {plain_rate:10.0f} rows/s  "
          f"(values computed beforehand in {prepare_s:.1f} s)")
    print(f"  ratio import/plain: {import_rate / plain_rate:.3f} (goal >= 0.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.subjects, args.batch_size))
