"""The integrator: turns committed leaves into tree nodes and one signed checkpoint per batch.

Writers commit their leaf with their change (db/audit.py) and then wait here
for a checkpoint whose tree includes it. One background task per process
gathers waiters for ``batch_window`` seconds, then integrates every committed
leaf in one transaction: store the new complete nodes, sign the checkpoint,
compare-and-set the head. Integrators in several processes serialise on the
head row (``FOR UPDATE``); whoever comes second finds the work done.

Crash points: if the process dies before the integrating transaction commits,
nothing of it is stored and the next integration (in any process, or at start)
redoes it from the committed leaves, which are never lost. If it dies after,
the head is complete and only the in-memory waiters are gone; their writes are
committed and included.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import asyncpg
import structlog

from registry.db.tlog_store import (
    Head,
    MissingNodes,
    committed_leaf_count,
    node_rows,
    read_head,
)
from registry.db.types import Conn
from registry.errors import LogIntegrityError, Unavailable
from registry.keys import LogKey
from registry.tasks import stop_task
from registry.tlog.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    new_complete_nodes,
    root_from_nodes,
    root_node_ids,
)
from registry.tlog.note import Checkpoint, sign_note

log = structlog.get_logger(__name__)

# Upper bound of leaves integrated in one transaction, so one batch never holds
# the head lock for long even after a backlog (e.g. a bulk import).
MAX_BATCH = 4096
# How often an idle integrator looks for committed leaves nobody is waiting for.
SWEEP_SECONDS = 1.0
# Integration failing this long means the database is away, not briefly busy: the
# writers waiting for a checkpoint are answered 503 instead of waiting on.
OUTAGE_SECONDS = 0.5


def sign_checkpoint(key: LogKey, origin: str, size: int, root: bytes) -> str:
    return sign_note(Checkpoint(origin, size, root).to_text(), [key.signer])


async def initialise_log(conn: Conn, key: LogKey, origin: str) -> bool:
    """Create the empty log (size 0, signed) and publish its first key. True if it did."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE tlog_head IN EXCLUSIVE MODE")
        if await read_head(conn) is not None:
            return False
        if await conn.fetchval("SELECT count(*) FROM tlog_keys") == 0:
            await conn.execute(
                "INSERT INTO tlog_keys (verifier_key, key_name, public_key) VALUES ($1, $2, $3)",
                key.verifier,
                origin,
                key.public_key,
            )
        note = sign_checkpoint(key, origin, 0, EMPTY_ROOT)
        await conn.execute(
            "INSERT INTO tlog_head (size, root, checkpoint) VALUES (0, $1, $2)", EMPTY_ROOT, note
        )
        await conn.execute(
            "INSERT INTO tlog_checkpoints (size, root, checkpoint) VALUES (0, $1, $2)"
            " ON CONFLICT DO NOTHING",
            EMPTY_ROOT,
            note,
        )
    return True


# The head (locked), how many leaves are committed and the log's current key, in one
# round trip: integration runs once per batch of writes, so its round trips count.
_HEAD_SQL = (
    "SELECT h.size, h.root, h.checkpoint,"
    " (SELECT coalesce(max(idx) + 1, 0) FROM tlog_leaves) AS committed,"
    " (SELECT verifier_key FROM tlog_keys WHERE valid_until IS NULL) AS current_key"
    " FROM tlog_head h FOR UPDATE OF h"
)
# The batch's leaves (level -1) and the stored frontier nodes it builds on, in one read.
_LEAVES_AND_NODES_SQL = (
    "SELECT -1 AS level, idx, leaf AS bytes FROM tlog_leaves WHERE idx >= $1 AND idx < $2"
    " UNION ALL SELECT n.level, n.idx, n.hash FROM tlog_nodes n"
    " JOIN unnest($3::smallint[], $4::bigint[]) AS w(level, idx)"
    " ON n.level = w.level AND n.idx = w.idx"
)
# New nodes, the signed checkpoint and the compare-and-set of the head, in one statement.
_STORE_SQL = (
    "WITH n AS (INSERT INTO tlog_nodes (level, idx, hash)"
    "           SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])),"
    " c AS (INSERT INTO tlog_checkpoints (size, root, checkpoint) VALUES ($4, $5, $6))"
    " UPDATE tlog_head SET size = $4, root = $5, checkpoint = $6, updated_at = now()"
    " WHERE size = $7"
)


