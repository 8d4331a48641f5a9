"""Credit repair (信用修復): applied, then approved or rejected once.

Three routes (DOMAIN.md): removal from the serious-dishonesty list, early end of
a penalty's publicity, repair of other dishonesty information. Repair is free:
nothing here carries a fee.

An application is accepted only while the record is published and its minimum
period has run: on days ``earliest_end <= applied_on < latest_end`` of its
``PublicityWindow`` (for a listing, ``blacklist.listing_window``). An approved
repair ends publication on the approval date (``publicity.is_in_publication``'s
``repaired_on``; for a listing, ``blacklist.remove(..., credit_repair_approved)``).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Final

import msgspec

from registry.domain.publicity import PublicityWindow, repair_allowed_from
from registry.errors import Conflict, InvalidInput


class RepairRoute(StrEnum):
    blacklist_removal = "blacklist_removal"  # 移出嚴重失信主體名單
    penalty_publicity = "penalty_publicity"  # 提前停止公示行政處罰信息
    other_dishonesty = "other_dishonesty"  # 其他失信信息的信用修復


class RepairState(StrEnum):
    applied = "applied"
    approved = "approved"
    rejected = "rejected"


# Every state by name, in the order above: what a listing's ``state`` filter accepts.
REPAIR_STATES: Final = tuple(state.value for state in RepairState)


class RepairApplication(msgspec.Struct, frozen=True, kw_only=True):
    route: RepairRoute
    state: RepairState
    applied_on: date
    decided_on: date | None = None
    decision_note: str | None = None


def check_repair_application(window: PublicityWindow, applied_on: date) -> None:
    """Refuse (Conflict) unless ``earliest_end <= applied_on < latest_end``, naming the dates."""
    if not window.published:
        raise Conflict(f"the record is not published ({window.reason}); there is nothing to repair")
    allowed_from = repair_allowed_from(window)
    if applied_on < allowed_from:
        raise Conflict(
            f"credit repair is allowed from {allowed_from.isoformat()}, when the minimum "
            f"publicity period ends; the application is dated {applied_on.isoformat()}"
        )
    if applied_on >= window.latest_end:
        raise Conflict(
            f"publication already ended on {window.latest_end.isoformat()} at the maximum "
            "period; there is nothing to repair"
        )


def apply_for_repair(
    route: RepairRoute, window: PublicityWindow, applied_on: date
) -> RepairApplication:
    """A new application, after ``check_repair_application`` accepts it."""
    check_repair_application(window, applied_on)
    return RepairApplication(
        route=RepairRoute(route), state=RepairState.applied, applied_on=applied_on
    )


def approve(application: RepairApplication, on: date, note: str | None = None) -> RepairApplication:
    """Approve: publication ends on ``on``."""
    return _decide(application, on, RepairState.approved, "approve", note)


def reject(application: RepairApplication, on: date, note: str | None = None) -> RepairApplication:
    """Reject: the record stays published; the subject may apply again."""
    return _decide(application, on, RepairState.rejected, "reject", note)


def _decide(
    application: RepairApplication,
    on: date,
    outcome: RepairState,
    action: str,
    note: str | None,
) -> RepairApplication:
    if application.state is not RepairState.applied:
        assert application.decided_on is not None
        raise Conflict(
            f"repair application is '{application.state.value}' since "
            f"{application.decided_on.isoformat()}; '{action}' is allowed only from 'applied' "
            "(an application is decided once; apply again after a rejection)"
        )
    if on < application.applied_on:
        raise InvalidInput(
            "on",
            f"{on.isoformat()} is before the application on {application.applied_on.isoformat()}",
            f"a date on or after {application.applied_on.isoformat()}",
        )
    return msgspec.structs.replace(
        application,
        state=outcome,
        decided_on=on,
        decision_note=note.strip() if note and note.strip() else None,
    )
