"""API tokens: issued once in the clear, stored only as a hash, revocable at once.

A token looks like ``vcr_<role>_<43 base64url chars>``; the role in the text is
only a hint for people, the stored row decides.

Every revocation is announced on ``REVOKED_CHANNEL`` in its own transaction, so
the in-process caches of live tokens (``token_cache.py``) in every server hear of
it on commit, and never of a revocation that rolled back.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from registry.clock import Clock
from registry.db.types import Conn, required
from registry.db.writes import Written, audited_write
from registry.errors import Conflict, InvalidInput, NotFound

ROLES = ("regulator", "bureau", "admin")

# NOTIFY channel for revocations; the payload is the revoked token's id as text.
REVOKED_CHANNEL = "registry_token_revoked"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's holder; ``name`` is what the audit log records."""

    token_id: uuid.UUID
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token(role: str) -> str:
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"vcr_{role}_{raw}"


async def issue_token(
    pool: asyncpg.Pool, clock: Clock, *, role: str, name: str, actor: str
) -> tuple[str, Written]:
    if role not in ROLES:
        raise InvalidInput("role", f"unknown role {role!r}", ", ".join(ROLES))
    clean = name.strip()
    if not 1 <= len(clean) <= 200:
        raise InvalidInput("name", "must be 1–200 characters", "the holder's name")
    token = new_token(role)
    token_id = uuid.uuid4()

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = required(
            await conn.fetchrow(
                "INSERT INTO api_tokens (id, name, role, token_hash, prefix, created_at, created_by,"
                " log_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
                token_id,
                clean,
                role,
                hash_token(token),
                token[: len(role) + 9],
                now,
                actor,
                index,
            )
        )
        return row

    written = await audited_write(
        pool, clock, actor=actor, action="token.issue", object_type="token", write=write
    )
    return token, written


async def revoke_token(
    pool: asyncpg.Pool, clock: Clock, *, token_id: uuid.UUID, actor: str
) -> Written:
    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        current = await conn.fetchrow("SELECT revoked_at FROM api_tokens WHERE id = $1", token_id)
        if current is None:
            raise NotFound(f"no token with id {token_id}")
        if current["revoked_at"] is not None:
            raise Conflict(f"token {token_id} was already revoked at {current['revoked_at']}")
        row = required(
            await conn.fetchrow(
                "UPDATE api_tokens SET revoked_at = $2, revoked_by = $3, log_index = $4"
                " WHERE id = $1 RETURNING *",
                token_id,
                now,
                actor,
                index,
            )
        )
        # Transactional: delivered to listeners on commit, dropped with a rollback.
        await conn.execute("SELECT pg_notify($1, $2)", REVOKED_CHANNEL, str(token_id))
        return row

    return await audited_write(
        pool, clock, actor=actor, action="token.revoke", object_type="token", write=write
    )


async def authenticate(pool: asyncpg.Pool, token: str) -> Principal | None:
    """The holder of a live token, or None, read from the database: the source of truth.

    Requests go through ``TokenCache.authenticate``, which asks this on a miss.
    """
    row = await pool.fetchrow(
        "SELECT id, name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    if row is None:
        return None
    return Principal(row["id"], row["name"], row["role"])


async def list_tokens(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, name, role, prefix, created_at, created_by, revoked_at, revoked_by, log_index"
        " FROM api_tokens ORDER BY created_at, id"
    )
    return rows
