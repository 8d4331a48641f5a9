"""Audit-log timing: proof latency and `registry log verify` time for logs of N leaves.

A script, not a pytest test:

    .venv/bin/python tests/bench/bench_log.py            # N = 1e3, 1e4, 1e5
    .venv/bin/python tests/bench/bench_log.py 1000000    # any list of N

It starts its own embedded PostgreSQL under a temporary folder (deleted at the
end) and fills one database per N quickly but faithfully: real api_tokens rows,
their canonical bodies and commitments, real leaf encoding, every complete node
from merkle.new_complete_nodes, and a signed checkpoint every 4096 leaves (the
integrator's batch), all written with COPY. It then times 1000 random inclusion
and consistency proofs through registry.tlog.proofs against a pool, and one full
verify_log.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg

from registry.keys import LogKey, generate_log_key
from registry.settings import Settings
from registry.tlog.integrator import MAX_BATCH, initialise_log, sign_checkpoint
from registry.tlog.leaf import SALT_BYTES, commitment, encode_leaf, object_body
from registry.tlog.merkle import (
    leaf_hash,
    new_complete_nodes,
    root_from_nodes,
    root_node_ids,
)
from registry.tlog.proofs import consistency_proof, inclusion_proof
from registry.tlog.verify import verify_log

CHUNK = 4 * MAX_BATCH
PROOFS = 1000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def fill(conn: asyncpg.Connection, key: LogKey, origin: str, n: int) -> bytes:
    """Write n audited token issues with leaves, objects, nodes and checkpoints; the root."""
    frontier: dict[tuple[int, int], bytes] = {}
    size = 0
    root = b""
    while size < n:
        end = min(n, size + CHUNK)
        tokens, leaves, objects, hashes = [], [], [], []
        for i in range(size, end):
            now = T0 + timedelta(microseconds=i)
            row = {
                "id": uuid.uuid4(),
                "name": f"bench {i}",
                "role": "bureau",
                "token_hash": hashlib.sha256(i.to_bytes(8, "big")).digest(),
                "prefix": "vcr_bureau_",
                "created_at": now,
                "created_by": "admin:bench",
                "revoked_at": None,
                "revoked_by": None,
                "log_index": i,
            }
            body = object_body(row)
            salt = os.urandom(SALT_BYTES)
            leaf = encode_leaf(
                index=i, time=now, actor="admin:bench", action="token.issue",
                object_ref=f"token/{row['id']}", commit=commitment(salt, body),
            )
            tokens.append(tuple(row.values()))
            leaves.append((i, leaf, now))
            objects.append((i, "token", str(row["id"]), body, salt))
            hashes.append(leaf_hash(leaf))

        def frontier_node(lv: int, ix: int, f: dict[tuple[int, int], bytes] = frontier) -> bytes:
            return f[(lv, ix)]

        created = new_complete_nodes(size, hashes, frontier_node)
        known = {**frontier, **{(lv, ix): h for lv, ix, h in created}}
        checkpoints = []
        for cut in range(size, end, MAX_BATCH):
            batch_end = min(end, cut + MAX_BATCH)
            batch_root = root_from_nodes(batch_end, known)
            checkpoints.append(
                (batch_end, batch_root, sign_checkpoint(key, origin, batch_end, batch_root))
            )
        root = checkpoints[-1][1]
        async with conn.transaction():
            await conn.copy_records_to_table("api_tokens", records=tokens, columns=list(row))
            await conn.copy_records_to_table(
                "tlog_leaves", records=leaves, columns=["idx", "leaf", "created_at"]
            )
            await conn.copy_records_to_table(
                "tlog_objects", records=objects,
                columns=["log_index", "object_type", "object_id", "body", "salt"],
            )
            await conn.copy_records_to_table(
                "tlog_nodes", records=created, columns=["level", "idx", "hash"]
            )
            await conn.copy_records_to_table(
                "tlog_checkpoints", records=checkpoints, columns=["size", "root", "checkpoint"]
            )
            await conn.execute(
                "UPDATE tlog_head SET size = $1, root = $2, checkpoint = $3", *checkpoints[-1]
            )
            await conn.execute("UPDATE tlog_sequence SET next_index = $1", end)
        frontier = {node: known[node] for node in root_node_ids(end)}
        size = end
    await conn.execute("ANALYZE")
    return root


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def bench(uri: str, settings: Settings, key: LogKey, n: int) -> dict[str, float]:
    name = f"bench_{n}"
    admin = await asyncpg.connect(uri)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base, _, query = uri.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}?{query}"
    from registry.db.migrate import migrate

    conn = await asyncpg.connect(url)
    await migrate(conn)
    await initialise_log(conn, key, settings.log_origin)
    started = time.perf_counter()
    await fill(conn, key, settings.log_origin, n)
    fill_s = time.perf_counter() - started
    await conn.close()

    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    assert pool is not None
    rng = random.Random(n)
    inclusion: list[float] = []
    for _ in range(PROOFS):
        index = rng.randrange(n)
        t = time.perf_counter()
        await inclusion_proof(pool, index, n)
        inclusion.append(time.perf_counter() - t)
    consistency: list[float] = []
    for _ in range(PROOFS):
        old = rng.randrange(1, n + 1)
        new = rng.randrange(old, n + 1)
        t = time.perf_counter()
        await consistency_proof(pool, old, new)
        consistency.append(time.perf_counter() - t)
    t = time.perf_counter()
    report = await verify_log(pool)
    verify_s = time.perf_counter() - t
    await pool.close()
    assert report.ok, report.first_difference
    assert report.leaves == n
    assert report.rows == n
    inc50, inc99 = percentiles(inclusion)
    con50, con99 = percentiles(consistency)
    return {
        "n": n, "fill_s": fill_s, "inc_p50_ms": inc50 * 1e3, "inc_p99_ms": inc99 * 1e3,
        "con_p50_ms": con50 * 1e3, "con_p99_ms": con99 * 1e3, "verify_s": verify_s,
        "verify_leaves_per_s": n / verify_s,
    }


async def main(sizes: list[int]) -> None:
    root = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    try:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(root / "run"))
        (root / "run").mkdir(mode=0o700, exist_ok=True)
        from registry.db.embedded import start_embedded

        uri = start_embedded(root / "home")
        settings = Settings.from_env({"REGISTRY_HOME": str(root / "home")})
        key = generate_log_key(settings)
        header = (
            f"{'N':>9} {'fill s':>8} {'incl p50 ms':>12} {'incl p99 ms':>12} "
            f"{'cons p50 ms':>12} {'cons p99 ms':>12} {'verify s':>9} {'leaves/s':>9}"
        )
        print(header, flush=True)
        for n in sizes:
            r = await bench(uri, settings, key, n)
            print(
                f"{n:>9} {r['fill_s']:>8.1f} {r['inc_p50_ms']:>12.2f} {r['inc_p99_ms']:>12.2f} "
                f"{r['con_p50_ms']:>12.2f} {r['con_p99_ms']:>12.2f} {r['verify_s']:>9.2f} "
                f"{r['verify_leaves_per_s']:>9.0f}",
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    wanted = [int(float(a)) for a in sys.argv[1:]] or [1_000, 10_000, 100_000]
    asyncio.run(main(wanted))
