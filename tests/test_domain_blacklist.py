"""The serious-dishonesty list: every transition, legal and illegal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.domain.blacklist import (
    BlacklistEntryState,
    BlacklistState,
    RemovalReason,
    check_listing_basis,
    file_objection,
    is_listed,
    list_entry,
    listing_window,
    notify,
    propose,
    remove,
    settle_objection,
    withdraw,
)
from registry.domain.policy import DEFAULT_POLICY, Policy
from registry.domain.publicity import Grade
from registry.errors import Conflict, InvalidInput

P = DEFAULT_POLICY
PROPOSED_ON = date(2026, 11, 20)
NOTIFIED_ON = date(2026, 11, 30)
DEADLINE = date(2026, 12, 10)  # NOTIFIED_ON + 10 calendar days: last day to object
LISTED_ON = date(2026, 12, 11)
DEFAULT_REMOVAL = date(2029, 12, 12)  # last listed day 2029-12-11 (36 months)


def proposed() -> BlacklistEntryState:
    return propose(PROPOSED_ON)


def notified() -> BlacklistEntryState:
    return notify(proposed(), NOTIFIED_ON, "registered_mail", P)


def objected() -> BlacklistEntryState:
    return file_objection(notified(), date(2026, 12, 5))


def listed() -> BlacklistEntryState:
    return list_entry(notified(), LISTED_ON, P)


def removed() -> BlacklistEntryState:
    return remove(listed(), date(2027, 6, 1), RemovalReason.decision_revoked)


def withdrawn() -> BlacklistEntryState:
    return withdraw(proposed(), date(2026, 11, 25), "decision revoked")


STATES: dict[BlacklistState, Callable[[], BlacklistEntryState]] = {
    BlacklistState.proposed: proposed,
    BlacklistState.notified: notified,
    BlacklistState.listed: listed,
    BlacklistState.removed: removed,
    BlacklistState.withdrawn: withdrawn,
}
LATE = date(2031, 1, 1)  # after every date above, so only the state can refuse

ACTIONS: dict[str, Callable[[BlacklistEntryState], BlacklistEntryState]] = {
    "notify": lambda e: notify(e, LATE, "in_person", P),
    "list": lambda e: list_entry(e, LATE, P),
    "remove": lambda e: remove(e, LATE, RemovalReason.decision_corrected),
    "withdraw": lambda e: withdraw(e, LATE, "dropped"),
    "file_objection": lambda e: file_objection(e, LATE),
    "settle_objection": lambda e: settle_objection(e, LATE, upheld=False),
}
LEGAL_FROM = {
    "notify": {BlacklistState.proposed},
    "list": {BlacklistState.notified},
    "remove": {BlacklistState.listed},
    "withdraw": {BlacklistState.proposed, BlacklistState.notified},
    "file_objection": {BlacklistState.notified},
    "settle_objection": {BlacklistState.notified},
}


@pytest.mark.parametrize(
    ("action", "state"),
    [
        (action, state)
        for action, legal in LEGAL_FROM.items()
        for state in BlacklistState
        if state not in legal
    ],
)
def test_illegal_transitions_conflict_naming_state(action: str, state: BlacklistState) -> None:
    """Every action from a state that does not allow it is a Conflict naming both."""
    with pytest.raises(Conflict) as info:
        ACTIONS[action](STATES[state]())
    assert f"blacklist entry is '{state.value}'" in info.value.detail
    assert f"'{action}' is allowed only from" in info.value.detail


def test_conflict_message_for_listing_a_proposal_names_the_window_end() -> None:
    """Listing a notified-window entry too early names the date the window ends."""
    with pytest.raises(Conflict) as info:
        list_entry(notified(), DEADLINE, P)
    assert info.value.detail.startswith("blacklist entry is 'notified'; 'list' is allowed only")
    assert "2026-12-10" in info.value.detail


def test_final_states_say_so() -> None:
    """Removed and withdrawn entries tell the caller to propose anew."""
    with pytest.raises(Conflict, match="final, propose a new one"):
        notify(removed(), LATE, "x", P)
    with pytest.raises(Conflict, match="final, propose a new one"):
        notify(withdrawn(), LATE, "x", P)
    with pytest.raises(Conflict, match="use 'remove'"):
        withdraw(listed(), LATE, "x")


# --- the happy path --------------------------------------------------------------


def test_propose() -> None:
    """A proposal starts with no other dates."""
    e = proposed()
    assert e.state is BlacklistState.proposed
    assert e.proposed_on == PROPOSED_ON
    assert e.notified_on is e.listed_on is e.removed_on is None
    assert not e.pending_objection


def test_notify_opens_the_objection_window() -> None:
    """Notice records the channel and a deadline N calendar days later."""
    e = notified()
    assert e.state is BlacklistState.notified
    assert e.notified_on == NOTIFIED_ON
    assert e.notice_channel == "registered_mail"
    assert e.objection_deadline == DEADLINE


def test_notify_on_the_proposal_day() -> None:
    """Notice may be given the day of the proposal, not before."""
    assert notify(proposed(), PROPOSED_ON, "electronic", P).notified_on == PROPOSED_ON
    with pytest.raises(InvalidInput) as info:
        notify(proposed(), PROPOSED_ON - timedelta(days=1), "electronic", P)
    assert info.value.field == "on"


def test_notify_needs_a_channel() -> None:
    """An empty channel is invalid input; surrounding spaces are trimmed."""
    with pytest.raises(InvalidInput) as info:
        notify(proposed(), NOTIFIED_ON, "  ", P)
    assert info.value.field == "channel"
    assert notify(proposed(), NOTIFIED_ON, " in_person ", P).notice_channel == "in_person"


def test_objection_window_follows_policy() -> None:
    """The window length is a policy setting."""
    e = notify(proposed(), NOTIFIED_ON, "x", Policy(blacklist_objection_window_days=15))
    assert e.objection_deadline == date(2026, 12, 15)


@pytest.mark.parametrize(
    ("on", "allowed"),
    [
        (DEADLINE - timedelta(days=1), False),  # day before the window ends
        (DEADLINE, False),  # last day of the window
        (DEADLINE + timedelta(days=1), True),  # day after
        (DEADLINE + timedelta(days=30), True),
    ],
)
def test_list_only_after_the_objection_window(on: date, allowed: bool) -> None:
    """Listing is refused up to and including the deadline, allowed from the day after."""
    if allowed:
        e = list_entry(notified(), on, P)
        assert e.state is BlacklistState.listed
        assert e.listed_on == on
    else:
        with pytest.raises(Conflict, match="after the objection window ends on 2026-12-10"):
            list_entry(notified(), on, P)


def test_list_defaults_planned_removal_to_the_serious_maximum() -> None:
    """Without a date, the listing lasts the serious maximum (36 months)."""
    e = listed()
    assert e.planned_removal_on == DEFAULT_REMOVAL


@pytest.mark.parametrize(
    ("planned", "ok"),
    [
        (date(2027, 12, 11), False),  # last day of the 12-month minimum
        (date(2027, 12, 12), True),  # the minimum exactly
        (date(2028, 6, 1), True),
        (DEFAULT_REMOVAL, True),  # the maximum exactly
        (DEFAULT_REMOVAL + timedelta(days=1), False),
        (LISTED_ON, False),
    ],
)
def test_list_with_planned_removal_between_min_and_max(planned: date, ok: bool) -> None:
    """A planned removal date must keep the listing within the serious grade's bounds."""
    if ok:
        assert list_entry(notified(), LISTED_ON, P, planned).planned_removal_on == planned
    else:
        with pytest.raises(InvalidInput) as info:
            list_entry(notified(), LISTED_ON, P, planned)
        assert info.value.field == "planned_removal_on"
        assert "2027-12-12" in str(info.value.accepted)