class KeyChanged(Exception):
    """The log's current key is not the one integration was asked to sign with (a
    ``registry keys rotate`` ran beside this process): nothing was signed."""

    def __init__(self, current: str) -> None:
        super().__init__(f"the log's current key is now {current}")
        self.current = current


async def integrate_once(
    conn: Conn, key: LogKey, origin: str, *, max_batch: int = MAX_BATCH
) -> Head:
    """Integrate up to ``max_batch`` committed leaves; return the head after it.

    Guarantee: on return the head, its nodes and its checkpoint are committed together.
    Signs only with the log's current key: another raises ``KeyChanged`` and stores nothing.
    Five round trips whatever the batch: BEGIN, the head, the leaves with the frontier,
    the store, COMMIT.
    """
    async with conn.transaction():
        found = await conn.fetchrow(_HEAD_SQL)
        if found is None:
            raise LogIntegrityError("the log has no tree head: run `registry migrate` first")
        head = Head(found["size"], bytes(found["root"]), found["checkpoint"])
        count: int = found["committed"]
        if count <= head.size:
            return head
        if found["current_key"] is not None and found["current_key"] != key.verifier:
            raise KeyChanged(found["current_key"])
        end = min(count, head.size + max_batch)
        wanted = list(dict.fromkeys(root_node_ids(head.size)))
        rows = await conn.fetch(
            _LEAVES_AND_NODES_SQL,
            head.size,
            end,
            [level for level, _ in wanted],
            [idx for _, idx in wanted],
        )
        leaves = sorted((r["idx"], bytes(r["bytes"])) for r in rows if r["level"] < 0)
        if [idx for idx, _ in leaves] != list(range(head.size, end)):
            raise MissingNodes(f"leaves between {head.size} and {end} are not contiguous")
        frontier = {(r["level"], r["idx"]): bytes(r["bytes"]) for r in rows if r["level"] >= 0}
        if len(frontier) != len(wanted):
            missing = [node for node in wanted if node not in frontier]
            raise MissingNodes(f"tree nodes missing from storage: {missing[:5]}")
        if root_from_nodes(head.size, frontier) != head.root:
            raise LogIntegrityError(
                f"stored nodes do not match the tree head at size {head.size}: "
                "run `registry log verify`"
            )
        hashes = [leaf_hash(leaf) for _, leaf in leaves]
        created = new_complete_nodes(head.size, hashes, lambda level, idx: frontier[(level, idx)])
        known = dict(frontier)
        known.update({(level, idx): digest for level, idx, digest in created})
        root = root_from_nodes(end, known)
        note = sign_checkpoint(key, origin, end, root)
        levels, indexes, digests = node_rows(created)
        updated = await conn.execute(
            _STORE_SQL, levels, indexes, digests, end, root, note, head.size
        )
        if updated != "UPDATE 1":
            # Impossible while we hold the row lock; if it happens, stop rather than fork.
            raise LogIntegrityError(f"tree head moved during integration from {head.size}")
        return Head(end, root, note)


