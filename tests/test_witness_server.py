"""The witness over real HTTP (a server on a free port, in a thread): every answer of
c2sp.org/tlog-witness add-checkpoint, fork evidence, the monitoring endpoint, and the
state directory's crash safety (failures injected at each write step, then a restart).

The helpers at the top (FakeLog, running_witness, request_body) are shared with the
other tests/test_witness_*.py files.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry import durable_files
from registry.tlog.merkle import (
    consistency_proof_naive,
    leaf_hash,
    root_naive,
)
from registry.tlog.note import (
    Checkpoint,
    NoteSigner,
    open_checkpoint,
    open_note,
    sign_note,
)
from registry.witness.cosignature import CosignatureSigner, cosignature_timestamp
from registry.witness.evidence import parse_evidence
from registry.witness.server import WitnessServer, make_server
from registry.witness.store import StateDir, StateError, origin_hash
from registry.witness.witness import Witness, WitnessStartError

ORIGIN = "registry.example/log"
# Fixed seeds, so a failure reproduces.
LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes([2]) * 32)
LOG_SIGNER = NoteSigner(ORIGIN, LOG_KEY)
IMPOSTOR = NoteSigner(ORIGIN, OTHER_KEY)  # the log's name, another key
STRANGER = NoteSigner("someone.else", OTHER_KEY)  # a key nobody here trusts
WITNESS_SIGNER = CosignatureSigner(
    "bureau.example/witness", Ed25519PrivateKey.from_private_bytes(bytes([3]) * 32)
)


# ---- shared helpers ---------------------------------------------------------------------


@dataclass
class FakeLog:
    """A log built with the naive RFC 6962 functions: its checkpoints and proofs."""

    signer: NoteSigner = LOG_SIGNER
    origin: str = ORIGIN
    leaves: list[bytes] = field(default_factory=list)

    def grow(self, count: int, prefix: str = "entry") -> None:
        start = len(self.leaves)
        self.leaves += [leaf_hash(f"{prefix} {start + i}".encode()) for i in range(count)]

    def root(self, size: int) -> bytes:
        return root_naive(self.leaves[:size])

    def checkpoint(self, size: int | None = None, *, root: bytes | None = None,
                   signers: Sequence[NoteSigner] | None = None) -> str:
        size = len(self.leaves) if size is None else size
        text = Checkpoint(self.origin, size, root if root is not None else self.root(size))
        return sign_note(text.to_text(), list(signers or [self.signer]))

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = len(self.leaves) if new is None else new
        return consistency_proof_naive(old, self.leaves[:new])


def request_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(p).decode() for p in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


@dataclass
class RunningWitness:
    url: str
    witness: Witness
    state: StateDir
    http: httpx.Client

    def add(self, old: int, proof: Sequence[bytes], note: str) -> httpx.Response:
        return self.http.post(f"{self.url}/add-checkpoint", content=request_body(old, proof, note))


@contextmanager
def running_witness(
    state_dir: Path,
    *,
    signer: CosignatureSigner = WITNESS_SIGNER,
    logs: dict[str, list[NoteSigner]] | None = None,
    clock: Callable[[], int] | None = None,
) -> Iterator[RunningWitness]:
    """A witness server on a free port of 127.0.0.1, served by a thread until the block ends."""
    state_dir.mkdir(exist_ok=True)
    state = StateDir.open(state_dir)
    verifiers = {o: [s.verifier() for s in signers]
                 for o, signers in (logs or {ORIGIN: [LOG_SIGNER]}).items()}
    try:
        witness = (Witness(signer, verifiers, state) if clock is None
                   else Witness(signer, verifiers, state, clock=clock))
        server: WitnessServer = make_server(witness, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            with httpx.Client(timeout=10) as http:
                yield RunningWitness(f"http://127.0.0.1:{server.server_port}", witness, state,
                                     http)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
    finally:
        state.close()


def assert_state_whole(state_dir: Path, origin: str = ORIGIN) -> Checkpoint:
    """The stored file is one whole checkpoint, signed by the log and cosigned by the witness."""
    note = (state_dir / "logs" / f"{origin_hash(origin)}.note").read_text()
    checkpoint, signers = open_checkpoint(note, [LOG_SIGNER.verifier(), WITNESS_SIGNER.verifier()])
    assert sorted(signers) == sorted([LOG_SIGNER.name, WITNESS_SIGNER.name])
    assert not [p for p in (state_dir / "logs").iterdir() if p.name.startswith(".tmp-")]
    return checkpoint


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


# ---- the protocol's answers --------------------------------------------------------------


def test_first_checkpoint_then_consistent_updates_are_cosigned(
    tmp_path: Path, log: FakeLog
) -> None:
    """old 0 and no proof for the first checkpoint; then each proof from the last size."""
    log.grow(3)
    with running_witness(tmp_path / "state") as w:
        first = w.add(0, [], log.checkpoint())
        assert first.status_code == 200, first.text
        assert first.text.startswith("\u2014 bureau.example/witness ")
        assert first.text.endswith("\n") and first.text.count("\n") == 1
        # The response appended to the checkpoint opens with the witness's key.
        _, signers = open_note(log.checkpoint() + first.text, [WITNESS_SIGNER.verifier()])
        assert signers == [WITNESS_SIGNER.name]

        for grow, old in [(1, 3), (4, 4), (8, 8)]:
            log.grow(grow)
            answer = w.add(old, log.proof(old), log.checkpoint())
            assert answer.status_code == 200, answer.text
            open_note(log.checkpoint() + answer.text, [WITNESS_SIGNER.verifier()])
        assert assert_state_whole(w.state.path).size == 16
        # The same checkpoint again (old = size, same root) is cosigned again.
        assert w.add(16, [], log.checkpoint()).status_code == 200


def test_stale_old_size_is_409_with_the_known_size(tmp_path: Path, log: FakeLog) -> None:
    """409 Conflict, Content-Type text/x.tlog.size, body: the size last cosigned and newline."""
    log.grow(5)
    with running_witness(tmp_path / "state") as w:
        assert w.add(0, [], log.checkpoint(3)).status_code == 200
        for old in (0, 2, 4):
            answer = w.add(old, log.proof(old) if old else [], log.checkpoint())
            assert answer.status_code == 409
            assert answer.headers["content-type"] == "text/x.tlog.size"
            assert answer.text == "3\n"
        # A client that never talked to the witness learns the size the same way.
        assert w.add(3, log.proof(3), log.checkpoint()).status_code == 200


def test_bad_consistency_proof_is_422_and_kept_as_evidence(
    tmp_path: Path, log: FakeLog, caplog: pytest.LogCaptureFixture
) -> None:
    """A proof that does not verify: 422, nothing cosigned, both signed notes kept."""
    log.grow(4)
    with running_witness(tmp_path / "state") as w:
        assert w.add(0, [], log.checkpoint()).status_code == 200
        log.grow(3)
        proof = log.proof(4)
        proof[0] = bytes(32)
        with caplog.at_level(logging.WARNING, logger="registry.witness"):
            answer = w.add(4, proof, log.checkpoint())
        assert answer.status_code == 422
        assert "does not verify" in answer.text
        assert assert_state_whole(w.state.path).size == 4
        (path,) = (w.state.path / "evidence").iterdir()
        assert path.name.endswith("-7.txt")
        evidence = parse_evidence(path.read_bytes())
        assert evidence.old_size == 4 and evidence.proof == tuple(proof)
        assert open_checkpoint(evidence.stored_note, [LOG_SIGNER.verifier()])[0].size == 4
        assert open_checkpoint(evidence.offered_note, [LOG_SIGNER.verifier()])[0].size == 7
        assert "fork_evidence_kept" in [r.getMessage() for r in caplog.records]


def test_fork_at_the_same_size_is_refused_with_both_checkpoints_kept(
    tmp_path: Path, log: FakeLog
) -> None:
    """Another root at the size last cosigned: 422, and the evidence holds both roots."""
    log.grow(6)
    other = FakeLog()
    other.grow(6, prefix="forked")
    with running_witness(tmp_path / "state") as w:
        assert w.add(0, [], log.checkpoint()).status_code == 200
        answer = w.add(6, [], other.checkpoint())
        assert answer.status_code == 422
        assert "another root at size 6" in answer.text
        assert assert_state_whole(w.state.path).root_hash == log.root(6)
        (path,) = (w.state.path / "evidence").iterdir()
        evidence = parse_evidence(path.read_bytes())
        stored = open_checkpoint(evidence.stored_note, [LOG_SIGNER.verifier()])[0]
        offered = open_checkpoint(evidence.offered_note, [LOG_SIGNER.verifier()])[0]
        assert (stored.size, offered.size) == (6, 6)
        assert (stored.root_hash, offered.root_hash) == (log.root(6), other.root(6))
        # The witness still follows the first history, and keeps refusing the other.
        log.grow(1)
        assert w.add(6, log.proof(6), log.checkpoint()).status_code == 200
        other.grow(1, prefix="forked")
        assert w.add(7, [], other.checkpoint()).status_code == 422
        assert len(list((w.state.path / "evidence").iterdir())) == 2


def test_signatures_decide_403_and_origins_decide_404(tmp_path: Path, log: FakeLog) -> None:
    """A bad signature by the log's key or none at all: 403; an origin not followed: 404."""
    log.grow(2)
    good = log.checkpoint()
    text, _, line = good.rpartition("\n\u2014 ")
    raw = bytearray(base64.b64decode(line.split(" ")[1]))
    raw[-1] ^= 1
    tampered = f"{text}\n\u2014 {ORIGIN} {base64.b64encode(bytes(raw)).decode()}\n"
    with running_witness(tmp_path / "state") as w:
        answer = w.add(0, [], tampered)
        assert answer.status_code == 403
        assert "invalid" in answer.text
        assert w.add(0, [], log.checkpoint(signers=[IMPOSTOR])).status_code == 403
        stranger = FakeLog(origin="elsewhere.example/log",
                           signer=NoteSigner("elsewhere.example/log", OTHER_KEY))
        stranger.grow(2)
        answer = w.add(0, [], stranger.checkpoint())
        assert answer.status_code == 404
        assert "elsewhere.example/log" in answer.text
        # An unknown signature beside the log's is ignored, as signed-note requires.
        assert w.add(0, [], log.checkpoint(signers=[LOG_SIGNER, STRANGER])).status_code == 200
        assert not list((w.state.path / "evidence").iterdir())


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"old 0\n", 400, "no blank line"),
        (b"new 0\n\nx", 400, "'old <size>'"),
        (b"old 01\n\nx", 400, "leading zeros"),
        (b"old -1\n\nx", 400, "'old <size>'"),
        (b"old 18446744073709551616\n\nx", 400, "'old <size>'"),
        (b"old 1\nnot base64!\n\nx", 400, "proof line 1"),
        (b"old 1\n" + base64.b64encode(bytes(31)) + b"\n\nx", 400, "proof line 1"),
        (b"old 1\n" + b"\n".join([base64.b64encode(bytes(32))] * 64) + b"\n\nx", 400, "at most 63"),
        (b"old \xff\n\nx", 400, "ASCII"),
    ],
)
def test_malformed_requests_are_400(
    tmp_path: Path, body: bytes, status: int, says: str
) -> None:
    with running_witness(tmp_path / "state") as w:
        answer = w.http.post(f"{w.url}/add-checkpoint", content=body)
        assert answer.status_code == status
        assert says in answer.text


