"""Key rotation: a new key signs from now on; the old one stays published with its window.

The rotation itself is a log leaf (``key.rotate``) committing to the new key's
row, and the next checkpoint is signed by the new key, so a verifier that pins
the old key sees the hand-over in the log it already trusts.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from registry.clock import Clock
from registry.db.types import Conn, required
from registry.db.writes import audited_write
from registry.keys import LogKey, rotate_log_key
from registry.settings import Settings
from registry.tlog.integrator import integrate_once


async def rotate(
    pool: asyncpg.Pool, clock: Clock, settings: Settings, old: LogKey, *, actor: str
) -> tuple[LogKey, int]:
    new, retired_path = rotate_log_key(settings)
    try:

        async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
            current = await conn.fetchval(
                "SELECT verifier_key FROM tlog_keys WHERE valid_until IS NULL FOR UPDATE"
            )
            if current != old.verifier:
                raise RuntimeError(
                    f"the log's current key is {current}, not the key file's {old.verifier}"
                )
            await conn.execute(
                "UPDATE tlog_keys SET valid_until = $1, retired_by = $2 WHERE verifier_key = $3",
                now,
                new.verifier,
                old.verifier,
            )
            row = required(
                await conn.fetchrow(
                    "INSERT INTO tlog_keys (verifier_key, key_name, public_key, valid_from)"
                    " VALUES ($1, $2, $3, $4) RETURNING verifier_key, key_name, public_key, valid_from,"
                    " $5::uuid AS id",
                    new.verifier,
                    settings.log_origin,
                    new.public_key,
                    now,
                    uuid.uuid5(uuid.NAMESPACE_URL, new.verifier),
                )
            )
            return row

        written = await audited_write(
            pool, clock, actor=actor, action="key.rotate", object_type="log_key", write=write
        )
    except BaseException:
        # Nothing was published: put the old key file back so the log keeps a usable key.
        settings.log_key_path.unlink(missing_ok=True)
        retired_path.rename(settings.log_key_path)
        raise
    async with pool.acquire() as conn:
        await integrate_once(conn, new, settings.log_origin)
    return new, written.log_index
