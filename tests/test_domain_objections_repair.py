"""Objections and credit repair: deadlines, single decisions, the minimum period."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.domain import blacklist
from registry.domain.objections import (
    Objection,
    ObjectionFiler,
    ObjectionState,
    decide,
    is_decision_overdue,
    is_overdue,
    is_pending,
    objection_deadlines,
)
from registry.domain.objections import file_objection as file_with
from registry.domain.policy import DEFAULT_POLICY, Policy
from registry.domain.publicity import (
    Grade,
    PenaltyType,
    is_in_publication,
    publicity_window,
)
from registry.domain.repair import (
    RepairApplication,
    RepairRoute,
    RepairState,
    apply_for_repair,
    approve,
    check_repair_application,
    reject,
)
from registry.domain.working_days import WorkingCalendar
from registry.errors import Conflict, InvalidInput
from registry.working_calendar import build_calendar

P = DEFAULT_POLICY
CALENDAR = build_calendar()


def file_objection(filed_on: date, policy: Policy,
                   filed_by: ObjectionFiler = ObjectionFiler.subject,
                   calendar: WorkingCalendar = CALENDAR) -> Objection:
    """An objection filed with its deadlines counted in ``calendar`` (the library's)."""
    return file_with(filed_on, objection_deadlines(filed_on, policy, calendar), filed_by)
MONDAY = date(2026, 3, 2)
FRIDAY = date(2026, 3, 6)

# --- objections ------------------------------------------------------------------------


def test_file_objection_sets_deadlines_in_working_days() -> None:
    """Filed on a Monday: decide within 3 working days (Thu), answer within 10 (Mon + 2 weeks)."""
    o = file_objection(MONDAY, P)
    assert o.state is ObjectionState.filed
    assert o.filed_by is ObjectionFiler.subject
    assert o.decide_due == date(2026, 3, 5)
    assert o.answer_due == date(2026, 3, 16)
    assert is_pending(o)


def test_deadlines_skip_the_weekend() -> None:
    """Filed on a Friday, the 3 working days end on Wednesday."""
    o = file_objection(FRIDAY, P, ObjectionFiler.bureau)
    assert o.filed_by is ObjectionFiler.bureau
    assert o.decide_due == date(2026, 3, 11)
    assert o.answer_due == date(2026, 3, 20)


def test_deadlines_follow_policy() -> None:
    """Deadline lengths are policy settings."""
    o = file_objection(MONDAY, Policy(objection_answer_days=20, objection_decide_days=0))
    assert o.decide_due == MONDAY
    assert o.answer_due == date(2026, 3, 30)


@pytest.mark.parametrize("upheld", [True, False])
def test_decide_once(upheld: bool) -> None:
    """A filed objection is decided upheld or rejected, with the date and reasons."""
    o = decide(file_objection(MONDAY, P), FRIDAY, upheld=upheld, note=" checked the decision ")
    assert o.state is (ObjectionState.upheld if upheld else ObjectionState.rejected)
    assert o.decided_on == FRIDAY
    assert o.decision_note == "checked the decision"
    assert not is_pending(o)


def test_decide_without_note() -> None:
    """Reasons are optional at this layer; blank ones are stored as none."""
    assert decide(file_objection(MONDAY, P), MONDAY, upheld=False).decision_note is None
    assert decide(file_objection(MONDAY, P), MONDAY, upheld=False, note=" ").decision_note is None


@pytest.mark.parametrize(
    ("first", "second"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_deciding_twice_conflicts(first: bool, second: bool) -> None:
    """An objection is decided exactly once; the message names the state and the date."""
    o = decide(file_objection(MONDAY, P), MONDAY, upheld=first)
    with pytest.raises(Conflict) as info:
        decide(o, FRIDAY, upheld=second)
    state = "upheld" if first else "rejected"
    assert info.value.detail.startswith(f"objection is '{state}' since 2026-03-02;")
    assert "'decide' is allowed only from 'filed'" in info.value.detail


def test_decide_before_filing_is_invalid() -> None:
    """Dates never run backwards."""
    with pytest.raises(InvalidInput) as info:
        decide(file_objection(MONDAY, P), MONDAY - timedelta(days=1), upheld=True)
    assert info.value.field == "on"


@pytest.mark.parametrize(
    ("today", "overdue"),
    [
        (date(2026, 3, 15), False),  # day before the answer deadline
        (date(2026, 3, 16), False),  # the deadline day is still on time
        (date(2026, 3, 17), True),  # day after
    ],
)
def test_is_overdue_edges(today: date, overdue: bool) -> None:
    """Overdue only after the answer deadline has passed."""
    assert is_overdue(file_objection(MONDAY, P), today) is overdue


@pytest.mark.parametrize(
    ("today", "overdue"),
    [(date(2026, 3, 4), False), (date(2026, 3, 5), False), (date(2026, 3, 6), True)],
)
def test_is_decision_overdue_edges(today: date, overdue: bool) -> None:
    """The department's own deadline is checked the same way."""
    assert is_decision_overdue(file_objection(MONDAY, P), today) is overdue


def test_decided_objection_is_never_overdue() -> None:
    """A decision stops the clock, even when it came late."""
    o = decide(file_objection(MONDAY, P), date(2026, 4, 1), upheld=False)
    assert not is_overdue(o, date(2027, 1, 1))
    assert not is_decision_overdue(o, date(2027, 1, 1))


def test_deadlines_count_from_the_filing_day() -> None:
    """An objection's deadlines must be those of its own filing day."""
    with pytest.raises(ValueError, match="filing day"):
        file_with(FRIDAY, objection_deadlines(MONDAY, P, CALENDAR))


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=0, max_value=30),
)
def test_deadlines_are_ordered(filed: date, decide_days: int, extra: int) -> None:
    """filed <= decide_due <= answer_due whenever decide_days <= answer_days."""
    policy = Policy(objection_decide_days=decide_days, objection_answer_days=decide_days + extra)
    o = file_objection(filed, policy)
    assert filed <= o.decide_due <= o.answer_due
    assert not is_overdue(o, o.answer_due)
    assert is_overdue(o, o.answer_due + timedelta(days=1))


def test_objection_type_is_a_struct() -> None:
    """Objections are frozen msgspec structs."""
    o = file_objection(MONDAY, P)
    assert isinstance(o, Objection)
    with pytest.raises(AttributeError):
        o.state = ObjectionState.upheld  # type: ignore[misc]  # the point of the test


# --- repair ----------------------------------------------------------------------------

DECIDED = date(2024, 1, 15)
GENERAL = publicity_window(Grade.general, [PenaltyType.fine], DECIDED, P)
# earliest_end 2024-04-16, latest_end 2025-01-16


@pytest.mark.parametrize(
    ("applied_on", "allowed"),
    [
        (date(2024, 4, 15), False),  # last day of the minimum period
        (date(2024, 4, 16), True),  # earliest_end
        (date(2024, 4, 17), True),
        (date(2025, 1, 15), True),  # last day shown
        (date(2025, 1, 16), False),  # publication already ended by itself
    ],
)
def test_check_repair_application_edges(applied_on: date, allowed: bool) -> None:
    """Repair is accepted on earliest_end <= applied_on < latest_end."""
    if allowed:
        check_repair_application(GENERAL, applied_on)
    else:
        with pytest.raises(Conflict):
            check_repair_application(GENERAL, applied_on)


def test_too_early_repair_names_the_date_it_is_allowed_from() -> None:
    """The refusal says from which date the subject may apply."""
    with pytest.raises(Conflict, match="credit repair is allowed from 2024-04-16"):
        check_repair_application(GENERAL, DECIDED)


def test_repair_after_maximum_says_publication_ended() -> None:
    """After the maximum there is nothing to repair."""
    with pytest.raises(Conflict, match="publication already ended on 2025-01-16"):
        check_repair_application(GENERAL, date(2026, 1, 1))


def test_repair_of_unpublished_record_conflicts() -> None:
    """A warning-only decision was never published."""
    w = publicity_window(Grade.general, [PenaltyType.warning], DECIDED, P)
    with pytest.raises(Conflict, match="not published"):
        check_repair_application(w, date(2024, 6, 1))


def test_minor_record_may_be_repaired_from_the_decision_day() -> None:
    """Minor records have no minimum period."""
    w = publicity_window(Grade.minor, [PenaltyType.fine], DECIDED, P)
    check_repair_application(w, DECIDED)


def test_serious_minimum_follows_policy() -> None:
    """The older 6-month serious minimum opens repair earlier."""
    new = publicity_window(Grade.serious, [PenaltyType.fine], DECIDED, P)
    old = publicity_window(Grade.serious, [PenaltyType.fine], DECIDED, Policy(serious_min_months=6))
    check_repair_application(old, date(2024, 7, 16))
    with pytest.raises(Conflict, match="2025-01-16"):
        check_repair_application(new, date(2024, 7, 16))


@pytest.mark.parametrize("route", list(RepairRoute))
def test_apply_then_approve_ends_publication(route: RepairRoute) -> None:
    """Each route: apply, approve; publication ends on the approval day."""
    app = apply_for_repair(route, GENERAL, date(2024, 5, 1))
    assert app.state is RepairState.applied
    assert app.route is route
    done = approve(app, date(2024, 5, 20), note="rectified")
    assert done.state is RepairState.approved
    assert done.decided_on == date(2024, 5, 20)
    assert done.decision_note == "rectified"
    assert is_in_publication(GENERAL, date(2024, 5, 19), repaired_on=done.decided_on)
    assert not is_in_publication(GENERAL, date(2024, 5, 20), repaired_on=done.decided_on)


def test_apply_refused_before_minimum() -> None:
    """apply_for_repair runs the same check."""
    with pytest.raises(Conflict, match="allowed from 2024-04-16"):
        apply_for_repair(RepairRoute.penalty_publicity, GENERAL, date(2024, 4, 15))


def test_reject_leaves_publication_and_allows_a_new_application() -> None:
    """A rejection is final for that application; the subject may apply again."""
    app = apply_for_repair(RepairRoute.penalty_publicity, GENERAL, date(2024, 5, 1))
    no = reject(app, date(2024, 5, 2))
    assert no.state is RepairState.rejected
    assert no.decision_note is None
    again = apply_for_repair(RepairRoute.penalty_publicity, GENERAL, date(2024, 5, 3))
    assert again.state is RepairState.applied


@pytest.mark.parametrize("first", ["approve", "reject"])
@pytest.mark.parametrize("second", ["approve", "reject"])
def test_deciding_a_repair_twice_conflicts(first: str, second: str) -> None:
    """An application is decided once; the message names the state and what is allowed."""
    actions = {"approve": approve, "reject": reject}
    app = apply_for_repair(RepairRoute.other_dishonesty, GENERAL, date(2024, 5, 1))
    decided = actions[first](app, date(2024, 5, 2))
    with pytest.raises(Conflict) as info:
        actions[second](decided, date(2024, 5, 3))
    state = "approved" if first == "approve" else "rejected"
    assert info.value.detail.startswith(f"repair application is '{state}' since 2024-05-02;")
    assert f"'{second}' is allowed only from 'applied'" in info.value.detail


def test_decide_repair_before_application_is_invalid() -> None:
    """Dates never run backwards."""
    app = apply_for_repair(RepairRoute.other_dishonesty, GENERAL, date(2024, 5, 1))
    with pytest.raises(InvalidInput) as info:
        approve(app, date(2024, 4, 30))
    assert info.value.field == "on"


def test_blacklist_repair_route_end_to_end() -> None:
    """A listed entry: repair allowed after the serious minimum, then removal for repair."""
    e = blacklist.propose(date(2026, 1, 5))
    e = blacklist.notify(e, date(2026, 1, 6), "registered_mail", P)
    e = blacklist.list_entry(e, date(2026, 1, 20), P)
    w = blacklist.listing_window(e, P)
    with pytest.raises(Conflict, match="credit repair is allowed from 2027-01-21"):
        apply_for_repair(RepairRoute.blacklist_removal, w, date(2027, 1, 20))
    app = apply_for_repair(RepairRoute.blacklist_removal, w, date(2027, 1, 21))
    app = approve(app, date(2027, 2, 1))
    assert app.decided_on is not None
    e = blacklist.remove(e, app.decided_on, blacklist.RemovalReason.credit_repair_approved)
    assert e.state is blacklist.BlacklistState.removed
    assert not blacklist.is_listed(e, date(2027, 2, 1))
    assert blacklist.is_listed(e, date(2027, 1, 31))


def test_repair_application_type_is_a_struct() -> None:
    """Applications are frozen msgspec structs."""
    app = apply_for_repair(RepairRoute.other_dishonesty, GENERAL, date(2024, 5, 1))
    assert isinstance(app, RepairApplication)
    with pytest.raises(AttributeError):
        app.state = RepairState.approved  # type: ignore[misc]  # the point of the test
