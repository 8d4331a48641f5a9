"""Consistency of one credit record's 双公示 items with each other: pure rules, no I/O.

Each rule is stated once here and raises ``InvalidInput`` (422) naming the field,
what was wrong and what is accepted. ``registry/credit/records.py`` ``normalise``
applies them to every record written: when it is recorded, and again to the whole
record a correction (or an upheld objection's correction) would produce, so no
write can leave an inconsistent record behind.

The rules:

- Amounts go with their penalty type (罰款金額 with 罰款; 沒收…金額 with 沒收):
  ``fine`` in ``penalty_types`` exactly when ``fine_amount`` is given and positive,
  ``confiscation`` exactly when ``confiscation_amount`` is. A 罰款 published with
  a blank or zero amount, or an amount no penalty type explains, is refused.
- A penalty type is listed at most once (a repeated value is refused, never
  silently merged: it usually means a mistyped list).
- Dates given by a client are real: not before ``DATE_FLOOR`` and not after the
  day the request is handled (Xining's day, passed in). An end date (``valid_until``)
  is on or after its start (``decision_date``) and at most ``END_HORIZON_YEARS``
  after it (a placeholder such as 9999-12-31 is not a date; "no end" is omitted).
- The deciding authority never penalises itself: ``authority_code`` differs from
  the subject's credit code.
- A revoked record is final: it is neither corrected nor revoked again
  (``check_correctable``, ``check_revocable``; 409). The use cases ask these before
  writing, and the console asks the same to decide whether to offer the step.

Nothing here reads a clock or a database: every date and code is an argument.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from registry.domain.publicity import PenaltyType
from registry.errors import Conflict, InvalidInput

# The earliest decision (or other past) date a client may give. The registry's
# subjects (venture-capital enterprises, their managers and practitioners) and the
# penalty rules applied to them are all younger than this; 0001-01-01 or 1900-01-01
# are placeholders, not decisions.
DATE_FLOOR = date(1990, 1, 1)
# The latest end date accepted, in calendar years after its start (decision_date).
# No penalty, filing or commendation runs that long; 9999-12-31 is a placeholder
# for "no end", which is said by omitting the end date.
END_HORIZON_YEARS = 50

# Penalty types that carry an amount (万元), and the field holding it.
AMOUNT_FIELDS: tuple[tuple[PenaltyType, str], ...] = (
    (PenaltyType.fine, "fine_amount"),  # 罰款金額
    (PenaltyType.confiscation, "confiscation_amount"),  # 沒收違法所得、沒收非法財物的金額
)


def check_no_repeated_types(types: Sequence[str]) -> None:
    """Refuse a penalty type listed twice, naming the first repeated value."""
    seen: set[str] = set()
    for t in types:
        if t in seen:
            raise InvalidInput(
                "penalty_types",
                f"penalty type {t!r} is listed more than once",
                "each penalty type at most once",
            )
        seen.add(t)


def check_amount_matches_type(
    types: Sequence[str], penalty_type: PenaltyType, field: str, amount: Decimal | None
) -> None:
    """``penalty_type`` in ``types`` ⇔ ``amount`` is given and positive."""
    named = penalty_type.value in types
    if named and amount is None:
        raise InvalidInput(
            field,
            f"is required: penalty_types includes {penalty_type.value}",
            f'a positive amount in 万元, e.g. "12.5"; or drop {penalty_type.value} from penalty_types',
        )
    if named and amount is not None and amount <= 0:
        raise InvalidInput(
            field,
            f"is {amount}, but penalty_types includes {penalty_type.value}",
            'a positive amount in 万元, e.g. "12.5"',
        )
    if not named and amount is not None:
        raise InvalidInput(
            field,
            f"is given, but penalty_types does not include {penalty_type.value}",
            f"omit {field}, or include {penalty_type.value} in penalty_types",
        )


def check_amounts(
    types: Sequence[str], fine_amount: Decimal | None, confiscation_amount: Decimal | None
) -> None:
    """Each amount with its penalty type (``AMOUNT_FIELDS``), fine first."""
    amounts = {"fine_amount": fine_amount, "confiscation_amount": confiscation_amount}
    for penalty_type, field in AMOUNT_FIELDS:
        check_amount_matches_type(types, penalty_type, field, amounts[field])


def check_past_date(field: str, value: date, on: date) -> None:
    """A date that has happened: from ``DATE_FLOOR`` up to ``on`` (today, Xining's day)."""
    accepted = f"a date from {DATE_FLOOR.isoformat()} up to {on.isoformat()}"
    if value > on:
        raise InvalidInput(field, f"{value.isoformat()} is in the future", accepted)
    if value < DATE_FLOOR:
        raise InvalidInput(field, f"{value.isoformat()} is before {DATE_FLOOR.isoformat()}",
                           accepted)


def horizon(start: date) -> date:
    """The latest end date accepted for ``start``: the same day ``END_HORIZON_YEARS`` later
    (the month's last day when that month has no such day, e.g. 29 February)."""
    year = start.year + END_HORIZON_YEARS
    return start.replace(year=year, day=min(start.day, calendar.monthrange(year, start.month)[1]))


def check_end_date(field: str, end: date | None, start_field: str, start: date) -> None:
    """An end date (None: none given) on or after its start and within ``horizon(start)``."""
    if end is None:
        return
    accepted = (f"a date from {start_field} ({start.isoformat()}) up to "
                f"{horizon(start).isoformat()} ({END_HORIZON_YEARS} years later), or omit it")
    if end < start:
        raise InvalidInput(field, f"{end.isoformat()} is before {start_field}", accepted)
    if end > horizon(start):
        raise InvalidInput(
            field, f"{end.isoformat()} is more than {END_HORIZON_YEARS} years after {start_field}",
            accepted,
        )


def check_authority_not_subject(authority_code: str, subject_code: str | None) -> None:
    """The deciding authority is never the penalised subject (both codes normalised;
    ``subject_code`` None for a practitioner, who has no credit code)."""
    if subject_code is not None and authority_code == subject_code:
        raise InvalidInput(
            "authority_code",
            f"{authority_code} is the subject's own credit code: an authority does not "
            "decide on itself",
            "the code of the deciding authority, other than the subject's credit code",
        )


def check_correctable(record_id: object, status: str) -> None:
    """A record in ``status`` may be corrected: any status but revoked."""
    if status == "revoked":
        raise Conflict(f"record {record_id} is revoked; a revoked record cannot be corrected")


def check_revocable(record_id: object, status: str) -> None:
    """A record in ``status`` may be revoked: any status but revoked (already)."""
    if status == "revoked":
        raise Conflict(f"record {record_id} is already revoked")
