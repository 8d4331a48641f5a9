"""The serious-dishonesty list (嚴重失信主體名單): an entry's life as pure transitions.

::

    proposed ──notify──▶ notified ──(objection window ends, no objection pending)──list──▶ listed
       │                   │  ▲                                                            │
       │                   │  └── file_objection / settle_objection(upheld=False)          remove
       │                   │                                                               ▼
       └──withdraw─────────┴──withdraw, or settle_objection(upheld=True)──▶ withdrawn    removed

Every function takes a ``BlacklistEntryState`` and returns a new one; nothing is
mutated, nothing is read from a clock. An illegal transition raises ``Conflict``
naming the current state and what is allowed from it; a date that runs backwards
raises ``InvalidInput``.

Dates:

- ``objection_deadline`` is the last day (inclusive) on which the notified subject
  may object: ``notified_on`` + ``policy.blacklist_objection_window_days``
  calendar days. Listing is allowed from the day after.
- ``planned_removal_on`` is the first day the entry is no longer listed (the
  listing period is ``[listed_on, planned_removal_on)``); by default the serious
  grade's maximum period from ``listed_on``. At that date the entry stops being
  shown by itself (``is_listed``); ``remove(..., period_ended)`` records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum

import msgspec

from registry.domain.policy import Policy, period_end
from registry.domain.publicity import Grade, PublicityWindow
from registry.errors import Conflict, InvalidInput


class BlacklistState(StrEnum):
    proposed = "proposed"
    notified = "notified"
    listed = "listed"
    removed = "removed"
    withdrawn = "withdrawn"


class RemovalReason(StrEnum):
    """Why a listed entry left the list (國辦發〔2020〕49號 removal conditions)."""

    period_ended = "period_ended"
    credit_repair_approved = "credit_repair_approved"
    decision_revoked = "decision_revoked"
    decision_corrected = "decision_corrected"


class BlacklistEntryState(msgspec.Struct, frozen=True, kw_only=True):
    state: BlacklistState
    proposed_on: date
    notified_on: date | None = None
    # How the subject was told (告知): e.g. "registered_mail", "in_person", "electronic".
    notice_channel: str | None = None
    objection_deadline: date | None = None
    listed_on: date | None = None
    planned_removal_on: date | None = None
    removed_on: date | None = None
    removal_reason: RemovalReason | None = None
    withdrawn_on: date | None = None
    withdrawal_reason: str | None = None
    # True from the filing of an objection to its settlement; blocks listing.
    pending_objection: bool = False


def basis_holds(grade: str | None, status: str) -> bool:
    """Whether a credit record can carry a listing: a serious decision still in force.

    An entry may be proposed, listed and stay listed only while every record it rests
    on holds (a listing's stated basis must be true). A revocation, or a correction or
    upheld objection that downgrades the record, ends the entries resting on it
    (registry/credit/blacklist.py ``end_entries_without_basis``). The end of the
    record's own publicity does not: the listing has its own period.
    """
    return grade == Grade.serious.value and status != "revoked"


def check_listing_basis(records_grades: Sequence[Grade]) -> None:
    """Refuse a listing that does not rest on at least one serious record."""
    if not any(Grade(g) is Grade.serious for g in records_grades):
        shown = ", ".join(Grade(g).value for g in records_grades) or "none"
        raise Conflict(
            f"a blacklist entry must rest on at least one serious record; "
            f"the subject's records are graded: {shown}"
        )


def propose(on: date) -> BlacklistEntryState:
    """A new proposal to list a subject."""
    return BlacklistEntryState(state=BlacklistState.proposed, proposed_on=on)


def notify(
    entry: BlacklistEntryState, on: date, channel: str, policy: Policy
) -> BlacklistEntryState:
    """Record that the subject was told of the proposal (告知); opens the objection window."""
    _require(entry, "notify", BlacklistState.proposed)
    _not_before(on, entry.proposed_on, "the proposal")
    if not channel.strip():
        raise InvalidInput(
            "channel",
            "the notice channel is empty",
            "how the subject was told, e.g. registered_mail",
        )
    return msgspec.structs.replace(
        entry,
        state=BlacklistState.notified,
        notified_on=on,
        notice_channel=channel.strip(),
        objection_deadline=on + timedelta(days=policy.blacklist_objection_window_days),
    )


def file_objection(entry: BlacklistEntryState, on: date) -> BlacklistEntryState:
    """The subject objects within the window; listing waits until the objection is settled."""
    _require(entry, "file_objection", BlacklistState.notified)
    assert entry.notified_on is not None
    assert entry.objection_deadline is not None
    _not_before(on, entry.notified_on, "the notice")
    if entry.pending_objection:
        raise Conflict(
            "blacklist entry is 'notified' with an objection pending; "
            "settle it before another objection can be filed"
        )
    if on > entry.objection_deadline:
        raise Conflict(
            f"blacklist entry is 'notified'; 'file_objection' is allowed only until the "
            f"objection window ends on {entry.objection_deadline.isoformat()}"
        )
    return msgspec.structs.replace(entry, pending_objection=True)


def settle_objection(entry: BlacklistEntryState, on: date, *, upheld: bool) -> BlacklistEntryState:
    """Apply the decision on the pending objection.

    Upheld: the proposal is dropped (``withdrawn``, reason "objection_upheld").
    Rejected: the entry stays ``notified`` and may be listed once the window ended.
    """
    _require(entry, "settle_objection", BlacklistState.notified)
    assert entry.notified_on is not None
    if not entry.pending_objection:
        raise Conflict(
            "blacklist entry is 'notified' with no objection pending; "
            "'settle_objection' needs a filed objection"
        )
    _not_before(on, entry.notified_on, "the notice")
    if upheld:
        return msgspec.structs.replace(
            entry,
            state=BlacklistState.withdrawn,
            pending_objection=False,
            withdrawn_on=on,
            withdrawal_reason="objection_upheld",
        )
    return msgspec.structs.replace(entry, pending_objection=False)


def list_entry(
    entry: BlacklistEntryState,
    on: date,
    policy: Policy,
    planned_removal_on: date | None = None,
) -> BlacklistEntryState:
    """List the subject: only once notified, after the objection window, with no objection pending.

    ``planned_removal_on`` defaults to the serious maximum period from ``on``; a
    given date must leave the listing between the serious minimum and maximum.
    """
    _require(entry, "list", BlacklistState.notified)
    assert entry.objection_deadline is not None
    assert entry.notified_on is not None
    _not_before(on, entry.notified_on, "the notice")
    if on <= entry.objection_deadline:
        raise Conflict(
            f"blacklist entry is 'notified'; 'list' is allowed only after the objection "
            f"window ends on {entry.objection_deadline.isoformat()} "
            f"(from {(entry.objection_deadline + timedelta(days=1)).isoformat()})"
        )
    if entry.pending_objection:
        raise Conflict(
            "blacklist entry is 'notified' with an objection pending; "
            "'list' is allowed only after the objection is settled"
        )
    earliest = period_end(on, policy.serious_min_months)
    latest = period_end(on, policy.serious_max_months)
    if planned_removal_on is None:
        planned_removal_on = latest
    elif not (max(earliest, on + timedelta(days=1)) <= planned_removal_on <= latest):
        raise InvalidInput(
            "planned_removal_on",
            f"{planned_removal_on.isoformat()} is outside the serious-grade listing period",
            f"a date from {max(earliest, on + timedelta(days=1)).isoformat()} "
            f"to {latest.isoformat()}",
        )
    return msgspec.structs.replace(
        entry,
        state=BlacklistState.listed,
        listed_on=on,
        planned_removal_on=planned_removal_on,
    )


def remove(entry: BlacklistEntryState, on: date, reason: RemovalReason) -> BlacklistEntryState:
    """Take a listed entry off the list.

    ``period_ended`` is refused before ``planned_removal_on``; the other reasons
    (approved repair, revoked or corrected decision) apply on any day after listing.
    Whether a repair may be approved yet is ``repair.check_repair_application``'s job.
    """
    reason = RemovalReason(reason)
    _require(entry, "remove", BlacklistState.listed)
    assert entry.listed_on is not None
    assert entry.planned_removal_on is not None
    _not_before(on, entry.listed_on, "the listing")
    if reason is RemovalReason.period_ended and on < entry.planned_removal_on:
        raise Conflict(
            f"blacklist entry is 'listed' and its period runs out on "
            f"{entry.planned_removal_on.isoformat()}; removal for '{reason.value}' is allowed "
            f"from {entry.planned_removal_on.isoformat()}"
        )
    return msgspec.structs.replace(
        entry, state=BlacklistState.removed, removed_on=on, removal_reason=reason
    )


def withdraw(entry: BlacklistEntryState, on: date, reason: str) -> BlacklistEntryState:
    """Drop a proposal before it is listed (e.g. the decision was revoked); clears any objection."""
    _require(entry, "withdraw", BlacklistState.proposed, BlacklistState.notified)
    _not_before(on, entry.notified_on or entry.proposed_on, "the last step")
    if not reason.strip():
        raise InvalidInput("reason", "the withdrawal reason is empty", "a short explanation")
    return msgspec.structs.replace(
        entry,
        state=BlacklistState.withdrawn,
        withdrawn_on=on,
        withdrawal_reason=reason.strip(),
        pending_objection=False,
    )


def is_listed(entry: BlacklistEntryState, today: date) -> bool:
    """Whether the entry is publicly listed on ``today``: ``listed_on <= today <`` removal.

    Only a listed entry (or one removed after ``today``) is: a proposal, a notice or a
    withdrawn proposal never is, whatever dates it holds. No planned removal means
    listed until removed. The domain's statement of the rule that
    ``registry.domain.disclosure.LISTINGS`` derives its SQL and Python forms from
    (tests/test_disclosure_rule.py checks they agree).
    """
    if entry.state not in (BlacklistState.listed, BlacklistState.removed):
        return False
    if entry.state == BlacklistState.removed and entry.removed_on is None:
        return False
    if entry.listed_on is None:
        return False
    if entry.removed_on is not None and today >= entry.removed_on:
        return False
    until = entry.planned_removal_on
    return entry.listed_on <= today and (until is None or today < until)


def listing_window(entry: BlacklistEntryState, policy: Policy) -> PublicityWindow:
    """A listed (or removed) entry's publicity window, for credit-repair checks."""
    if entry.listed_on is None or entry.planned_removal_on is None:
        raise Conflict(
            f"blacklist entry is '{entry.state.value}'; it has no listing period until it is listed"
        )
    return PublicityWindow(
        start=entry.listed_on,
        earliest_end=min(
            period_end(entry.listed_on, policy.serious_min_months), entry.planned_removal_on
        ),
        latest_end=entry.planned_removal_on,
        published=True,
        reason="serious-dishonesty list entry",
    )


_ALLOWED_FROM = {
    "notify": "'proposed'",
    "file_objection": "'notified' until the objection window ends",
    "settle_objection": "'notified' with an objection pending",
    "list": "'notified' after the objection window ends",
    "remove": "'listed'",
    "withdraw": "'proposed' or 'notified'",
}


def _require(entry: BlacklistEntryState, action: str, *states: BlacklistState) -> None:
    if entry.state in states:
        return
    allowed = _ALLOWED_FROM[action]
    if action == "list" and entry.objection_deadline is not None:
        allowed += f" on {entry.objection_deadline.isoformat()}"
    hint = {
        BlacklistState.removed: "; a removed entry is final, propose a new one",
        BlacklistState.withdrawn: "; a withdrawn proposal is final, propose a new one",
    }.get(entry.state, "")
    if entry.state is BlacklistState.listed and action == "withdraw":
        hint = "; use 'remove' to take a listed entry off the list"
    raise Conflict(
        f"blacklist entry is '{entry.state.value}'; '{action}' is allowed only from {allowed}{hint}"
    )


def _not_before(on: date, earlier: date, what: str) -> None:
    if on < earlier:
        raise InvalidInput(
            "on",
            f"{on.isoformat()} is before {what} on {earlier.isoformat()}",
            f"a date on or after {earlier.isoformat()}",
        )
