"""Schema migrations: numbered SQL files in ``schema/``, applied in order, once.

Each applied file is recorded with its SHA-256; a file changed after it was
applied is refused, because the database no longer matches what the file says.
Two processes migrating at once serialise on a PostgreSQL advisory lock, so the
second one finds the work done.

Some columns need Python to fill (a fold by OpenCC, registry/search.py): a SQL file
adds them empty, and a backfill step after the SQL files fills every row still empty,
in batches. A step is idempotent (it only touches rows still NULL), so a crash halfway
leaves rows for the next ``migrate`` to finish.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from registry.db.types import Conn
from registry.search import subject_search_text

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
        await run_backfills(conn)
        return todo
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


# ---- backfills: columns only Python can compute ------------------------------------

BACKFILL_BATCH = 1000

_UNFOLDED_SUBJECTS = """
SELECT s.id, s.name, s.credit_code,
    array(SELECT r.decision_number FROM credit_records r WHERE r.subject_id = s.id) AS numbers
FROM subjects s WHERE s.search_text IS NULL ORDER BY s.id LIMIT $1"""

# Only rows still NULL: a write that folded the row meanwhile knows better than this
# batch's read.
_FILL_SUBJECTS = """
UPDATE subjects s SET search_text = v.search_text
FROM unnest($1::uuid[], $2::text[]) AS v (id, search_text)
WHERE s.id = v.id AND s.search_text IS NULL"""


# From this many rows on, the trigram index queues their entries while the backfill runs
# (GIN fastupdate) and takes them in one merge at the end: three to four times faster than
# entry by entry, which is how it is kept the rest of the time (searches never read a queue).
_BULK_FILL = 10_000
_QUEUE_ON = "ALTER INDEX subjects_search SET (fastupdate = on)"
_QUEUE_OFF = "ALTER INDEX subjects_search SET (fastupdate = off)"


async def backfill_subject_search(conn: Conn, batch: int = BACKFILL_BATCH) -> int:
    """Fill ``subjects.search_text`` (schema/0013_subject_search.sql) wherever it is NULL;
    the number of rows filled. Each batch commits on its own, so the table is never
    locked for long and live writers go on; stops when no row is left NULL."""
    queued = await conn.fetchval(
        "SELECT coalesce('fastupdate=on' = ANY (reloptions), false) FROM pg_class"
        " WHERE oid = 'subjects_search'::regclass"
    )
    pending = await conn.fetchval("SELECT count(*) FROM subjects WHERE search_text IS NULL")
    if pending >= _BULK_FILL and not queued:
        await conn.execute(_QUEUE_ON)
        queued = True
    filled = 0
    while rows := await conn.fetch(_UNFOLDED_SUBJECTS, batch):
        texts = [subject_search_text(r["name"], r["credit_code"], r["numbers"]) for r in rows]
        await conn.execute(_FILL_SUBJECTS, [r["id"] for r in rows], texts)
        filled += len(rows)
    # Also when a run that died halfway left the queue on: merge it, and stop queueing.
    if queued:
        await conn.execute("SELECT gin_clean_pending_list('subjects_search'::regclass)")
        await conn.execute(_QUEUE_OFF)
    return filled


@dataclass(frozen=True)
class Backfill:
    """A Python step that runs once migration ``after`` is applied, on every ``migrate``."""

    after: int
    name: str
    run: Callable[[Conn], Awaitable[int]]


BACKFILLS = (Backfill(13, "subjects.search_text", backfill_subject_search),)


async def run_backfills(conn: Conn) -> dict[str, int]:
    """Run every backfill whose migration is applied (a database migrated only part of
    the way has not got their columns yet); rows filled by each. The caller holds the
    migration lock."""
    applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return {step.name: await step.run(conn) for step in BACKFILLS if step.after in applied}
