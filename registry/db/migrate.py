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
from registry.search import record_search_number, subject_search_text

# The migrations as installed with the package: registry/schema is a symbolic link to the
# top-level schema/ in a checkout, and a folder of the files in a built wheel (pyproject).
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schema"
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
    """Every migration in ``folder``, in order. None at all is an error, never an empty
    list: an installation without its migrations would otherwise start on a database
    with no tables and say nothing."""
    found: list[Migration] = []
    paths = sorted(folder.glob("*.sql"))
    if not paths:
        raise MigrationError(
            f"no migrations found in {folder}: this installation of the registry lacks its "
            "schema (a package built without registry/schema/*.sql); reinstall it"
        )
    for path in paths:
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
SELECT id, name, credit_code FROM subjects WHERE search_text IS NULL ORDER BY id LIMIT $1"""

# Only rows still NULL: a write that folded the row meanwhile knows better than this
# batch's read.
_FILL_SUBJECTS = """
UPDATE subjects s SET search_text = v.search_text
FROM unnest($1::uuid[], $2::text[]) AS v (id, search_text)
WHERE s.id = v.id AND s.search_text IS NULL"""

# Through the partial index credit_records_search_pending (schema/0017_record_search.sql).
_UNFOLDED_RECORDS = """
SELECT id, decision_number FROM credit_records WHERE search_number IS NULL ORDER BY id LIMIT $1"""

# Only rows still NULL, and only if the number is still the one read: a correction that
# committed meanwhile spelled its own.
_FILL_RECORDS = """
UPDATE credit_records r SET search_number = v.search_number
FROM unnest($1::uuid[], $2::text[], $3::text[]) AS v (id, decision_number, search_number)
WHERE r.id = v.id AND r.search_number IS NULL
    AND r.decision_number IS NOT DISTINCT FROM v.decision_number"""


# From this many rows on, the trigram index queues their entries while the backfill runs
# (GIN fastupdate) and takes them in one merge at the end: three to four times faster than
# entry by entry, which is how it is kept the rest of the time (searches never read a queue).
_BULK_FILL = 10_000


async def _fill(
    conn: Conn,
    index: str,
    count_pending: str,
    fill_batch: Callable[[int], Awaitable[int]],
    batch: int,
) -> int:
    """Run ``fill_batch`` until it fills no row (each batch commits on its own), with the
    trigram ``index``'s queue on for a bulk fill; the rows filled."""
    queued = await conn.fetchval(
        "SELECT coalesce('fastupdate=on' = ANY (reloptions), false) FROM pg_class"
        " WHERE oid = $1::regclass", index
    )
    if await conn.fetchval(count_pending) >= _BULK_FILL and not queued:
        await conn.execute(f"ALTER INDEX {index} SET (fastupdate = on)")
        queued = True
    filled = 0
    while done := await fill_batch(batch):
        filled += done
    # Also when a run that died halfway left the queue on: merge it, and stop queueing.
    if queued:
        await conn.execute("SELECT gin_clean_pending_list($1::regclass)", index)
        await conn.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
    return filled


async def backfill_subject_search(conn: Conn, batch: int = BACKFILL_BATCH) -> int:
    """Fill ``subjects.search_text`` (schema/0013_subject_search.sql) wherever it is NULL;
    the number of rows filled. Each batch commits on its own, so the table is never
    locked for long and live writers go on; stops when no row is left NULL."""

    async def fill_batch(size: int) -> int:
        rows = await conn.fetch(_UNFOLDED_SUBJECTS, size)
        if rows:
            texts = [subject_search_text(r["name"], r["credit_code"]) for r in rows]
            await conn.execute(_FILL_SUBJECTS, [r["id"] for r in rows], texts)
        return len(rows)

    return await _fill(
        conn, "subjects_search", "SELECT count(*) FROM subjects WHERE search_text IS NULL",
        fill_batch, batch,
    )


async def backfill_record_search(conn: Conn, batch: int = BACKFILL_BATCH) -> int:
    """Fill ``credit_records.search_number`` (schema/0017_record_search.sql) wherever it is
    NULL; the number of rows filled. As ``backfill_subject_search``: batch by batch, each
    committed on its own."""

    async def fill_batch(size: int) -> int:
        rows = await conn.fetch(_UNFOLDED_RECORDS, size)
        if rows:
            numbers = [r["decision_number"] for r in rows]
            await conn.execute(_FILL_RECORDS, [r["id"] for r in rows], numbers,
                               [record_search_number(n) for n in numbers])
        return len(rows)

    return await _fill(
        conn, "credit_records_search",
        "SELECT count(*) FROM credit_records WHERE search_number IS NULL",
        fill_batch, batch,
    )


@dataclass(frozen=True)
class Backfill:
    """A Python step that runs once migration ``after`` is applied, on every ``migrate``."""

    after: int
    name: str
    run: Callable[[Conn], Awaitable[int]]


BACKFILLS = (
    Backfill(13, "subjects.search_text", backfill_subject_search),
    Backfill(17, "credit_records.search_number", backfill_record_search),
)


async def run_backfills(conn: Conn) -> dict[str, int]:
    """Run every backfill whose migration is applied (a database migrated only part of
    the way has not got their columns yet); rows filled by each. The caller holds the
    migration lock."""
    applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return {step.name: await step.run(conn) for step in BACKFILLS if step.after in applied}
