"""``registry log verify``: recompute the whole log from its leaves and compare with storage.

What the start-up check (tlog/startup.py) only samples, this checks in full, in
one REPEATABLE READ snapshot, streaming so that memory stays bounded whatever
the log's size (a batch of leaves, its nodes and the O(log n) frontier):

1. leaves are stored at 0..n-1 without gaps, each decodes as a canonical leaf
   whose ``index`` is its position, and ``tlog_sequence`` agrees with n;
2. each leaf's commitment is SHA-256(salt ‖ body) of its ``tlog_objects`` row,
   and names that row's object;
3. every complete node of the tree at the head's size, recomputed, equals its
   stored ``tlog_nodes`` row; none is missing and none is stored beyond it;
4. every stored checkpoint verifies under a published key and its size and root
   are the recomputed tree's at that size; the head's checkpoint too;
5. every current row of every audited table, read with ``SELECT *``, is exactly
   the body stored at its ``log_index`` (this is what catches a row edited
   directly in the database), that version is the object's latest, and no
   audited object has lost its row.

The first difference stops the run and is reported precisely: after one damaged
leaf or node, everything later would only repeat it.

How it stays fast (issue 17; tests/bench/bench_verify.py measures it against
reading the same tables with COPY):

- checks 1-4 read the leaves joined with their objects through one server-side
  cursor, a batch at a time, while a task (tlog/ahead.py) fetches the next batch
  with its stored nodes (one row per tree level: count, first index and the
  hashes concatenated in index order) and checkpoints; a batch's nodes are
  computed level by level from its leaf hashes and the frontier, and compared a
  level at a time;
- check 5 (verify_rows.py) is cut into units, which a second process takes from
  the start when ``verify_log`` is given the database's URL (a second connection
  of the pool when not), and this connection once checks 1-4 are done; all read
  in the snapshot this transaction exports;
- the report is still the one the sequential check gave: what check 5 finds
  counts only after checks 1-4 have passed, table by table in order, and a batch
  that differs is replayed leaf by leaf the original way (``_replay``), which
  names the first difference and counts what was checked before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import sys
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, NoReturn

import asyncpg
import msgspec

import registry
from registry.db.types import Conn, Db
from registry.settings import Settings
from registry.tlog.ahead import Ahead
from registry.tlog.leaf import decode_leaf
from registry.tlog.merkle import (
    EMPTY_ROOT,
    NodeID,
    leaf_hash,
    node_hash,
    root_from_nodes,
    root_node_ids,
)
from registry.tlog.note import NoteError, Verifier, open_checkpoint, parse_verifier_key
from registry.tlog.verify_rows import (
    AUDITED_TABLES,
    YIELD_EVERY,
    Pending,
    Progress,
    RowDifference,
    Share,
    Tables,
    finish,
    get_session,
    set_session,
    work,
)

__all__ = ["AUDITED_TABLES", "CHUNK", "Progress", "VerifyReport", "verify_log", "verify_log_cli"]

# Leaves per batch (and rows per fetch of an audited table).
CHUNK = 8192


class _Difference(Exception):
    """The first place where storage and recomputation disagree."""


@dataclass
class VerifyReport:
    """What ``verify_log`` checked; ``ok`` only if every check held."""

    size: int = 0
    leaves: int = 0
    nodes: int = 0
    checkpoints: int = 0
    rows: int = 0
    root: bytes = EMPTY_ROOT
    first_difference: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_difference is None


class _Frontier:
    """The streaming Merkle tree: the left frontier of complete subtrees, largest first.

    Used to replay a batch that differs, one leaf at a time, as the original check did.
    """

    def __init__(self, size: int = 0, stack: list[tuple[int, bytes]] | None = None) -> None:
        self.size = size
        self._stack: list[tuple[int, bytes]] = stack or []  # (level, hash)

    @classmethod
    def at(cls, size: int, nodes: dict[NodeID, bytes]) -> _Frontier:
        """The frontier of a tree of ``size`` whose ``root_node_ids`` hashes are ``nodes``."""
        return cls(size, [(level, nodes[level, idx]) for level, idx in root_node_ids(size)])

    def append(self, digest: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return every complete node it creates, level 0 first."""
        index = self.size
        created = [(0, index, digest)]
        level = 0
        while index & 1:
            _, left = self._stack.pop()
            digest = node_hash(left, digest)
            level, index = level + 1, index >> 1
            created.append((level, index, digest))
        self._stack.append((level, digest))
        self.size += 1
        return created

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, digest in reversed(self._stack[:-1]):
            acc = node_hash(digest, acc)
        return acc


