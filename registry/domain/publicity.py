"""How long a penalty decision is published, and whether it is shown on a given day.

Model (DOMAIN.md, "Publicity periods and credit repair"):

- The dishonesty grade of a decision fixes its window: ``Policy.window_months``.
- Penalty types decide *whether* it is published: a decision whose only penalty
  is a warning (警告) is not published. A warning beside other penalty types is
  ignored and the rest publish.
- "Several penalty types, the longest period applies": the decision carries one
  grade, and optionally a grade per penalty type (``type_grades``) when the
  authority graded each penalty separately. The window is that of the most
  severe grade among the decision's grade and the grades of its non-warning
  penalty types. Because ``Policy`` forbids windows that shrink with severity,
  the most severe grade is the one with the longest window, for both bounds.
- Every window is half-open: the record is shown on days ``start <= d <
  latest_end``; ``latest_end`` is the first day it is no longer shown, and the day
  before it (``last_day_shown``) is the 公示截止期. ``earliest_end`` is, likewise,
  the first day after the minimum period: credit repair may be applied for on or
  after it. Month counting follows ``policy.period_end`` (start day excluded,
  month-end clamping), so a decision of 2024-01-15 with 3 months is shown through
  2024-04-15 and gone on 2024-04-16.

Nothing here reads a clock: every date is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from enum import StrEnum

import msgspec

from registry.domain.policy import Policy, period_end
from registry.errors import InvalidInput


class Grade(StrEnum):
    """Dishonesty grade. Compare severity with ``rank``, never with ``<`` (that is string order)."""

    minor = "minor"  # 輕微
    general = "general"  # 一般
    serious = "serious"  # 嚴重

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Grade.minor: 0, Grade.general: 1, Grade.serious: 2}


class PenaltyType(StrEnum):
    """處罰類別 of the 雙公示 standard."""

    warning = "warning"  # 警告
    fine = "fine"  # 罰款
    confiscation = "confiscation"  # 沒收違法所得、沒收非法財物
    suspension_order = "suspension_order"  # 責令停產停業
    licence_suspension = "licence_suspension"  # 暫扣許可證、執照
    licence_revocation = "licence_revocation"  # 吊銷許可證、執照
    detention = "detention"  # 行政拘留
    other = "other"  # 其他


class PublicityWindow(msgspec.Struct, frozen=True, kw_only=True):
    """A decision's publicity: shown on ``start <= day < latest_end`` when ``published``.

    An unpublished window has ``start == earliest_end == latest_end`` (empty).
    ``reason`` says in words why the window is what it is.
    """

    start: date
    earliest_end: date
    latest_end: date
    published: bool
    reason: str

    @property
    def last_day_shown(self) -> date | None:
        """The 公示截止期: the last day the record is shown, or None when never shown."""
        if not self.published or self.latest_end <= self.start:
            return None
        return self.latest_end - timedelta(days=1)


def most_severe(grades: Sequence[Grade]) -> Grade:
    """The most severe of one or more grades."""
    if not grades:
        raise ValueError("most_severe needs at least one grade")
    return max(grades, key=lambda g: _RANK[g])


def publicity_window(
    grade: Grade,
    penalty_types: Sequence[PenaltyType],
    decision_date: date,
    policy: Policy,
    publication_date: date | None = None,
    *,
    type_grades: Mapping[PenaltyType, Grade] | None = None,
) -> PublicityWindow:
    """The publicity window of one penalty decision (see the module docstring for the model).

    ``publication_date`` is required when ``policy.period_start`` is
    "publication_date", and must not precede the decision. ``type_grades`` may
    grade individual penalty types; it only ever lengthens the window.
    """
    grade = _grade(grade, "grade")
    types = [_penalty_type(t) for t in penalty_types]
    if not types:
        raise InvalidInput(
            "penalty_types", "at least one penalty type is required", _accepted(PenaltyType)
        )
    if publication_date is not None and publication_date < decision_date:
        raise InvalidInput(
            "publication_date",
            f"{publication_date.isoformat()} is before the decision date "
            f"{decision_date.isoformat()}",
            "a date on or after the decision date",
        )
    if policy.period_start == "publication_date":
        if publication_date is None:
            raise InvalidInput(
                "publication_date",
                "required: the policy counts publicity periods from publication",
                "the date the decision was first published",
            )
        start, counted_from = publication_date, "publication"
    else:
        start, counted_from = decision_date, "decision"

    publishable = [t for t in types if t is not PenaltyType.warning]
    if not publishable:
        return PublicityWindow(
            start=start,
            earliest_end=start,
            latest_end=start,
            published=False,
            reason="warning-only penalties are not published",
        )

    grades = [grade]
    for t in publishable:
        if type_grades is not None and t in type_grades:
            grades.append(_grade(type_grades[t], f"type_grades[{t.value}]"))
    effective = most_severe(grades)

    if effective is Grade.minor and not policy.publish_minor:
        return PublicityWindow(
            start=start,
            earliest_end=start,
            latest_end=start,
            published=False,
            reason="minor dishonesty is not published under the current policy",
        )
    low, high = policy.window_months(effective.value)
    reason = f"{effective.value} grade: {low} to {high} months from the {counted_from} date"
    if effective is not grade:
        reason += f" (the most severe grade among its penalty types; the decision is {grade.value})"
    if len(set(publishable)) > 1:
        reason += "; several penalty types, the longest period applies"
    return PublicityWindow(
        start=start,
        earliest_end=period_end(start, low),
        latest_end=period_end(start, high),
        published=True,
        reason=reason,
    )


def is_in_publication(
    window: PublicityWindow,
    today: date,
    *,
    status: str = "published",
    revoked: bool = False,
    repaired_on: date | None = None,
) -> bool:
    """Whether the record is publicly shown on ``today``.

    Shown when published and ``start <= today < latest_end`` (``date.max``: no end), and
    while its ``status`` is still ``published``: an audited change to ``expired``,
    ``revoked`` or ``repaired`` ends publication whatever the window says, and a
    ``not_published`` record never starts. A revoked decision is never shown: the
    rules allow 5 working days to take it down (DOMAIN.md), the registry does it at
    once, on the day the revocation is recorded. An approved credit repair ends publication on the day it is
    approved: shown only while ``today < repaired_on``. This is the domain's statement
    of the rule that ``registry.domain.disclosure.RECORDS`` derives its SQL and
    Python forms from; tests/test_disclosure_rule.py checks they agree.
    """
    if not window.published or revoked or status != "published":
        return False
    if repaired_on is not None and today >= repaired_on:
        return False
    return window.start <= today < window.latest_end


def repair_allowed_from(window: PublicityWindow) -> date:
    """First day on which the subject may apply for credit repair: the end of the minimum period."""
    return window.earliest_end


def _accepted(enum: type[StrEnum]) -> str:
    return ", ".join(member.value for member in enum)


def _grade(value: str, field: str) -> Grade:
    try:
        return Grade(value)
    except ValueError:
        raise InvalidInput(field, f"unknown grade {value!r}", _accepted(Grade)) from None


def _penalty_type(value: str) -> PenaltyType:
    try:
        return PenaltyType(value)
    except ValueError:
        raise InvalidInput(
            "penalty_types", f"unknown penalty type {value!r}", _accepted(PenaltyType)
        ) from None
