"""What a credit bureau installs to check the log and witness it: the project with
``pip install --no-deps`` plus cryptography and httpx, nothing else (issue 19).

A real virtual environment with exactly those, and a real registry to check: the
bureau's ``registry log check``, ``log mirror`` and ``witness`` run from it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.fault_helpers import servers_stopped, start_server, wait_ready
from tests.test_packaging import ROOT, build_wheel


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - programs of the venv this test made
        list(args), capture_output=True, text=True, timeout=600, check=False, cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


async def test_the_verifier_commands_run_with_only_cryptography_and_httpx(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "build")
    venv = tmp_path / "bureau-venv"
    made = _run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    pip = str(venv / "bin" / "pip")
    for step in ([pip, "install", "-q", "--no-deps", str(wheel)],
                 [pip, "install", "-q", "-c", str(ROOT / "constraints.txt"), "cryptography", "httpx"]):
        done = _run(*step, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    python, registry = str(venv / "bin" / "python"), str(venv / "bin" / "registry")
    # The environment really lacks the server's libraries.
    for missing in ("asyncpg", "msgspec", "litestar", "structlog"):
        assert _run(python, "-c", f"import {missing}", cwd=tmp_path).returncode != 0, missing

    made_key = _run(registry, "witness", "keygen", "--name", "bureau.example/witness",
                    "--out", str(tmp_path / "witness.key"), cwd=tmp_path)
    assert made_key.returncode == 0, made_key.stderr
    assert made_key.stdout.strip().splitlines()[-1].startswith("bureau.example/witness+")

    (tmp_path / "home").mkdir()
    server = start_server("", tmp_path / "home")
    with servers_stopped(server):
        await wait_ready(server)
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
            log_key = (await client.get("/log/key")).text.strip()
        checked = _run(registry, "log", "check", "--url", server.base, "--log-key", log_key,
                       "--since", str(tmp_path / "seen"), cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        mirrored = _run(registry, "log", "mirror", "--url", server.base, "--to",
                        str(tmp_path / "mirror"), "--log-key", log_key, "--once", cwd=tmp_path)
        assert mirrored.returncode == 0, mirrored.stdout + mirrored.stderr
    assert (tmp_path / "mirror" / "checkpoint").read_text().startswith("registry.example/")
