"""The witnessing part alone (registry/tlog/witnessing.py) against witnesses answering in
process: the real witness (registry/witness/witness.py) behind httpx.MockTransport, with
faults injected into its answers; the log and the cosignatures in a real PostgreSQL.

What a round sends and keeps (only verified lines, one per witness and size), how it
coalesces heads, how 409 answers are followed, and each kind of failure: counted, the
witness retried apart with exponential backoff and jitter, and never a wait for a writer.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.db.tlog_store import Head, read_head
from registry.keys import LogKey
from registry.settings import Settings, WitnessEndpoint
from registry.tlog.integrator import integrate_once
from registry.tlog.note import open_checkpoint, parse_verifier_key
from registry.tlog.witnessing import Witnessing
from registry.witness.cosignature import CosignatureSigner
from registry.witness.protocol import parse_request
from registry.witness.store import StateDir
from registry.witness.witness import Witness
from tests.logcheck import append_tokens, ensure_log
from tests.test_witnessing import wait_until

SIGNERS = [
    CosignatureSigner(f"w{i}.example/witness",
                      Ed25519PrivateKey.from_private_bytes(bytes([40 + i]) * 32))
    for i in range(2)
]
# Same name as SIGNERS[0], another key: its lines carry another key ID.
IMPOSTOR = CosignatureSigner(SIGNERS[0].name,
                             Ed25519PrivateKey.from_private_bytes(bytes([99]) * 32))

Fault = Callable[[bytes], Awaitable[httpx.Response | None]]


@dataclass
class Served:
    """One witness answering in process: the real Witness, what it was sent, and a fault
    that may answer instead of it (returning None lets the witness answer)."""

    signer: CosignatureSigner
    witness: Witness
    olds: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    fault: Fault | None = None

    @property
    def endpoint(self) -> WitnessEndpoint:
        host = self.signer.name.split("/")[0]
        return WitnessEndpoint(self.signer.name, self.signer.verifier_key, f"http://{host}")


def transport(served: list[Served]) -> httpx.MockTransport:
    by_host = {s.signer.name.split("/")[0]: s for s in served}

    async def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/add-checkpoint" and request.method == "POST"
        witness = by_host[request.url.host]
        body = await request.aread()
        witness.olds.append(parse_request(body).old_size)
        witness.times.append(time.monotonic())
        if witness.fault is not None:
            faulty = await witness.fault(body)
            if faulty is not None:
                return faulty
        answer = witness.witness.add_checkpoint(body)
        return httpx.Response(answer.status, content=answer.body.encode(),
                              headers={"Content-Type": answer.content_type})

    return httpx.MockTransport(handle)


@contextmanager
def witnesses_in_process(tmp_path: Path, key: LogKey, origin: str,
                         signers: list[CosignatureSigner] = SIGNERS) -> Iterator[list[Served]]:
    states = []
    try:
        served = []
        for signer in signers:
            folder = tmp_path / signer.name.split(".")[0]
            folder.mkdir()
            state = StateDir.open(folder)
            states.append(state)
            logs = {origin: [parse_verifier_key(key.verifier)]}
            served.append(Served(signer, Witness(signer, logs, state)))
        yield served
    finally:
        for state in states:
            state.close()


@pytest.fixture
async def log_key(db: asyncpg.Pool, settings: Settings) -> LogKey:
    return await ensure_log(db, settings)


async def grow(db: asyncpg.Pool, key: LogKey, origin: str, leaves: int = 1) -> Head:
    """Append ``leaves`` leaves and sign one checkpoint over them: the new head."""
    await append_tokens(db, leaves)
    async with db.acquire() as conn:
        return await integrate_once(conn, key, origin)


@asynccontextmanager
async def witnessing(db: asyncpg.Pool, served: list[Served], quorum: int,
                     request_timeout: float = 2.0,
                     interval: float = 0.0) -> AsyncIterator[Witnessing]:
    part = Witnessing(db, [s.endpoint for s in served], quorum, timeout=request_timeout,
                      interval=interval, transport=transport(served))
    await part.start(await read_head(db))
    try:
        yield part
    finally:
        await part.stop()


async def witnessed_at(part: Witnessing, size: int) -> bool | None:
    return True if part.witnessed is not None and part.witnessed.size >= size else None


async def rows(db: asyncpg.Pool) -> list[tuple[int, str]]:
    found = await db.fetch("SELECT tree_size, witness_key FROM tlog_cosignatures"
                           " ORDER BY tree_size, witness_key")
    return [(r["tree_size"], r["witness_key"]) for r in found]


async def test_each_round_gets_one_verified_line_per_witness_for_the_same_checkpoint(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path
) -> None:
    """A stream of heads: every size stored was cosigned by both (one round, one target),
    each line verifies over the checkpoint stored at its size, and the witnessed
    checkpoint is the newest head."""
    origin = settings.log_origin
    with witnesses_in_process(tmp_path, log_key, origin) as served:
        async with witnessing(db, served, quorum=2) as part:
            head = None
            for _ in range(12):
                head = await grow(db, log_key, origin, 2)
                part.notice(head)
                await asyncio.sleep(0.002)
            assert head is not None
            await wait_until(lambda: witnessed_at(part, head.size), "the newest head witnessed")
        assert part.witnessed is not None and part.witnessed.size == head.size
        stored = await db.fetch(
            "SELECT c.tree_size, c.witness_key, c.signature, p.checkpoint FROM tlog_cosignatures c"
            " JOIN tlog_checkpoints p ON p.size = c.tree_size")
        sizes: dict[int, int] = {}
        for row in stored:
            sizes[row["tree_size"]] = sizes.get(row["tree_size"], 0) + 1
            note = row["checkpoint"] + row["signature"] + "\n"
            assert open_checkpoint(note, [parse_verifier_key(row["witness_key"])])
        assert set(sizes.values()) == {2}, sizes
        assert head.size in sizes


async def test_a_slow_round_coalesces_heads_and_never_holds_notice(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path
) -> None:
    """While each request takes 100 ms, 30 heads are noticed: ``notice`` returns at once,
    and the witnesses are asked about a handful of heads, the newest last."""
    origin = settings.log_origin

    async def slow(_: bytes) -> None:
        await asyncio.sleep(0.1)

    with witnesses_in_process(tmp_path, log_key, origin) as served:
        for s in served:
            s.fault = slow
        async with witnessing(db, served, quorum=2) as part:
            heads = [await grow(db, log_key, origin) for _ in range(30)]
            started = time.perf_counter()
            for head in heads:
                part.notice(head)
            assert time.perf_counter() - started < 0.01
            await wait_until(lambda: witnessed_at(part, heads[-1].size), "the last head")
        for s in served:
            assert len(s.olds) <= 3, s.olds


async def test_a_cosignature_that_does_not_verify_is_never_stored(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path
) -> None:
    """Lines by another key under the witness's name, a line over other text, a broken
    signature, not signature lines at all: each a bad_answer, nothing stored."""
    origin = settings.log_origin
    head = await grow(db, log_key, origin, 3)
    text = head.checkpoint[: head.checkpoint.index("\n\n") + 1]
    good = SIGNERS[0].cosign(text, 1_700_000_000)
    raw = bytearray(base64.b64decode(good.split(" ")[-1]))
    raw[-1] ^= 1
    broken = f"\u2014 {SIGNERS[0].name} {base64.b64encode(bytes(raw)).decode()}\n"
    answers = [
        IMPOSTOR.cosign(text, 1_700_000_000),
        SIGNERS[0].cosign(text + "x\n", 1_700_000_000),  # over other text
        broken,
        "not a signature line\n",
        good + "\n\n" + good,
    ]
    with witnesses_in_process(tmp_path, log_key, origin, SIGNERS[:1]) as served:
        queue = list(answers)

        async def forged(_: bytes) -> httpx.Response | None:
            return httpx.Response(200, text=queue.pop(0)) if queue else None

        served[0].fault = forged
        async with witnessing(db, served, quorum=1) as part:
            status = part.witnesses[0]
            await wait_until(lambda: _true(status.failures["bad_answer"] == len(answers)),
                             "every answer refused")
            assert await rows(db) == []
            # Then the witness answers for itself: stored, and it is healthy again.
            await wait_until(lambda: witnessed_at(part, head.size), "the real cosignature")
            assert status.healthy and status.collected == 1
        assert await rows(db) == [(head.size, SIGNERS[0].verifier_key)]


async def _true(condition: bool) -> bool | None:
    return True if condition else None


async def test_409_answers_are_followed_from_the_size_the_witness_holds(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path
) -> None:
    """The witness cosigned size 4 for someone else (nothing stored here): the round's
    old 0 gets 409 "4", and the request goes again from 4 with a proof, and passes."""
    origin = settings.log_origin
    at_four = await grow(db, log_key, origin, 4)
    with witnesses_in_process(tmp_path, log_key, origin, SIGNERS[:1]) as served:
        assert served[0].witness.add_checkpoint(
            f"old 0\n\n{at_four.checkpoint}".encode()).status == 200
        head = await grow(db, log_key, origin, 5)
        async with witnessing(db, served, quorum=1) as part:
            await wait_until(lambda: witnessed_at(part, head.size), "cosigned from size 4")
            assert part.witnesses[0].failures == dict.fromkeys(part.witnesses[0].failures, 0)
        assert served[0].olds == [0, at_four.size]
        assert await rows(db) == [(head.size, SIGNERS[0].verifier_key)]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(500, text="disk full"), "server_error"),
        (httpx.Response(503, text="later"), "server_error"),
        (httpx.Response(403, text="unknown key"), "refused"),
        (httpx.Response(422, text="fork"), "refused"),
        (httpx.Response(409, text="many\n"), "bad_answer"),
        ("huge", "bad_answer"),
        ("unreachable", "unreachable"),
        ("hang", "timeout"),
    ],
)
async def test_failures_are_counted_and_retried_with_growing_pauses(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path,
    answer: httpx.Response | str, kind: str,
) -> None:
    """Three failed answers of one kind: counted under that kind, the witness down and
    retried after pauses that grow (exponential, with jitter); then it cosigns again."""
    origin = settings.log_origin
    head = await grow(db, log_key, origin, 2)
    failing = 3

    async def fail(body: bytes) -> httpx.Response | None:
        nonlocal failing
        if failing == 0:
            return None
        failing -= 1
        if answer == "unreachable":
            raise httpx.ConnectError("connection refused")
        if answer == "hang":
            await asyncio.sleep(10)
        if answer == "huge":
            # A valid cosignature, then an unknown key's line no note reader would mind:
            # refused for its size alone.
            text = parse_request(body).note.decode().split("\n\n")[0] + "\n"
            padding = base64.b64encode(bytes(70_000)).decode()
            return httpx.Response(200, text=SIGNERS[0].cosign(text, 1_700_000_000)
                                  + f"\u2014 other.example/w {padding}\n")
        assert isinstance(answer, httpx.Response)
        return httpx.Response(answer.status_code, content=answer.content)

    with witnesses_in_process(tmp_path, log_key, origin, SIGNERS[:1]) as served:
        served[0].fault = fail
        async with witnessing(db, served, quorum=1, request_timeout=0.2) as part:
            status = part.witnesses[0]
            await wait_until(lambda: witnessed_at(part, head.size), "cosigned after the faults")
            assert status.failures[kind] == 3
            assert sum(status.failures.values()) == 3
            assert status.healthy
        times = served[0].times
        pauses = [b - a for a, b in itertools.pairwise(times)]
        timeout = 0.2 if answer == "hang" else 0.0
        # Backoff 0.1, 0.2, 0.4 s, each with jitter down to half.
        assert pauses[0] >= 0.05 + timeout - 0.01
        assert pauses[1] >= 0.1 + timeout - 0.01
        assert pauses[2] >= 0.2 + timeout - 0.01


async def test_waiting_for_a_witnessed_checkpoint(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path
) -> None:
    """``witnessed_including`` answers once a quorum cosigned a checkpoint with the leaf;
    gives up at its patience; and at once when too few witnesses are answering."""
    origin = settings.log_origin

    async def down(_: bytes) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with witnesses_in_process(tmp_path, log_key, origin) as served:
        async with witnessing(db, served, quorum=2) as part:
            head = await grow(db, log_key, origin, 3)
            waiting = asyncio.create_task(part.witnessed_including(head.size - 1, 5.0))
            part.notice(head)
            found = await waiting
            assert found is not None and found.size == head.size and len(found.lines) == 2
            # Beyond the log: nothing comes, and the wait ends at its patience.
            started = time.monotonic()
            assert await part.witnessed_including(head.size, 0.2) is None
            assert 0.19 <= time.monotonic() - started < 1.0
            # A witness down, quorum 2: no waiting at all.
            served[1].fault = down
            head = await grow(db, log_key, origin)
            part.notice(head)
            await wait_until(lambda: _true(not part.witnesses[1].healthy), "w1 marked down")
            started = time.monotonic()
            assert await part.witnessed_including(head.size - 1, 5.0) is None
            assert time.monotonic() - started < 0.1


async def test_a_quorum_it_cannot_count_is_refused_when_built(db: asyncpg.Pool) -> None:
    endpoints = [Served(s, None).endpoint for s in SIGNERS]  # type: ignore[arg-type]
    for quorum in (0, 3):
        with pytest.raises(ValueError, match="impossible"):
            Witnessing(db, endpoints, quorum, timeout=1, interval=0)


async def test_first_line_stored_stays(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings
) -> None:
    """Two processes store a line of one witness for one size: the first stays, and the
    second is told which line that is (so both serve the same)."""
    from registry.db.cosignatures import store_cosignature

    head = await grow(db, log_key, settings.log_origin)
    text = head.checkpoint[: head.checkpoint.index("\n\n") + 1]
    first, second = (SIGNERS[0].cosign(text, ts)[:-1] for ts in (1_700_000_000, 1_700_000_001))
    kept = await store_cosignature(db, head.size, SIGNERS[0].verifier_key, first, 1_700_000_000)
    again = await store_cosignature(db, head.size, SIGNERS[0].verifier_key, second, 1_700_000_001)
    assert kept.line == again.line == first
    assert await db.fetchval("SELECT count(*) FROM tlog_cosignatures") == 1
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await store_cosignature(db, head.size + 1, SIGNERS[0].verifier_key, first, 1)


async def test_rounds_are_spaced_by_the_interval(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path
) -> None:
    """REGISTRY_WITNESS_INTERVAL_MS: a head after a quiet spell is sent at once; heads
    noticed sooner after a round wait for the next one, and only the newest is sent."""
    origin = settings.log_origin
    heads = [await grow(db, log_key, origin) for _ in range(12)]
    with witnesses_in_process(tmp_path, log_key, origin) as served:
        async with witnessing(db, served, quorum=2, interval=0.3) as part:
            await wait_until(lambda: witnessed_at(part, heads[-1].size), "the head at start")
            await asyncio.sleep(0.35)
            started = time.monotonic()
            head = await grow(db, log_key, origin)
            part.notice(head)  # after a quiet spell: at once
            await wait_until(lambda: witnessed_at(part, head.size), "the first head")
            assert time.monotonic() - started < 0.25
            rounds = part.rounds
            for _ in range(6):
                head = await grow(db, log_key, origin)
                part.notice(head)
                await asyncio.sleep(0.05)
            await wait_until(lambda: witnessed_at(part, head.size), "the last head")
            assert part.rounds - rounds <= 2, part.rounds - rounds
        gaps = [b - a for a, b in itertools.pairwise(served[0].times)]
        assert min(gaps) >= 0.29, gaps


async def test_one_proof_read_per_round(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Witnesses in step need the same consistency proof: a round reads it once."""
    from registry.tlog import witnessing as module
    from registry.tlog.proofs import consistency_proof as real

    reads: list[tuple[int, int]] = []

    async def counted(pool: asyncpg.Pool, old: int, new: int) -> list[bytes]:
        reads.append((old, new))
        return await real(pool, old, new)

    monkeypatch.setattr(module, "consistency_proof", counted)
    origin = settings.log_origin
    first = await grow(db, log_key, origin, 3)
    with witnesses_in_process(tmp_path, log_key, origin) as served:
        async with witnessing(db, served, quorum=2) as part:
            await wait_until(lambda: witnessed_at(part, first.size), "the first head")
            head = await grow(db, log_key, origin, 4)
            part.notice(head)
            await wait_until(lambda: witnessed_at(part, head.size), "the second head")
    assert reads == [(first.size, head.size)]


