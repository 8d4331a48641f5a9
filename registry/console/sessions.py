"""Console sessions: sign in once with a regulator token, then a cookie for 8 hours.

The cookie holds 256 random bits; the database keeps only their SHA-256 (schema 0021),
as it does for tokens, so a copy of the table opens no session. A session is live while
it has not expired or been ended by signing out, and while its token is live and the
token's authority active: every request reads the three together (``find``), so a
revocation or deactivation ends every session of that token on the next click.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from registry.clock import Clock
from registry.tokens import Principal

# How long a session lasts after signing in, however active: a working day.
SESSION_LENGTH = timedelta(hours=8)
COOKIE_NAME = "registry_console"


@dataclass(frozen=True)
class Officer:
    """Who is signed in: the regulator token's holder, and its authority's name to show."""

    principal: Principal
    authority_name: str
    session_id: str


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


async def open_session(pool: asyncpg.Pool, clock: Clock, principal: Principal) -> str:
    """A new session for ``principal`` (a live regulator); the id goes in the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = clock.now()
    await pool.execute(
        "INSERT INTO console_sessions (id_hash, token_id, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        _hash(session_id), principal.token_id, now, now + SESSION_LENGTH,
    )
    return session_id


async def find(pool: asyncpg.Pool, clock: Clock, session_id: str) -> Officer | None:
    """The regulator signed in with this session, or None if it is not live."""
    row = await pool.fetchrow(
        "SELECT t.id, t.name, t.role, t.authority_code, a.name AS authority_name"
        " FROM console_sessions s"
        " JOIN api_tokens t ON t.id = s.token_id"
        " JOIN authorities a ON a.code = t.authority_code"
        " WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2"
        " AND t.revoked_at IS NULL AND t.role = 'regulator' AND a.active",
        _hash(session_id), clock.now(),
    )
    if row is None:
        return None
    principal = Principal(row["id"], row["name"], row["role"], row["authority_code"], True)
    return Officer(principal, row["authority_name"], session_id)


async def end_session(pool: asyncpg.Pool, clock: Clock, session_id: str) -> None:
    await pool.execute(
        "UPDATE console_sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL",
        _hash(session_id), clock.now(),
    )


async def forget_expired(pool: asyncpg.Pool, clock: Clock) -> None:
    """Drop sessions that can no longer be used (called at each sign-in: cheap, indexed)."""
    await pool.execute(
        "DELETE FROM console_sessions WHERE expires_at <= $1 OR ended_at IS NOT NULL",
        clock.now(),
    )


async def csrf_secret(pool: asyncpg.Pool) -> str:
    """The database's one CSRF secret, made by whichever server asks first."""
    await pool.execute(
        "INSERT INTO console_secret (secret) VALUES ($1) ON CONFLICT DO NOTHING",
        secrets.token_urlsafe(48),
    )
    secret: str = await pool.fetchval("SELECT secret FROM console_secret")
    return secret
