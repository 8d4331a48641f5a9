"""`registry log verify` against reading the same tables with COPY (not a test).

    .venv/bin/python tests/bench/bench_verify.py                    # 1,000,000 leaves
    .venv/bin/python tests/bench/bench_verify.py --leaves 200000 --rounds 3

It starts its own embedded PostgreSQL under a temporary folder (deleted at the
end) and builds one log of ``--leaves`` leaves as the registry writes it: an
authority and a regulator token, then subjects (one leaf in ten), credit
records (seven in ten) and corrections or revocations of records and renames
of subjects (two in ten, so older versions stay in ``tlog_objects`` only). Rows
are built in Python with every column the database returns, committed with
``registry.tlog.leaf`` (object_body, commitment, encode_leaf), hashed into
every complete node with ``registry.tlog.merkle.new_complete_nodes``, signed
every 4096 leaves (the integrator's batch) with a log key from
``registry.keys``, and written with COPY; then VACUUM ANALYZE, as a live
database has it.

Then, in the same run, alternating for ``--rounds`` rounds (medians printed),
after one unmeasured pass of each COPY so that both start from a warm cache:

- the baseline: one ``COPY <table> TO STDOUT`` of each table verify reads
  (tlog_keys, tlog_head, tlog_sequence, tlog_checkpoints, tlog_leaves,
  tlog_objects, tlog_nodes and every audited table), one after the other on one
  connection, bytes discarded; in text format (COPY's default) and in binary;
- ``verify_log`` on a pool with the database's URL, as ``registry log verify``
  calls it (checks 1-4 here, check 5 shared with a second process).

Ratio = verify time / baseline time; the goal of issue 17 is at most 3. The
baseline keeps about one core busy and verify both, so other load on the machine
(the load average is printed) weighs more on verify. ``--keep DIR`` builds the
database in DIR and reuses it on the next run with the same ``--leaves``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg

from registry.db.audit import TABLE_OF
from registry.identifiers import uscc_check_character
from registry.keys import LogKey, load_log_key
from registry.settings import Settings
from registry.tlog.integrator import MAX_BATCH, initialise_log, sign_checkpoint
from registry.tlog.leaf import SALT_BYTES, commitment, encode_leaf, object_body
from registry.tlog.merkle import (
    leaf_hash,
    new_complete_nodes,
    root_from_nodes,
    root_node_ids,
)
from registry.tlog.verify import verify_log

CHUNK = 16 * MAX_BATCH  # leaves generated and copied per transaction
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SIX = Decimal("0.000001")
AUTHORITY = ("11630100MB1234567J", "西寧市發展和改革委員會")
FACTS = (
    "該企業未按照《創業投資企業管理暫行辦法》規定向備案管理部門報送年度經營報告，"
    "經責令限期改正後仍未改正，且在備案材料中隱瞞重大事項，情節一般。"
)
VIOLATIONS = ["未按規定備案", "未按規定報送年度報告", "違規募集資金", "提供虛假材料"]
BASES = ["《創業投資企業管理暫行辦法》第二十八條", "《私募投資基金監督管理暫行辦法》第三十八條"]
PLACES = ["西寧", "海東", "格爾木", "德令哈", "大通", "湟中", "玉樹"]
TRADES = ["創業投資", "股權投資", "資本管理", "投資管理", "基金管理"]
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code(rng: random.Random) -> str:
    first = "91630100" + "".join(rng.choice(ALPHABET) for _ in range(9))
    return first + uscc_check_character(first)


class Builder:
    """Generates the log leaf by leaf; rows as the database returns them (column order,
    Python types, numeric(18, 6) as a 6-place Decimal)."""

    def __init__(self, columns: dict[str, list[str]], seed: int = 17) -> None:
        self.columns = columns
        self.rng = random.Random(seed)
        self.codes: set[str] = set()
        self.subject_ids: list[uuid.UUID] = []
        self.regulator = "regulator:" + str(uuid.UUID(int=self.rng.getrandbits(128)))

    def _id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def authority(self, now: datetime) -> dict[str, Any]:
        return {"id": self._id(), "code": AUTHORITY[0], "name": AUTHORITY[1], "active": True,
                "version": 1, "created_at": now, "created_by": "admin:bench",
                "updated_at": now, "updated_by": "admin:bench", "log_index": 0}

    def token(self, now: datetime) -> dict[str, Any]:
        return {"id": self._id(), "name": "bench regulator", "role": "regulator",
                "token_hash": hashlib.sha256(b"bench").digest(), "prefix": "vcr_regulator_",
                "created_at": now, "created_by": "admin:bench", "revoked_at": None,
                "revoked_by": None, "log_index": 0, "authority_code": AUTHORITY[0]}

    def subject(self, now: datetime) -> dict[str, Any]:
        rng = self.rng
        code = credit_code(rng)
        while code in self.codes:
            code = credit_code(rng)
        self.codes.add(code)
        sid = self._id()
        self.subject_ids.append(sid)
        name = rng.choice(PLACES) + "".join(rng.sample("鼎盛華匯金源祥瑞德信泰恒達豐", 2))
        return {
            "id": sid, "kind": "vc_firm", "name": name + rng.choice(TRADES) + "有限公司",
            "status": "active", "credit_code": code, "registered_region": "630100",
            "filing_number": f"QH{rng.randrange(10**6):06d}",
            "filing_date": date(2015, 1, 1) + timedelta(days=rng.randrange(3000)),
            "legal_representative": "王" + rng.choice("偉芳娜敏靜麗強磊軍洋"),
            "document_type": None, "document_cipher": None, "document_lookup": None,
            "version": 1, "created_at": now, "created_by": self.regulator, "updated_at": now,
            "updated_by": self.regulator, "log_index": 0, "birth_date_cipher": None,
            "search_text": None,
        }

    def record(self, now: datetime, serial: int) -> dict[str, Any]:
        rng = self.rng
        decided = date(2023, 1, 1) + timedelta(days=rng.randrange(900))
        fine = (Decimal(rng.randrange(1, 50_000)) / 100).quantize(SIX)
        return {
            "id": self._id(), "subject_id": rng.choice(self.subject_ids),
            "record_kind": "penalty", "grade": rng.choice(("minor", "general", "serious")),
            "decision_number": f"寧發改罰〔{decided.year}〕{serial}號",
            "violation_type": rng.choice(VIOLATIONS), "facts": FACTS,
            "legal_basis": rng.choice(BASES), "penalty_types": ["warning", "fine"],
            "penalty_content": f"警告並處罰款{fine}萬元", "fine_amount": fine,
            "confiscation_amount": None, "licence_name": None, "licence_number": None,
            "decision_date": decided, "valid_until": decided + timedelta(days=365),
            "authority_name": AUTHORITY[1], "authority_code": AUTHORITY[0],
            "source_name": AUTHORITY[1], "source_code": AUTHORITY[0], "remarks": None,
            "published": True, "publicity_start": decided + timedelta(days=7),
            "repair_from": decided + timedelta(days=97),
            "publicity_end": decided + timedelta(days=372), "publicity_deadline": None,
            "publicity_reason": "行政處罰信息公示期一年", "status": "published",
            "publication_ended_on": None, "status_reason": None, "under_objection": False,
            "previous_log_index": None, "correction_note": None, "version": 1,
            "created_at": now, "created_by": self.regulator, "updated_at": now,
            "updated_by": self.regulator, "log_index": 0,
        }

    def change(self, row: dict[str, Any], now: datetime) -> tuple[dict[str, Any], str]:
        """A new version of ``row``: a subject renamed, a record corrected or revoked."""
        row = dict(row, version=row["version"] + 1, updated_at=now)
        if "kind" in row:
            row["name"] = row["name"].replace("有限公司", "有限責任公司")
            return row, "subject.update"
        if self.rng.random() < 0.5:
            row.update(status="revoked", status_reason="決定被依法撤銷", published=False,
                       publication_ended_on=now.date())
            return row, "record.revoke"
        row.update(correction_note="更正處罰決定書文號", previous_log_index=row["log_index"],
                   decision_number=row["decision_number"] + "（更正）")
        return row, "record.correct"


async def fill(conn: asyncpg.Connection, key: LogKey, origin: str, n: int) -> dict[str, int]:
    """Write ``n`` leaves with their objects, current rows, nodes and checkpoints."""
    columns = {
        table: [r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
            " ORDER BY ordinal_position", table)]
        for table in TABLE_OF.values()
    }
    builder = Builder(columns)
    counts = dict.fromkeys(TABLE_OF.values(), 0)
    frontier: dict[tuple[int, int], bytes] = {}
    size = 0
    # Bulk load: neither the profile-cache triggers nor the foreign keys (both triggers)
    # matter for a log that is generated consistent.
    await conn.execute("SET session_replication_role = replica")
    while size < n:
        end = min(n, size + CHUNK)
        current: dict[tuple[str, uuid.UUID], dict[str, Any]] = {}  # rows changed this chunk
        recent: list[tuple[str, uuid.UUID]] = []  # what a change may pick, in creation order
        leaves, objects, hashes = [], [], []
        for i in range(size, end):
            now = T0 + timedelta(seconds=i)
            roll = builder.rng.random()
            if i == 0:
                row, object_type, action = builder.authority(now), "authority", "authority.add"
            elif i == 1:
                row, object_type, action = builder.token(now), "token", "token.issue"
            elif roll < 0.1 or not builder.subject_ids:
                row, object_type, action = builder.subject(now), "subject", "subject.create"
            elif roll < 0.8 or len(recent) < 10:
                row, object_type = builder.record(now, i), "credit_record"
                action = "record.create"
            else:
                object_type, object_id = builder.rng.choice(recent[-1000:])
                row, action = builder.change(current[object_type, object_id], now)
            row["log_index"] = i
            if object_type in ("subject", "credit_record") and row["version"] == 1:
                recent.append((object_type, row["id"]))
            current[object_type, row["id"]] = row
            body = object_body(row)
            salt = os.urandom(SALT_BYTES)
            leaf = encode_leaf(index=i, time=now, actor=builder.regulator, action=action,
                               object_ref=f"{object_type}/{row['id']}",
                               commit=commitment(salt, body))
            leaves.append((i, leaf, now))
            objects.append((i, object_type, str(row["id"]), body, salt))
            hashes.append(leaf_hash(leaf))
        def stored(level: int, index: int, known: dict[tuple[int, int], bytes] = frontier) -> bytes:
            return known[level, index]

        created = new_complete_nodes(size, hashes, stored)
        known = {**frontier, **{(lv, ix): h for lv, ix, h in created}}
        checkpoints = []
        for cut in range(size, end, MAX_BATCH):
            batch_end = min(end, cut + MAX_BATCH)
            batch_root = root_from_nodes(batch_end, known)
            checkpoints.append(
                (batch_end, batch_root, sign_checkpoint(key, origin, batch_end, batch_root)))
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for (object_type, _), row in current.items():
            table = TABLE_OF[object_type]
            by_table.setdefault(table, []).append(tuple(row[c] for c in columns[table]))
        async with conn.transaction():
            await conn.copy_records_to_table(
                "tlog_leaves", records=leaves, columns=["idx", "leaf", "created_at"])
            await conn.copy_records_to_table(
                "tlog_objects", records=objects,
                columns=["log_index", "object_type", "object_id", "body", "salt"])
            for table, rows in by_table.items():
                await conn.copy_records_to_table(table, records=rows, columns=columns[table])
                counts[table] += len(rows)
            await conn.copy_records_to_table(
                "tlog_nodes", records=created, columns=["level", "idx", "hash"])
            await conn.copy_records_to_table(
                "tlog_checkpoints", records=checkpoints, columns=["size", "root", "checkpoint"])
            await conn.execute(
                "UPDATE tlog_head SET size = $1, root = $2, checkpoint = $3", *checkpoints[-1])
            await conn.execute("UPDATE tlog_sequence SET next_index = $1", end)
        frontier = {node: known[node] for node in root_node_ids(end)}
        size = end
        print(f"  built {size}/{n} leaves", file=sys.stderr, flush=True)
    await conn.execute("RESET session_replication_role")
    return counts


# Every table verify_log reads, in the order it reads them.
TABLES = ["tlog_keys", "tlog_head", "tlog_sequence", "tlog_checkpoints", "tlog_leaves",
          "tlog_objects", "tlog_nodes", *TABLE_OF.values()]


async def copy_all(conn: asyncpg.Connection, fmt: Literal["text", "binary"]) -> tuple[float, int]:
    """One COPY TO STDOUT per table, bytes discarded: the time, the bytes read."""
    read = 0

    async def sink(data: bytes) -> None:
        nonlocal read
        read += len(data)

    started = time.perf_counter()
    for table in TABLES:
        await conn.copy_from_table(table, output=sink, format=fmt)
    return time.perf_counter() - started, read


async def main(leaves: int, rounds: int, keep: Path | None) -> None:
    root = keep or Path(tempfile.mkdtemp(prefix="registry-bench-"))
    if keep is None:
        # Registered before the server starts, so it runs after the server stops at exit.
        atexit.register(shutil.rmtree, root, True)
    from registry.db.embedded import start_embedded
    from registry.db.migrate import migrate

    uri = start_embedded(root / "home")
    settings = Settings.from_env({"REGISTRY_HOME": str(root / "home")})
    base, _, query = uri.partition("?")
    name = f"verify_{leaves}"
    url = f"{base.rsplit('/', 1)[0]}/{name}?{query}"
    admin = await asyncpg.connect(uri)
    exists = False
    if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
        # A --keep database is reused only if its build finished.
        conn = await asyncpg.connect(url)
        with contextlib.suppress(asyncpg.PostgresError):
            exists = await conn.fetchval("SELECT size FROM tlog_head") == leaves
        await conn.close()
    if not exists:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    conn = await asyncpg.connect(url)
    if not exists:
        key = load_log_key(settings, create_dev=True)
        await migrate(conn)
        await initialise_log(conn, key, settings.log_origin)
        started = time.perf_counter()
        counts = await fill(conn, key, settings.log_origin, leaves)
        print(f"built {leaves} leaves in {time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{v} {k}" for k, v in counts.items() if v), flush=True)
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE, FREEZE)")
        await conn.execute("CHECKPOINT")
        print(f"VACUUM ANALYZE took {time.perf_counter() - started:.0f} s", flush=True)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    assert pool is not None
    load = os.getloadavg()[0]
    copy_s: dict[Literal["text", "binary"], list[float]] = {"text": [], "binary": []}
    sizes: dict[str, int] = {}
    verify_s: list[float] = []
    tree_s: list[float] = []
    for fmt in copy_s:  # warm the OS cache the same way for both
        await copy_all(conn, fmt)
    for _ in range(rounds):
        for fmt in copy_s:
            seconds, sizes[fmt] = await copy_all(conn, fmt)
            copy_s[fmt].append(seconds)
        marks: dict[str, float] = {}
        started = time.perf_counter()

        def progress(phase: str, done: int, total: int, started: float = started,
                     marks: dict[str, float] = marks) -> None:
            marks[phase] = time.perf_counter() - started

        # As `registry log verify` runs it: check 5 in a second process.
        report = await verify_log(pool, dsn=url, progress=progress)
        verify_s.append(time.perf_counter() - started)
        tree_s.append(marks["leaves"])
        assert report.ok, report.first_difference
        assert report.leaves == leaves, report
    await pool.close()
    await conn.close()
    text, binary = statistics.median(copy_s["text"]), statistics.median(copy_s["binary"])
    verify = statistics.median(verify_s)
    print(f"log of {leaves} leaves: {report.nodes} nodes, {report.checkpoints} checkpoints, "
          f"{report.rows} audited rows; {os.cpu_count()} cores, load average "
          f"{load:.1f} before and {os.getloadavg()[0]:.1f} after; medians of {rounds}")
    print(f"  COPY TO STDOUT, text   : {text:7.2f} s  ({sizes['text'] / 1e6:,.0f} MB)")
    print(f"  COPY TO STDOUT, binary : {binary:7.2f} s  ({sizes['binary'] / 1e6:,.0f} MB)")
    print(f"  verify_log             : {verify:7.2f} s  ({leaves / verify:,.0f} leaves/s;"
          f" checks 1-4 done after {statistics.median(tree_s):.2f} s)")
    print(f"  ratio verify / COPY    : {verify / text:.2f} against text, "
          f"{verify / binary:.2f} against binary (goal <= 3)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=lambda s: int(float(s)), default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the database in this folder")
    args = parser.parse_args()
    asyncio.run(main(args.leaves, args.rounds, args.keep))
