"""Whether a dry run may be confirmed now, for the page (``confirm_permit``).

At the console an upload is always checked first: a dry run (``dry_run=True``), the
same job the API's ``POST /v1/imports?dry_run=true`` queues. Confirming it imports the
same bytes as a new job (``imports.jobs.confirm``). The dry run's file is held in its
job row until then (schema 0022), so any server may confirm it, after a restart too,
for ``jobs.DRY_RUN_FILE_HOURS`` after it ended. Nothing is kept in this process.

The page asks the rule ``jobs.confirm`` enforces (``jobs.confirm_refusal``), so the
button is shown exactly when the POST would be taken; the reason it is not, in Chinese
(``texts.reason_zh``), is shown instead. Nothing is ever imported at the console without
a dry run of exactly the bytes imported.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from registry.console.permits import ALLOWED, Permit, refused
from registry.imports.jobs import Confirmation, confirm_refusal


def confirm_permit(job: Any, confirmation: Confirmation, now: datetime) -> Permit:
    """Whether the job (an ``import_jobs`` row of the officer's authority, with its
    ``Confirmation``) may be confirmed at ``now``, and if not why."""
    refusal = confirm_refusal(job, confirmation, now)
    return ALLOWED if refusal is None else refused(refusal)
