"""Migrations: applied once in order, recorded with checksums, safe when run concurrently."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from registry.db.migrate import (
    Migration,
    MigrationError,
    load_migrations,
    migrate,
    pending_migrations,
)
from tests.conftest import PgServer


@pytest.fixture
async def empty_db(pg_server: PgServer) -> str:
    name = "t_empty_migrations"
    admin = await asyncpg.connect(pg_server.uri)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return pg_server.url_for(name)


async def test_files_are_numbered_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))


async def test_applies_all_once_and_records_checksums(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        applied = await migrate(conn)
        assert [m.version for m in applied] == [m.version for m in load_migrations()]
        assert await migrate(conn) == []
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["checksum"]) for r in rows] == [
            (m.version, m.checksum) for m in load_migrations()
        ]
    finally:
        await conn.close()


async def test_changed_applied_migration_is_refused(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        await migrate(conn)
        first = load_migrations()[0]
        edited = [Migration(first.version, first.name, first.sql + "\n-- edited\n"),
                  *load_migrations()[1:]]
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await pending_migrations(conn, edited)
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, edited)
    finally:
        await conn.close()


async def test_database_newer_than_code_is_refused(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        await migrate(conn)
        with pytest.raises(MigrationError, match="older than the database"):
            await pending_migrations(conn, load_migrations()[:1])
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_file_once(empty_db: str) -> None:
    conns = [await asyncpg.connect(empty_db) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = sorted(m.version for result in results for m in result)
        assert applied == [m.version for m in load_migrations()]
        count = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(load_migrations())
    finally:
        for c in conns:
            await c.close()