def test_old_larger_than_size_is_400_and_size_zero_needs_the_empty_root(
    tmp_path: Path, log: FakeLog
) -> None:
    log.grow(2)
    with running_witness(tmp_path / "state") as w:
        assert w.add(3, [], log.checkpoint()).status_code == 400
        answer = w.add(0, [], log.checkpoint(0, root=bytes(32)))
        assert answer.status_code == 422
        assert "empty tree" in answer.text
        assert w.add(0, [], log.checkpoint(0)).status_code == 200
        # From old size 0 a proof is an error, not ignored.
        assert w.add(0, [log.root(1)], log.checkpoint()).status_code == 422
        assert w.add(0, [], log.checkpoint()).status_code == 200
        assert not list((w.state.path / "evidence").iterdir())


def test_http_edges(tmp_path: Path, log: FakeLog) -> None:
    """Wrong methods and paths, no length, too large; the monitoring endpoint."""
    log.grow(2)
    with running_witness(tmp_path / "state") as w:
        monitor = f"{w.url}/{origin_hash(ORIGIN)}/checkpoint"
        assert w.http.get(monitor).status_code == 404
        assert w.http.get(f"{w.url}/add-checkpoint").status_code == 405
        assert w.http.post(f"{w.url}/other").status_code == 404

        # Refused from the headers alone, before a byte of the body is read (sent raw: a
        # client still writing its body when the server closes may see a reset instead).
        port = int(w.url.rsplit(":", 1)[1])
        for header, status in [(b"Transfer-Encoding: chunked", b"411"),
                               (b"Content-Length: 99999999", b"413")]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n" + header
                            + b"\r\n\r\n")
                assert raw.recv(100).startswith(b"HTTP/1.1 " + status + b" ")

        cosignature = w.add(0, [], log.checkpoint()).text
        served = w.http.get(monitor)
        assert served.status_code == 200
        # The log's signature the witness verified and its own cosignature, nothing else.
        assert served.text == log.checkpoint() + cosignature
        _, signers = open_note(served.text, [LOG_SIGNER.verifier(), WITNESS_SIGNER.verifier()])
        assert sorted(signers) == sorted([ORIGIN, WITNESS_SIGNER.name])