def test_zero_minimum_still_needs_a_future_removal() -> None:
    """Even with a zero minimum, the removal date must be after the listing day."""
    policy = Policy(minor_min_months=0, general_min_months=0, serious_min_months=0)
    e = notify(proposed(), NOTIFIED_ON, "x", policy)
    assert list_entry(e, LISTED_ON, policy, LISTED_ON + timedelta(days=1)).state == "listed"
    with pytest.raises(InvalidInput):
        list_entry(e, LISTED_ON, policy, LISTED_ON)


# --- objections before listing ------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "allowed"),
    [
        (NOTIFIED_ON, True),
        (DEADLINE - timedelta(days=1), True),
        (DEADLINE, True),  # the last day still counts
        (DEADLINE + timedelta(days=1), False),
    ],
)
def test_file_objection_within_the_window(on: date, allowed: bool) -> None:
    """Objections are accepted from notice through the deadline, inclusive."""
    if allowed:
        assert file_objection(notified(), on).pending_objection
    else:
        with pytest.raises(Conflict, match="until the objection window ends on 2026-12-10"):
            file_objection(notified(), on)


def test_file_objection_before_notice_is_invalid() -> None:
    """An objection cannot predate the notice."""
    with pytest.raises(InvalidInput):
        file_objection(notified(), NOTIFIED_ON - timedelta(days=1))


