"""What every benchmark starts with: an embedded PostgreSQL of its own and a database in it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import asyncpg

from registry.db.embedded import start_embedded
from registry.settings import Settings


async def create_database(uri: str, name: str) -> str:
    """Create database ``name`` on the server of ``uri``; its URL."""
    admin = await asyncpg.connect(uri)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, query = uri.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}"


def bench_database(home: Path, name: str = "bench") -> tuple[str, Settings]:
    """Start the embedded PostgreSQL under ``home`` and create database ``name`` in it: its
    URL, and settings with ``home`` as REGISTRY_HOME pointing at it."""
    url = asyncio.run(create_database(start_embedded(home), name))
    return url, replace(Settings.from_env({"REGISTRY_HOME": str(home)}), database_url=url)
