"""The Chinese names the console's subject pages give to the registry's codes.

Codes stay the registry's (the API's JSON values, the audit log's actions); these are
only the words an official reads beside them. A code without a name here is shown as
it is, so a new action or state is never hidden, only untranslated.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from registry.publish.labels import (
    DOCUMENT_TYPE_NAMES,
    GRADE_NAMES,
    OBJECT_TYPE_NAMES,
    RECORD_KIND_NAMES,
)

KIND_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "vc_firm": "创业投资企业",
    "vc_manager": "创业投资管理企业",
    "practitioner": "从业人员",
})
SUBJECT_STATUS_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "active": "正常",
    "inactive": "已停用",
})
DOCUMENT_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {str(kind): name for kind, name in DOCUMENT_TYPE_NAMES.items()}
)
RECORD_STATUS_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "published": "公示中",
    "not_published": "不公示",
    "expired": "公示期满",
    "revoked": "已撤销",
    "repaired": "已信用修复",
})
BLACKLIST_STATE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "proposed": "已提请",
    "notified": "已告知",
    "listed": "已列入名单",
    "removed": "已移出名单",
    "withdrawn": "已撤回",
})
OBJECTION_STATE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "filed": "待处理",
    "upheld": "异议成立",
    "rejected": "异议不成立",
})
FILED_BY_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "subject": "信息主体",
    "bureau": "征信机构",
})
REPAIR_STATE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "applied": "待决定",
    "approved": "已批准",
    "rejected": "未批准",
})
REPAIR_ROUTE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "blacklist_removal": "移出严重失信名单",
    "penalty_publicity": "行政处罚信息提前停止公示",
    "other_dishonesty": "其他失信信息修复",
})
TARGET_NAMES: Final[Mapping[str, str]] = OBJECT_TYPE_NAMES
# The audit log's object types, as the history names what a leaf is about.
OBJECT_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "subject": "主体",
    "affiliation": "任职关系",
    "fund_manager": "管理人关系",
    "credit_record": "信用记录",
    "blacklist_entry": "严重失信名单",
    "objection": "异议",
    "repair": "信用修复",
})
ACTION_NAMES: Final[Mapping[str, str]] = MappingProxyType({
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
    "blacklist.propose": "提请列入严重失信名单",
    "blacklist.notify": "告知当事人",
    "blacklist.list": "列入严重失信名单",
    "blacklist.remove": "移出严重失信名单",
    "blacklist.withdraw": "撤回提请",
    "blacklist.objection_filed": "提出异议",
    "blacklist.objection_settled": "异议处理完毕",
    "objection.file": "受理异议",
    "objection.decide": "作出异议决定",
    "objection.deadlines_recounted": "重新计算异议期限",
    "repair.apply": "申请信用修复",
    "repair.approve": "批准信用修复",
    "repair.reject": "不予信用修复",
})
ACCESS_CHANNEL_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "profile": "征信机构查询信用档案",
    "lookup": "征信机构按证件查询",
    "bulk": "征信机构批量查询",
    "feed": "征信机构变更订阅",
    "regulator_read": "监管机构查看完整证件号码",
    "regulator_lookup": "监管机构按证件查询",
})
ACCESS_ROLE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "bureau": "征信机构",
    "regulator": "监管机构",
})
# Why a regulator reads a clear number (registry/bureau/access.py RegulatorPurpose), in
# the order the page offers them; bureaus' purposes are policy and shown as recorded.
REGULATOR_PURPOSE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "supervision": "日常监管",
    "enforcement": "行政执法",
    "objection_review": "异议核查",
    "credit_repair": "信用修复审核",
    "subject_request": "信息主体本人申请",
})

LABELS: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType({
    "kind": KIND_NAMES,
    "subject_status": SUBJECT_STATUS_NAMES,
    "document": DOCUMENT_NAMES,
    "record_kind": RECORD_KIND_NAMES,
    "grade": GRADE_NAMES,
    "record_status": RECORD_STATUS_NAMES,
    "blacklist_state": BLACKLIST_STATE_NAMES,
    "objection_state": OBJECTION_STATE_NAMES,
    "filed_by": FILED_BY_NAMES,
    "repair_state": REPAIR_STATE_NAMES,
    "repair_route": REPAIR_ROUTE_NAMES,
    "target": TARGET_NAMES,
    "object": OBJECT_NAMES,
    "action": ACTION_NAMES,
    "channel": ACCESS_CHANNEL_NAMES,
    "role": ACCESS_ROLE_NAMES,
    "purpose": REGULATOR_PURPOSE_NAMES,
})


def label(table: str, code: str | None) -> str:
    """The Chinese name of ``code`` in ``table`` (``LABELS``); the code itself if it has
    none, and an empty string for no code."""
    if code is None:
        return ""
    return LABELS[table].get(code, code)
