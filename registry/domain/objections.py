"""Objections (異議) to a record or listing: filed, then decided once, upheld or rejected.

Deadlines (國辦發〔2025〕22號), in working days (Monday to Friday, no holiday
calendar; see ``policy``), counted from the filing day exclusive, each deadline
day inclusive:

- ``decide_due``: the responsible department verifies and decides within
  ``policy.objection_decide_days``. The registry routes an objection to the
  department the moment it is filed, so the count starts at filing.
- ``answer_due``: the applicant is answered within ``policy.objection_answer_days``.

Recording the decision is also the answer, so an objection is overdue when it is
still ``filed`` after ``answer_due``. While ``filed`` the record is shown as
"under objection" (異議處理中).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import msgspec

from registry.domain.policy import Policy, add_working_days
from registry.errors import Conflict, InvalidInput


class ObjectionState(StrEnum):
    filed = "filed"
    upheld = "upheld"
    rejected = "rejected"


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


def file_objection(
    filed_on: date, policy: Policy, filed_by: ObjectionFiler = ObjectionFiler.subject
) -> Objection:
    """A new objection with its deadlines."""
    return Objection(
        state=ObjectionState.filed,
        filed_on=filed_on,
        filed_by=ObjectionFiler(filed_by),
        decide_due=add_working_days(filed_on, policy.objection_decide_days),
        answer_due=add_working_days(filed_on, policy.objection_answer_days),
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