# Per level, from level 0: (level, index of the first node, hashes of the nodes in order).
Levels = list[tuple[int, int, list[bytes]]]


class _Tree:
    """The tree grown a batch of leaf hashes at a time, one level after the other.

    Holds only the frontier (``root_node_ids(size)``, at most one node per level);
    ``grow`` returns every complete node the batch creates, which is all a batch's
    checks need, and ``commit`` keeps the new frontier once they have passed.
    """

    def __init__(self) -> None:
        self.size = 0
        self.frontier: dict[NodeID, bytes] = {}

    def grow(self, hashes: list[bytes]) -> Levels:
        """The complete nodes created by appending ``hashes`` (leaf hashes), per level."""
        levels: Levels = []
        level, start, row = 0, self.size, hashes
        while row:
            levels.append((level, start, row))
            if start & 1:
                # The first node's left sibling was completed before the batch, so it
                # is the frontier's node at this level.
                row = [self.frontier[level, start - 1], *row]
                start -= 1
            row = [node_hash(left, right) for left, right in zip(row[0::2], row[1::2], strict=False)]
            level, start = level + 1, start >> 1
        return levels

    def node(self, levels: Levels, node: NodeID) -> bytes:
        level, idx = node
        if level < len(levels):
            _, start, row = levels[level]
            if start <= idx < start + len(row):
                return row[idx - start]
        return self.frontier[node]

    def root_at(self, levels: Levels, size: int) -> bytes:
        """The root at ``size``, between the tree's size and the end of ``levels``."""
        return root_from_nodes(size, {n: self.node(levels, n) for n in root_node_ids(size)})

    def commit(self, levels: Levels, size: int) -> None:
        self.frontier = {n: self.node(levels, n) for n in root_node_ids(size)}
        self.size = size


def _node_ranges(start: int, end: int) -> tuple[list[int], list[int], list[int]]:
    """Per level, the node indexes completed by leaves [start, end): node (l, k) ends at leaf
    (k+1)*2^l - 1, so k runs over [((start+1) >> l) ... (end >> l)) rounded as below."""
    levels: list[int] = []
    lows: list[int] = []
    highs: list[int] = []
    level = 0
    while (end >> level) > 0:
        low = (start + (1 << level)) >> level  # ceil((start+1) / 2^l)
        high = end >> level
        if high >= low:
            levels.append(level)
            lows.append(low - 1)
            highs.append(high)  # exclusive: k < high
        level += 1
    return levels, lows, highs


async def _stored_nodes(conn: Conn, start: int, end: int) -> dict[tuple[int, int], bytes]:
    levels, lows, highs = _node_ranges(start, end)
    if not levels:
        return {}
    # LATERAL: one index range scan per level (a join on unnest() is planned as a
    # scan of the whole table).
    rows = await conn.fetch(
        "SELECT n.level, n.idx, n.hash"
        " FROM unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi)"
        " CROSS JOIN LATERAL (SELECT level, idx, hash FROM tlog_nodes"
        " WHERE level = r.level AND idx >= r.lo AND idx < r.hi) n",
        levels,
        lows,
        highs,
    )
    return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


# Per level: (nodes stored, first index, all 32 bytes, hashes concatenated in index order).
StoredLevels = dict[int, tuple[int, int | None, bool | None, bytes | None]]


