"""`registry log check` with witnesses: --witness/--quorum against cosignatures made by real
witness servers, and --evidence judging what a witness refused. The log is a FakeLog
answered through httpx.MockTransport; the witnesses run on free ports."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.tlog.check import check_remote
from registry.tlog.note import open_checkpoint
from registry.witness.cosignature import CosignatureSigner
from registry.witness.evidence import Evidence, format_evidence
from tests.test_witness_server import (
    IMPOSTOR,
    LOG_SIGNER,
    ORIGIN,
    FakeLog,
    running_witness,
)

URL = "http://registry.test"
VKEY = LOG_SIGNER.verifier_key()
WITNESSES = [
    CosignatureSigner(f"bureau{i}.example/witness",
                      Ed25519PrivateKey.from_private_bytes(bytes([10 + i]) * 32))
    for i in range(3)
]
WITNESS_VKEYS = [w.verifier_key for w in WITNESSES]


def serving(log: FakeLog, note: str | None = None) -> httpx.Client:
    """A client whose requests the fake log answers: its checkpoint (or ``note``), its proofs."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/log/checkpoint":
            return httpx.Response(200, text=note if note is not None else log.checkpoint())
        if request.url.path == "/log/proof/consistency":
            old, new = int(request.url.params["old"]), int(request.url.params["new"])
            hashes = [base64.b64encode(h).decode() for h in log.proof(old, new)]
            return httpx.Response(200, json={"old": old, "new": new, "hashes": hashes})
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handle))


def cosign_with(witnesses: list[CosignatureSigner], log: FakeLog, tmp_path: Path) -> str:
    """The log's current checkpoint, with the cosignature lines each real witness returned."""
    note = log.checkpoint()
    for i, signer in enumerate(witnesses):
        with running_witness(tmp_path / f"witness{i}", signer=signer) as w:
            answer = w.add(0, [], note)
            assert answer.status_code == 200, answer.text
            note += answer.text
    return note


@pytest.fixture
def log() -> FakeLog:
    fake = FakeLog()
    fake.grow(5)
    return fake


