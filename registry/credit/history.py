"""Credit objects' audited versions: a subject's full history, and any table as of a moment.

Every version of an audited object is kept in ``tlog_objects`` (its ``body``: the
canonical JSON of the whole row as written, less ``log_index``, which is the leaf's
own index), committed with its leaf in ``tlog_leaves`` (whose ``created_at`` is the
moment of the write). Nothing is ever deleted, so the state of any table at any
past moment can be rebuilt from them (``versions_as_of_sql``).
"""

from __future__ import annotations

import uuid
from types import MappingProxyType
from typing import Final

import asyncpg

from registry.db.audit import TABLE_OF
from registry.errors import NotFound
from registry.services import Services

# bytea columns per object type: a stored body holds them base64 (tlog.leaf._plain).
_BINARY: Final = MappingProxyType({
    "subject": ("document_cipher", "document_lookup", "birth_date_cipher"),
})


def versions_as_of_sql(object_type: str, moment: str) -> str:
    """A derived table with the columns of ``object_type``'s table (``TABLE_OF``): for each
    object, its version current at ``moment`` (the SQL of a timestamptz, e.g. ``$2``), the
    one with the highest log index among those written (leaf ``created_at``) by then. An
    object first written after ``moment`` has no row. ``log_index`` is that version's.

    An object whose current version was written by ``moment`` is its table's row as it is
    (nearly all of them, read as cheaply as the table itself); only one changed since is
    rebuilt, from the stored body of its version of then (an index probe, then
    ``jsonb_populate_record``, so each column has its table's type; a column the body
    lacks, added later and NULL then, is NULL).
    """
    table = TABLE_OF[object_type]
    doc = "convert_from(v.body, 'UTF8')::jsonb"
    binary = "".join(
        f" || jsonb_build_object('{c}', '\\x' || encode(decode({doc} ->> '{c}', 'base64'), 'hex'))"
        for c in _BINARY.get(object_type, ())
    )
    return (
        f"(SELECT t.* FROM {table} t JOIN tlog_leaves l ON l.idx = t.log_index"  # noqa: S608 - fixed names
        f" WHERE l.created_at <= {moment}"
        " UNION ALL"
        f" SELECT x.* FROM {table} t JOIN tlog_leaves l ON l.idx = t.log_index"
        " CROSS JOIN LATERAL (SELECT o.log_index, o.body FROM tlog_objects o"
        " JOIN tlog_leaves ol ON ol.idx = o.log_index"
        f" WHERE o.object_type = '{object_type}' AND o.object_id = t.id::text"
        f" AND ol.created_at <= {moment} ORDER BY o.log_index DESC LIMIT 1) v"
        f" CROSS JOIN LATERAL jsonb_populate_record(NULL::{table},"
        f" {doc} || jsonb_build_object('log_index', v.log_index){binary}) x"
        f" WHERE l.created_at > {moment})"
    )


async def subject_credit_history(services: Services, subject_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every version of the subject's records, listings, objections and repairs, and of the
    fund-manager relations it is part of (as firm or as manager), in log order.

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
            UNION ALL SELECT 'fund_manager', id::text FROM fund_managers
                WHERE firm_id = $1 OR manager_id = $1
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