async def _stored_levels(conn: Conn, start: int, end: int) -> StoredLevels:
    """The stored nodes completed by leaves [start, end), one row per level.

    The length check matters: with hashes of 31 and 33 bytes the concatenation
    alone could still match. LATERAL makes it one index range scan per level.
    """
    levels, lows, highs = _node_ranges(start, end)
    if not levels:
        return {}
    rows = await conn.fetch(
        "SELECT r.level, n.stored, n.low, n.sized, n.hashes"
        " FROM unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi)"
        " CROSS JOIN LATERAL (SELECT count(*) AS stored, min(idx) AS low,"
        " bool_and(length(hash) = 32) AS sized, string_agg(hash, ''::bytea ORDER BY idx) AS hashes"
        " FROM tlog_nodes WHERE level = r.level AND idx >= r.lo AND idx < r.hi) n",
        levels,
        lows,
        highs,
    )
    return {r["level"]: (r["stored"], r["low"], r["sized"], r["hashes"]) for r in rows}


def _levels_match(levels: Levels, stored: StoredLevels) -> bool:
    want = {level: (len(row), start, True, b"".join(row)) for level, start, row in levels}
    return want == stored


def _open(note: str, verifiers: Sequence[Verifier], what: str) -> tuple[int, bytes, str]:
    try:
        checkpoint, _ = open_checkpoint(note, verifiers)
    except NoteError as error:
        raise _Difference(f"{what} does not verify: {error}") from None
    return checkpoint.size, checkpoint.root_hash, checkpoint.origin


async def _verifiers(conn: Conn) -> list[Verifier]:
    rows = await conn.fetch("SELECT verifier_key FROM tlog_keys ORDER BY valid_from")
    try:
        return [parse_verifier_key(r["verifier_key"]) for r in rows]
    except NoteError as error:
        raise _Difference(f"a published key in tlog_keys is malformed: {error}") from None


_SNAPSHOT = re.compile(r"[0-9A-Fa-f-]+").fullmatch

# The folder holding the ``registry`` package: the child process imports this very
# package, wherever it was imported from here (an installed copy, a checkout).
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(registry.__file__)))
# From this many leaves on, check 5 runs in a second process when ``verify_log`` is
# given the database's URL: starting it (imports, a connection) costs about a second.
PROCESS_FROM = 50_000


async def verify_log(
    db: Db,
    verifiers: Iterable[Verifier] | None = None,
    *,
    origin: str | None = None,
    chunk: int = CHUNK,
    progress: Progress | None = None,
    dsn: str | None = None,
) -> VerifyReport:
    """Check the whole log (see the module docstring); never raises for damage, reports it.

    ``verifiers`` defaults to every key published in ``tlog_keys``; pass pinned
    keys to verify against keys obtained elsewhere. ``progress(phase, done, total)``
    is called after each batch.

    Everything is read in one snapshot. Check 5 runs beside checks 1-4: in a second
    process if ``dsn`` (the URL ``db`` connects to) is given and the log has
    PROCESS_FROM leaves, else on a second connection if ``db`` is a pool. Given a
    connection already in a transaction, everything runs on it in turn, in that
    transaction, whose settings are put back after.
    """
    report = VerifyReport()
    async with AsyncExitStack() as stack:
        pool = None
        if isinstance(db, asyncpg.Pool):
            pool = db
            conn: Conn = await stack.enter_async_context(db.acquire())
        else:
            conn = db
        own = not conn.is_in_transaction()
        restore = None
        if own:
            await stack.enter_async_context(
                conn.transaction(isolation="repeatable_read", readonly=True)
            )
        else:
            restore = await get_session(conn)
        await set_session(conn)
        side = _Side(stack, pool, dsn, await _export(conn) if own else None)
        try:
            await _verify(conn, side, verifiers, origin, chunk, progress, report)
        except _Difference as difference:
            report.first_difference = str(difference)
        if restore is not None:
            await set_session(conn, restore)
    return report


async def _export(conn: Conn) -> str:
    snapshot: str = await conn.fetchval("SELECT pg_export_snapshot()")
    if not _SNAPSHOT(snapshot):  # it is inlined into SET TRANSACTION SNAPSHOT
        raise RuntimeError(f"couldn't share the snapshot: unexpected id {snapshot!r}")
    return snapshot