def test_quorum_met_verifies_and_saves(
    tmp_path: Path, log: FakeLog, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 of 3 pinned witnesses cosigned, quorum 2: exit 0, who signed is named, file saved."""
    note = cosign_with([WITNESSES[0], WITNESSES[2]], log, tmp_path)
    since = tmp_path / "seen"
    with serving(log, note) as http:
        code = check_remote(URL, VKEY, since, witnesses=WITNESS_VKEYS, quorum=2, client=http)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "cosigned by 2 of 3 witnesses (quorum 2)" in out
    assert "bureau0.example/witness (at " in out and "not by bureau1.example/witness" in out
    assert since.read_text() == note


def test_quorum_not_met_fails_naming_who_signed_and_who_did_not(
    tmp_path: Path, log: FakeLog, capsys: pytest.CaptureFixture[str]
) -> None:
    """Quorum 3 with 2 cosignatures, or all-by-default: exit 1, and the since file is kept."""
    note = cosign_with([WITNESSES[0], WITNESSES[2]], log, tmp_path)
    since = tmp_path / "seen"
    since.write_text(log.checkpoint(3))
    with serving(log, note) as http:
        assert check_remote(URL, VKEY, since, witnesses=WITNESS_VKEYS, quorum=3,
                            client=http) == 1
        err = capsys.readouterr().err
        assert "only 2 of the 3 pinned witnesses cosigned the checkpoint, 3 required" in err
        assert "cosigned by: bureau0.example/witness (at" in err
        assert "not by: bureau1.example/witness" in err
        assert check_remote(URL, VKEY, since, witnesses=WITNESS_VKEYS, client=http) == 1
        assert "3 required" in capsys.readouterr().err
    assert since.read_text() == log.checkpoint(3)
    # Without cosignatures at all, and without a policy, the old behaviour stands.
    with serving(log) as http:
        assert check_remote(URL, VKEY, since, witnesses=WITNESS_VKEYS[:1], client=http) == 1
        assert "cosigned by: none" in capsys.readouterr().err
        assert check_remote(URL, VKEY, since, client=http) == 0


def test_an_invalid_cosignature_by_a_pinned_witness_fails(
    tmp_path: Path, log: FakeLog, capsys: pytest.CaptureFixture[str]
) -> None:
    note = cosign_with(WITNESSES[:2], log, tmp_path)
    text, _, last = note.rstrip("\n").rpartition("\n")
    name, payload = last.removeprefix("\u2014 ").split(" ")
    raw = bytearray(base64.b64decode(payload))
    raw[-1] ^= 1
    tampered = f"{text}\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with serving(log, tampered) as http:
        assert check_remote(URL, VKEY, None, witnesses=WITNESS_VKEYS[:2], quorum=1,
                            client=http) == 1
    assert "invalid cosignature by pinned witness bureau1.example/witness" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"quorum": 1}, "--quorum needs the witnesses"),
        ({"witnesses": [VKEY]}, "type 0x01 signs notes"),
        ({"witnesses": WITNESS_VKEYS[:1], "quorum": 2}, "between 1 and the 1"),
        ({"url": None}, "--url is required"),
    ],
)
def test_usage_errors_are_exit_2(
    kwargs: dict[str, object], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = kwargs.pop("url", URL)
    assert url is None or isinstance(url, str)
    witnesses = kwargs.get("witnesses", [])
    quorum = kwargs.get("quorum")
    assert isinstance(witnesses, list) and (quorum is None or isinstance(quorum, int))
    assert check_remote(url, VKEY, None, witnesses=witnesses, quorum=quorum) == 2
    assert says in capsys.readouterr().err


# ---- --evidence ---------------------------------------------------------------------------


def witness_refuses_a_fork(tmp_path: Path, log: FakeLog) -> Path:
    """A real witness cosigns the log, then is offered another root at the same size."""
    other = FakeLog()
    other.grow(5, prefix="forked")
    with running_witness(tmp_path / "witness") as w:
        assert w.add(0, [], log.checkpoint()).status_code == 200
        assert w.add(5, [], other.checkpoint()).status_code == 422
    return tmp_path / "witness" / "evidence"


def test_evidence_of_two_roots_at_one_size_is_a_fork(
    tmp_path: Path, log: FakeLog, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offline (no --url): exit 1, naming the size, both roots and the file."""
    evidence = witness_refuses_a_fork(tmp_path, log)
    assert check_remote(None, VKEY, None, evidence_dir=evidence) == 1
    captured = capsys.readouterr()
    (path,) = evidence.iterdir()
    assert "FAILED: FORK: the log signed two different roots at size 5" in captured.err
    assert base64.b64encode(log.root(5)).decode() in captured.err
    assert str(path) in captured.err
    assert "1 fork(s)" in captured.out
    # With --url too: the log's own check passes, the evidence still fails the run.
    with serving(log) as http:
        assert check_remote(URL, VKEY, None, evidence_dir=evidence, client=http) == 1


def test_evidence_of_two_sizes_needs_the_log_to_answer(
    tmp_path: Path, log: FakeLog, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused proof from 5 to 8: unresolved offline (2); cleared if the log proves it
    (0); a fork if the larger checkpoint is of another history (1)."""
    with running_witness(tmp_path / "witness") as w:
        assert w.add(0, [], log.checkpoint()).status_code == 200
        log.grow(3)
        assert w.add(5, [bytes(32)], log.checkpoint()).status_code == 422
    evidence = tmp_path / "witness" / "evidence"
    assert check_remote(None, VKEY, None, evidence_dir=evidence) == 2
    assert "unresolved: sizes 5 and 8" in capsys.readouterr().err
    with serving(log) as http:
        assert check_remote(URL, VKEY, None, evidence_dir=evidence, client=http) == 0
    assert "no conflict: the log proves size 8 extends size 5" in capsys.readouterr().out

    forked = FakeLog()
    forked.grow(8, prefix="forked")
    with running_witness(tmp_path / "witness") as w:
        assert w.add(5, forked.proof(5), forked.checkpoint()).status_code == 422
    with serving(log) as http:
        assert check_remote(URL, VKEY, None, evidence_dir=evidence, client=http) == 1
    assert "FORK: the log at size 8 does not extend" in capsys.readouterr().err


def test_files_the_log_did_not_sign_are_not_evidence(
    tmp_path: Path, log: FakeLog, capsys: pytest.CaptureFixture[str]
) -> None:
    """Forged notes, another log's evidence: skipped (0); a damaged file: unresolved (2)."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    forged = Evidence(ORIGIN, "forged", 1, 5, (), log.checkpoint(),
                      log.checkpoint(root=bytes(32), signers=[IMPOSTOR]))
    (folder / "1-5.txt").write_bytes(format_evidence(forged))
    elsewhere = Evidence("elsewhere.example/log", "other", 2, 1, (), "a\n", "b\n")
    (folder / "2-1.txt").write_bytes(format_evidence(elsewhere))
    assert check_remote(None, VKEY, None, evidence_dir=folder) == 0
    out = capsys.readouterr().out
    assert "not evidence against this log" in out and "not 'registry.example/log': skipped" in out
    (folder / "3-5.txt").write_bytes(b"registry witness evidence v1\n")
    assert check_remote(None, VKEY, None, evidence_dir=folder) == 2
    assert "couldn't read evidence" in capsys.readouterr().err
    assert check_remote(None, VKEY, None, evidence_dir=tmp_path / "none") == 2


def test_cli_reports_the_fork(tmp_path: Path, log: FakeLog) -> None:
    """`registry log check --key VKEY --evidence DIR`, as a bureau types it."""
    evidence = witness_refuses_a_fork(tmp_path, log)
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "registry", "log", "check", "--key", VKEY,
         "--evidence", str(evidence)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "REGISTRY_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 1, result.stderr
    assert "FORK: the log signed two different roots at size 5" in result.stderr
    # And the saved checkpoint a later check compares with is the log's, never the fork's.
    stored = open_checkpoint(
        (tmp_path / "witness" / "logs").iterdir().__next__().read_text(),
        [LOG_SIGNER.verifier()],
    )[0]
    assert stored.root_hash == log.root(5)
