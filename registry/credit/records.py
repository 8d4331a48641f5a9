"""Credit records: recorded, corrected (a new version) or revoked, never deleted.

A record's publicity is computed when it is written, from its grade and penalty
types (``domain.publicity``), and stored: ``publicity_end`` is the first day it is
no longer shown, ``publicity_deadline`` (公示截止期) the last day shown. ``status``
says whether it is in publication: ``published`` until expiry, revocation or an
approved repair moves it out (each an audited change); ``not_published`` for
records the rules withhold (warning only, minor under a no-publish policy).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from registry.clock import today
from registry.credit.common import clean, fetch, update_versioned
from registry.credit.ownership import Acting, deciding_authority, require_decider
from registry.db.types import Conn, Db
from registry.db.writes import Written, audited_insert, write_transaction
from registry.domain import record_rules
from registry.domain.publicity import Grade, PenaltyType, PublicityWindow, publicity_window
from registry.errors import Conflict, Forbidden, InvalidInput
from registry.identifiers import validate_credit_code
from registry.search import record_search_number
from registry.services import Services

KINDS = ("penalty", "filing", "commendation", "dishonesty_other")
GRADED_KINDS = ("penalty", "dishonesty_other")
STATUSES = ("published", "not_published", "expired", "revoked", "repaired")
# 万元 with at most 6 decimals, below 10^12 (numeric(18, 6)).
_AMOUNT_MAX = Decimal(10) ** 12

# Fields a record is made of (and a correction may change), in column order.
TEXT_FIELDS = (
    "decision_number", "violation_type", "facts", "legal_basis", "penalty_content",
    "licence_name", "licence_number", "authority_name", "source_name", "remarks",
)
FIELDS = (
    *TEXT_FIELDS, "grade", "penalty_types", "fine_amount", "confiscation_amount",
    "decision_date", "valid_until", "authority_code", "source_code",
)
# The deciding authority is the recording token's (credit/ownership.py): never corrected.
CORRECTABLE = tuple(f for f in FIELDS if f not in ("authority_code", "authority_name"))
_PENALTY_REQUIRED = (
    "decision_number", "violation_type", "facts", "legal_basis", "penalty_content",
    "valid_until",
)


def _amount(value: Any, field: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(field, "is not a decimal number", 'a decimal string such as "12.5"') from None
    if not amount.is_finite() or amount < 0 or amount >= _AMOUNT_MAX:
        raise InvalidInput(field, "is out of range", "0 up to 999999999999.999999 (万元)")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        raise InvalidInput(field, "has more than 6 decimal places", 'e.g. "12.500000" (万元)')
    return amount


def normalise(fields: dict[str, Any], on: date, *, subject_code: str | None = None) -> dict[str, Any]:
    """Check one record's fields together; returns the column values (without publicity).

    ``on`` is today (Xining's day); ``subject_code`` the credit code of the record's
    subject (None for a practitioner). The consistency rules between items are
    ``domain.record_rules``; a correction runs the whole merged record through here too.
    """
    kind = fields["record_kind"]
    if kind not in KINDS:
        raise InvalidInput("record_kind", f"unknown kind {kind!r}", ", ".join(KINDS))
    out: dict[str, Any] = {"record_kind": kind}
    for name in TEXT_FIELDS:
        out[name] = clean(fields.get(name), name, required=name in ("facts", "authority_name",
                                                                    "source_name"))
    out["authority_code"] = validate_credit_code(fields.get("authority_code") or "", "authority_code")
    record_rules.check_authority_not_subject(out["authority_code"], subject_code)
    out["source_code"] = validate_credit_code(fields.get("source_code") or "", "source_code")
    out["fine_amount"] = _amount(fields.get("fine_amount"), "fine_amount")
    out["confiscation_amount"] = _amount(fields.get("confiscation_amount"), "confiscation_amount")
    decision_date: date = fields["decision_date"]
    record_rules.check_past_date("decision_date", decision_date, on)
    out["decision_date"] = decision_date
    valid_until = fields.get("valid_until")
    record_rules.check_end_date("valid_until", valid_until, "decision_date", decision_date)
    out["valid_until"] = valid_until
    types = list(fields.get("penalty_types") or [])
    for t in types:
        if t not in PenaltyType.__members__:
            raise InvalidInput("penalty_types", f"unknown penalty type {t!r}",
                               ", ".join(PenaltyType.__members__))
    record_rules.check_no_repeated_types(types)
    grade = fields.get("grade")
    if kind in GRADED_KINDS:
        if grade is None:
            raise InvalidInput("grade", f"is required for a {kind} record", "minor, general, serious")
        if grade not in Grade.__members__:
            raise InvalidInput("grade", f"unknown grade {grade!r}", "minor, general, serious")
    elif grade is not None:
        raise InvalidInput("grade", f"a {kind} record carries no dishonesty grade", "omit grade")
    if kind == "penalty":
        for name in _PENALTY_REQUIRED:
            if out[name] is None:
                raise InvalidInput(name, "is required for a penalty (雙公示 mandatory item)")
        if not types:
            raise InvalidInput("penalty_types", "at least one penalty type is required",
                               ", ".join(PenaltyType.__members__))
        if (out["licence_name"] is None) != (out["licence_number"] is None):
            raise InvalidInput("licence_number", "licence_name and licence_number go together")
    elif kind == "dishonesty_other" and not types:
        types = [PenaltyType.other.value]
    elif kind in ("filing", "commendation") and types:
        raise InvalidInput("penalty_types", f"a {kind} record carries no penalty", "omit penalty_types")
    record_rules.check_amounts(types, out["fine_amount"], out["confiscation_amount"])
    out["grade"] = grade
    out["penalty_types"] = types
    return out


def window_for(services: Services, values: dict[str, Any], publication_date: date) -> PublicityWindow:
    if values["record_kind"] in GRADED_KINDS:
        return publicity_window(
            Grade(values["grade"]),
            [PenaltyType(t) for t in values["penalty_types"]],
            values["decision_date"],
            services.policy,
            publication_date if services.policy.period_start == "publication_date" else None,
        )
    # Filings and commendations carry no dishonesty window: shown from the
    # decision until their validity ends (or without end).
    start = values["decision_date"]
    end = values["valid_until"]
    return PublicityWindow(
        start=start,
        earliest_end=start,
        latest_end=end if end is not None else date.max,
        published=True,
        reason=f"{values['record_kind']}: shown until its validity ends",
    )


def publicity_columns(window: PublicityWindow, on: date) -> dict[str, Any]:
    end = None if window.latest_end == date.max else window.latest_end
    if not window.published:
        status = "not_published"
    elif end is not None and on >= end:
        status = "expired"
    else:
        status = "published"
    return {
        "published": window.published,
        "publicity_start": window.start,
        "repair_from": window.earliest_end,
        "publicity_end": end if window.published else window.latest_end,
        "publicity_deadline": window.last_day_shown if end is not None else None,
        "publicity_reason": window.reason,
        "status": status,
        "publication_ended_on": end if status == "expired" else None,
        "status_reason": "period_ended" if status == "expired" else None,
    }


def new_record_values(
    services: Services, fields: dict[str, Any], on: date, subject_code: str | None
) -> dict[str, Any]:
    """A new record's column values, checked (``normalise``) and with its publicity window
    from today ``on``: what ``create_record`` and an import's batch (record_batch.py) store.
    With them the record's spelled number, by which the search finds it (and its subject)
    from the commit on (registry/search.py; never audited)."""
    values = normalise(fields, on, subject_code=subject_code)
    values.update(publicity_columns(window_for(services, values, on), on))
    values["search_number"] = record_search_number(values["decision_number"])
    return values


def new_record_row(
    record_id: uuid.UUID, subject_id: uuid.UUID, values: dict[str, Any], now: datetime, actor: str
) -> dict[str, Any]:
    """Every column of a new record (version 1) but ``log_index``, from its checked
    ``values`` (``new_record_values``): what ``create_record`` and an import's batch insert."""
    return {
        "id": record_id, "subject_id": subject_id, **values, "under_objection": False,
        "previous_log_index": None, "correction_note": None, "version": 1,
        "created_at": now, "created_by": actor, "updated_at": now, "updated_by": actor,
    }


def stored_window(row: asyncpg.Record) -> PublicityWindow:
    return PublicityWindow(
        start=row["publicity_start"],
        earliest_end=row["repair_from"],
        latest_end=row["publicity_end"] or date.max,
        published=row["published"],
        reason=row["publicity_reason"],
    )


async def recorded_decision_numbers(db: Db, authority_code: str, numbers: Sequence[str]) -> set[str]:
    """Which of ``numbers`` the authority has recorded already (each at most once per
    authority: the partial unique index ``credit_records_decision``, which this reads as
    long as the table's statistics are current: see registry/imports/runner.py)."""
    rows = await db.fetch(
        "SELECT decision_number FROM credit_records WHERE authority_code = $1"
        " AND decision_number IS NOT NULL AND decision_number = ANY($2::text[])",
        authority_code, list(numbers),
    )
    return {row["decision_number"] for row in rows}


DUPLICATE_DECISION = "a record with this decision_number already exists for this authority_code"


def _duplicate(error: asyncpg.UniqueViolationError) -> Conflict:
    return Conflict(DUPLICATE_DECISION, field="decision_number")


def in_the_name_of(fields: dict[str, Any], mine: str, registered_name: str) -> dict[str, Any]:
    """``fields`` in the name of authority ``mine`` (registered as ``registered_name``): a body
    naming another authority is refused (403, naming both); the registered name is what is
    stored. Pure: ``registry/imports`` checks a file's rows with it before writing any."""
    named = fields.get("authority_code")
    if named is not None and named.strip():
        code = validate_credit_code(named, "authority_code")
        if code != mine:
            raise Forbidden(
                f"authority_code names {code}, but this token records decisions of "
                f"{registered_name} ({mine}); a record is always in the name of the "
                "token's authority (omit authority_code, or use a token of that authority)",
                owner=code,
                acting_for=mine,
            )
    given = fields.get("authority_name")
    name = clean(given, "authority_name") if given is not None and given.strip() else None
    if name is not None and name != registered_name:
        raise InvalidInput(
            "authority_name",
            f"is not the registered name of authority {mine}",
            f"{registered_name} (or omit authority_name)",
        )
    return {**fields, "authority_code": mine, "authority_name": registered_name}


async def deciding_registered(db: Db, who: Acting) -> tuple[str, str]:
    """(code, registered name) of the authority ``who`` decides for."""
    mine = deciding_authority(who)
    name = await db.fetchval("SELECT name FROM authorities WHERE code = $1", mine)
    if name is None:  # the foreign key makes this unreachable; say so if it ever is
        raise Forbidden(f"this token's authority {mine} is not registered")
    return mine, name


async def _in_the_name_of(services: Services, who: Acting, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with the deciding authority filled in from the token (``in_the_name_of``)."""
    mine, registered = await deciding_registered(services.pool, who)
    return in_the_name_of(fields, mine, registered)


async def create_record(
    services: Services, who: Acting, subject_id: uuid.UUID, fields: dict[str, Any]
) -> Written:
    on = today(services.clock)
    fields = await _in_the_name_of(services, who, fields)
    actor = who.actor
    subject = await services.pool.fetchrow(
        "SELECT credit_code FROM subjects WHERE id = $1", subject_id
    )
    if subject is None:
        raise InvalidInput("subject_id", "no such subject", "the id of a registered subject")
    values = new_record_values(services, fields, on, subject["credit_code"])
    record_id = uuid.uuid4()
    try:
        # A new record is given whole: one statement (db/writes.py audited_insert).
        return await audited_insert(
            services.pool, services.clock, services.shapes, actor=actor,
            action="record.create", object_type="credit_record",
            values=lambda now: new_record_row(record_id, subject_id, values, now, actor),
        )
    except asyncpg.UniqueViolationError as error:
        raise _duplicate(error) from None


async def get_record(services: Services, record_id: uuid.UUID) -> asyncpg.Record:
    return await fetch(services, "credit_record", record_id)


async def correct_record(
    services: Services,
    who: Acting,
    record_id: uuid.UUID,
    version: int,
    changes: dict[str, Any],
    note: str | None,
    *,
    extra: dict[str, Any] | None = None,
    conn: Conn | None = None,
) -> Written:
    """A new version of the record with ``changes``; publicity recomputed. Revoked: 409.

    Blacklist entries resting on the record end in the same transaction when the
    correction leaves it no longer a basis for listing (downgraded from serious).
    """
    from registry.credit.blacklist import end_entries_without_basis  # builds on records

    if conn is None:
        async with write_transaction(services.pool) as own:
            return await correct_record(services, who, record_id, version, changes, note,
                                        extra=extra, conn=own)
    current = await fetch(services, "credit_record", record_id, conn)
    await require_decider(conn, who, [current["authority_code"]], f"record {record_id}")
    record_rules.check_correctable(record_id, current["status"])
    unknown = set(changes) - set(CORRECTABLE)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be corrected", ", ".join(CORRECTABLE))
    if not changes:
        raise InvalidInput("body", "no field to correct", ", ".join(CORRECTABLE))
    on = today(services.clock)
    merged = {name: current[name] for name in FIELDS}
    merged["record_kind"] = current["record_kind"]
    merged["penalty_types"] = list(current["penalty_types"])
    if "decision_date" in changes and changes["decision_date"] is None:
        raise InvalidInput("decision_date", "cannot be cleared", "a date (or leave it out)")
    merged.update(changes)
    merged["penalty_types"] = merged["penalty_types"] or []
    subject_code = await conn.fetchval(
        "SELECT credit_code FROM subjects WHERE id = $1", current["subject_id"]
    )
    values = normalise(merged, on, subject_code=subject_code)
    publicity = publicity_columns(window_for(services, values, current["publicity_start"]), on)
    if current["status"] == "repaired":
        # An approved repair already ended publication; a correction does not restart it.
        for key in ("status", "publication_ended_on", "status_reason"):
            publicity.pop(key)
    values.update(publicity)
    values.pop("record_kind")
    # Found by the new number, no longer by the old, from the commit on (not audited).
    values["search_number"] = record_search_number(values["decision_number"])
    values["previous_log_index"] = current["log_index"]
    values["correction_note"] = clean(note, "note")
    values.update(extra or {})
    try:
        written = await update_versioned(
            services, actor=who.actor, action="record.correct", object_type="credit_record",
            object_id=record_id, version=version, changes=values, conn=conn,
        )
    except asyncpg.UniqueViolationError as error:
        raise _duplicate(error) from None
    await end_entries_without_basis(services, who, record_id, conn)
    return written


async def revoke_record(
    services: Services, who: Acting, record_id: uuid.UUID, version: int, reason: str,
    *, extra: dict[str, Any] | None = None, conn: Conn | None = None,
) -> Written:
    """Take the record out of publication at once (its decision was revoked); kept for regulators.

    Blacklist entries resting on the record end in the same transaction (removed if
    listed, withdrawn if only proposed): the list must never outlive its basis.
    """
    from registry.credit.blacklist import end_entries_without_basis  # blacklist builds on records

    if conn is None:
        async with write_transaction(services.pool) as own:
            return await revoke_record(services, who, record_id, version, reason,
                                       extra=extra, conn=own)
    current = await fetch(services, "credit_record", record_id, conn)
    await require_decider(conn, who, [current["authority_code"]], f"record {record_id}")
    record_rules.check_revocable(record_id, current["status"])
    written = await update_versioned(
        services, actor=who.actor, action="record.revoke", object_type="credit_record",
        object_id=record_id, version=version, conn=conn,
        changes={"status": "revoked", "publication_ended_on": today(services.clock),
                 "status_reason": clean(reason, "reason", required=True), **(extra or {})},
    )
    await end_entries_without_basis(services, who, record_id, conn)
    return written


async def list_records(
    services: Services,
    *,
    subject_id: uuid.UUID | None,
    authority_code: str | None,
    grade: str | None,
    status: str | None,
    date_from: date | None,
    date_to: date | None,
    after: tuple[date, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest decision first, keyset on (decision_date, id) descending.

    The WHERE clause holds only the filters given, so each query can use the
    index that starts with its filter column (a generic ``$1 IS NULL OR`` plan could not).
    """
    conditions: list[str] = []
    params: list[Any] = []

    def add(sql: str, *values: Any) -> None:
        marks = [f"${len(params) + i + 1}" for i in range(len(values))]
        conditions.append(sql.format(*marks))
        params.extend(values)

    if subject_id is not None:
        add("subject_id = {}", subject_id)
    if authority_code is not None:
        # Canonical, as stored: a full-width or lower-case code finds the same records.
        add("authority_code = {}", validate_credit_code(authority_code, "authority_code"))
    if grade is not None:
        add("grade = {}", grade)
    if status is not None:
        add("status = {}", status)
    if date_from is not None:
        add("decision_date >= {}", date_from)
    if date_to is not None:
        add("decision_date <= {}", date_to)
    if after is not None:
        add("(decision_date, id) < ({}, {})", after[0], after[1])
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    params.append(limit)
    rows: list[asyncpg.Record] = await services.pool.fetch(
        f"SELECT * FROM credit_records {where}"  # noqa: S608 - conditions are fixed text
        f" ORDER BY decision_date DESC, id DESC LIMIT ${len(params)}",
        *params,
    )
    return rows
