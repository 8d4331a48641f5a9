"""The registry with two credit bureaus' witnesses, end to end: each a real
`registry witness serve` process on its own port, the registry the app under test.

After writes, /log/checkpoint carries both witnesses' cosignatures of its exact text
and /log/checkpoint/witnessed meets the quorum; a witness that is down (refusing
connections, or never answering) slows no write and the other keeps cosigning, and
`registry log check --quorum 2` names the missing one; restarted from an older state
it catches up (its 409 answers followed); a forged checkpoint signed with the log's key
is refused with evidence that `registry log check --evidence` reports as a fork;
`Prefer: witnessed` gets a receipt with the quorum's cosignatures.

The helpers at the top (WitnessProcess, witness_processes, wait_until) are shared with
the other tests/test_witnessing_*.py files.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.api.app import create_app
from registry.clock import ManualClock
from registry.keys import load_log_key
from registry.settings import Settings, parse_witnesses
from registry.tlog.check import check_remote
from registry.tlog.merkle import EMPTY_ROOT
from registry.tlog.note import Checkpoint, open_checkpoint, parse_verifier_key, sign_note
from registry.witness.cosignature import split_signed_note
from registry.witness.policy import WitnessPolicy, check_cosignatures
from tests.fault_helpers import free_port
from tests.logcheck import assert_log_consistent
from tests.test_log_http import proxy_to
from tests.test_log_verify import create_firm
from tests.test_metrics import _value

Client = AsyncTestClient[Litestar]
T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
NAMES = ("bureau-a.example/witness", "bureau-b.example/witness")


# ---- shared helpers ---------------------------------------------------------------------


def registry_command(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "registry", *args], capture_output=True, text=True, timeout=60,
        check=False, env={**os.environ, "REGISTRY_HOME": str(home)}, cwd=ROOT,
    )


@dataclass
class WitnessProcess:
    """A bureau's `registry witness serve`, on a port of its own kept across restarts."""

    name: str
    key: Path
    vkey: str
    state: Path
    port: int
    log_key: str
    process: subprocess.Popen[str] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.state.parent / f"{self.state.name}.log"

    def start(self) -> None:
        self.starts += 1
        with self.log_file.open("a") as stderr:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "registry", "witness", "serve", "--key", str(self.key),
                 "--log-key", self.log_key, "--state", str(self.state),
                 "--port", str(self.port)],
                stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT,
                env={**os.environ, "REGISTRY_HOME": str(self.state.parent)},
            )
        assert self.process.stdout is not None
        banner = self.process.stdout.readline()
        assert "listening on http://" in banner, self.log_file.read_text()[-3000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log_file.read_text().splitlines()
                if line.startswith("{")]

    def setting(self) -> str:
        return f"{self.vkey} {self.url}"


@contextmanager
def witness_processes(
    tmp_path: Path, log_key: str, names: tuple[str, ...] = NAMES
) -> Iterator[list[WitnessProcess]]:
    """One running witness per name, each with a fresh key and state; stopped at the end."""
    witnesses: list[WitnessProcess] = []
    try:
        for number, name in enumerate(names):
            home = tmp_path / f"witness{number}"
            home.mkdir()
            key = home / "witness.key"
            made = registry_command("witness", "keygen", "--name", name, "--out", str(key),
                                    home=home)
            assert made.returncode == 0, made.stderr
            state = home / "state"
            state.mkdir(mode=0o700)
            witness = WitnessProcess(name, key, made.stdout.strip(), state, free_port(),
                                     log_key)
            witnesses.append(witness)
            witness.start()
        yield witnesses
    finally:
        for witness in witnesses:
            witness.stop()


def witness_settings(
    base: Settings, witnesses: list[WitnessProcess], *, quorum: int | None = None,
    timeout_ms: int = 1_000, wait_ms: int = 2_000,
) -> Settings:
    """``base`` with REGISTRY_WITNESSES naming ``witnesses``, parsed as from the environment."""
    return replace(base, witnesses=parse_witnesses(";".join(w.setting() for w in witnesses)),
                   witness_quorum=quorum or len(witnesses), witness_timeout_ms=timeout_ms,
                   witness_wait_ms=wait_ms)