def test_second_objection_while_pending_conflicts() -> None:
    """One objection at a time."""
    with pytest.raises(Conflict, match="objection pending"):
        file_objection(objected(), DEADLINE)


def test_pending_objection_blocks_listing_even_after_the_window() -> None:
    """The entry waits for the objection's decision before listing."""
    with pytest.raises(Conflict, match="'list' is allowed only after the objection is settled"):
        list_entry(objected(), LISTED_ON + timedelta(days=20), P)


def test_rejected_objection_lets_listing_proceed() -> None:
    """A rejected objection clears the flag; the entry stays notified."""
    e = settle_objection(objected(), date(2026, 12, 15), upheld=False)
    assert e.state is BlacklistState.notified
    assert not e.pending_objection
    assert list_entry(e, date(2026, 12, 16), P).state is BlacklistState.listed


def test_rejected_objection_inside_window_still_waits_for_window() -> None:
    """Settling early does not shorten the objection window."""
    e = settle_objection(objected(), date(2026, 12, 6), upheld=False)
    with pytest.raises(Conflict, match="2026-12-10"):
        list_entry(e, DEADLINE, P)


def test_upheld_objection_withdraws_the_proposal() -> None:
    """An upheld objection drops the proposal."""
    e = settle_objection(objected(), date(2026, 12, 15), upheld=True)
    assert e.state is BlacklistState.withdrawn
    assert e.withdrawn_on == date(2026, 12, 15)
    assert e.withdrawal_reason == "objection_upheld"
    assert not e.pending_objection


def test_settle_without_objection_conflicts() -> None:
    """There must be an objection to settle."""
    with pytest.raises(Conflict, match="no objection pending"):
        settle_objection(notified(), DEADLINE, upheld=True)


def test_settle_before_notice_is_invalid() -> None:
    """Dates never run backwards."""
    with pytest.raises(InvalidInput):
        settle_objection(objected(), NOTIFIED_ON - timedelta(days=1), upheld=True)


# --- withdrawal ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [proposed, notified, objected])
def test_withdraw_before_listing(make: Callable[[], BlacklistEntryState]) -> None:
    """A proposal can be dropped until it is listed; a pending objection becomes moot."""
    e = withdraw(make(), DEADLINE, "  decision revoked ")
    assert e.state is BlacklistState.withdrawn
    assert e.withdrawn_on == DEADLINE
    assert e.withdrawal_reason == "decision revoked"
    assert not e.pending_objection


def test_withdraw_needs_a_reason_and_a_sane_date() -> None:
    """Empty reasons and dates before the last step are invalid."""
    with pytest.raises(InvalidInput) as info:
        withdraw(proposed(), DEADLINE, "")
    assert info.value.field == "reason"
    with pytest.raises(InvalidInput):
        withdraw(notified(), NOTIFIED_ON - timedelta(days=1), "x")


# --- removal -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason",
    [
        RemovalReason.credit_repair_approved,
        RemovalReason.decision_revoked,
        RemovalReason.decision_corrected,
    ],
)
def test_remove_early_for_repair_revocation_or_correction(reason: RemovalReason) -> None:
    """These reasons apply on any day from the listing day."""
    e = remove(listed(), LISTED_ON, reason)
    assert e.state is BlacklistState.removed
    assert e.removed_on == LISTED_ON
    assert e.removal_reason is reason


@pytest.mark.parametrize(
    ("on", "allowed"),
    [
        (DEFAULT_REMOVAL - timedelta(days=1), False),
        (DEFAULT_REMOVAL, True),
        (DEFAULT_REMOVAL + timedelta(days=1), True),
    ],
)
def test_remove_for_period_end(on: date, allowed: bool) -> None:
    """period_ended is refused before the planned removal date."""
    if allowed:
        assert remove(listed(), on, RemovalReason.period_ended).removal_reason == "period_ended"
    else:
        with pytest.raises(Conflict, match="removal for 'period_ended' is allowed from 2029-12-12"):
            remove(listed(), on, RemovalReason.period_ended)


