"""``Idempotency-Key``: a retried write gets the first answer, never a second write.

A key belongs to the token that sent it: the same key from two tokens is two requests.
For one (token, key):

- The answer is stored in the write's own transaction, beside the change and its
  leaves: the key row is inserted first (under the table's primary key), the work
  runs joined to that transaction (``write_transaction(ambient=True)``, so a use case
  written for its own transaction commits with it), and the answer is stored before
  the commit. Either the change, its leaves and the stored answer all commit, or none
  of them does.
- Only a write that commits uses the key. A request refused with any 4xx (invalid
  input, forbidden, not found, a conflict) or failing any other way rolls back, the
  key with it: the corrected request with the same key runs.
- A retry with the same request replays the stored answer (the same status and body,
  with the header ``Idempotent-Replayed: true``); with a different request it is
  refused (422 naming ``Idempotency-Key``).
- Concurrent requests with one key never both write: the second one's insert of the
  key row waits on the primary key for the first transaction to end. If it commits,
  the second replays its answer; if it rolls back, the second runs. A second request
  that waited 5 s (``_KEY_WAIT``) gets 409: the first is still running, retry shortly.

Receipts: a receipt's checkpoint can only be signed after the commit, so the stored
body is the answer without ``receipt``; the leaf the receipt names and the write's
last leaf are stored beside it, and the checkpoint is added after the commit (at
most once: a replay sends the same one, byte for byte).

Crash behaviour: a crash (or any exception) before the commit leaves nothing: no
change, no leaf, no key; the retry runs as a first request. A crash after the commit
leaves the change and its answer: the retry replays it. If the crash came before
the checkpoint was stored, the replay fetches a checkpoint that includes the write's
leaves and stores it. No key is ever left claimed without an answer.

Keys written by the previous release stay as stored: their bodies already hold the
receipt (schema/0012_idempotency_in_the_write.sql dropped its stored refusals and
unanswered claims).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from registry.db.types import Conn
from registry.db.writes import last_leaf, write_transaction
from registry.errors import Conflict, InvalidInput
from registry.services import Services

MAX_KEY = 200
# How long a request waits for another request with its key to end before a 409.
_KEY_WAIT = "5s"


@dataclass(frozen=True)
class Answer:
    """What a write answers: ``body`` is a JSON object without its ``receipt``, which is
    added after the commit for the leaf ``log_index`` (None: the answer has no receipt)."""

    status: int
    body: bytes
    log_index: int | None = None


@dataclass(frozen=True)
class Sent:
    status: int
    body: bytes
    replayed: bool


Work = Callable[[Conn], Awaitable[Answer]]


async def run_once(
    services: Services,
    token_id: uuid.UUID,
    key: str | None,
    request: bytes,
    work: Work,
) -> Sent:
    """Run ``work`` in one write transaction, at most once per (token, key) and ``request``.

    ``work`` gets the transaction's connection; every audited write it makes joins that
    transaction, with or without ``conn=``. It must not wait for a receipt (the write
    is not committed yet): it returns the answer and the leaf for its receipt. Refusals
    are raised as usual (``RegistryError``): they roll back and use up nothing.
    """
    if key is None:
        async with write_transaction(services.pool, ambient=True) as conn:
            answer = await work(conn)
            through = await last_leaf(conn) if answer.log_index is not None else None
        body = answer.body
        if answer.log_index is not None and through is not None:
            receipt = await services.receipt(through)
            body = _with_receipt(body, answer.log_index, receipt.checkpoint)
        return Sent(answer.status, body, replayed=False)
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidInput("Idempotency-Key", "must be 1–200 printable characters",
                           "a unique value per logical request, e.g. a UUID", source="header")
    digest = hashlib.sha256(request).digest()
    earlier = await services.pool.fetchrow(_READ, token_id, key)
    if earlier is None:
        async with write_transaction(services.pool, ambient=True) as conn:
            # Waits while another transaction holds this key; bounded (see _KEY_WAIT).
            await conn.execute(f"SET LOCAL lock_timeout = '{_KEY_WAIT}'")
            try:
                claimed = await conn.fetchval(
                    "INSERT INTO idempotency_keys (token_id, key, request_hash, created_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                    token_id, key, digest, services.clock.now())
            except asyncpg.LockNotAvailableError:
                raise _still_running() from None
            if claimed:
                answer = await work(conn)
                through = await last_leaf(conn) if answer.log_index is not None else None
                await conn.execute(
                    "UPDATE idempotency_keys SET status = $3, body = $4, receipt_index = $5,"
                    " through_index = $6 WHERE token_id = $1 AND key = $2",
                    token_id, key, answer.status, answer.body, answer.log_index, through)
            else:
                # The other request committed first: this transaction writes nothing.
                earlier = await conn.fetchrow(_READ, token_id, key)
                if earlier is None:  # its row is gone again (removed by hand)
                    raise _still_running()
        if earlier is None:
            return Sent(answer.status, await _sendable(services, token_id, key, answer.body,
                                                       answer.log_index, through, None),
                        replayed=False)
    if bytes(earlier["request_hash"]) != digest:
        raise InvalidInput("Idempotency-Key", "was already used for a different request",
                           "a new key for a new request; the same key only to retry it unchanged",
                           source="header")
    if earlier["status"] is None:  # an unanswered claim of the previous release
        raise _still_running()
    body = await _sendable(services, token_id, key, bytes(earlier["body"]),
                           earlier["receipt_index"], earlier["through_index"],
                           earlier["checkpoint"])
    return Sent(earlier["status"], body, replayed=True)


_READ = ("SELECT request_hash, status, body, receipt_index, through_index, checkpoint"
         " FROM idempotency_keys WHERE token_id = $1 AND key = $2")


def _still_running() -> Conflict:
    return Conflict("the first request with this Idempotency-Key is still running; retry "
                    "shortly", field="Idempotency-Key")


async def _sendable(
    services: Services,
    token_id: uuid.UUID,
    key: str,
    body: bytes,
    receipt_index: int | None,
    through_index: int | None,
    checkpoint: str | None,
) -> bytes:
    """The stored body as sent: with its receipt, whose checkpoint is fixed the first
    time it is known (a crash before that: the next replay fixes it)."""
    if receipt_index is None or through_index is None:
        return body
    if checkpoint is None:
        signed = await services.receipt(through_index)
        # The first checkpoint stored wins, so the first answer and every replay agree.
        checkpoint = await services.pool.fetchval(
            "UPDATE idempotency_keys SET checkpoint = coalesce(checkpoint, $3)"
            " WHERE token_id = $1 AND key = $2 RETURNING checkpoint",
            token_id, key, signed.checkpoint) or signed.checkpoint
    return _with_receipt(body, receipt_index, checkpoint)


def _with_receipt(body: bytes, log_index: int, checkpoint: str) -> bytes:
    data: dict[str, Any] = msgspec.json.decode(body)
    data["receipt"] = {"log_index": log_index, "checkpoint": checkpoint}
    return msgspec.json.encode(data)
