"""A subject's full credit history: every audited version of everything filed against it."""

from __future__ import annotations

import uuid

import asyncpg

from registry.errors import NotFound
from registry.services import Services


async def subject_credit_history(services: Services, subject_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every version of the subject's records, listings, objections and repairs, in log order.

    Rows carry object_type, object_id, log_index, the leaf and the stored body
    (canonical JSON of the row at that version).
    """
    if not await services.pool.fetchval("SELECT 1 FROM subjects WHERE id = $1", subject_id):
        raise NotFound(f"no subject with id {subject_id}")
    rows: list[asyncpg.Record] = await services.pool.fetch(
        """
        WITH owned (object_type, object_id) AS (
            SELECT 'credit_record', id::text FROM credit_records WHERE subject_id = $1
            UNION ALL SELECT 'blacklist_entry', id::text FROM blacklist_entries WHERE subject_id = $1
            UNION ALL SELECT 'objection', id::text FROM objections WHERE subject_id = $1
            UNION ALL SELECT 'repair', id::text FROM repairs WHERE subject_id = $1
        )
        SELECT o.object_type, o.object_id, o.log_index, o.body, l.leaf
        FROM owned w
        JOIN tlog_objects o ON o.object_type = w.object_type AND o.object_id = w.object_id
        JOIN tlog_leaves l ON l.idx = o.log_index
        ORDER BY o.log_index
        """,
        subject_id,
    )
    return rows
