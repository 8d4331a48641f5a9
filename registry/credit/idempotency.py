"""``Idempotency-Key``: a retried request gets the first answer, never a second write.

Per (token, key): the first request claims the key (committed at once, before
the work), runs, and stores its status and body. A retry with the same request
replays them; with a different request it is refused (422); while the first is
still running it gets 409 (retry shortly). Error answers (4xx) are stored too,
so a retry sees the same refusal. If the work raises something unexpected the
claim is released. If the process dies between the write and storing the
answer, the key stays claimed without an answer and retries get 409: the lead
must resolve such keys by hand (documented limitation).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable

from registry.errors import Conflict, InvalidInput, RegistryError
from registry.services import Services

MAX_KEY = 200


async def run_once(
    services: Services,
    token_id: uuid.UUID,
    key: str | None,
    request: bytes,
    work: Callable[[], Awaitable[tuple[int, bytes]]],
    error_body: Callable[[RegistryError], bytes],
) -> tuple[int, bytes, bool]:
    """(status, body, replayed). Without a key just runs ``work``."""
    if key is None:
        status, body = await work()
        return status, body, False
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidInput("Idempotency-Key", "must be 1–200 printable characters",
                           "a unique value per logical request, e.g. a UUID")
    digest = hashlib.sha256(request).digest()
    claimed = await services.pool.fetchval(
        "INSERT INTO idempotency_keys (token_id, key, request_hash, created_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
        token_id, key, digest, services.clock.now())
    if not claimed:
        row = await services.pool.fetchrow(
            "SELECT request_hash, status, body FROM idempotency_keys WHERE token_id = $1 AND key = $2",
            token_id, key)
        assert row is not None
        if bytes(row["request_hash"]) != digest:
            raise InvalidInput("Idempotency-Key", "was already used for a different request",
                               "a new key for a new request; the same key only to retry it unchanged")
        if row["status"] is None:
            raise Conflict("the first request with this Idempotency-Key is still running; "
                           "retry shortly", field="Idempotency-Key")
        return row["status"], bytes(row["body"]), True
    try:
        status, body = await work()
    except RegistryError as error:
        status, body = error.status, error_body(error)
    except BaseException:
        await services.pool.execute(
            "DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2", token_id, key)
        raise
    await services.pool.execute(
        "UPDATE idempotency_keys SET status = $3, body = $4 WHERE token_id = $1 AND key = $2",
        token_id, key, status, body)
    return status, body, False