async def wait_until(
    probe: Callable[[], Awaitable[T | None]], what: str, within: float = 15.0
) -> T:
    """Poll ``probe`` until it returns something; fail naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.05)


def policy_of(witnesses: list[WitnessProcess], quorum: int | None = None) -> WitnessPolicy:
    return WitnessPolicy.parse([w.vkey for w in witnesses], quorum)


async def checkpoint_cosigned_by(
    client: Client, witnesses: list[WitnessProcess], minimum: int = 0
) -> str:
    """/log/checkpoint once every one of ``witnesses`` cosigned it (and its size >= minimum)."""

    async def probe() -> str | None:
        note = (await client.get("/log/checkpoint")).text
        size = int(note.split("\n")[1])
        cosigned = check_cosignatures(note, policy_of(witnesses))
        return note if cosigned.met and size >= minimum else None

    return await wait_until(probe, f"/log/checkpoint cosigned by {[w.name for w in witnesses]}")


# ---- the registry with two witnesses ----------------------------------------------------


@pytest.fixture
async def witnesses(base_settings: Settings, tmp_path: Path) -> AsyncIterator[list[WitnessProcess]]:
    log_key = load_log_key(base_settings, create_dev=True).verifier
    with witness_processes(tmp_path, log_key) as running:
        yield running


@pytest.fixture
def settings(base_settings: Settings, witnesses: list[WitnessProcess]) -> Settings:
    """The suite's settings with the two witnesses, quorum 2; requests bounded at 1 s."""
    return witness_settings(base_settings, witnesses)


@pytest.fixture
def log_vkey(base_settings: Settings) -> str:
    return load_log_key(base_settings).verifier


async def test_checkpoints_carry_both_cosignatures_of_their_exact_text(
    client: Client, regulator: dict[str, str], admin: dict[str, str],
    witnesses: list[WitnessProcess], log_vkey: str, db: asyncpg.Pool, settings: Settings,
    clock: ManualClock, database_url: str,
) -> None:
    """Each cosignature verifies over the checkpoint's own text with its witness's key; a
    verifier that knows only the log's key still accepts the note; the witnessed route meets
    the quorum; `registry log check --quorum 2` passes; another process serves the same."""
    for n in range(1, 4):
        await create_firm(client, regulator, n)
    note = await checkpoint_cosigned_by(client, witnesses, minimum=5)

    log_only, signers = open_checkpoint(note, [parse_verifier_key(log_vkey)])
    assert signers == [settings.log_origin] and log_only.size >= 5
    text, lines = split_signed_note(note)
    assert len(lines) == 3  # the log's signature, then one cosignature per witness
    for witness, line in zip(witnesses, lines[1:], strict=True):
        assert line.startswith(f"\u2014 {witness.name} ")
        assert open_checkpoint(text + "\n" + line + "\n", [parse_verifier_key(witness.vkey)])
    # The stored checkpoint, byte for byte, is what the witnesses cosigned.
    stored = await db.fetchval("SELECT checkpoint FROM tlog_checkpoints WHERE size = $1",
                               log_only.size)
    assert note.startswith(stored)

    witnessed = await client.get("/log/checkpoint/witnessed")
    assert witnessed.status_code == 200
    assert witnessed.headers["cache-control"] == "no-cache"
    assert check_cosignatures(witnessed.text, policy_of(witnesses, 2)).met
    assert open_checkpoint(witnessed.text, [parse_verifier_key(log_vkey)])[0].size >= 5

    http = proxy_to(client, asyncio.get_running_loop())
    code = await asyncio.to_thread(
        check_remote, "http://registry.test", log_vkey, None,
        witnesses=[w.vkey for w in witnesses], quorum=2, client=http)
    assert code == 0

    metrics = (await client.get("/metrics", headers=admin)).text
    for witness in witnesses:
        label = f'{{witness="{witness.name}"}}'
        assert _value(metrics, f"registry_witness_cosignatures_total{label}") >= 1
        assert _value(metrics, f"registry_witness_cosigned_size{label}") >= log_only.size
        assert 0 <= _value(metrics, f"registry_witness_cosignature_age_seconds{label}") < 60
        assert _value(metrics, f"registry_witness_up{label}") == 1
    assert _value(metrics, "registry_log_witnessed_size") >= log_only.size
    # Kept in PostgreSQL: another process (or this one restarted) serves them, though it
    # cannot reach a single witness itself.
    nowhere = free_port()
    unreachable = witness_settings(settings, [replace(w, port=nowhere) for w in witnesses])
    other = create_app(unreachable, clock=clock, database_url=database_url,
                       configure_logs=False)
    async with AsyncTestClient(app=other) as second:
        assert (await second.get("/log/checkpoint")).text == note
    # The witnessed checkpoint too, even once the log has grown past it unwitnessed.
    for witness in witnesses:
        witness.stop()
    await create_firm(client, regulator, 4)
    restarted = create_app(unreachable, clock=clock, database_url=database_url,
                           configure_logs=False)
    async with AsyncTestClient(app=restarted) as third:
        head = open_checkpoint((await third.get("/log/checkpoint")).text,
                               [parse_verifier_key(log_vkey)])[0]
        again = await third.get("/log/checkpoint/witnessed")
        assert again.status_code == 200
        assert again.text == witnessed.text
        assert open_checkpoint(again.text, [parse_verifier_key(log_vkey)])[0].size < head.size
    await assert_log_consistent(db)


