"""Whether the signed-in official may correct or revoke a credit record now, and if not why.

Both steps are refused for the same two reasons the use cases give
(``registry/credit/records.py`` ``correct_record`` / ``revoke_record``), asked in the
same order: first whose decision the record is (``credit.ownership.require_decider``,
the function the use cases call), then whether its status allows the step
(``domain.record_rules.check_correctable`` / ``check_revocable``). The page shows a
step's form only when both pass, otherwise the refusal in Chinese; a form posted anyway
meets the same refusal from the use case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from registry.console.permits import Permit, permit, refused
from registry.credit.ownership import Acting, require_decider
from registry.domain import record_rules
from registry.errors import Forbidden
from registry.services import Services


@dataclass(frozen=True)
class RecordPermits:
    correct: Permit
    revoke: Permit

    @property
    def any(self) -> bool:
        return self.correct.allowed or self.revoke.allowed


async def record_permits(services: Services, who: Acting,
                         row: asyncpg.Record | dict[str, Any]) -> RecordPermits:
    """The verdicts on ``row`` (a credit record as stored) for ``who``, today."""
    record_id = row["id"]
    try:
        await require_decider(services.pool, who, [row["authority_code"]], f"record {record_id}")
    except Forbidden as error:
        not_theirs = refused(error.detail)
        return RecordPermits(correct=not_theirs, revoke=not_theirs)
    status = row["status"]
    return RecordPermits(
        correct=permit(lambda: record_rules.check_correctable(record_id, status)),
        revoke=permit(lambda: record_rules.check_revocable(record_id, status)),
    )
