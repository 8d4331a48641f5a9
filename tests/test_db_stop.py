"""`registry db stop`: the embedded PostgreSQL left running is stopped, one in use is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, "REGISTRY_HOME": str(home), "PYTHONPATH": str(ROOT)}


def _attach(home: Path, *, stop_on_exit: bool, then: str = "") -> subprocess.Popen[str]:
    code = ("from pathlib import Path; from registry.db.embedded import start_embedded;"
            f" start_embedded(Path({str(home)!r}), stop_on_exit={stop_on_exit});"
            f" print('attached', flush=True); {then}")
    return subprocess.Popen(  # noqa: S603 - our interpreter, our own code
        [sys.executable, "-c", code], env=_env(home), cwd=ROOT,
        stdout=subprocess.PIPE, text=True)


def _db_stop(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry", "db", "stop"], env=_env(home),
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def _postmaster(home: Path) -> int | None:
    """The pid of the running postmaster of ``home``, if any."""
    pidfile = home / "pgdata" / "postmaster.pid"
    if not pidfile.exists():
        return None
    pid = int(pidfile.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def test_db_stop_stops_a_server_left_running_and_refuses_one_in_use(tmp_path: Path) -> None:
    home = tmp_path / "home"
    left = _attach(home, stop_on_exit=False)  # started, then left running: no one attached
    assert left.wait(timeout=60) == 0
    assert _postmaster(home) is not None

    user = _attach(home, stop_on_exit=True, then="import time; time.sleep(120)")
    try:
        assert user.stdout is not None and user.stdout.readline().strip() == "attached"
        busy = _db_stop(home)
        assert busy.returncode == 1, busy.stderr
        assert f"in use by process {user.pid}" in busy.stderr
        assert _postmaster(home) is not None
    finally:
        user.send_signal(signal.SIGKILL)  # as a killed `registry serve`: its handle stays
        user.wait(timeout=30)

    done = _db_stop(home)
    assert done.returncode == 0, done.stderr
    assert "stopped the embedded PostgreSQL" in done.stdout
    for _ in range(50):
        if _postmaster(home) is None:
            break
        time.sleep(0.1)
    assert _postmaster(home) is None

    again = _db_stop(home)
    assert again.returncode == 0 and "is not running" in again.stdout
