"""Authorities: the public bodies that record decisions in the registry.

Xining's plan (寧政〔2018〕92號, item 17) puts the venture-capital credit system in the
hands of 市發改委 and the member units of the city's social-credit leading group. Each
is an authority here: its GB 32100 unified social credit code (a government body's
starts with ``11``: registration authority 1 機構編制, category 1 機關) and its name.
Admins add and deactivate them; every regulator token belongs to one
(registry/tokens.py), and the deciding authority of a record is its token's
(registry/credit/ownership.py).

Authorities are audited objects (``authority.add``, ``authority.deactivate``) and
never deleted. Deactivating one refuses its tokens at once: the change announces
each live token of the authority on the revocation channel in the same
transaction, so every server's token cache drops them on commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from registry.clock import Clock
from registry.db.types import Conn, required
from registry.db.writes import Written, audited_write
from registry.errors import Conflict, InvalidInput, NotFound
from registry.identifiers import validate_credit_code
from registry.text import clean_text
from registry.tokens import REVOKED_CHANNEL

GOVERNMENT_PREFIX = "11"
_CODE_ACCEPTED = (
    "the authority's unified social credit code: 18 characters starting with 11 "
    "(a government body), with a valid GB 32100 check character"
)

# Tests, the development start and the README use this one; it is a valid code
# (check character included) that names no real body.
DEVELOPMENT_AUTHORITY = ("11630100MB0000000T", "开发用机关（仅限开发环境）")


def validate_authority_code(value: str, field: str = "code") -> str:
    """The normalised code of a government body, or InvalidInput naming ``field``."""
    code = validate_credit_code(value, field)
    if not code.startswith(GOVERNMENT_PREFIX):
        raise InvalidInput(
            field,
            f"{code} is not a government body's code (it starts with {code[:2]}, not 11)",
            _CODE_ACCEPTED,
        )
    return code


def _name(value: str) -> str:
    """The official name as stored: one line of visible text (registry/text.py), 1–200 characters."""
    return clean_text(value, "name", required=True, max_length=200)


async def add_authority(
    pool: asyncpg.Pool, clock: Clock, *, code: str, name: str, actor: str
) -> Written:
    """Register an authority (active); 409 if its code is registered already."""
    clean_code = validate_authority_code(code)
    clean_name = _name(name)
    authority_id = uuid.uuid4()

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        try:
            row = required(
                await conn.fetchrow(
                    "INSERT INTO authorities (id, code, name, active, version, created_at,"
                    " created_by, updated_at, updated_by, log_index)"
                    " VALUES ($1, $2, $3, true, 1, $4, $5, $4, $5, $6) RETURNING *",
                    authority_id,
                    clean_code,
                    clean_name,
                    now,
                    actor,
                    index,
                )
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                f"an authority with code {clean_code} is registered already", field="code"
            ) from None
        return row

    return await audited_write(
        pool, clock, actor=actor, action="authority.add", object_type="authority", write=write
    )


async def deactivate_authority(
    pool: asyncpg.Pool, clock: Clock, *, code: str, actor: str
) -> tuple[Written, list[uuid.UUID]]:
    """Deactivate an authority; returns it and the ids of its live tokens, now refused.

    The caller drops those ids from its own token cache after the commit
    (``TokenCache.forget``); other processes hear of them on the revocation channel.
    """
    clean_code = validate_authority_code(code)
    refused: list[uuid.UUID] = []

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = await conn.fetchrow(
            "UPDATE authorities SET active = false, version = version + 1, updated_at = $2,"
            " updated_by = $3, log_index = $4 WHERE code = $1 AND active RETURNING *",
            clean_code,
            now,
            actor,
            index,
        )
        if row is None:
            exists = await conn.fetchval("SELECT 1 FROM authorities WHERE code = $1", clean_code)
            if exists:
                raise Conflict(f"authority {clean_code} is deactivated already")
            raise NotFound(f"no authority with code {clean_code}")
        tokens = await conn.fetch(
            "SELECT id FROM api_tokens WHERE authority_code = $1 AND revoked_at IS NULL",
            clean_code,
        )
        for token in tokens:
            refused.append(token["id"])
            # Transactional, like a revocation: heard on commit, never on a rollback.
            await conn.execute("SELECT pg_notify($1, $2)", REVOKED_CHANNEL, str(token["id"]))
        return row

    written = await audited_write(
        pool,
        clock,
        actor=actor,
        action="authority.deactivate",
        object_type="authority",
        write=write,
    )
    return written, refused


async def list_authorities(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT a.*, (SELECT count(*) FROM api_tokens t WHERE t.authority_code = a.code"
        " AND t.revoked_at IS NULL) AS live_tokens FROM authorities a ORDER BY a.code"
    )
    return rows


async def authority_name(conn: Conn | asyncpg.Pool, code: str | None) -> str | None:
    """The registered name of ``code`` (None if unknown): for messages and stored records."""
    if code is None:
        return None
    name: str | None = await conn.fetchval("SELECT name FROM authorities WHERE code = $1", code)
    return name
