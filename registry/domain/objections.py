"""Objections (異議) to a record or listing: filed, then decided once, upheld or rejected.

Deadlines (國辦發〔2025〕22號), in working days of the official calendar
(``working_days.WorkingCalendar``: public holidays off, 调休 weekend days on),
counted from the filing day exclusive, each deadline day inclusive:

- ``decide_due``: the responsible department verifies and decides within
  ``policy.objection_decide_days``. The registry routes an objection to the
  department the moment it is filed, so the count starts at filing.
- ``answer_due``: the applicant is answered within ``policy.objection_answer_days``.

A deadline that reaches into a year whose holiday notice is not known yet is
provisional (``Deadline.provisional``): counted Monday to Friday for now, and
counted again, from the same filing day and number of days, once the year is known.

Recording the decision is also the answer, so an objection is overdue when it is
still ``filed`` after ``answer_due``. While ``filed`` the record is shown as
"under objection" (異議處理中).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Final

import msgspec

from registry.domain.policy import Policy
from registry.domain.working_days import Deadline, WorkingCalendar
from registry.errors import Conflict, InvalidInput


class ObjectionState(StrEnum):
    filed = "filed"
    upheld = "upheld"
    rejected = "rejected"


# Every state by name, in the order above: what a listing's ``state`` filter accepts.
OBJECTION_STATES: Final = tuple(state.value for state in ObjectionState)


class ObjectionFiler(StrEnum):
    subject = "subject"  # the subject itself
    bureau = "bureau"  # a credit bureau on the subject's behalf


class Objection(msgspec.Struct, frozen=True, kw_only=True):
    state: ObjectionState
    filed_on: date
    filed_by: ObjectionFiler
    decide_due: date
    answer_due: date
    decided_on: date | None = None
    # The department's reasons, given with the decision either way.
    decision_note: str | None = None


# The stored deadline columns of an objection, and the policy setting counting each.
DEADLINES: Final[dict[str, str]] = {
    "decide_due": "objection_decide_days",
    "answer_due": "objection_answer_days",
}


class ObjectionDeadlines(msgspec.Struct, frozen=True, kw_only=True):
    decide_due: Deadline
    answer_due: Deadline

    def by_column(self) -> dict[str, Deadline]:
        """Each deadline by its column name (``DEADLINES``)."""
        return {column: getattr(self, column) for column in DEADLINES}


def objection_deadlines(filed_on: date, policy: Policy,
                        calendar: WorkingCalendar) -> ObjectionDeadlines:
    """The deadlines of an objection filed on ``filed_on``."""
    return ObjectionDeadlines(**{
        column: calendar.add_working_days(filed_on, getattr(policy, setting))
        for column, setting in DEADLINES.items()
    })


def file_objection(
    filed_on: date, deadlines: ObjectionDeadlines,
    filed_by: ObjectionFiler = ObjectionFiler.subject,
) -> Objection:
    """A new objection with its deadlines (``objection_deadlines`` of the same day)."""
    for column, deadline in deadlines.by_column().items():
        if deadline.start != filed_on:
            raise ValueError(f"{column} counts from {deadline.start.isoformat()}, "
                             f"not from the filing day {filed_on.isoformat()}")
    return Objection(
        state=ObjectionState.filed,
        filed_on=filed_on,
        filed_by=ObjectionFiler(filed_by),
        decide_due=deadlines.decide_due.day,
        answer_due=deadlines.answer_due.day,
    )


def decide(objection: Objection, on: date, *, upheld: bool, note: str | None = None) -> Objection:
    """Decide the objection; an objection is decided exactly once."""
    if objection.state is not ObjectionState.filed:
        assert objection.decided_on is not None
        raise Conflict(
            f"objection is '{objection.state.value}' since {objection.decided_on.isoformat()}; "
            "'decide' is allowed only from 'filed' (an objection is decided once; "
            "file a new objection to dispute the decision)"
        )
    if on < objection.filed_on:
        raise InvalidInput(
            "on",
            f"{on.isoformat()} is before the objection was filed on "
            f"{objection.filed_on.isoformat()}",
            f"a date on or after {objection.filed_on.isoformat()}",
        )
    return msgspec.structs.replace(
        objection,
        state=ObjectionState.upheld if upheld else ObjectionState.rejected,
        decided_on=on,
        decision_note=note.strip() if note and note.strip() else None,
    )


def is_pending(objection: Objection) -> bool:
    """Whether the disputed record is shown as "under objection" (異議處理中)."""
    return objection.state is ObjectionState.filed


def is_overdue(objection: Objection, today: date) -> bool:
    """Still undecided after the answer deadline (``today > answer_due``)."""
    return objection.state is ObjectionState.filed and today > objection.answer_due


def is_decision_overdue(objection: Objection, today: date) -> bool:
    """Still undecided after the department's deadline (``today > decide_due``)."""
    return objection.state is ObjectionState.filed and today > objection.decide_due
