"""Many new credit records in one transaction, at the database's pace (``registry import``).

``create_records`` applies to each record exactly the rules ``records.create_record``
applies (the deciding authority from the token, ``normalise``, the publicity window), and
writes what passed with a fixed number of statements whatever the number of records: one
pipelined INSERT of them all (each with its spelled decision number, by which the search
finds it: registry/search.py), one read of what was stored, and one statement for all
their leaves (``db.audit.record_many``). Written one by one, each record cost about ten
round trips to the database; an import's batch of 200 spent almost all its time waiting
on them.

A record whose decision number the authority recorded meanwhile (another import, the
API) is not written and comes back as the same ``Conflict`` ``create_record`` raises.
Any other refusal by the database (a value out of a column's range, say) raises out of
``create_records``: its caller rolls the batch back and writes it record by record, so
that only the refused record is lost (registry/imports/runner.py).

Crash points: all of it runs in the caller's write transaction; until that commits,
nothing of it exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from registry.clock import today
from registry.credit.ownership import Acting
from registry.credit.records import (
    DUPLICATE_DECISION,
    deciding_registered,
    in_the_name_of,
    new_record_values,
)
from registry.db.audit import PENDING_INDEX, record_many
from registry.db.types import Conn
from registry.db.writes import Written
from registry.errors import Conflict, InvalidInput, RegistryError
from registry.services import Services

# Columns every new record gets besides its values (as ``create_record`` writes them).
_STAMP = ("version", "created_at", "created_by", "updated_at", "updated_by", "log_index")


async def create_records(
    services: Services,
    who: Acting,
    items: Sequence[tuple[uuid.UUID, dict[str, Any]]],
    conn: Conn,
) -> list[Written | RegistryError]:
    """Write the records ``items`` (subject id, the API's fields) in the open write
    transaction on ``conn``, each with its own leaf, in the order given; for each item,
    what was written or why it was not (module docstring)."""
    if not conn.is_in_transaction():
        raise RuntimeError("create_records must run inside a write transaction")
    on = today(services.clock)
    now = services.clock.now()
    mine, registered = await deciding_registered(conn, who)
    codes: dict[uuid.UUID, str | None] = {
        row["id"]: row["credit_code"]
        for row in await conn.fetch(
            "SELECT id, credit_code FROM subjects WHERE id = ANY($1::uuid[])",
            list({subject_id for subject_id, _ in items}),
        )
    }
    outcomes: list[Written | RegistryError | None] = []
    prepared: list[tuple[int, uuid.UUID, dict[str, Any]]] = []
    for position, (subject_id, fields) in enumerate(items):
        try:
            values = _values(services, fields, mine, registered, subject_id, codes, on)
        except RegistryError as refusal:
            outcomes.append(refusal)
            continue
        outcomes.append(None)
        prepared.append((position, uuid.uuid4(), {"subject_id": subject_id, **values}))
    stored = await _insert(conn, prepared, now, who.actor)
    written = [(position, stored[record_id]) for position, record_id, _ in prepared
               if record_id in stored]
    for position, record_id, _ in prepared:
        if record_id not in stored:
            outcomes[position] = Conflict(DUPLICATE_DECISION, field="decision_number")
    appended = await record_many(
        conn, time=now, actor=who.actor, action="record.create", object_type="credit_record",
        rows=[row for _, row in written],
    )
    for (position, _), leaf in zip(written, appended, strict=True):
        assert leaf.row is not None
        outcomes[position] = Written(row=leaf.row, log_index=leaf.index)
    done = [outcome for outcome in outcomes if outcome is not None]
    if len(done) != len(items):
        raise RuntimeError("create_records lost track of a record")
    return done


def _values(
    services: Services,
    fields: dict[str, Any],
    mine: str,
    registered: str,
    subject_id: uuid.UUID,
    codes: dict[uuid.UUID, str | None],
    on: date,
) -> dict[str, Any]:
    """One record's column values, checked as ``create_record`` checks them."""
    fields = in_the_name_of(fields, mine, registered)
    if subject_id not in codes:
        raise InvalidInput("subject_id", "no such subject", "the id of a registered subject")
    return new_record_values(services, fields, on, codes[subject_id])


async def _insert(
    conn: Conn,
    prepared: list[tuple[int, uuid.UUID, dict[str, Any]]],
    now: datetime,
    actor: str,
) -> dict[uuid.UUID, asyncpg.Record]:
    """INSERT the records (one pipelined statement for each set of columns), those whose
    decision number is recorded already left out; the stored rows by id."""
    shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for _, record_id, values in prepared:
        shapes.setdefault(tuple(values), []).append(
            (record_id, *values.values(), 1, now, actor, now, actor, PENDING_INDEX)
        )
    for columns, rows in shapes.items():
        names = ("id", *columns, *_STAMP)
        await conn.executemany(
            f"INSERT INTO credit_records ({', '.join(names)})"  # noqa: S608 - fixed column names
            f" VALUES ({', '.join(f'${i + 1}' for i in range(len(names)))})"
            " ON CONFLICT (authority_code, decision_number) WHERE decision_number IS NOT NULL"
            " DO NOTHING",
            rows,
        )
    found = await conn.fetch(
        "SELECT * FROM credit_records WHERE id = ANY($1::uuid[])",
        [record_id for _, record_id, _ in prepared],
    )
    return {row["id"]: row for row in found}
