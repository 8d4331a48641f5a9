"""What the record pages show, and how their forms become the API's structs.

A record's items are shown under the national template's column names
(``publish/labels.py``), its codes (kind, grade, penalty types) by their Chinese names,
its status and its versions' actions by the console's (``names.py``); dates as
YYYY-MM-DD (Beijing days), amounts in 万元 as stored, without trailing zeros. The
correction form is the record's correctable fields (``records.CORRECTABLE``) prefilled
with the current version: it always sends every field, so only those that differ from
the version it was read from are handed to the use case as changes (an emptied field
clears the item, as ``null`` does in the API).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import asyncpg
import msgspec

from registry.console.forms import FormState, field_of, struct_from_form
from registry.console.names import ACTIONS, name_of
from registry.console.texts import reason_zh
from registry.credit import records
from registry.errors import InvalidInput
from registry.publish.labels import (
    GRADE_NAMES,
    PENALTY_COLUMNS,
    PENALTY_TYPE_NAMES,
    RECORD_KIND_NAMES,
    WITHDRAWAL_REASON_NAMES,
)
from registry.structs.credit import CreditRecord, RecordCorrection
from registry.tlog.leaf import decode_leaf

COLUMN: Final = dict(PENALTY_COLUMNS)

# Why the publicity rules withhold a record (domain/publicity.py), for the officials.
_WITHHELD: Final = (
    ("warning-only", "仅处以警告的行政处罚不予公示。"),
    ("minor dishonesty is not published", "按现行政策，轻微失信信息不予公示。"),
)

# The new-record form's fields (RecordIn's JSON names), and the correction form's.
NEW_FIELDS: Final = (
    "record_kind", "grade", "decision_number", "violation_type", "facts", "legal_basis",
    "penalty_types", "penalty_content", "fine_amount", "confiscation_amount", "licence_name",
    "licence_number", "decision_date", "valid_until", "source_name", "source_code", "remarks",
)
CORRECTION_FIELDS: Final = (*records.CORRECTABLE, "note")
LISTS: Final = frozenset({"penalty_types"})

KIND_OPTIONS: Final = tuple(RECORD_KIND_NAMES.items())
GRADE_OPTIONS: Final = tuple(GRADE_NAMES.items())
PENALTY_TYPE_OPTIONS: Final = tuple(PENALTY_TYPE_NAMES.items())


def day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def amount(value: Decimal | None) -> str:
    """万元 as typed would be: ``12.500000`` is ``12.5``, ``100`` stays ``100``."""
    if value is None:
        return ""
    return format(value.normalize(), "f")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return day(value)
    if isinstance(value, Decimal):
        return amount(value)
    return str(value)


def items(record: CreditRecord) -> list[tuple[str, str]]:
    """(label, value) of each item, in the template's order."""
    licence = " ".join(v for v in (record.licence_name, record.licence_number) if v)
    return [
        ("信息类别", RECORD_KIND_NAMES.get(record.record_kind, record.record_kind)),
        ("失信程度", GRADE_NAMES.get(record.grade, record.grade) if record.grade else "不适用"),
        (COLUMN["cf_wsh"], _text(record.decision_number)),
        (COLUMN["cf_wfxw"], _text(record.violation_type)),
        (COLUMN["cf_sy"], record.facts),
        (COLUMN["cf_yj"], _text(record.legal_basis)),
        (COLUMN["cf_cflb"], "、".join(PENALTY_TYPE_NAMES.get(t, t) for t in record.penalty_types)),
        (COLUMN["cf_nr"], _text(record.penalty_content)),
        (COLUMN["cf_nr_fk"], amount(record.fine_amount)),
        (COLUMN["cf_nr_wfff"], amount(record.confiscation_amount)),
        (COLUMN["cf_nr_zkdx"], licence),
        (COLUMN["cf_jdrq"], day(record.decision_date)),
        (COLUMN["cf_yxq"], day(record.valid_until)),
        (COLUMN["cf_gsjzq"], day(record.publicity_deadline)),
        (COLUMN["cf_cfjg"], record.authority_name),
        (COLUMN["cf_cfjgdm"], record.authority_code),
        (COLUMN["cf_sjly"], record.source_name),
        (COLUMN["cf_sjlydm"], record.source_code),
        (COLUMN["bz"], _text(record.remarks)),
    ]