async def test_one_witness_down_slows_no_write_and_catches_up_from_an_older_state(
    client: Client, regulator: dict[str, str], admin: dict[str, str],
    witnesses: list[WitnessProcess], log_vkey: str, db: asyncpg.Pool, tmp_path: Path,
) -> None:
    """B killed: writes answer as fast as before and keep succeeding, A keeps cosigning,
    `log check --quorum 2` names B; B restarted from a backup of an older state answers
    409 with its older size, and the registry proves consistency from there."""
    a, b = witnesses
    await create_firm(client, regulator, 1)
    first = await checkpoint_cosigned_by(client, witnesses, minimum=3)
    first_size = int(first.split("\n")[1])
    backup = tmp_path / "b-state-backup"
    shutil.copytree(b.state / "logs", backup)
    await create_firm(client, regulator, 2)
    await checkpoint_cosigned_by(client, witnesses, minimum=first_size + 1)

    b.stop(signal.SIGKILL)
    slowest = 0.0
    for n in range(3, 12):
        started = time.monotonic()
        await create_firm(client, regulator, n)
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.5, f"a write took {slowest:.2f} s with a witness down"
    head = await checkpoint_cosigned_by(client, [a], minimum=first_size + 10)
    assert check_cosignatures(head, policy_of(witnesses)).missing == (b.name,)

    http = proxy_to(client, asyncio.get_running_loop())
    stderr = tmp_path / "check.err"

    def check(quorum: int) -> tuple[int, str]:
        with stderr.open("w") as err:
            saved, sys.stderr = sys.stderr, err
            try:
                code = check_remote("http://registry.test", log_vkey, None,
                                    witnesses=[w.vkey for w in witnesses], quorum=quorum,
                                    client=http)
            finally:
                sys.stderr = saved
        return code, stderr.read_text()

    code, said = await asyncio.to_thread(check, 2)
    assert code == 1
    assert f"cosigned by: {a.name}" in said and f"not by: {b.name}" in said
    assert (await asyncio.to_thread(check, 1))[0] == 0
    # The witnessed checkpoint stayed where both last cosigned.
    witnessed = (await client.get("/log/checkpoint/witnessed")).text
    assert int(witnessed.split("\n")[1]) < int(head.split("\n")[1])
    metrics = (await client.get("/metrics", headers=admin)).text
    assert f'registry_witness_up{{witness="{b.name}"}} 0.0' in metrics
    unreachable = f'registry_witness_failures_total{{kind="unreachable",witness="{b.name}"}}'
    assert _value(metrics, unreachable) >= 1

    # B comes back holding the checkpoint it had cosigned first (restored from a backup).
    shutil.rmtree(b.state / "logs")
    shutil.copytree(backup, b.state / "logs")
    b.start()
    for n in range(12, 14):
        await create_firm(client, regulator, n)
    size = int(head.split("\n")[1]) + 2
    both = await checkpoint_cosigned_by(client, witnesses, minimum=size)
    conflicts = [e for e in b.events() if e["event"] == "checkpoint_conflict"]
    assert conflicts and conflicts[0]["known"] == first_size
    assert check_cosignatures(both, policy_of(witnesses, 2)).met

    async def witnessed_size() -> int | None:
        witnessed = (await client.get("/log/checkpoint/witnessed")).text
        return int(witnessed.split("\n")[1]) if int(witnessed.split("\n")[1]) >= size else None

    await wait_until(witnessed_size, "the witnessed checkpoint moves on")
    metrics = (await client.get("/metrics", headers=admin)).text
    assert f'registry_witness_up{{witness="{b.name}"}} 1.0' in metrics
    await assert_log_consistent(db)


