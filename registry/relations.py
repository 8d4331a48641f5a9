"""Relations between two subjects that hold for a span of days: the rules they share.

A practitioner's affiliation with an organisation (registry/subjects.py) and a firm's
fund manager (registry/fund_managers.py) are both audited rows that join two subjects
from ``valid_from`` to ``valid_to``, both days included (NULL: no end recorded yet).
What is the same for both lives here, once: which spans are accepted, and ending one.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

from registry.db.audit import TABLE_OF
from registry.db.types import Conn
from registry.db.writes import Written, audited_write
from registry.domain.record_rules import DATE_FLOOR, check_end_date
from registry.errors import Conflict, InvalidInput, NotFound
from registry.services import Services


def check_span(valid_from: date, valid_to: date | None) -> None:
    """A relation starts on ``DATE_FLOOR`` or later and, if it ends, ends on or after its
    start and within ``record_rules.END_HORIZON_YEARS`` of it (422 naming the day)."""
    if valid_from < DATE_FLOOR:
        raise InvalidInput("valid_from", f"{valid_from.isoformat()} is before {DATE_FLOOR}",
                           f"a date from {DATE_FLOOR.isoformat()}")
    check_end_date("valid_to", valid_to, "valid_from", valid_from)


async def end_relation(
    services: Services,
    actor: str,
    *,
    object_type: str,
    noun: str,
    relation_id: uuid.UUID,
    valid_to: date,
    if_ended: str = "",
) -> Written:
    """Set the end day of an open relation of ``object_type`` (its table: ``TABLE_OF``):
    one change, one leaf, action ``<object_type>.end``. 404 if there is none, 409 if it
    already ended (``if_ended`` says what to do instead), 422 for a day ``check_span``
    refuses. The UPDATE matches only a row still open, so of two racing ends one wins
    and the other is a 409."""
    table = TABLE_OF[object_type]
    current = await services.pool.fetchrow(
        f"SELECT * FROM {table} WHERE id = $1", relation_id  # noqa: S608 - name from TABLE_OF
    )
    if current is None:
        raise NotFound(f"no {noun} with id {relation_id}")
    if current["valid_to"] is not None:
        raise Conflict(f"{noun} {relation_id} already ended on {current['valid_to']}{if_ended}")
    check_end_date("valid_to", valid_to, "valid_from", current["valid_from"])
    sql = (
        f"UPDATE {table} SET valid_to = $2, version = version + 1, updated_at = $3,"  # noqa: S608 - name from TABLE_OF
        " updated_by = $4, log_index = $5 WHERE id = $1 AND valid_to IS NULL RETURNING *"
    )

    async def write(conn: Conn, index: int, now: datetime) -> asyncpg.Record:
        row = await conn.fetchrow(sql, relation_id, valid_to, now, actor, index)
        if row is None:
            raise Conflict(f"{noun} {relation_id} changed meanwhile; read it again")
        return row

    return await audited_write(
        services.pool,
        services.clock,
        actor=actor,
        action=f"{object_type}.end",
        object_type=object_type,
        write=write,
    )
