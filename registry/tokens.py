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
from registry.identifiers import validate_credit_code
from registry.text import clean_text

ROLES = ("regulator", "bureau", "admin")

# NOTIFY channel for revocations; the payload is the revoked token's id as text.
REVOKED_CHANNEL = "registry_token_revoked"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the holder of a live token.

    ``actor`` is what the audit log records: the role, the token's id and, for a
    regulator, its authority (``regulator:<token id>@<authority code>``). Never the
    token's name (names are for people and may be reused once a token is revoked) and
    never anything secret.
    """

    token_id: uuid.UUID
    name: str
    role: str
    # The authority a regulator token belongs to (GB 32100 code); None for other roles
    # and for regulator tokens issued before authorities existed (they decide nothing).
    authority_code: str | None = None
    # False once the authority was deactivated: its tokens are refused (registry/api/auth.py).
    authority_active: bool = True
    # Tokens act for callers; only background jobs act as the system (credit/ownership.py).
    system: bool = False

    @property
    def actor(self) -> str:
        suffix = f"@{self.authority_code}" if self.authority_code else ""
        return f"{self.role}:{self.token_id}{suffix}"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token(role: str) -> str:
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"vcr_{role}_{raw}"


async def issue_token(
    pool: asyncpg.Pool,
    clock: Clock,
    *,
    role: str,
    name: str,
    actor: str,
    authority_code: str | None = None,
) -> tuple[str, Written]:
    """Issue a token; a regulator's belongs to one active authority, other roles to none.

    Names are unique among the live tokens of a role (409).
    """
    if role not in ROLES:
        raise InvalidInput("role", f"unknown role {role!r}", ", ".join(ROLES))
    # One line of visible text (registry/text.py); the column holds 1–200 characters.
    clean = clean_text(name, "name", required=True, max_length=200)
    if role == "regulator":
        if authority_code is None:
            raise InvalidInput(
                "authority_code",
                "a regulator token belongs to an authority",
                "the code of an active authority (registry authorities list)",
            )
        # The canonical form (registry/identifiers.py) is what the authorities table holds.
        authority_code = validate_credit_code(authority_code, "authority_code")
    elif authority_code is not None:
        raise InvalidInput(
            "authority_code", f"a {role} token belongs to no authority", "omit authority_code"
        )
    token = new_token(role)
    token_id = uuid.uuid4()

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        if authority_code is not None:
            # FOR SHARE: a deactivation committing meanwhile waits for this issue, or
            # this issue sees the authority inactive; never a token of a dead authority.
            active = await conn.fetchval(
                "SELECT active FROM authorities WHERE code = $1 FOR SHARE", authority_code
            )
            if active is None:
                raise InvalidInput(
                    "authority_code",
                    f"no authority with code {authority_code}",
                    "the code of an active authority (registry authorities list)",
                )
            if not active:
                raise InvalidInput(
                    "authority_code",
                    f"authority {authority_code} is deactivated",
                    "the code of an active authority (registry authorities list)",
                )
        try:
            row = required(
                await conn.fetchrow(
                    "INSERT INTO api_tokens (id, name, role, token_hash, prefix, created_at,"
                    " created_by, log_index, authority_code)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                    token_id,
                    clean,
                    role,
                    hash_token(token),
                    token[: len(role) + 9],
                    now,
                    actor,
                    index,
                    authority_code,
                )
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                f"a live {role} token is already named {clean!r}; choose another name or "
                "revoke that token first",
                field="name",
            ) from None
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
        "SELECT t.id, t.name, t.role, t.authority_code, coalesce(a.active, true) AS active"
        " FROM api_tokens t LEFT JOIN authorities a ON a.code = t.authority_code"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        hash_token(token),
    )
    if row is None:
        return None
    return Principal(row["id"], row["name"], row["role"], row["authority_code"], row["active"])


async def list_tokens(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, name, role, authority_code, prefix, created_at, created_by, revoked_at,"
        " revoked_by, log_index FROM api_tokens ORDER BY created_at, id"
    )
    return rows
