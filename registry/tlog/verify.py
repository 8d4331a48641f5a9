"""``registry log verify``: recompute the whole log from its leaves and compare with storage.

What the start-up check (tlog/startup.py) only samples, this checks in full, in
one REPEATABLE READ snapshot, streaming so that memory stays bounded whatever
the log's size (a chunk of leaves, its nodes and the O(log n) frontier):

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
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from registry.db.audit import TABLE_OF
from registry.db.types import Conn, Db
from registry.settings import Settings
from registry.tlog.leaf import decode_leaf, object_body
from registry.tlog.merkle import EMPTY_ROOT, leaf_hash, node_hash
from registry.tlog.note import NoteError, Verifier, open_checkpoint, parse_verifier_key

CHUNK = 10_000

# Audited table -> the ``object_type`` its leaves name. Every table listed here
# has a uuid ``id`` and a ``log_index`` column naming the leaf of its current
# version. A new audited table is one line here.
AUDITED_TABLES: dict[str, str] = {table: object_type for object_type, table in TABLE_OF.items()}

Progress = Callable[[str, int, int], None]


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
    """The streaming Merkle tree: the left frontier of complete subtrees, largest first."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (level, hash)

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
    rows = await conn.fetch(
        "SELECT n.level, n.idx, n.hash FROM tlog_nodes n"
        " JOIN unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi)"
        " ON n.level = r.level AND n.idx >= r.lo AND n.idx < r.hi",
        levels,
        lows,
        highs,
    )
    return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


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


