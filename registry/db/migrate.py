"""Schema migrations: numbered SQL files in ``schema/``, applied in order, once.

Each applied file is recorded with its SHA-256; a file changed after it was
applied is refused, because the database no longer matches what the file says.
Two processes migrating at once serialise on a PostgreSQL advisory lock, so the
second one finds the work done.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from registry.db.types import Conn

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed number works; this one spells "vcreg" loosely and is ours alone.
_MIGRATION_LOCK = 0x76637265_67000001


class MigrationError(RuntimeError):
    """The schema folder and the database disagree; the message says how to fix it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path = SCHEMA_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"couldn't load {path.name}: migration files are named NNNN_words.sql"
            )
        found.append(Migration(int(match.group(1)), path.name, path.read_text("utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration numbers must run 1, 2, 3… without gaps: {versions}")
    return found


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def pending_migrations(
    conn: Conn, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Migrations not yet applied; raises MigrationError if an applied one changed."""
    migrations = load_migrations() if migrations is None else migrations
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied: dict[int, tuple[str, str]] = {}
    if exists:
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {r["version"]: (r["name"], r["checksum"]) for r in rows}
    by_version = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        known = by_version.get(version)
        if known is None:
            raise MigrationError(
                f"the database has migration {version} ({name}) that schema/ does not: "
                "this code is older than the database"
            )
        if known.checksum != checksum:
            raise MigrationError(
                f"migration {known.name} was changed after it was applied "
                f"(recorded sha256 {checksum[:12]}…, file now {known.checksum[:12]}…); "
                "never edit an applied migration: add a new numbered file instead"
            )
    return [m for m in migrations if m.version not in applied]


async def migrate(
    conn: Conn,
    migrations: list[Migration] | None = None,
    progress: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(_CREATE_TABLE)
        todo = await pending_migrations(conn, migrations)
        for migration in todo:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            if progress:
                progress(migration)
        return todo
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