async def test_a_line_lost_in_a_crash_costs_one_409(
    db: asyncpg.Pool, log_key: LogKey, settings: Settings, tmp_path: Path
) -> None:
    """Another process had the witness cosign a head and died before storing the line: the
    next round's 409 names that size, which already covers the head (no failure, nothing
    to store), and the next head goes from there at once."""
    from registry.tlog.proofs import consistency_proof
    from registry.tlog.witnessing import request_body

    origin = settings.log_origin
    first = await grow(db, log_key, origin, 2)
    with witnesses_in_process(tmp_path, log_key, origin, SIGNERS[:1]) as served:
        async with witnessing(db, served, quorum=1) as part:
            await wait_until(lambda: witnessed_at(part, first.size), "the first head")
            lost = await grow(db, log_key, origin, 3)
            proof = await consistency_proof(db, first.size, lost.size)
            assert served[0].witness.add_checkpoint(
                request_body(first.size, proof, lost.checkpoint)).status == 200
            status = part.witnesses[0]
            part.notice(lost)
            await wait_until(lambda: _true(status.holds == lost.size), "the 409 heard")
            assert sum(status.failures.values()) == 0 and status.healthy
            head = await grow(db, log_key, origin)
            part.notice(head)
            await wait_until(lambda: witnessed_at(part, head.size), "the next head")
        assert served[0].olds == [0, first.size, lost.size]
        assert [size for size, _ in await rows(db)] == [first.size, head.size]
