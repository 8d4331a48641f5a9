"""Asking the credit bureaus' witnesses to cosign each new checkpoint (c2sp.org/tlog-witness).

Who owns what: one ``Witnessing`` per running registry (``Services.witnessing``), built,
started and stopped by bootstrap, and only when REGISTRY_WITNESSES names witnesses. The
integrator tells it of each larger signed head (``notice``), which only notes the head and
sets an event: a writer never waits for a witness, and a witness that is down costs the
write path nothing.

One task runs rounds, at most one per REGISTRY_WITNESS_INTERVAL_MS. A round takes the
newest head noted, reads each witness's newest stored cosignature (one query), and sends
that head to every healthy witness that has not cosigned it, all at once, each request
bounded by REGISTRY_WITNESS_TIMEOUT_MS. Heads noted during a round or the pause after it
coalesce: the next round sends only the newest, so nothing queues and the cost is a
bounded rate of rounds however fast the log grows. Every healthy witness gets the same
checkpoint in a round because a quorum is counted on one checkpoint: witnesses asked at
their own pace would each cosign a different size under a steady stream of writes, and
none would reach it.

A witness whose request fails leaves the rounds. Its own task tries again with the newest
head after an exponential backoff with jitter (0.1 s doubling to 30 s), and once it
cosigns, it rejoins the rounds; the others never wait for it.

The request is ``old <size>``, the consistency proof from that size (tlog/proofs.py), a
blank line and the checkpoint as the log stored it in tlog_head: only what the log signed
and stored is ever sent. ``old`` is the size of the witness's newest cosignature stored
here (0: none yet). A 409 answer gives the size the witness holds instead and the request
goes again from there (a witness restored from an older backup catches up so). A 200's
lines are verified against that witness's key over the exact checkpoint text before its
line is stored (db/cosignatures.py); a line that does not verify is never kept.

Several server processes: each sends the heads it learns; a round skips a witness whose
cosignature of that size (or a larger one) another process already stored, and a witness
answers a duplicate with 200 (the same checkpoint again) or 409: harmless either way.

Crash points: a witness persists its new state before it answers; if this process dies
before storing the line, only the line is lost (the witness moved on, and the next
round's 409 tells its size). Nothing here is needed to serve a write.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import httpx
import structlog

from registry.db.cosignatures import (
    Cosigned,
    CosignedCheckpoint,
    newest_cosigned,
    newest_witnessed,
    store_cosignature,
)
from registry.db.tlog_store import Head
from registry.settings import WitnessEndpoint
from registry.tasks import stop_task
from registry.tlog.note import (
    SIGNATURE_PREFIX,
    NoteError,
    Verifier,
    open_note,
    parse_verifier_key,
)
from registry.tlog.proofs import consistency_proof
from registry.witness.cosignature import (
    cosignature_timestamp,
    signature_line_key,
    signature_line_payload,
)

log = structlog.get_logger(__name__)

# Why a request to a witness failed: the label values of registry_witness_failures.
FAILURE_KINDS = ("timeout", "unreachable", "server_error", "refused", "conflict", "bad_answer")
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 30.0
# 409 answers followed in one attempt: each names the size the witness holds, so two
# suffice unless the witness's state moves under us (another process asking it too).
MAX_CONFLICTS = 3
# A witness answers a few signature lines; more is not an answer to keep in memory.
MAX_ANSWER_BYTES = 64 * 1024
_SIZE_ANSWER = re.compile(rb"(0|[1-9][0-9]{0,19})\n")
# Consistency proofs read in one round, by (old size, new size).
_Proofs = dict[tuple[int, int], list[bytes]]


class _Failed(Exception):
    """A request to a witness gave no cosignature; ``kind`` is one of FAILURE_KINDS."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass
class WitnessStatus:
    """What this process knows of one witness: read by the rounds and by the metrics."""

    endpoint: WitnessEndpoint
    verifier: Verifier
    # Its newest cosignature stored, by any process (None: none yet).
    cosigned: Cosigned | None = None
    # The size it said it holds in its last 409, when larger than ``cosigned``'s.
    holds: int = 0
    # False from a failed request until it cosigns again (meanwhile it is retried apart).
    healthy: bool = True
    # Cosignatures this process stored, and its failed requests by kind.
    collected: int = 0
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAILURE_KINDS, 0))

    @property
    def name(self) -> str:
        return self.endpoint.name

    def learn(self, stored: Cosigned | None) -> None:
        if stored is not None and (self.cosigned is None or stored.size > self.cosigned.size):
            self.cosigned = stored

    def old_size(self) -> int:
        """The size it last cosigned, as far as this process knows (0: nothing yet)."""
        return max(0 if self.cosigned is None else self.cosigned.size, self.holds)

    def owes(self, size: int) -> bool:
        """True if it has not cosigned a checkpoint of ``size`` or larger, as far as we know."""
        return self.old_size() < size


def request_body(old: int, proof: Sequence[bytes], checkpoint: str) -> bytes:
    """An add-checkpoint body: ``old <size>``, the proof's hashes, a blank line, the note."""
    lines = [f"old {old}", *(base64.b64encode(node).decode() for node in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint).encode()


def cosignature_line(verifier: Verifier, checkpoint: str, answer: bytes) -> tuple[str, int]:
    """The witness's line in a 200 answer and its timestamp, verified over ``checkpoint``'s
    exact text; ``_Failed("bad_answer")`` if there is none that verifies."""
    try:
        lines = answer.decode("utf-8")
    except UnicodeDecodeError:
        raise _Failed("bad_answer", "the answer is not UTF-8") from None
    if not lines.startswith(SIGNATURE_PREFIX) or not lines.endswith("\n") or "\n\n" in lines:
        raise _Failed("bad_answer", f"the answer is not signature lines: {lines[:120]!r}")
    try:
        # As tlog-witness suggests: the lines appended to the checkpoint make one note,
        # opened with this witness's key alone (the log's line and others' are unknown keys).
        open_note(checkpoint + lines, [verifier])
    except NoteError as error:
        raise _Failed("bad_answer", f"no valid cosignature by its key: {error}") from None
    for line in lines[:-1].split("\n"):
        if signature_line_key(line) == (verifier.name, verifier.key_id):
            try:
                timestamp = cosignature_timestamp(signature_line_payload(line))
            except NoteError as error:
                raise _Failed("bad_answer", str(error)) from None
            if timestamp == 0:
                raise _Failed("bad_answer", "the cosignature has timestamp 0 (no time stated)")
            return line, timestamp
    raise _Failed("bad_answer", "no line by its key")  # open_note found one: unreachable


class Witnessing:
    """Collects the witnesses' cosignatures of the log's checkpoints; see the module doc."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        witnesses: Sequence[WitnessEndpoint],
        quorum: int,
        *,
        timeout: float,
        interval: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # Checked here, when built (Settings checks the same for the environment).
        if not 1 <= quorum <= len(witnesses):
            raise ValueError(f"a quorum of {quorum} of {len(witnesses)} witnesses is impossible")
        self._pool = pool
        self.quorum = quorum
        self.witnesses = tuple(
            WitnessStatus(w, parse_verifier_key(w.verifier_key)) for w in witnesses
        )
        self._keys = [w.verifier_key for w in witnesses]
        self._timeout = timeout
        self._interval = interval
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._newest: Head | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retrying: dict[str, asyncio.Task[None]] = {}
        # The newest checkpoint a quorum cosigned, as far as this process knows; waiters
        # (``witnessed_including``) wait on the event, replaced each time it moves.
        self.witnessed: CosignedCheckpoint | None = None
        self._witnessed_moved = asyncio.Event()
        self.rounds = 0

    async def start(self, head: Head | None) -> None:
        """Read what is stored, then start the rounds with ``head`` (the integrator's)."""
        self.witnessed = await newest_witnessed(self._pool, self._keys, self.quorum)
        self._client = httpx.AsyncClient(
            timeout=self._timeout,
            transport=self._transport,
            headers={"User-Agent": "registry-witnessing", "Content-Type": "text/plain"},
        )
        self._task = asyncio.create_task(self._run(), name="tlog-witnessing")
        if head is not None:
            self.notice(head)

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        for task in self._retrying.values():
            await stop_task(task)
        self._retrying.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def notice(self, head: Head) -> None:
        """The integrator's listener: note a signed head. Never waits."""
        if self._newest is None or head.size > self._newest.size:
            self._newest = head
            self._wake.set()

    async def witnessed_including(
        self, index: int, patience: float
    ) -> CosignedCheckpoint | None:
        """A checkpoint with leaf ``index`` that a quorum cosigned, waiting up to ``patience``
        seconds; None when none came, or at once when too few witnesses are answering."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            witnessed = self.witnessed
            if witnessed is not None and witnessed.size > index:
                return witnessed
            if sum(w.healthy for w in self.witnesses) < self.quorum:
                return None
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            moved = self._witnessed_moved
            try:
                async with asyncio.timeout(remaining):
                    await moved.wait()
            except TimeoutError:
                return None

    # ---- rounds ---------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pause = BACKOFF_FIRST
        while True:
            await self._wake.wait()
            self._wake.clear()
            target = self._newest
            if target is None:
                continue
            started = loop.time()
            try:
                await self._round(target)
                pause = BACKOFF_FIRST
                # Rounds at most every ``interval``: heads noticed meanwhile coalesce, so a
                # busy log costs it and the witnesses a bounded rate, not one per checkpoint.
                await asyncio.sleep(max(0.0, started + self._interval - loop.time()))
            except Exception as error:
                # The database is away or busy (the witnesses' own failures never get
                # here): try again shortly, with whatever head is newest by then.
                log.warning("witnessing_round_failed", size=target.size,
                            error=type(error).__name__)
                await asyncio.sleep(pause)
                pause = min(pause * 2, BACKOFF_MAX)
                self._wake.set()

    async def _round(self, target: Head) -> None:
        stored = await newest_cosigned(self._pool, self._keys)
        for witness in self.witnesses:
            witness.learn(stored.get(witness.endpoint.verifier_key))
        asked = [w for w in self.witnesses if w.healthy and w.owes(target.size)]
        # Witnesses in step need the same proof: read once for the round.
        proofs: _Proofs = {}
        for old in {w.old_size() for w in asked} - {0}:
            proofs[(old, target.size)] = await consistency_proof(self._pool, old, target.size)
        outcomes = await asyncio.gather(*(self._ask(w, target, proofs) for w in asked),
                                        return_exceptions=True)
        self.rounds += 1
        self._count_quorum(target)
        for witness in self.witnesses:
            if not witness.healthy:
                self._keep_retrying(witness)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _ask(self, witness: WitnessStatus, target: Head, proofs: _Proofs) -> None:
        try:
            await self._cosign(witness, target, proofs)
        except _Failed as failure:
            self._failed(witness, failure)
            witness.healthy = False

    def _count_quorum(self, target: Head) -> None:
        lines = tuple(w.cosigned.line for w in self.witnesses
                      if w.cosigned is not None and w.cosigned.size == target.size)
        if len(lines) < self.quorum:
            return
        if self.witnessed is not None and self.witnessed.size >= target.size:
            return
        self.witnessed = CosignedCheckpoint(target.size, target.checkpoint, lines)
        moved, self._witnessed_moved = self._witnessed_moved, asyncio.Event()
        moved.set()

    def _keep_retrying(self, witness: WitnessStatus) -> None:
        task = self._retrying.get(witness.name)
        if task is None or task.done():
            self._retrying[witness.name] = asyncio.create_task(
                self._retry(witness), name=f"witness-retry-{witness.name}")

    async def _retry(self, witness: WitnessStatus) -> None:
        delay = BACKOFF_FIRST
        while True:
            # Jitter: processes (and witnesses sharing a bastion) do not retry in step.
            pause = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not a secret
            await asyncio.sleep(pause)
            delay = min(delay * 2, BACKOFF_MAX)
            target = self._newest
            if target is None:
                continue
            try:
                if witness.owes(target.size):
                    await self._cosign(witness, target, {})
            except _Failed as failure:
                self._failed(witness, failure)
                continue
            except Exception as error:
                log.warning("witness_retry_failed", witness=witness.name,
                            error=type(error).__name__)
                continue
            witness.healthy = True
            log.info("witness_cosigning_again", witness=witness.name, size=target.size)
            # Its line may complete the quorum of ``target`` now; a round then brings it
            # into step with the others on the newest head.
            self._count_quorum(target)
            self._wake.set()
            return

    def _failed(self, witness: WitnessStatus, failure: _Failed) -> None:
        witness.failures[failure.kind] += 1
        fields = {"witness": witness.name, "kind": failure.kind, "detail": failure.detail}
        if failure.kind == "refused":
            # 403/404: it does not follow this log or key (configuration); 422: it holds
            # another history of this log, a possible fork it keeps evidence of.
            log.error("witness_refused_checkpoint", **fields)
        elif witness.healthy:
            log.warning("witness_failed", **fields)
        else:
            log.info("witness_still_failing", **fields)

    # ---- one witness, one checkpoint ----------------------------------------------------

    async def _cosign(self, witness: WitnessStatus, target: Head, proofs: _Proofs) -> None:
        """Have ``witness`` cosign ``target`` and store its line; ``_Failed`` if it did not.

        Returns without a line when a 409 says the witness holds ``target``'s size or a
        larger one (another process had it cosign that).
        """
        old = witness.old_size()
        for _ in range(MAX_CONFLICTS):
            proof = await self._proof(old, target.size, proofs) if old else []
            status, answer = await self._post(witness, request_body(old, proof,
                                                                    target.checkpoint))
            if status == 200:
                line, timestamp = cosignature_line(witness.verifier, target.checkpoint, answer)
                stored = await store_cosignature(
                    self._pool, target.size, witness.endpoint.verifier_key, line, timestamp)
                witness.learn(stored)
                witness.collected += 1
                return
            if status != 409:
                kind = "server_error" if status >= 500 else "refused"
                raise _Failed(kind, f"HTTP {status}: {answer[:200].decode(errors='replace')}")
            found = _SIZE_ANSWER.fullmatch(answer)
            if found is None:
                raise _Failed("bad_answer", f"409 without a tree size: {answer[:60]!r}")
            old = int(found.group(1))
            witness.holds = old
            log.info("witness_size_learned", witness=witness.name, size=old)
            if old >= target.size:
                return
        raise _Failed("conflict", f"{MAX_CONFLICTS} answers 409 in a row, the last {old}")

    async def _proof(self, old: int, new: int, proofs: _Proofs) -> list[bytes]:
        known = proofs.get((old, new))
        return known if known is not None else await consistency_proof(self._pool, old, new)

    async def _post(self, witness: WitnessStatus, body: bytes) -> tuple[int, bytes]:
        assert self._client is not None, "Witnessing.start() was not called"
        url = f"{witness.endpoint.url}/add-checkpoint"
        try:
            # One bound for the whole request: httpx's timeout is per read or write.
            async with asyncio.timeout(self._timeout):
                async with self._client.stream("POST", url, content=body) as response:
                    answer = bytearray()
                    async for chunk in response.aiter_bytes():
                        answer += chunk
                        if len(answer) > MAX_ANSWER_BYTES:
                            raise _Failed("bad_answer",
                                          f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
                    return response.status_code, bytes(answer)
        except (TimeoutError, httpx.TimeoutException):
            raise _Failed("timeout", f"no answer within {self._timeout:g} s") from None
        except httpx.HTTPError as error:
            raise _Failed("unreachable", f"{type(error).__name__}: {error}") from None


def age_seconds(cosigned: Cosigned | None, now: datetime) -> float:
    """Seconds since the witness's newest stored cosignature arrived (+Inf: none yet)."""
    if cosigned is None:
        return float("inf")
    return max(0.0, (now - cosigned.received_at).total_seconds())