@dataclass(frozen=True)
class _Side:
    """What check 5 may run on beside checks 1-4: the snapshot to share (None: the
    caller's transaction, so nothing runs beside) and where to open a reader on it."""

    stack: AsyncExitStack
    pool: asyncpg.Pool | None
    dsn: str | None
    snapshot: str | None

    def can_open(self, count: int) -> bool:
        """Whether ``count`` more connections in the snapshot can be had from the pool."""
        return (
            self.snapshot is not None and self.pool is not None
            and self.pool.get_max_size() > count
        )

    async def connection(self) -> Conn:
        """Another connection of the pool in the snapshot, with SESSION set."""
        assert self.pool is not None
        conn: Conn = await self.stack.enter_async_context(self.pool.acquire())
        await self.stack.enter_async_context(
            conn.transaction(isolation="repeatable_read", readonly=True)
        )
        await conn.execute(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'")  # first statement
        await set_session(conn)
        return conn


async def _verify(
    conn: Conn,
    side: _Side,
    verifiers: Iterable[Verifier] | None,
    origin: str | None,
    chunk: int,
    progress: Progress | None,
    report: VerifyReport,
) -> None:
    keys = list(verifiers) if verifiers is not None else await _verifiers(conn)
    if not keys:
        raise _Difference("no verifier keys: tlog_keys is empty")
    head = await conn.fetchrow("SELECT size, root, checkpoint FROM tlog_head")
    if head is None:
        raise _Difference("the log has no tree head: run `registry migrate`")
    head_size, head_root = int(head["size"]), bytes(head["root"])
    signed_size, signed_root, signed_origin = _open(head["checkpoint"], keys, "the head checkpoint")
    if origin is not None and signed_origin != origin:
        raise _Difference(f"the head checkpoint's origin is {signed_origin!r}, want {origin!r}")
    if (signed_size, signed_root) != (head_size, head_root):
        raise _Difference(
            f"the head checkpoint says size {signed_size} but tlog_head says size {head_size}"
            if signed_size != head_size
            else f"the head checkpoint's root differs from tlog_head's root at size {head_size}"
        )
    report.size = head_size
    # Check 5 is split into units that workers take as they come free: a second
    # process (or a second connection of the pool) from the start, this connection
    # once checks 1-4 are done. Its verdict counts only after theirs, table by
    # table in order, as in a sequential run.
    tables = await Tables.read(conn)
    plans = tables.plans()
    leaves = int(await conn.fetchval("SELECT next_index FROM tlog_sequence"))
    pending = Pending(tables.units(plans, max(leaves, head_size)))
    shares: list[Share] = []
    names = list(AUDITED_TABLES)
    read = [0] * len(names)

    def rows(table: int, count: int) -> None:
        read[table] += count
        if progress is not None:  # the total is the planner's estimate
            progress(names[table], read[table], max(read[table], tables.totals[table]))

    helpers: list[asyncio.Task[None]] = []
    # Where this connection's share looks single rows up while it reads a batch ahead:
    # a connection of the pool, opened if ever needed (None: it reads without).
    lookups = None
    if side.dsn is not None and side.snapshot is not None and head_size >= PROCESS_FROM:
        helpers.append(asyncio.create_task(
            _work_in_process(side.dsn, side.snapshot, chunk, tables, pending, shares, rows)
        ))
        lookups = side.connection if side.can_open(1) else None
    elif side.can_open(1):
        helpers.append(asyncio.create_task(work(
            await side.connection(), plans, pending, chunk, shares, rows,
            side.connection if side.can_open(2) else None,
        )))
    try:
        await _check_tree(conn, keys, head_size, head_root, chunk, progress, report)
        await work(conn, plans, pending, chunk, shares, rows, lookups)
        await asyncio.gather(*helpers)
    except BaseException:
        for helper in helpers:
            helper.cancel()
        for helper in helpers:
            with contextlib.suppress(BaseException):
                await helper
        raise
    checked = [0]
    try:
        await finish(conn, plans, shares, checked)
    except RowDifference as difference:
        raise _Difference(str(difference)) from None
    finally:
        report.rows = checked[0]


async def _work_in_process(
    dsn: str,
    snapshot: str,
    chunk: int,
    tables: Tables,
    pending: Pending,
    shares: list[Share],
    rows: Callable[[int, int], None],
) -> None:
    """A second process (verify_rows.serve) that takes units from ``pending`` until none
    is left, adding what it finds to ``shares``."""
    path = os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "registry.tlog.verify_rows",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert child.stdin is not None
    assert child.stdout is not None

    async def say(message: dict[str, object]) -> None:
        assert child.stdin is not None
        child.stdin.write(msgspec.json.encode(message) + b"\n")
        await child.stdin.drain()

    try:
        await say({"dsn": dsn, "snapshot": snapshot, "chunk": chunk, "tables": tables.to_json()})
        async for line in child.stdout:
            message = msgspec.json.decode(line)
            if "want" in message:
                unit = pending.take()
                await say({"stop": True} if unit is None
                          else {"unit": [unit.table, unit.low, unit.high, unit.latest]})
            elif "rows" in message:
                rows(*message["rows"])
            elif "share" in message:
                table, done, weight, first, latest = message["share"]
                shares.append(Share(table, done, weight,
                                    None if first is None else tuple(first), latest))
            elif "error" in message:
                raise RuntimeError(f"couldn't check the audited rows: {message['error']}")
            else:
                return
        raise RuntimeError(
            f"couldn't check the audited rows: their process ended with no answer "
            f"(exit status {await child.wait()})"
        )
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()  # checks 1-4 failed first, or this task was cancelled
        await child.wait()


async def _check_tree(
    conn: Conn,
    keys: Sequence[Verifier],
    head_size: int,
    head_root: bytes,
    chunk: int,
    progress: Progress | None,
    report: VerifyReport,
) -> None:
    """Checks 1-4 and the whole-log counts after them."""
    next_index = int(await conn.fetchval("SELECT next_index FROM tlog_sequence"))
    total = max(head_size, next_index)  # for progress: leaves past it are damage

    tree = _Tree()
    empty = await conn.fetchrow(
        "SELECT size, root, checkpoint FROM tlog_checkpoints WHERE size = 0"
    )
    if empty is not None:
        _check_checkpoint(empty, 0, EMPTY_ROOT, keys)
        report.checkpoints += 1
    position = 0
    batches = Ahead(_batches(conn, head_size, chunk))
    try:
        async for batch in batches:
            await _check_batch(conn, batch, tree, keys, head_size, report, batches)
            position = batch.start + len(batch.rows)
            if progress is not None:
                progress("leaves", position, total)
    finally:
        await batches.stop()
    if position < head_size:
        raise _Difference(f"leaf {position} missing: the signed tree head covers {head_size}")
    if next_index != position:
        raise _Difference(
            f"tlog_sequence says the next index is {next_index} but {position} leaves are stored"
            + (f": leaf {position} missing" if next_index > position else "")
        )
    extra = await conn.fetchrow(
        "SELECT level, idx FROM tlog_nodes WHERE idx >= ($1::bigint >> level::int)"
        " ORDER BY level, idx LIMIT 1",
        head_size,
    )
    if extra is not None:
        raise _Difference(
            f"node ({extra['level']}, {extra['idx']}) is stored but lies beyond the tree head "
            f"at size {head_size}"
        )
    beyond = await conn.fetchval(
        "SELECT min(size) FROM tlog_checkpoints WHERE size > $1", head_size
    )
    if beyond is not None:
        raise _Difference(
            f"checkpoint at size {beyond} is stored but the tree head is at size {head_size}"
        )
    objects = int(await conn.fetchval("SELECT count(*) FROM tlog_objects"))
    if objects != position:
        raise _Difference(f"tlog_objects holds {objects} rows for {position} leaves")
    report.root = tree.root_at([], head_size) if head_size else EMPTY_ROOT
    if report.root != head_root:
        raise _Difference(f"the head's root differs from the recomputed root at size {head_size}")


# ``committed`` is salt ‖ body, the bytes a commitment is the SHA-256 of.
_LEAVES_SQL = (
    "SELECT l.idx, l.leaf, o.log_index, o.object_type, o.object_id, o.salt || o.body AS committed"
    " FROM tlog_leaves l LEFT JOIN tlog_objects o ON o.log_index = l.idx ORDER BY l.idx"
)
_CHECKPOINTS_SQL = (
    "SELECT size, root, checkpoint FROM tlog_checkpoints"
    " WHERE size > $1 AND size <= $2 ORDER BY size"
)


@dataclass(frozen=True)
class _Batch:
    """Leaves [start, start + len(rows)) with what storage holds for the tree part of them."""

    start: int
    rows: list[asyncpg.Record]
    levels: StoredLevels
    checkpoints: list[asyncpg.Record]


async def _batches(conn: Conn, head_size: int, chunk: int) -> AsyncGenerator[_Batch, None]:
    """Leaves in index order, ``chunk`` at a time, through one cursor (the snapshot's
    transaction is open), each batch with its stored nodes and checkpoints."""
    cursor = await conn.cursor(_LEAVES_SQL)
    start = 0
    while rows := await cursor.fetch(chunk):
        end = min(start + len(rows), head_size)
        levels: StoredLevels = {}
        checkpoints: list[asyncpg.Record] = []
        if start < end:
            levels = await _stored_levels(conn, start, end)
            checkpoints = await conn.fetch(_CHECKPOINTS_SQL, start, end)
        yield _Batch(start, rows, levels, checkpoints)
        start += len(rows)


async def _check_batch(
    conn: Conn,
    batch: _Batch,
    tree: _Tree,
    keys: Sequence[Verifier],
    head_size: int,
    report: VerifyReport,
    batches: Ahead[_Batch],
) -> None:
    """Checks 1-4 for one batch; on any difference, replay it to name the first one."""
    start, rows = batch.start, batch.rows
    hashes: list[bytes] = []
    try:
        for part in range(0, len(rows), YIELD_EVERY):
            position = start + part
            for row in rows[part:part + YIELD_EVERY]:
                _check_leaf(row, position)
                if position < head_size:
                    hashes.append(leaf_hash(row[1]))
                position += 1
            await asyncio.sleep(0)  # let the next batch and check 5 be received
        levels = tree.grow(hashes)
        if not _levels_match(levels, batch.levels):
            raise _Difference("a stored node differs")  # named by the replay
        for checkpoint in batch.checkpoints:
            size = int(checkpoint["size"])
            _check_checkpoint(checkpoint, size, tree.root_at(levels, size), keys)
    except _Difference:
        await batches.stop()  # the replay reads on the same connection
        await _replay(conn, batch, tree, keys, head_size, report)
    if hashes:
        tree.commit(levels, tree.size + len(hashes))
    report.leaves += len(rows)
    report.nodes += sum(len(row) for _, _, row in levels)
    report.checkpoints += len(batch.checkpoints)


async def _replay(
    conn: Conn,
    batch: _Batch,
    tree: _Tree,
    keys: Sequence[Verifier],
    head_size: int,
    report: VerifyReport,
) -> NoReturn:
    """The original leaf-by-leaf check of a batch known to differ: raises the first
    difference, with the report's counts as the original check left them."""
    position = batch.start
    end = min(position + len(batch.rows), head_size)
    stored = await _stored_nodes(conn, position, end) if position < end else {}
    frontier = _Frontier.at(tree.size, tree.frontier)
    pending = list(batch.checkpoints)
    for row in batch.rows:
        _check_leaf(row, position)
        if position < head_size:
            for level, idx, digest in frontier.append(leaf_hash(row[1])):
                have = stored.pop((level, idx), None)
                if have is None:
                    raise _Difference(f"node ({level}, {idx}) is missing from tlog_nodes")
                if have != digest:
                    raise _Difference(f"node ({level}, {idx}) differs from the recomputed hash")
                report.nodes += 1
            while pending and pending[0]["size"] == frontier.size:
                _check_checkpoint(pending.pop(0), frontier.size, frontier.root(), keys)
                report.checkpoints += 1
        position += 1
        report.leaves += 1
    if stored:  # unreachable unless _node_ranges is wrong; never pass silently
        level, idx = min(stored)
        raise _Difference(f"node ({level}, {idx}) is stored but not recomputed")
    raise RuntimeError(
        f"couldn't find the difference the batch check found in leaves {batch.start}..{position - 1}"
    )


def _check_leaf(row: asyncpg.Record, position: int) -> None:
    """Checks 1 and 2 for one row of ``_LEAVES_SQL``."""
    idx = row[0]
    if idx != position:
        raise _Difference(f"leaf {position} missing (the next stored leaf is {idx})")
    data = row[1]
    try:
        leaf = decode_leaf(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
        raise _Difference(f"leaf {idx}: bytes are not a valid leaf: {error}") from None
    if leaf.index != idx:
        raise _Difference(f"leaf {idx}: its bytes say index {leaf.index} (moved or swapped)")
    if row[2] is None:
        raise _Difference(f"leaf {idx}: no stored object (tlog_objects row missing)")
    ref = f"{row[3]}/{row[4]}"
    if leaf.object != ref:
        raise _Difference(f"leaf {idx}: names {leaf.object} but its stored object is {ref}")
    if hashlib.sha256(row[5]).hexdigest() != leaf.commitment:
        raise _Difference(f"leaf {idx}: commitment does not match its stored object {ref}")


def _check_checkpoint(
    row: asyncpg.Record, tree_size: int, tree_root: bytes, keys: Sequence[Verifier]
) -> None:
    """Check 4 for one stored checkpoint, against the recomputed tree of ``tree_size``."""
    size = int(row["size"])
    what = f"checkpoint at size {size}"
    signed_size, signed_root, _ = _open(row["checkpoint"], keys, what)
    if signed_size != size or signed_root != bytes(row["root"]):
        raise _Difference(f"{what}: its signed text disagrees with its tlog_checkpoints row")
    if tree_size != size:  # the stream passes every size in order; guard anyway
        raise _Difference(f"{what}: checked at the wrong tree size {tree_size}")
    if tree_root != signed_root:
        raise _Difference(f"{what}: root differs from the recomputed root at size {size}")


# ---- CLI --------------------------------------------------------------------------


async def verify_log_cli(pool: asyncpg.Pool, settings: Settings) -> int:
    """Run ``verify_log`` with progress on stderr; print the verdict; 0 only if all holds."""
    from registry.db.embedded import database_url

    # The URL ``pool`` was opened with (the embedded server is already attached), so
    # that check 5 can run in a process of its own.
    dsn = database_url(settings.home, settings.database_url)
    if sys.stderr.isatty():
        from rich.progress import Progress as RichProgress

        with RichProgress(transient=True) as bar:
            tasks: dict[str, Any] = {}

            def show(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(f"checking {phase}", total=total or 1)
                bar.update(tasks[phase], completed=done, total=total or 1)

            report = await verify_log(
                pool, origin=settings.log_origin, progress=show, dsn=dsn
            )
    else:
        shown: set[tuple[str, int]] = set()

        def show(phase: str, done: int, total: int) -> None:
            # One line per tenth of each phase, so logs stay short.
            step = (phase, done * 10 // total if total else 10)
            if step not in shown:
                shown.add(step)
                print(f"checked {done}/{total} {phase}", file=sys.stderr, flush=True)

        report = await verify_log(pool, origin=settings.log_origin, progress=show, dsn=dsn)
    summary = (
        f"{report.leaves} leaves, {report.nodes} nodes, {report.checkpoints} checkpoints, "
        f"{report.rows} audited rows"
    )
    if report.ok:
        print(f"log OK: size {report.size}, root {report.root.hex()}; checked {summary}")
        return 0
    print(f"log DAMAGED: {report.first_difference}")
    print(f"(checked before stopping: {summary})")
    return 1