def test_only_the_log_signatures_verified_are_stored(tmp_path: Path, log: FakeLog) -> None:
    """Unknown signature lines, and a second line by the log key (never checked), are dropped."""
    log.grow(1)
    text = Checkpoint(ORIGIN, 1, log.root(1)).to_text()
    note = sign_note(text, [LOG_SIGNER, STRANGER])
    forged_second = LOG_SIGNER.signature_line(text).replace("A", "B", 1)
    with running_witness(tmp_path / "state") as w:
        answer = w.add(0, [], note + forged_second)
        assert answer.status_code == 200
        stored = w.state.load_latest(ORIGIN)
        assert stored == text + "\n" + LOG_SIGNER.signature_line(text) + answer.text


def test_cosignature_timestamps_never_go_back(tmp_path: Path, log: FakeLog) -> None:
    """A clock set back does not make a later, larger tree carry an earlier time."""
    times = iter([1_700_000_000, 1_600_000_000, 1_700_000_005])
    log.grow(4)
    with running_witness(tmp_path / "state", clock=lambda: next(times)) as w:
        stamps = []
        for old, size in [(0, 2), (2, 3), (3, 4)]:
            answer = w.add(old, log.proof(old, size), log.checkpoint(size))
            assert answer.status_code == 200
            payload = base64.b64decode(answer.text.split(" ")[-1])
            stamps.append(cosignature_timestamp(payload))
    assert stamps == [1_700_000_000, 1_700_000_000, 1_700_000_005]


