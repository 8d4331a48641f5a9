"""Which publicity, objection and masking rules are in force, and the calendar they count in.

Every rule DOMAIN.md marks *unconfirmed*, and every number that a later regulation
may change, is a field of ``Policy`` with the current rule as its default. A
``Policy`` is validated when it is built (``__post_init__``), never when used.

Calendar conventions (part of the policy because the rules are silent on them):

- Periods in months follow 民法典 arts. 201–202: the start day is not counted, the
  last day is the day with the same number N months later, or the last day of that
  month when it has no such day (Jan 31 + 1 month ends Feb 28, or Feb 29 in a leap
  year). ``period_end`` returns the day *after* that last day, so every period is
  the half-open range ``[start, period_end)``.
- Working days are those of the State Council's yearly holiday notice: public
  holidays are off, the weekend days swapped into working days (调休) count. They
  are counted by ``registry.domain.working_days.WorkingCalendar``; the policy only
  says how many.
- Day counts (``blacklist_objection_window_days``) are calendar days, counted the
  same way: the start day excluded, the last day included.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Literal

import msgspec

ENV_PREFIX = "REGISTRY_POLICY_"

# Grades in order of severity; the names match ``publicity.Grade`` values. Kept as
# strings here so that this module does not import the rules that read it.
GRADE_NAMES: tuple[str, ...] = ("minor", "general", "serious")


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """Every policy setting, with the current rule as default.

    Windows must not shrink as the grade rises: a more serious grade never gets a
    shorter minimum or maximum than a lesser one.
    """

    # Minor (輕微) dishonesty: "not published, or at most 3 months". Published by
    # default; set False to withhold minor records entirely.
    publish_minor: bool = True
    minor_min_months: int = 0
    minor_max_months: int = 3
    # General (一般): 3 months to 1 year.
    general_min_months: int = 3
    general_max_months: int = 12
    # Serious (嚴重), including serious-dishonesty list entries: 1 year to 3 years.
    # The older rule (發改辦財金〔2019〕527號) had a 6-month minimum.
    serious_min_months: int = 12
    serious_max_months: int = 36
    # What the periods count from. Current rules: the decision date; one 2025 draft
    # counts from publication (unconfirmed).
    period_start: Literal["decision_date", "publication_date"] = "decision_date"
    # Calendar days a notified subject has to object before a listing (unconfirmed).
    blacklist_objection_window_days: int = 10
    # Working days to answer an objection, and for the department to decide it
    # (國辦發〔2025〕22號).
    objection_answer_days: int = 10
    objection_decide_days: int = 3
    # Purposes a credit bureau may state when querying personal data.
    bureau_query_purposes: tuple[str, ...] = (
        "credit_assessment",
        "investment_due_diligence",
        "regulatory_cooperation",
        "subject_consent",
    )
    # Masked document numbers keep the first 6 (region code) and last 4 characters.
    mask_keep_head: int = 6
    mask_keep_tail: int = 4
    mask_char: str = "*"
    # Requests per minute one bureau token may make (a token bucket of that size,
    # refilled continuously; counted per server process). 0 switches the limit off.
    bureau_rate_per_minute: int = 600

    def __post_init__(self) -> None:
        for name in (
            "minor_min_months",
            "minor_max_months",
            "general_min_months",
            "general_max_months",
            "serious_min_months",
            "serious_max_months",
            "blacklist_objection_window_days",
            "objection_answer_days",
            "objection_decide_days",
            "mask_keep_head",
            "mask_keep_tail",
            "bureau_rate_per_minute",
        ):
            value = getattr(self, name)
            # bool is an int subclass; True months is a configuration mistake.
            if type(value) is not int or value < 0:
                raise ValueError(f"policy {name}={value!r} must be a whole number >= 0")
        mins = [self.window_months(g)[0] for g in GRADE_NAMES]
        maxs = [self.window_months(g)[1] for g in GRADE_NAMES]
        for grade, low, high in zip(GRADE_NAMES, mins, maxs, strict=True):
            if low > high:
                raise ValueError(
                    f"policy {grade}_min_months={low} exceeds {grade}_max_months={high}"
                )
        for lesser, graver, values, kind in (
            (0, 1, mins, "min"),
            (1, 2, mins, "min"),
            (0, 1, maxs, "max"),
            (1, 2, maxs, "max"),
        ):
            if values[lesser] > values[graver]:
                raise ValueError(
                    f"policy {GRADE_NAMES[lesser]}_{kind}_months={values[lesser]} exceeds "
                    f"{GRADE_NAMES[graver]}_{kind}_months={values[graver]}: a more serious "
                    "grade must not get a shorter window"
                )
        if self.serious_max_months == 0:
            raise ValueError("policy serious_max_months must be > 0: listings need a period")
        if self.period_start not in ("decision_date", "publication_date"):
            raise ValueError(
                f"policy period_start={self.period_start!r} must be "
                "'decision_date' or 'publication_date'"
            )
        if not self.bureau_query_purposes:
            raise ValueError("policy bureau_query_purposes must name at least one purpose")
        if any(not p or p != p.strip() for p in self.bureau_query_purposes):
            raise ValueError(
                f"policy bureau_query_purposes={self.bureau_query_purposes!r} "
                "contains an empty or padded purpose"
            )
        if len(set(self.bureau_query_purposes)) != len(self.bureau_query_purposes):
            raise ValueError(
                f"policy bureau_query_purposes={self.bureau_query_purposes!r} has duplicates"
            )
        if len(self.mask_char) != 1:
            raise ValueError(f"policy mask_char={self.mask_char!r} must be one character")

    def window_months(self, grade: str) -> tuple[int, int]:
        """(minimum, maximum) publicity months for a grade name ("minor", "general", "serious")."""
        if grade == "minor":
            return self.minor_min_months, self.minor_max_months
        if grade == "general":
            return self.general_min_months, self.general_max_months
        if grade == "serious":
            return self.serious_min_months, self.serious_max_months
        raise ValueError(f"unknown grade {grade!r}; expected one of {', '.join(GRADE_NAMES)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Policy:
        """Build a policy from ``REGISTRY_POLICY_<FIELD>``; unset or empty keep the default.

        Tuples are comma-separated (``REGISTRY_POLICY_BUREAU_QUERY_PURPOSES=a,b``);
        booleans accept true/false/1/0. Raises ValueError naming the variable.
        """
        for name, why in RETIRED.items():
            if environ.get(ENV_PREFIX + name.upper()):
                raise ValueError(f"{ENV_PREFIX}{name.upper()} no longer exists: {why}; "
                                 "remove it from the environment")
        values: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            if name == "bureau_query_purposes":
                values[name] = [part.strip() for part in raw.split(",") if part.strip()]
            else:
                values[name] = raw
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            # msgspec reports "... - at `$.field`"; name the variable instead.
            message = str(exc)
            for name in values:
                message = message.replace(f"`$.{name}`", ENV_PREFIX + name.upper())
            raise ValueError(f"couldn't read policy from environment: {message}") from None


DEFAULT_POLICY = Policy()

# Settings that were removed, with why: set in the environment they stop the start
# (an operator who set one expects it to do something, and it cannot).
RETIRED: dict[str, str] = {
    "revocation_unpublish_working_days": (
        "a revoked decision leaves every publication at once, on the day its revocation is "
        "recorded (registry/credit/records.py revoke_record), which is within any number of "
        "working days the rules allow (5)"
    ),
}


def add_months(start: date, months: int) -> date:
    """The day with ``start``'s number ``months`` later, clamped to that month's last day."""
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(start.day, last))


def period_end(start: date, months: int) -> date:
    """First day *after* a period of ``months`` months counted from ``start``.

    The period is ``[start, period_end)``. With the start day not counted (民法典
    art. 201), its last day is ``add_months(start, months)``, so the end is the day
    after. A zero-month period is empty: it ends where it starts.
    """
    if months == 0:
        return start
    return add_months(start, months) + timedelta(days=1)