async def test_a_forged_checkpoint_is_refused_and_reported_as_a_fork(
    client: Client, regulator: dict[str, str], witnesses: list[WitnessProcess],
    base_settings: Settings, log_vkey: str, tmp_path: Path,
) -> None:
    """Signed with the log's own key, same size, another root: the witness answers 422 and
    keeps both notes; `registry log check --evidence` exits 1 naming the fork; the witness
    goes on cosigning the real history."""
    a = witnesses[0]
    await create_firm(client, regulator, 1)
    note = await checkpoint_cosigned_by(client, witnesses, minimum=3)
    real = open_checkpoint(note, [parse_verifier_key(log_vkey)])[0]
    key = load_log_key(base_settings)
    forged = sign_note(Checkpoint(real.origin, real.size, EMPTY_ROOT).to_text(), [key.signer])
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(f"{a.url}/add-checkpoint",
                                 content=f"old {real.size}\n\n{forged}".encode())
    assert answer.status_code == 422, answer.text
    (evidence,) = (a.state / "evidence").iterdir()
    assert f"-{real.size}.txt" in evidence.name

    result = await asyncio.to_thread(
        registry_command, "log", "check", "--key", log_vkey, "--evidence",
        str(a.state / "evidence"), home=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FORK: the log signed two different roots at size {real.size}" in result.stderr
    # The refusal changed nothing: the real history goes on being cosigned.
    await create_firm(client, regulator, 2)
    await checkpoint_cosigned_by(client, witnesses, minimum=real.size + 1)


async def test_prefer_witnessed_gets_a_receipt_with_the_quorum(
    client: Client, regulator: dict[str, str], witnesses: list[WitnessProcess],
    log_vkey: str, db: asyncpg.Pool,
) -> None:
    """The receipt's checkpoint includes the write and carries both cosignatures;
    Preference-Applied says so. Without the preference, the log's checkpoint as before."""
    from tests.test_log_verify import credit_code

    body = {"kind": "vc_firm", "name": "見證創投有限公司", "credit_code": credit_code(1)}
    answer = await client.post("/v1/subjects", json=body,
                               headers={**regulator, "Prefer": "return=minimal, Witnessed"})
    assert answer.status_code == 201, answer.text
    assert answer.headers["preference-applied"] == "witnessed"
    receipt = answer.json()["receipt"]
    checkpoint, _ = open_checkpoint(receipt["checkpoint"], [parse_verifier_key(log_vkey)])
    assert checkpoint.size > receipt["log_index"]
    cosigned = check_cosignatures(receipt["checkpoint"], policy_of(witnesses, 2))
    assert cosigned.met and {name for name, _ in cosigned.signed} == set(NAMES)

    plain = await create_firm(client, regulator, 2)
    assert "\u2014 bureau-" not in str(plain["receipt"])
    unasked = await client.post("/v1/subjects", headers=regulator, json={
        **body, "name": "另一創投有限公司", "credit_code": credit_code(3)})
    assert "preference-applied" not in unasked.headers
    await assert_log_consistent(db)


async def test_prefer_witnessed_without_a_reachable_quorum_answers_at_once(
    client: Client, regulator: dict[str, str], witnesses: list[WitnessProcess],
) -> None:
    """One of two witnesses down, quorum 2: the receipt settles for the log's checkpoint
    without waiting out REGISTRY_WITNESS_WAIT_MS, and no Preference-Applied."""
    from tests.test_log_verify import credit_code

    witnesses[1].stop(signal.SIGKILL)
    await create_firm(client, regulator, 1)  # the first round finds B gone
    await wait_until(lambda: _down(client, witnesses[1].name), "B marked down")
    started = time.monotonic()
    answer = await client.post("/v1/subjects", headers={**regulator, "Prefer": "witnessed"},
                               json={"kind": "vc_firm", "name": "見證創投有限公司",
                                     "credit_code": credit_code(2)})
    assert answer.status_code == 201
    assert time.monotonic() - started < 1.0
    assert "preference-applied" not in answer.headers
    assert "\u2014 bureau-" not in answer.json()["receipt"]["checkpoint"]


async def _flag(condition: bool) -> bool | None:
    return True if condition else None


async def _down(client: Client, name: str) -> bool | None:
    services = client.app.state.services
    status = next(w for w in services.witnessing.witnesses if w.name == name)
    return True if not status.healthy else None


# ---- a witness that never answers -------------------------------------------------------


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


async def test_a_witness_that_never_answers_costs_the_writes_nothing(
    base_settings: Settings, witnesses: list[WitnessProcess], database_url: str,
    clock: ManualClock, db: asyncpg.Pool,
) -> None:
    """Its requests time out (REGISTRY_WITNESS_TIMEOUT_MS) on the witnessing task, never on
    a writer's; the live witness's cosignatures keep coming."""
    from tests.conftest import bearer, issue

    a = witnesses[0]
    with silent_listener() as port:
        hung = parse_witnesses(f"{witnesses[1].vkey} http://127.0.0.1:{port}")
        settings = replace(base_settings, witnesses=(*parse_witnesses(a.setting()), *hung),
                           witness_quorum=1, witness_timeout_ms=300)
        app = create_app(settings, clock=clock, database_url=database_url, configure_logs=False)
        async with AsyncTestClient(app=app) as client:
            regulator = bearer(await issue(db, "regulator"))
            slowest = 0.0
            for n in range(1, 9):
                started = time.monotonic()
                await create_firm(client, regulator, n)
                slowest = max(slowest, time.monotonic() - started)
            assert slowest < 0.25, f"a write took {slowest:.2f} s with a witness hung"
            await checkpoint_cosigned_by(client, [a], minimum=10)
            hung_status = client.app.state.services.witnessing.witnesses[1]
            # Both, not the count alone: the app runs in the test client's own thread, which
            # counts the failure a moment before it marks the witness unhealthy.
            await wait_until(lambda: _flag(hung_status.failures["timeout"] >= 1
                                           and not hung_status.healthy),
                             "the hung witness timed out and was marked unhealthy")
            witnessed = await client.get("/log/checkpoint/witnessed")  # quorum 1: A's
            assert witnessed.status_code == 200


# ---- several server processes -----------------------------------------------------------


async def test_two_processes_share_the_witnesses_without_a_failure(
    client: Client, regulator: dict[str, str], witnesses: list[WitnessProcess],
    settings: Settings, clock: ManualClock, database_url: str, db: asyncpg.Pool,
    log_vkey: str,
) -> None:
    """Two servers on one log, each asking the witnesses about the heads it learns: neither
    asks a witness to cosign what the other already stored (one cosignature per line
    kept), a collision is answered 409 and followed, never a failure or a refusal; both
    serve the same cosigned checkpoint."""
    from tests.test_log_verify import credit_code

    second_app = create_app(settings, clock=clock, database_url=database_url,
                            configure_logs=False)
    async with AsyncTestClient(app=second_app) as second:

        async def write(on: Client, n: int) -> None:
            answer = await on.post("/v1/subjects", headers=regulator, json={
                "kind": "vc_firm", "name": f"雙進程創投{n}有限公司", "credit_code": credit_code(n)})
            assert answer.status_code == 201, answer.text

        await asyncio.gather(*(write(client if n % 2 else second, n) for n in range(1, 21)))
        note = await checkpoint_cosigned_by(client, witnesses, minimum=22)
        size = open_checkpoint(note, [parse_verifier_key(log_vkey)])[0].size

        async def same_on_second() -> str | None:
            text = (await second.get("/log/checkpoint")).text
            return text if text == (await client.get("/log/checkpoint")).text else None

        assert check_cosignatures(await wait_until(same_on_second, "both serve one note"),
                                  policy_of(witnesses, 2)).met
        for app_client in (client, second):
            part = app_client.app.state.services.witnessing
            for status in part.witnesses:
                assert sum(status.failures.values()) == 0, (status.name, status.failures)
    for witness in witnesses:
        assert not list((witness.state / "evidence").iterdir())
        cosigned = [e["size"] for e in witness.events() if e["event"] == "checkpoint_cosigned"]
        stored = await db.fetchval("SELECT count(*) FROM tlog_cosignatures WHERE witness_key = $1",
                                   witness.vkey)
        assert len(cosigned) == len(set(cosigned)) == stored, (cosigned, stored)
    assert size >= 22
    await assert_log_consistent(db)
