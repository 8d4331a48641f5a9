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
from collections.abc import Callable

import asyncpg
import structlog

from registry.db.tlog_store import (
    Head,
    committed_leaf_count,
    read_head,
    read_leaves,
    read_nodes,
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


async def integrate_once(
    conn: Conn, key: LogKey, origin: str, *, max_batch: int = MAX_BATCH
) -> Head:
    """Integrate up to ``max_batch`` committed leaves; return the head after it.

    Guarantee: on return the head, its nodes and its checkpoint are committed together.
    """
    async with conn.transaction():
        head = await read_head(conn, for_update=True)
        if head is None:
            raise LogIntegrityError("the log has no tree head: run `registry migrate` first")
        count = await committed_leaf_count(conn)
        if count <= head.size:
            return head
        end = min(count, head.size + max_batch)
        leaves = await read_leaves(conn, head.size, end)
        hashes = [leaf_hash(leaf) for leaf in leaves]
        frontier = await read_nodes(conn, root_node_ids(head.size))
        if root_from_nodes(head.size, frontier) != head.root:
            raise LogIntegrityError(
                f"stored nodes do not match the tree head at size {head.size}: "
                "run `registry log verify`"
            )
        created = new_complete_nodes(head.size, hashes, lambda level, idx: frontier[(level, idx)])
        known = dict(frontier)
        known.update({(level, idx): digest for level, idx, digest in created})
        root = root_from_nodes(end, known)
        await conn.copy_records_to_table(
            "tlog_nodes", records=created, columns=["level", "idx", "hash"]
        )
        note = sign_checkpoint(key, origin, end, root)
        await conn.execute(
            "INSERT INTO tlog_checkpoints (size, root, checkpoint) VALUES ($1, $2, $3)",
            end,
            root,
            note,
        )
        updated = await conn.execute(
            "UPDATE tlog_head SET size = $1, root = $2, checkpoint = $3, updated_at = now()"
            " WHERE size = $4",
            end,
            root,
            note,
            head.size,
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

    @property
    def key(self) -> LogKey:
        return self._key

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

    async def _refresh_key(self, conn: Conn) -> None:
        # A `registry keys rotate` run beside this process publishes a new current key;
        # from then on only that key may sign.
        current = await conn.fetchval(
            "SELECT verifier_key FROM tlog_keys WHERE valid_until IS NULL"
        )
        if current is not None and current != self._key.verifier:
            fresh = self._key_source()
            if fresh.verifier != current:
                raise LogIntegrityError(
                    f"the log's current key is {current} but the key file holds {fresh.verifier}"
                )
            self._key = fresh
            log.info("log_key_reloaded", verifier=fresh.verifier)

    async def _integrate_and_resolve(self) -> None:
        async with self._pool.acquire() as conn:
            await self._refresh_key(conn)
            while True:
                head = await integrate_once(conn, self._key, self._origin)
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