class Integrator:
    """Per-process batcher: ``wait_for(index)`` returns a checkpoint that includes ``index``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        key_source: Callable[[], LogKey],
        origin: str,
        batch_window: float,
    ) -> None:
        self._pool = pool
        self._key_source = key_source
        self._key = key_source()
        self._origin = origin
        self._window = batch_window
        self._waiters: list[tuple[int, asyncio.Future[Head]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.head: Head | None = None
        # Told of each larger head this process learns (tlog/witnessing.py), after the
        # writers waiting for it were answered. Called on the integrator's own task: a
        # listener only takes note (sets an event), never waits or does I/O.
        self._head_listeners: list[Callable[[Head], None]] = []
        # What this process integrated (metrics): batches that grew the log, their leaves,
        # and the seconds spent in them.
        self.batches = 0
        self.leaves = 0
        self.seconds = 0.0

    @property
    def key(self) -> LogKey:
        return self._key

    def listen_for_heads(self, listener: Callable[[Head], None]) -> None:
        """Call ``listener(head)`` with each larger signed head (committed when called)."""
        self._head_listeners.append(listener)

    async def start(self) -> None:
        async with self._pool.acquire() as conn:
            self.head = await read_head(conn)
        self._task = asyncio.create_task(self._run(), name="tlog-integrator")
        # Leaves committed by a process that died before integrating them.
        self._wakeup.set()

    async def stop(self) -> None:
        if self._task is None:
            return
        # Finish what was asked before going: waiters are writes already committed.
        if self._waiters:
            with contextlib.suppress(Exception):
                await self._integrate_and_resolve()
        await stop_task(self._task)
        self._task = None
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(Unavailable("the service is shutting down", retry_after=1))
        self._waiters.clear()

    async def wait_for(self, index: int, patience: float = 30.0) -> Head:
        head = self.head
        if head is not None and head.size > index:
            return head
        future: asyncio.Future[Head] = asyncio.get_running_loop().create_future()
        self._waiters.append((index, future))
        self._wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(future), patience)
        except TimeoutError:
            raise Unavailable(
                f"the change was committed as log entry {index} but its checkpoint is late; "
                "fetch /log/checkpoint to see it included",
                retry_after=1,
            ) from None

    def _reload_key(self, current: str) -> None:
        # A `registry keys rotate` run beside this process published a new current key;
        # from then on only that key may sign.
        fresh = self._key_source()
        if fresh.verifier != current:
            raise LogIntegrityError(
                f"the log's current key is {current} but the key file holds {fresh.verifier}"
            )
        self._key = fresh
        log.info("log_key_reloaded", verifier=fresh.verifier)

    async def _integrate_and_resolve(self) -> None:
        async with self._pool.acquire() as conn:
            while True:
                started = time.perf_counter()
                before = self.head.size if self.head else 0
                try:
                    head = await integrate_once(conn, self._key, self._origin)
                except KeyChanged as changed:
                    self._reload_key(changed.current)
                    continue
                if head.size > before:
                    self.batches += 1
                    self.leaves += head.size - before
                    self.seconds += time.perf_counter() - started
                self.head = head
                still_waiting = []
                for index, future in self._waiters:
                    if future.done():
                        continue
                    if index < head.size:
                        future.set_result(head)
                    else:
                        still_waiting.append((index, future))
                self._waiters = still_waiting
                if head.size > before:
                    for listener in self._head_listeners:
                        listener(head)
                if not still_waiting or await committed_leaf_count(conn) <= head.size:
                    return

    def _fail_waiters_of_an_outage(self) -> None:
        # Their changes are committed; only the checkpoint is missing. Telling them so
        # now beats holding every writer for its whole patience while the database is
        # away (and holding the clients' connections with them).
        for index, future in self._waiters:
            if not future.done():
                future.set_exception(
                    Unavailable(
                        f"the change was committed as log entry {index}, but the database is "
                        "unreachable, so its checkpoint is late; fetch /log/checkpoint later "
                        "to see it included",
                        retry_after=1,
                    )
                )
        self._waiters.clear()

    async def _run(self) -> None:
        backoff = 0.05
        failing_since: float | None = None
        while True:
            # Besides waking for this process's writers, sweep now and then: leaves
            # committed by nobody waiting (the expiry job, a CLI, a process that died)
            # must still be signed promptly.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), SWEEP_SECONDS)
            self._wakeup.clear()
            if self._window:
                await asyncio.sleep(self._window)
            try:
                await self._integrate_and_resolve()
                backoff = 0.05
                failing_since = None
            except LogIntegrityError as error:
                log.error("log_integration_refused", error=str(error))
                for _, future in self._waiters:
                    if not future.done():
                        future.set_exception(
                            Unavailable("the audit log is damaged", retry_after=60)
                        )
                self._waiters.clear()
            except Exception as error:
                # Database gone or busy (OSError, PostgresError, InterfaceError, and also
                # asyncpg's InternalClientError when a connection dies mid-operation): keep
                # the waiters, try again shortly. Any escape here would end this task
                # silently and every later write would wait out its patience for a receipt.
                log.warning("log_integration_retry", error=type(error).__name__)
                now = asyncio.get_running_loop().time()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since > OUTAGE_SECONDS:
                    self._fail_waiters_of_an_outage()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self._wakeup.set()