def test_remove_before_listing_day_is_invalid() -> None:
    """Removal cannot predate the listing."""
    with pytest.raises(InvalidInput):
        remove(listed(), LISTED_ON - timedelta(days=1), RemovalReason.decision_revoked)


def test_remove_rejects_unknown_reason() -> None:
    """The reason must be one of the removal conditions."""
    with pytest.raises(ValueError, match="expired"):
        remove(listed(), LATE, "expired")  # type: ignore[arg-type]  # raw input


# --- visibility and listing window -----------------------------------------------------


@pytest.mark.parametrize(
    ("today", "shown"),
    [
        (LISTED_ON - timedelta(days=1), False),
        (LISTED_ON, True),
        (DEFAULT_REMOVAL - timedelta(days=1), True),
        (DEFAULT_REMOVAL, False),  # stops by itself at the planned date
    ],
)
def test_is_listed_edges(today: date, shown: bool) -> None:
    """Listed on listed_on <= today < planned_removal_on."""
    assert is_listed(listed(), today) is shown


def test_removed_entry_is_listed_only_before_removal() -> None:
    """Removal takes effect on its date; the history stays in the state."""
    e = removed()
    assert is_listed(e, date(2027, 5, 31))
    assert not is_listed(e, date(2027, 6, 1))
    assert e.listed_on == LISTED_ON


@pytest.mark.parametrize("make", [proposed, notified, withdrawn])
def test_unlisted_states_are_never_listed(make: Callable[[], BlacklistEntryState]) -> None:
    """Proposals are never shown on the list."""
    assert not is_listed(make(), LATE)
    assert not is_listed(make(), LISTED_ON)


def test_listing_window_for_repair() -> None:
    """The listing's window: repair from the serious minimum, end at planned removal."""
    w = listing_window(listed(), P)
    assert w.start == LISTED_ON
    assert w.earliest_end == date(2027, 12, 12)
    assert w.latest_end == DEFAULT_REMOVAL
    assert w.published
    with pytest.raises(Conflict, match="blacklist entry is 'notified'"):
        listing_window(notified(), P)


def test_listing_window_earliest_end_never_past_planned_removal() -> None:
    """With a short planned period the window stays ordered."""
    policy = Policy(minor_min_months=0, general_min_months=0, serious_min_months=0)
    e = notify(proposed(), NOTIFIED_ON, "x", policy)
    e = list_entry(e, LISTED_ON, policy, LISTED_ON + timedelta(days=3))
    w = listing_window(e, P)
    assert w.earliest_end == w.latest_end == LISTED_ON + timedelta(days=3)


# --- listing basis -------------------------------------------------------------------


def test_check_listing_basis() -> None:
    """A listing needs at least one serious record."""
    check_listing_basis([Grade.minor, Grade.serious])
    check_listing_basis(["serious"])  # type: ignore[list-item]  # raw input
    with pytest.raises(Conflict, match="graded: minor, general"):
        check_listing_basis([Grade.minor, Grade.general])
    with pytest.raises(Conflict, match="graded: none"):
        check_listing_basis([])


# --- properties ----------------------------------------------------------------------


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=1, max_value=400),
    st.booleans(),
)
def test_lifecycle_dates_are_ordered(
    proposed_on: date, to_notice: int, window: int, after_window: int, with_objection: bool
) -> None:
    """Through any legal path, proposed <= notified <= deadline < listed < planned removal."""
    policy = Policy(blacklist_objection_window_days=window)
    e = propose(proposed_on)
    e = notify(e, proposed_on + timedelta(days=to_notice), "x", policy)
    deadline = e.objection_deadline
    assert deadline is not None
    on = deadline + timedelta(days=after_window)
    if with_objection:
        e = file_objection(e, deadline)
        e = settle_objection(e, on, upheld=False)
    e = list_entry(e, on, policy)
    assert e.notified_on is not None
    assert e.listed_on is not None
    assert e.planned_removal_on is not None
    assert e.proposed_on <= e.notified_on <= deadline < e.listed_on
    assert e.listed_on < e.planned_removal_on
    assert is_listed(e, e.listed_on)
    assert not is_listed(e, e.planned_removal_on)
