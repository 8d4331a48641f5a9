"""The one log-consistency assertion every test that writes should end with.

``assert_log_consistent`` runs the full ``registry log verify`` check
(registry/tlog/verify.py) against the test's database: gap-free, fork-free
leaves, every node, every checkpoint and every audited row. The helpers below
it set up a log without starting the app (for tests that only use ``db``).
"""

from __future__ import annotations

import json
import uuid

import asyncpg

from registry.clock import SystemClock
from registry.keys import LogKey, load_log_key
from registry.settings import Settings
from registry.tlog.integrator import initialise_log, integrate_once
from registry.tlog.verify import VerifyReport, verify_log
from registry.tokens import issue_token


async def assert_log_consistent(
    pool: asyncpg.Pool, *, integrated: bool = False, min_size: int = 0
) -> VerifyReport:
    """Fail the test with the first difference unless the whole log verifies.

    ``integrated`` also requires every committed leaf to be in the signed tree
    (nothing left for the integrator); ``min_size`` a signed tree at least that big.
    """
    report = await verify_log(pool)
    assert report.ok, f"log verification failed: {report.first_difference}"
    if integrated:
        assert report.size == report.leaves, (
            f"{report.leaves} leaves committed but the signed tree covers {report.size}"
        )
    assert report.size >= min_size, f"signed tree has {report.size} leaves, want >= {min_size}"
    return report


async def ensure_log(pool: asyncpg.Pool, settings: Settings) -> LogKey:
    """The signing key, with the empty log created as ``registry migrate`` would."""
    key = load_log_key(settings, create_dev=True)
    async with pool.acquire() as conn:
        await initialise_log(conn, key, settings.log_origin)
    return key


async def integrate_all(pool: asyncpg.Pool, key: LogKey, origin: str) -> int:
    """Integrate every committed leaf (in batches); the head size after."""
    async with pool.acquire() as conn:
        while True:
            head = await integrate_once(conn, key, origin)
            count = await conn.fetchval("SELECT count(*) FROM tlog_leaves")
            if head.size >= count:
                return head.size


async def append_tokens(pool: asyncpg.Pool, count: int, *, prefix: str = "bulk") -> list[int]:
    """Append ``count`` leaves cheaply (token issues, one transaction each); their indexes."""
    indexes = []
    for i in range(count):
        _, written = await issue_token(
            # Names are unique among live tokens: a second call must not reuse them.
            pool, SystemClock(), role="bureau", name=f"{prefix} {i} {uuid.uuid4().hex[:8]}",
            actor="admin:test",
        )
        indexes.append(written.log_index)
    return indexes


def logged_errors(text: str) -> list[str]:
    """The lines of a server's stderr that report an error: JSON lines at level error or
    critical or carrying an exception, and any other line holding a traceback (a crash
    outside the logger). Parsed, not matched as text: the logger writes compact JSON, and
    a search for `"level": "error"` (with a space) never matched one line."""
    found = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                found.append(line)
            continue
        if isinstance(event, dict) and (
            event.get("level") in ("error", "critical") or "exception" in event
        ):
            found.append(line)
    return found
