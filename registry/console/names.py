"""The Chinese names the console gives to the registry's codes, each written once.

Codes stay the registry's (the API's JSON values, the audit log's actions); these are
only the words an official reads beside them. They are here, once, so that a code reads
the same on every page: the subject's page, the decision pages, the record page and 待办
all say 已列入名单 for ``listed``, never a second word for it. Names the public also reads
(kinds of record, grades, document types, the list's and the record's names) are
``publish/labels.py``'s and are reused, not copied. A code without a name here is shown
as it is, so a new action or state is never hidden, only untranslated.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from registry.publish import labels

# --- Subjects -----------------------------------------------------------------------

SUBJECT_KINDS: Final[Mapping[str, str]] = MappingProxyType({
    "vc_firm": "创业投资企业",
    "vc_manager": "创业投资管理企业",
    "practitioner": "从业人员",
})
SUBJECT_STATUSES: Final[Mapping[str, str]] = MappingProxyType({
    "active": "正常",
    "inactive": "已停用",
})
# The document types by their JSON values (the public's names, keyed by the enum).
DOCUMENT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {str(kind): name for kind, name in labels.DOCUMENT_TYPE_NAMES.items()}
)

# --- Credit records -----------------------------------------------------------------

RECORD_STATUSES: Final[Mapping[str, str]] = MappingProxyType({
    "published": "公示中",
    "not_published": "不予公示",
    "expired": "公示期满",
    "revoked": "已撤销",
    "repaired": "已信用修复",
})

# --- The serious-dishonesty list --------------------------------------------------------

ENTRY_STATES: Final[Mapping[str, str]] = MappingProxyType({
    "proposed": "已提请",
    "notified": "已告知",
    "listed": "已列入名单",
    "removed": "已移出名单",
    "withdrawn": "已撤回",
})
# How the subject was told (告知); the form offers these, the rule takes any text.
NOTICE_CHANNELS: Final[Mapping[str, str]] = MappingProxyType({
    "registered_mail": "挂号信邮寄送达",
    "in_person": "直接送达",
    "electronic": "电子送达",
    "announcement": "公告送达",
})
REMOVAL_REASONS: Final[Mapping[str, str]] = MappingProxyType({
    "period_ended": "列入期限届满",
    "credit_repair_approved": "信用修复获批准",
    "decision_revoked": "所依据的决定被撤销",
    "decision_corrected": "所依据的决定被更正",
})
# Why a proposal was withdrawn before listing (the public's WITHDRAWAL_REASON_NAMES are
# why an item left publication: another question).
ENTRY_WITHDRAWAL_REASONS: Final[Mapping[str, str]] = MappingProxyType({
    "objection_upheld": "异议成立",
    **{code: REMOVAL_REASONS[code] for code in ("decision_revoked", "decision_corrected")},
})

# --- Objections and credit repair ---------------------------------------------------

OBJECTION_STATES: Final[Mapping[str, str]] = MappingProxyType({
    "filed": "待决定",
    "upheld": "异议成立",
    "rejected": "异议不成立",
})
OBJECTION_FILERS: Final[Mapping[str, str]] = MappingProxyType({
    "subject": "当事人",
    "bureau": "征信机构（代当事人）",
})
# What an upheld objection does to the disputed item.
OBJECTION_ACTIONS: Final[Mapping[str, str]] = MappingProxyType({
    "revoke": "撤销",
    "correct": "更正",
})
REPAIR_STATES: Final[Mapping[str, str]] = MappingProxyType({
    "applied": "待决定",
    "approved": "已批准",
    "rejected": "已驳回",
})
REPAIR_ROUTES: Final[Mapping[str, str]] = MappingProxyType({
    "blacklist_removal": f"移出{labels.BLACKLIST}",
    "penalty_publicity": "提前停止公示行政处罚信息",
    "other_dishonesty": "其他失信信息的信用修复",
})
# What an objection or a repair application is about.
TARGET_TYPES: Final = labels.OBJECT_TYPE_NAMES

# --- Imports ------------------------------------------------------------------------

# The states of an import job (registry/imports/jobs.py, schema 0016).
IMPORT_JOB_STATES: Final[Mapping[str, str]] = MappingProxyType({
    "queued": "排队中",
    "running": "进行中",
    "done": "已完成",
    "failed": "失败",
})

# --- The audit log ------------------------------------------------------------------

# The audit log's object types, as a history names what a leaf is about.
LOG_OBJECTS: Final[Mapping[str, str]] = MappingProxyType({
    **labels.OBJECT_TYPE_NAMES,
    "subject": "主体",
    "affiliation": "任职关系",
    "fund_manager": "管理人关系",
    "objection": "异议",
    "repair": "信用修复",
})
# The audit log's actions: what was done, as a whole phrase (a history lists leaves of
# many objects side by side, so 登记 alone would not say what was registered).
ACTIONS: Final[Mapping[str, str]] = MappingProxyType({
    "subject.create": "登记主体",
    "subject.update": "变更主体信息",
    "subject.deactivate": "停用主体",
    "subject.reactivate": "恢复主体",
    "affiliation.create": "登记任职关系",
    "affiliation.end": "终止任职关系",
    "fund_manager.create": "登记管理人",
    "fund_manager.end": "终止管理关系",
    "fund_manager.correct": "更正管理关系日期",
    "record.create": "登记信用信息",
    "record.correct": "更正信用信息",
    "record.revoke": "撤销信用信息",
    "record.expire": "公示期满",
    "record.repair": "信用修复",
    "record.objection_filed": "提出异议",
    "record.objection_settled": "异议处理完毕",
    "blacklist.propose": f"提请列入{labels.BLACKLIST}",
    "blacklist.notify": "告知当事人",
    "blacklist.list": f"列入{labels.BLACKLIST}",
    "blacklist.remove": f"移出{labels.BLACKLIST}",
    "blacklist.withdraw": "撤回提请",
    "blacklist.objection_filed": "提出异议",
    "blacklist.objection_settled": "异议处理完毕",
    "objection.file": "提出异议",
    "objection.decide": "作出异议决定",
    "objection.deadlines_recounted": "按节假日安排重新计算异议期限",
    "repair.apply": "申请信用修复",
    "repair.approve": "批准信用修复",
    "repair.reject": "驳回信用修复",
})

# --- Who read a clear document number ----------------------------------------------

ACCESS_CHANNELS: Final[Mapping[str, str]] = MappingProxyType({
    "profile": "征信机构查询信用档案",
    "lookup": "征信机构按证件查询",
    "bulk": "征信机构批量查询",
    "feed": "征信机构变更订阅",
    "regulator_read": "监管机构查看完整证件号码",
    "regulator_lookup": "监管机构按证件查询",
})
ACCESS_ROLES: Final[Mapping[str, str]] = MappingProxyType({
    "bureau": "征信机构",
    "regulator": "监管机构",
})
# Why a regulator reads a clear number (registry/bureau/access.py RegulatorPurpose), in
# the order the page offers them; bureaus' purposes are policy and shown as recorded.
REGULATOR_PURPOSES: Final[Mapping[str, str]] = MappingProxyType({
    "supervision": "日常监管",
    "enforcement": "行政执法",
    "objection_review": "异议核查",
    "credit_repair": "信用修复审核",
    "subject_request": "信息主体本人申请",
})

# The tables a template names a code by: ``label("repair_route", r.route)``.
TABLES: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType({
    "kind": SUBJECT_KINDS,
    "subject_status": SUBJECT_STATUSES,
    "document": DOCUMENT_TYPES,
    "record_kind": labels.RECORD_KIND_NAMES,
    "grade": labels.GRADE_NAMES,
    "record_status": RECORD_STATUSES,
    "blacklist_state": ENTRY_STATES,
    "objection_state": OBJECTION_STATES,
    "filed_by": OBJECTION_FILERS,
    "repair_state": REPAIR_STATES,
    "repair_route": REPAIR_ROUTES,
    "target": TARGET_TYPES,
    "object": LOG_OBJECTS,
    "action": ACTIONS,
    "channel": ACCESS_CHANNELS,
    "role": ACCESS_ROLES,
    "purpose": REGULATOR_PURPOSES,
    "import_state": IMPORT_JOB_STATES,
})


def name_of(names: Mapping[str, str], code: str | None) -> str:
    """The Chinese for ``code`` in ``names``; the code itself if it has none (an official's
    own words stay as typed), and an empty string for no code."""
    if code is None:
        return ""
    return names.get(code, code)


def label(table: str, code: str | None) -> str:
    """``name_of`` for templates: ``table`` is a key of ``TABLES``."""
    return name_of(TABLES[table], code)