async def verify_log(
    db: Db,
    verifiers: Iterable[Verifier] | None = None,
    *,
    origin: str | None = None,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check the whole log (see the module docstring); never raises for damage, reports it.

    ``verifiers`` defaults to every key published in ``tlog_keys``; pass pinned
    keys to verify against keys obtained elsewhere. ``progress(phase, done, total)``
    is called after each chunk.
    """
    report = VerifyReport()
    async with AsyncExitStack() as stack:
        if isinstance(db, asyncpg.Pool):
            conn: Conn = await stack.enter_async_context(db.acquire())
        else:
            conn = db
        if not conn.is_in_transaction():
            await stack.enter_async_context(
                conn.transaction(isolation="repeatable_read", readonly=True)
            )
        try:
            await _verify(conn, verifiers, origin, chunk, progress, report)
        except _Difference as difference:
            report.first_difference = str(difference)
    return report


async def _verify(
    conn: Conn,
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
    count = int(await conn.fetchval("SELECT count(*) FROM tlog_leaves"))
    next_index = int(await conn.fetchval("SELECT next_index FROM tlog_sequence"))
    total = max(count, head_size, next_index)

    tree = _Frontier()
    empty = await conn.fetchrow(
        "SELECT size, root, checkpoint FROM tlog_checkpoints WHERE size = 0"
    )
    if empty is not None:
        _check_checkpoint(empty, tree, keys, report)
    position = 0
    while True:
        rows = await conn.fetch(
            "SELECT l.idx, l.leaf, o.log_index, o.object_type, o.object_id, o.body, o.salt"
            " FROM tlog_leaves l LEFT JOIN tlog_objects o ON o.log_index = l.idx"
            " WHERE l.idx >= $1 ORDER BY l.idx LIMIT $2",
            position,
            chunk,
        )
        if not rows:
            break
        end = min(position + len(rows), head_size)
        stored: dict[tuple[int, int], bytes] = {}
        checkpoints: list[asyncpg.Record] = []
        if position < end:
            stored = await _stored_nodes(conn, position, end)
            checkpoints = await conn.fetch(
                "SELECT size, root, checkpoint FROM tlog_checkpoints"
                " WHERE size > $1 AND size <= $2 ORDER BY size",
                position,
                end,
            )
        pending = list(checkpoints)
        for row in rows:
            _check_leaf(row, position)
            if position < head_size:
                for level, idx, digest in tree.append(leaf_hash(bytes(row["leaf"]))):
                    have = stored.pop((level, idx), None)
                    if have is None:
                        raise _Difference(f"node ({level}, {idx}) is missing from tlog_nodes")
                    if have != digest:
                        raise _Difference(f"node ({level}, {idx}) differs from the recomputed hash")
                    report.nodes += 1
                while pending and pending[0]["size"] == tree.size:
                    _check_checkpoint(pending.pop(0), tree, keys, report)
            position += 1
            report.leaves += 1
        if stored:  # unreachable unless _node_ranges is wrong; never pass silently
            level, idx = min(stored)
            raise _Difference(f"node ({level}, {idx}) is stored but not recomputed")
        if progress is not None:
            progress("leaves", position, total)
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
    report.root = tree.root()
    if report.root != head_root:
        raise _Difference(f"the head's root differs from the recomputed root at size {head_size}")
    for table, object_type in AUDITED_TABLES.items():
        await _check_table(conn, table, object_type, chunk, progress, report)


def _check_leaf(row: asyncpg.Record, position: int) -> None:
    idx = row["idx"]
    if idx != position:
        raise _Difference(f"leaf {position} missing (the next stored leaf is {idx})")
    data = bytes(row["leaf"])
    try:
        leaf = decode_leaf(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
        raise _Difference(f"leaf {idx}: bytes are not a valid leaf: {error}") from None
    if leaf.index != idx:
        raise _Difference(f"leaf {idx}: its bytes say index {leaf.index} (moved or swapped)")
    if row["log_index"] is None:
        raise _Difference(f"leaf {idx}: no stored object (tlog_objects row missing)")
    ref = f"{row['object_type']}/{row['object_id']}"
    if leaf.object != ref:
        raise _Difference(f"leaf {idx}: names {leaf.object} but its stored object is {ref}")
    digest = hashlib.sha256(bytes(row["salt"]) + bytes(row["body"])).hexdigest()
    if digest != leaf.commitment:
        raise _Difference(f"leaf {idx}: commitment does not match its stored object {ref}")


def _check_checkpoint(
    row: asyncpg.Record, tree: _Frontier, keys: Sequence[Verifier], report: VerifyReport
) -> None:
    size = int(row["size"])
    what = f"checkpoint at size {size}"
    signed_size, signed_root, _ = _open(row["checkpoint"], keys, what)
    if signed_size != size or signed_root != bytes(row["root"]):
        raise _Difference(f"{what}: its signed text disagrees with its tlog_checkpoints row")
    if tree.size != size:  # the stream passes every size in order; guard anyway
        raise _Difference(f"{what}: checked at the wrong tree size {tree.size}")
    if tree.root() != signed_root:
        raise _Difference(f"{what}: root differs from the recomputed root at size {size}")
    report.checkpoints += 1


async def _check_table(
    conn: Conn,
    table: str,
    object_type: str,
    chunk: int,
    progress: Progress | None,
    report: VerifyReport,
) -> None:
    # Table names come from AUDITED_TABLES, never from input.
    count_sql = f"SELECT count(*) FROM {table}"  # noqa: S608
    first_sql = f"SELECT * FROM {table} ORDER BY id LIMIT $1"  # noqa: S608
    next_sql = f"SELECT * FROM {table} WHERE id > $1 ORDER BY id LIMIT $2"  # noqa: S608
    orphan_sql = (
        "SELECT o.object_id, max(o.log_index) AS idx FROM tlog_objects o"  # noqa: S608
        f" WHERE o.object_type = $1 AND NOT EXISTS (SELECT 1 FROM {table} t"
        " WHERE t.id::text = o.object_id) GROUP BY o.object_id ORDER BY idx LIMIT 1"
    )
    total = int(await conn.fetchval(count_sql))
    last: Any = None
    done = 0
    while True:
        if last is None:
            rows = await conn.fetch(first_sql, chunk)
        else:
            rows = await conn.fetch(next_sql, last, chunk)
        if not rows:
            break
        last = rows[-1]["id"]
        ids = [str(r["id"]) for r in rows]
        stored = {
            r["log_index"]: r
            for r in await conn.fetch(
                "SELECT log_index, object_type, object_id, body FROM tlog_objects"
                " WHERE log_index = ANY($1::bigint[])",
                [r["log_index"] for r in rows],
            )
        }
        latest = {
            r["object_id"]: r["latest"]
            for r in await conn.fetch(
                "SELECT object_id, max(log_index) AS latest FROM tlog_objects"
                " WHERE object_type = $1 AND object_id = ANY($2::text[]) GROUP BY object_id",
                object_type,
                ids,
            )
        }
        for row, object_id in zip(rows, ids, strict=True):
            name = f"{object_type} {object_id}"
            index = row["log_index"]
            version = stored.get(index)
            if version is None:
                raise _Difference(f"{name}: its log index {index} holds no stored object")
            if (version["object_type"], version["object_id"]) != (object_type, object_id):
                raise _Difference(
                    f"{name}: log index {index} is the audited version of "
                    f"{version['object_type']}/{version['object_id']}, not of this row"
                )
            if object_body(row) != bytes(version["body"]):
                raise _Difference(
                    f"{name}: row differs from its audited version at log index {index}"
                )
            if latest.get(object_id) != index:
                raise _Difference(
                    f"{name}: row is the version at log index {index} but the latest "
                    f"audited version is at log index {latest.get(object_id)}"
                )
            report.rows += 1
        done += len(rows)
        if progress is not None:
            progress(table, done, total)
    orphan = await conn.fetchrow(orphan_sql, object_type)
    if orphan is not None:
        raise _Difference(
            f"{object_type} {orphan['object_id']}: audited at log index {orphan['idx']} "
            f"but its row is missing from {table}"
        )


# ---- CLI --------------------------------------------------------------------------


async def verify_log_cli(pool: asyncpg.Pool, settings: Settings) -> int:
    """Run ``verify_log`` with progress on stderr; print the verdict; 0 only if all holds."""
    if sys.stderr.isatty():
        from rich.progress import Progress as RichProgress

        with RichProgress(transient=True) as bar:
            tasks: dict[str, Any] = {}

            def show(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(f"checking {phase}", total=total or 1)
                bar.update(tasks[phase], completed=done, total=total or 1)

            report = await verify_log(pool, origin=settings.log_origin, progress=show)
    else:
        shown: set[tuple[str, int]] = set()

        def show(phase: str, done: int, total: int) -> None:
            # One line per tenth of each phase, so logs stay short.
            step = (phase, done * 10 // total if total else 10)
            if step not in shown:
                shown.add(step)
                print(f"checked {done}/{total} {phase}", file=sys.stderr, flush=True)

        report = await verify_log(pool, origin=settings.log_origin, progress=show)
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
