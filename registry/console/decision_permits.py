"""Which decision steps a page offers today: each verdict asked of the rule that decides it.

A blacklist entry's steps are ``registry.domain.blacklist``'s transitions, an objection's
decision ``domain.objections.decide``, a repair's ``domain.repair.approve``/``reject`` (and,
for approval, ``credit.repairs.check_repairable``: publication must still run). Whose
decision it is comes from ``credit.ownership.require_decider``, the function every use
case calls before it writes. Each is tried on the current state for today
(``permits.permit``): the button is shown when it passes, its refusal in Chinese when not.
The use case asks the same functions again when the form is posted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import asyncpg

from registry.console.permits import ALLOWED, Permit, permit, refused
from registry.credit.ownership import Acting, require_decider
from registry.db.types import Conn
from registry.domain import blacklist as bl_rules
from registry.domain import objections as objection_rules
from registry.domain import repair as repair_rules
from registry.domain.blacklist import BlacklistEntryState, RemovalReason
from registry.domain.objections import Objection
from registry.domain.policy import Policy
from registry.domain.repair import RepairApplication
from registry.errors import Forbidden

# Stand-ins for what the official types into a step's form (the channel of a notice, the
# reason of a withdrawal): the rule refuses an empty one at its field when posted; the
# permit asks only whether the step itself is open today.
_TYPED = "-"


async def decider(source: Conn | asyncpg.Pool, who: Acting, owners: Iterable[str],
                  what: str) -> Permit:
    """Whether ``who`` acts for the authority answering for ``what`` (``require_decider``)."""
    try:
        await require_decider(source, who, owners, what)
    except Forbidden as error:
        return refused(error.detail)
    return ALLOWED


@dataclass(frozen=True)
class EntrySteps:
    """The steps of a blacklist entry's page; ``removal`` has one verdict per reason."""

    notify: Permit
    list: Permit
    withdraw: Permit
    removal: dict[RemovalReason, Permit]

    @property
    def remove(self) -> Permit:
        """Removal is offered when at least one reason is allowed (else the first refusal)."""
        if any(p.allowed for p in self.removal.values()):
            return ALLOWED
        return next(iter(self.removal.values()))


def entry_steps(state: BlacklistEntryState, today: date, policy: Policy,
                owner: Permit) -> EntrySteps:
    """Every step of the entry for ``today``; none if ``owner`` refuses (its reason each)."""
    if not owner.allowed:
        return EntrySteps(notify=owner, list=owner, withdraw=owner,
                          removal=dict.fromkeys(RemovalReason, owner))
    return EntrySteps(
        notify=permit(lambda: bl_rules.notify(state, today, _TYPED, policy)),
        list=permit(lambda: bl_rules.list_entry(state, today, policy)),
        withdraw=permit(lambda: bl_rules.withdraw(state, today, _TYPED)),
        removal={reason: _removal(state, today, reason) for reason in RemovalReason},
    )


def _removal(state: BlacklistEntryState, today: date, reason: RemovalReason) -> Permit:
    return permit(lambda: bl_rules.remove(state, today, reason))


def objection_decision(objection: Objection, today: date, owner: Permit) -> Permit:
    if not owner.allowed:
        return owner
    return permit(lambda: objection_rules.decide(objection, today, upheld=False))


@dataclass(frozen=True)
class RepairSteps:
    approve: Permit
    reject: Permit


def repair_steps(application: RepairApplication, today: date, owner: Permit,
                 still_published: Permit) -> RepairSteps:
    """Approve and reject; approval also needs the target still in publication."""
    if not owner.allowed:
        return RepairSteps(approve=owner, reject=owner)
    reject = permit(lambda: repair_rules.reject(application, today))
    approve = permit(lambda: repair_rules.approve(application, today))
    if approve.allowed and not still_published.allowed:
        approve = still_published
    return RepairSteps(approve=approve, reject=reject)
