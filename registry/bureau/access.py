"""Access accounting: who asked about a practitioner, when, why, and what the answer disclosed.

Fails closed. An answer about a practitioner (a bureau's profile or lookup, a
change-feed page carrying them, a regulator's read or lookup of a clear document
number) is sent only after its access row is committed: handlers ``await recorder.record(...)`` before they
answer, and if the row cannot be written within ``wait`` seconds the request is
answered 503 (``Unavailable``, Retry-After) instead of the data. What a crash can
lose is therefore only rows of answers that were never sent. The reverse can
happen: a row whose commit landed but whose acknowledgement was lost, or that was
already being written when its caller gave up, accounts for an answer refused.
Over-reporting an access is the safe side.

Rows are still written in batches, one ``COPY`` each (registry/db/batches.py), which
is what keeps bulk lookups fast: a waiter wakes the writer at once, and rows that
arrive while a ``COPY`` runs go in the next one (group commit), so an answer waits
about one ``COPY``, not the 100 ms tick.

Lookups by document that disclosed nobody (no such person, or a minor answered as
unknown) are recorded too, with the document type and the keyed lookup hash the
subjects table is indexed by (``PiiCipher.lookup_hash``), never the number: once that
person is registered, their listing shows who looked for them. Invalid identifiers
and organisations (credit codes are not personal data) are not recorded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
import structlog

from registry.db.batches import BatchError, BatchWriter, Row
from registry.db.types import Conn
from registry.errors import NotFound, Unavailable
from registry.identifiers import validate_document
from registry.services import Services
from registry.tokens import Principal

log = structlog.get_logger(__name__)

COLUMNS = (
    "at",
    "token_id",
    "token_name",
    "role",
    "authority_code",
    "subject_id",
    "found",
    "document_type",
    "document_lookup",
    "purpose",
    "channel",
)
# The schema's CHECKs, said again here so that a wrong row fails its own request
# instead of the shared COPY of everyone else's (schema/0009_access_records.sql).
ROLES = ("bureau", "regulator")
# ``feed``: one row per practitioner a change-feed page discloses (registry/bureau/feed.py).
CHANNELS = ("profile", "lookup", "bulk", "feed", "regulator_read", "regulator_lookup")

# Why a regulator reads a practitioner's clear document number; "supervision" when
# not said. A fixed list (the API documents it as an enum), unlike bureaus' purposes,
# which are policy.
RegulatorPurpose = Literal[
    "supervision", "enforcement", "objection_review", "credit_repair", "subject_request"
]

# How long an answer waits for its row before it is refused: well above one COPY
# (milliseconds), well below a client's patience.
WAIT_SECONDS = 3.0
RETRY_AFTER_SECONDS = 2


@dataclass(frozen=True)
class Access:
    """One access to account for, by ``who``. ``found``: the answer disclosed the person.
    ``document``: (type, keyed lookup hash) of a lookup by document that disclosed
    nobody; set on exactly those rows, which may still name a subject (a minor)."""

    who: Principal
    at: datetime
    purpose: str
    channel: str
    subject_id: uuid.UUID | None = None
    found: bool = True
    document: tuple[str, bytes] | None = None

    def __post_init__(self) -> None:
        regulator_channel = self.channel.startswith("regulator_")
        if (
            self.who.role not in ROLES
            or self.channel not in CHANNELS
            or (self.who.role == "regulator") != regulator_channel
        ):
            raise ValueError(f"no access channel {self.channel!r} for role {self.who.role!r}")
        if (self.document is None) != self.found:
            raise ValueError("a document is recorded exactly when nobody was disclosed")
        if self.found and self.subject_id is None:
            raise ValueError("an access that disclosed someone names them")

    def row(self) -> Row:
        doc_type, lookup = self.document if self.document is not None else (None, None)
        return (
            self.at,
            self.who.token_id,
            self.who.name,
            self.who.role,
            # Read so, not as a field: Principal gains its authority in a parallel change.
            getattr(self.who, "authority_code", None),
            self.subject_id,
            self.found,
            doc_type,
            lookup,
            self.purpose,
            self.channel,
        )


def document_key(services: Services, document_type: str, number: str) -> tuple[str, bytes]:
    """(type, keyed lookup hash) of a document as the subjects table indexes it.
    Raises ``InvalidInput`` for an invalid document (never recorded)."""
    doc_type, normalised = validate_document(document_type, number)
    return str(doc_type), services.pii.lookup_hash(str(doc_type), normalised)


async def _copy(conn: Conn, rows: list[Row]) -> None:
    await conn.copy_records_to_table("bureau_access", records=rows, columns=COLUMNS)


class AccessRecorder(BatchWriter):
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval: float = 0.1,
        max_buffer: int = 100_000,
        wait: float = WAIT_SECONDS,
    ) -> None:
        super().__init__(
            pool,
            _copy,
            name="bureau_access",
            # Every row here has a waiter, who was told of a failure and refused its
            # answer: nothing to retry.
            keep_failed=False,
            # Only the idle tick: each waiter wakes the writer itself.
            interval=interval,
            max_buffer=max_buffer,
        )
        self.wait = wait

    def record(self, accesses: Sequence[Access]) -> Awaitable[None]:
        """Queue ``accesses`` now; awaiting the result returns once they are committed,
        or raises ``Unavailable`` (the caller must then not send what they account for).
        The rows of one call are committed together."""
        return self._durable(self.add_durable([a.row() for a in accesses]), len(accesses))

    async def _durable(self, committed: asyncio.Future[None], rows: int) -> None:
        try:
            # On timeout (or if this request is cancelled) the future is cancelled,
            # which withdraws rows not yet taken by a write.
            await asyncio.wait_for(committed, self.wait)
        except TimeoutError:
            log.warning("bureau_access_timeout", rows=rows, wait_s=self.wait)
            raise Unavailable(
                "couldn't record this access in time; nothing was disclosed, retry shortly",
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        except BatchError as error:
            log.warning("bureau_access_failed", rows=rows, error=str(error))
            raise Unavailable(
                "couldn't record this access; nothing was disclosed, retry shortly",
                retry_after=RETRY_AFTER_SECONDS,
            ) from error


async def list_access(
    pool: asyncpg.Pool,
    *,
    token_id: uuid.UUID | None,
    after: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM bureau_access WHERE ($1::uuid IS NULL OR token_id = $1)"
        " AND ($2::bigint IS NULL OR id > $2) ORDER BY id LIMIT $3",
        token_id,
        after,
        limit,
    )
    return rows


# Rows naming the subject, and lookups for their current document that disclosed
# nobody (before they were registered, or while a minor); each branch an index range
# scan in id order, the second skipping rows the first already has.
_FOR_SUBJECT = """
SELECT * FROM (
    (SELECT * FROM bureau_access WHERE subject_id = $1 AND ($4::bigint IS NULL OR id > $4)
     ORDER BY id LIMIT $5)
    UNION ALL
    (SELECT * FROM bureau_access
     WHERE document_type = $2 AND document_lookup = $3 AND document_lookup IS NOT NULL
       AND subject_id IS DISTINCT FROM $1 AND ($4::bigint IS NULL OR id > $4)
     ORDER BY id LIMIT $5)
) AS accesses ORDER BY id LIMIT $5"""


async def list_for_subject(
    pool: asyncpg.Pool, subject_id: uuid.UUID, *, after: int | None, limit: int
) -> list[asyncpg.Record]:
    """Every access to this subject, oldest first. Raises ``NotFound`` if no such subject."""
    async with pool.acquire() as conn:
        subject = await conn.fetchrow(
            "SELECT document_type, document_lookup FROM subjects WHERE id = $1", subject_id
        )
        if subject is None:
            raise NotFound(f"no subject with id {subject_id}")
        rows: list[asyncpg.Record] = await conn.fetch(
            _FOR_SUBJECT,
            subject_id,
            subject["document_type"],
            subject["document_lookup"],
            after,
            limit,
        )
    return rows
