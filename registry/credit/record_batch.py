"""Many new credit records in one transaction, at the database's pace (``registry import``).

``create_records`` applies to each record exactly the rules ``records.create_record``
applies (the deciding authority from the token, ``normalise``, the publicity window), and
writes what passed with a fixed number of statements whatever the number of records: one
read of the subjects' codes, one of the decision numbers the authority has recorded
already, and one statement that takes the records' indexes and inserts every record
(each with its spelled decision number, by which the search finds it: registry/search.py),
its leaf and its stored body (``db.audit.insert_many_with_leaves``). Written one by one,
each record cost a round trip or more and a statement's triggers; an import's batch of
200 spent almost all its time waiting on them.

A record whose decision number the authority has recorded already, or that an earlier
item of the same batch carries, is not written and comes back as the same ``Conflict``
``create_record`` raises. Any refusal by the database (a value out of a column's range,
a decision number recorded by someone else since the read) fails the one statement and
raises out of ``create_records``: its caller rolls the batch back and writes it record
by record, so that only the refused record is lost (registry/imports/runner.py).

Crash points: all of it runs in the caller's write transaction; until that commits,
nothing of it exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from registry.clock import today
from registry.credit.ownership import Acting
from registry.credit.records import (
    DUPLICATE_DECISION,
    deciding_registered,
    in_the_name_of,
    new_record_row,
    new_record_values,
    recorded_decision_numbers,
)
from registry.db.audit import insert_many_with_leaves
from registry.db.shapes import stored_form
from registry.db.types import Conn
from registry.db.writes import Written
from registry.errors import Conflict, InvalidInput, RegistryError
from registry.services import Services


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
    checked: list[tuple[int, uuid.UUID, dict[str, Any]]] = []
    for position, (subject_id, fields) in enumerate(items):
        try:
            values = _values(services, fields, mine, registered, subject_id, codes, on)
        except RegistryError as refusal:
            outcomes.append(refusal)
            continue
        outcomes.append(None)
        checked.append((position, subject_id, values))
    recorded = await recorded_decision_numbers(
        conn, mine, [v["decision_number"] for _, _, v in checked if v["decision_number"]]
    )
    shape = await services.shapes.of(conn, "credit_records")
    new: list[tuple[int, dict[str, Any]]] = []
    for position, subject_id, values in checked:
        number = values["decision_number"]
        if number is not None and number in recorded:
            outcomes[position] = Conflict(DUPLICATE_DECISION, field="decision_number")
            continue
        if number is not None:
            # The first of a batch's items with one decision number is written, as if
            # they came one after the other.
            recorded.add(number)
        row = new_record_row(uuid.uuid4(), subject_id, values, now, who.actor)
        new.append((position, stored_form("credit_records", shape, row)))
    appended = await insert_many_with_leaves(
        conn, time=now, actor=who.actor, action="record.create", object_type="credit_record",
        stored=[row for _, row in new],
    )
    for (position, _), leaf in zip(new, appended, strict=True):
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