def withheld_reason(record: CreditRecord) -> str | None:
    """Why the rules withhold the record from publication, in Chinese (None: they do not)."""
    if record.publishable:
        return None
    for phrase, zh in _WITHHELD:
        if phrase in record.publicity_reason:
            return zh
    return "按公示规则，该信息不予公示。"


def ended_reason(record: CreditRecord) -> str | None:
    """Why publication ended: a code's name, or the regulator's words as typed."""
    if record.status_reason is None:
        return None
    return WITHDRAWAL_REASON_NAMES.get(record.status_reason, record.status_reason)


@dataclass(frozen=True)
class Version:
    """One audited version of the record: its leaf in the log and what it changed."""

    log_index: int
    action: str
    actor: str
    time: str
    version: int | None
    note: str | None


def _beijing(rfc3339: str) -> str:
    moment = datetime.fromisoformat(rfc3339.replace("Z", "+00:00")) + timedelta(hours=8)
    return moment.strftime("%Y-%m-%d %H:%M")


async def versions(pool: asyncpg.Pool, record_id: uuid.UUID) -> list[Version]:
    """Every audited version of the record, oldest first (as ``GET /v1/records/{id}/versions``)."""
    rows = await pool.fetch(
        "SELECT o.log_index, o.body, l.leaf FROM tlog_objects o"
        " JOIN tlog_leaves l ON l.idx = o.log_index WHERE o.object_type = 'credit_record'"
        " AND o.object_id = $1 ORDER BY o.log_index", str(record_id))
    found = []
    for row in rows:
        leaf = decode_leaf(bytes(row["leaf"]))
        body = msgspec.json.decode(bytes(row["body"]))
        note = body.get("correction_note") if leaf.action == "record.correct" else (
            body.get("status_reason") if leaf.action == "record.revoke" else None)
        found.append(Version(
            log_index=row["log_index"], action=name_of(ACTIONS, leaf.action),
            actor=leaf.actor, time=_beijing(leaf.time), version=body.get("version"), note=note,
        ))
    return found


def correction_state(record: CreditRecord) -> FormState:
    """The correction form prefilled with the record's current version."""
    values: dict[str, list[str]] = {name: [_text(getattr(record, name))]
                                    for name in records.CORRECTABLE if name not in LISTS}
    values["penalty_types"] = list(record.penalty_types)
    values["version"] = [str(record.version)]
    return FormState(values=values)


def _plain(value: Any) -> Any:
    """A value as compared for a change: text without the browser's CR and outer blanks."""
    if isinstance(value, str):
        return value.replace("\r\n", "\n").strip()
    if isinstance(value, list | tuple):
        return list(value)
    return value


def correction_from_form(form: Mapping[str, list[str]],
                         current: asyncpg.Record) -> tuple[RecordCorrection, dict[str, Any]]:
    """The posted correction as the API's struct, and the changes to hand to the use case:
    the fields whose value differs from ``current`` (the record as stored). An emptied
    field is sent as ``null`` (it clears the item); raises ``InvalidInput`` naming a field."""
    cleared: dict[str, Any] = {}
    for name in records.CORRECTABLE:
        given = [v for v in form.get(name, []) if v.strip()]
        if not given:
            cleared[name] = [] if name in LISTS else None
    correction = struct_from_form(form, RecordCorrection, lists=LISTS, extra=cleared)
    changes = {name: value for name, value in correction.changes().items()
               if _plain(value) != _plain(current[name])}
    return correction, changes


def place(state: FormState, error: InvalidInput, fields: Sequence[str]) -> FormState:
    """An ``InvalidInput`` at its field when the form has it, otherwise as the form's alert."""
    if field_of(error) in fields:
        return state.refused(error)
    state.alert = reason_zh(error.reason)
    return state