def test_racing_requests_never_roll_back(tmp_path: Path, log: FakeLog) -> None:
    """Many clients at once, each from the size it last saw: the stored size only grows,
    and it is at least every size that got a cosignature."""
    log.grow(64)
    acknowledged: list[int] = []
    lock = threading.Lock()
    with running_witness(tmp_path / "state") as w:

        def client(sizes: list[int]) -> None:
            old = 0
            with httpx.Client(timeout=10) as http:
                for size in sizes:
                    if size < old:
                        continue  # another client already had a larger tree cosigned
                    body = request_body(old, log.proof(old, size) if old else [],
                                        log.checkpoint(size))
                    answer = http.post(f"{w.url}/add-checkpoint", content=body)
                    if answer.status_code == 409:
                        old = int(answer.text)
                        continue
                    assert answer.status_code == 200, answer.text
                    with lock:
                        acknowledged.append(size)
                    old = size

        threads = [threading.Thread(target=client, args=(list(range(1 + i, 65, 4)),))
                   for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stored = assert_state_whole(w.state.path)
    assert acknowledged
    assert stored.size >= max(acknowledged)
    assert stored.root_hash == log.root(stored.size)


def test_check_and_update_are_one_step(
    tmp_path: Path, log: FakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race in tlog-witness: A (3 to 8) is checked and stalls while saving; B (3 to 5)
    arrives meanwhile. B must be judged against A's result (409), or it would roll back."""
    log.grow(8)
    with running_witness(tmp_path / "state") as w:
        assert w.add(0, [], log.checkpoint(3)).status_code == 200
        save = w.state.save_latest
        saving_a = threading.Event()

        def slow_save(origin: str, note: str) -> None:
            if "\n8\n" in note:
                saving_a.set()
                time.sleep(0.3)
            save(origin, note)

        monkeypatch.setattr(w.state, "save_latest", slow_save)
        answers: dict[str, int] = {}

        def send(name: str, size: int) -> None:
            with httpx.Client(timeout=10) as http:
                body = request_body(3, log.proof(3, size), log.checkpoint(size))
                answers[name] = http.post(f"{w.url}/add-checkpoint", content=body).status_code

        a = threading.Thread(target=send, args=("a", 8))
        a.start()
        assert saving_a.wait(5)
        send("b", 5)
        a.join()
        assert answers == {"a": 200, "b": 409}
        assert assert_state_whole(w.state.path).size == 8


# ---- the state directory: start-up checks and crash safety -------------------------------


def test_start_refuses_missing_locked_or_damaged_state(tmp_path: Path, log: FakeLog) -> None:
    """No implicit state; one witness per directory; a damaged file stops the start."""
    with pytest.raises(StateError, match="does not exist: create it"):
        StateDir.open(tmp_path / "typo")
    log.grow(2)
    with running_witness(tmp_path / "state") as w:
        assert w.add(0, [], log.checkpoint()).status_code == 200
        with pytest.raises(StateError, match="another witness is running"):
            StateDir.open(tmp_path / "state")
    path = tmp_path / "state" / "logs" / f"{origin_hash(ORIGIN)}.note"
    whole = path.read_text()
    path.write_text(whole[:-10])
    with pytest.raises(WitnessStartError, match="not a verified checkpoint"), \
            running_witness(tmp_path / "state"):
        pass
    path.write_text(whole)
    with running_witness(tmp_path / "state") as w:
        assert w.add(2, [], log.checkpoint()).status_code == 200


def test_a_log_key_used_as_witness_key_is_refused(tmp_path: Path) -> None:
    same = CosignatureSigner(ORIGIN, LOG_SIGNER._key)
    with pytest.raises(WitnessStartError, match="key of its own"), \
            running_witness(tmp_path / "state", signer=same):
        pass


@pytest.mark.parametrize(
    "step",
    [
        "write",  # the temporary file (write or fsync) fails: nothing written
        "replace",  # the rename fails: nothing written (a rename lands whole or not at all)
        "fsync-directory",  # the rename landed, then syncing the directory fails
    ],
)
def test_a_failed_write_gives_no_cosignature_and_recovers(
    tmp_path: Path, log: FakeLog, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """A failure at each step of saving: 500 and no cosignature; memory agrees with disk;
    after a restart the file is a whole verified checkpoint and the witness goes on."""
    log.grow(8)
    state_dir = tmp_path / "state"
    with running_witness(state_dir) as w:
        assert w.add(0, [], log.checkpoint(3)).status_code == 200

        real_sync = durable_files.sync_directory

        def fail(*_: object) -> None:
            raise OSError(28, "No space left on device")

        if step == "write":
            monkeypatch.setattr(durable_files, "_temporary", fail)
        elif step == "replace":
            monkeypatch.setattr(os, "replace", fail)
        else:
            def sync_fails(path: Path) -> None:
                real_sync(path)  # the rename is on disk...
                raise OSError(5, "Input/output error")  # ...but the caller hears of a failure

            monkeypatch.setattr(durable_files, "sync_directory", sync_fails)
        answer = w.add(3, log.proof(3, 5), log.checkpoint(5))
        assert answer.status_code == 500
        assert "not cosigned" in answer.text
        assert "\u2014" not in answer.text
        monkeypatch.undo()
        on_disk = assert_state_whole(state_dir).size
        assert on_disk == (5 if step == "fsync-directory" else 3)
        # Memory follows the disk: the next request must start from what was stored.
        retry = w.add(3, log.proof(3, 5), log.checkpoint(5))
        assert retry.status_code == (409 if on_disk == 5 else 200)
    # A leftover temporary file, as a crash before the rename leaves one.
    (state_dir / "logs" / ".tmp-deadbeef").write_text("half a checkpoint")
    with running_witness(state_dir) as w:
        assert not (state_dir / "logs" / ".tmp-deadbeef").exists()
        assert w.add(5, log.proof(5, 8), log.checkpoint(8)).status_code == 200
    assert assert_state_whole(state_dir).size == 8


def test_evidence_files_never_overwrite_each_other(tmp_path: Path, log: FakeLog) -> None:
    """Two refusals in the same second at the same size get two files."""
    log.grow(2)
    other = FakeLog()
    other.grow(2, prefix="forked")
    with running_witness(tmp_path / "state", clock=lambda: 1_700_000_000) as w:
        assert w.add(0, [], log.checkpoint()).status_code == 200
        assert w.add(2, [], other.checkpoint()).status_code == 422
        assert w.add(2, [], other.checkpoint()).status_code == 422
        names = sorted(p.name for p in (w.state.path / "evidence").iterdir())
    assert names == ["1700000000-2-1.txt", "1700000000-2.txt"]


def test_logged_events_are_json_lines() -> None:
    """The serve command's log format: one JSON object a line, constant event names."""
    from registry.witness.commands import _JsonLines

    record = logging.LogRecord("registry.witness", logging.ERROR, __file__, 1,
                               "fork_evidence_kept", None, None)
    record.__dict__["fields"] = {"origin": ORIGIN, "path": "evidence/1-2.txt"}
    line = json.loads(_JsonLines().format(record))
    assert line["event"] == "fork_evidence_kept" and line["level"] == "error"
    assert line["origin"] == ORIGIN
