"""Live bearer tokens kept in memory, each dropped the moment its revocation is heard.

Invariant: entries are served only while the app's database listener
(registry/db/listener.py) is LISTENing on ``tokens.REVOKED_CHANNEL``, where
``revoke_token`` announces every committed revocation (and only committed ones).
Whenever the listener is not known to be listening (not yet connected, connection
lost, a ping unanswered) the cache is empty and off, and every request asks the
database as it did before the cache existed: slower, never wrong.

What "revoked at once" means with the cache:
- in the process that revokes: the next request (the handler calls ``forget``
  after the commit, before it answers; it does not wait for its own notification);
- in any other process: when the notification arrives, a few milliseconds
  after the commit (docs/architecture.md); if the listener's connection dies
  silently, when its ping finds out (4 s at worst by default).

Only positive answers are cached: an unknown token is asked of the database
every time, so a token issued a moment ago, in any process, works at once.

All state is touched only from the event loop's thread, so no locks: a check
and the write after it cannot interleave unless there is an ``await`` between.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import asyncpg
import structlog

from registry.db.listener import DatabaseListener
from registry.tokens import REVOKED_CHANNEL, Principal, authenticate, hash_token

log = structlog.get_logger(__name__)

Lookup: TypeAlias = Callable[[asyncpg.Pool, str], Awaitable[Principal | None]]


class TokenCache:
    """token hash → ``Principal`` of live tokens, for as long as revocations can be heard.

    Bounded by ``max_entries``; when full, the entry cached first is dropped (insertion
    order, not recency). Only live tokens get in, so the bound is never reached by
    guessing: it is a backstop, and the simplest eviction that stays O(1) is enough.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        listener: DatabaseListener,
        *,
        max_entries: int = 10_000,
        lookup: Lookup = authenticate,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"token cache max_entries must be >= 1, got {max_entries}")
        self._pool = pool
        self._lookup = lookup
        self._max_entries = max_entries
        self._entries: dict[bytes, Principal] = {}
        self._hash_of: dict[uuid.UUID, bytes] = {}
        # Bumped by everything that drops entries (a revocation, a clear, off, on). A
        # database answer is cached only if it is unchanged since before the read: a
        # revocation heard while the read was in flight may concern that very answer.
        self._generation = 0
        self._enabled = False
        # Counters for tests and operators; none of them carries token material.
        self.hits = 0
        self.misses = 0
        self.heard = 0
        self.forgotten = 0
        self.disables = 0
        listener.subscribe(
            REVOKED_CHANNEL, self._on_revoked, on_up=self._enable, on_down=self._disable
        )

    @property
    def enabled(self) -> bool:
        return self._enabled

    def __len__(self) -> int:
        return len(self._entries)

    async def authenticate(self, token: str) -> Principal | None:
        """The holder of a live token, or None: from memory when it may, else the database."""
        key = hash_token(token)
        if self._enabled:
            cached = self._entries.get(key)
            if cached is not None:
                self.hits += 1
                return cached
        self.misses += 1
        generation = self._generation
        principal = await self._lookup(self._pool, token)
        # A changed generation: something was revoked (or the listener came or went)
        # during the read. The answer still serves this request, which began before,
        # exactly as without a cache; it is not kept for the next one.
        if principal is not None and self._enabled and generation == self._generation:
            self._store(key, principal)
        return principal

    def forget(self, token_id: uuid.UUID) -> None:
        """Drop ``token_id`` now. Called by whoever revoked it in this process, after the commit."""
        self.forgotten += 1
        self._drop(token_id)

    # ---- entries ---------------------------------------------------------------------

    def _store(self, key: bytes, principal: Principal) -> None:
        if key not in self._entries and len(self._entries) >= self._max_entries:
            oldest = next(iter(self._entries))
            del self._hash_of[self._entries.pop(oldest).token_id]
        self._entries[key] = principal
        self._hash_of[principal.token_id] = key

    def _drop(self, token_id: uuid.UUID) -> None:
        self._generation += 1
        key = self._hash_of.pop(token_id, None)
        if key is not None:
            del self._entries[key]

    def _clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._hash_of.clear()

    def _enable(self) -> None:
        # Entries from before are not trusted: revocations may have gone unheard meanwhile.
        self._clear()
        self._enabled = True
        log.info("token_cache_enabled")

    def _disable(self, reason: str) -> None:
        was_enabled = self._enabled
        self._enabled = False
        self._clear()
        if not was_enabled:
            return
        self.disables += 1
        if reason == "closed":
            log.info("token_cache_disabled", reason=reason)
        else:
            log.warning("token_cache_disabled", reason=reason)

    def _on_revoked(self, payload: str) -> None:
        self.heard += 1
        try:
            token_id = uuid.UUID(payload)
        except ValueError:
            # Not a token id (someone else's NOTIFY?): forgetting everything is always safe.
            log.warning("token_revocation_unreadable", payload_chars=len(payload))
            self._clear()
            return
        self._drop(token_id)
