"""Names, in Simplified Chinese, of the codes the decision pages show: a blacklist entry's
states and steps, notice channels, removal reasons, objection and repair outcomes, and
the audit log's actions on these objects. A code not listed is shown as it is stored."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from registry.publish import labels

ENTRY_STATES: Final[Mapping[str, str]] = MappingProxyType({
    "proposed": "已提请",
    "notified": "已告知",
    "listed": "已列入",
    "removed": "已移出",
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

WITHDRAWAL_REASONS: Final[Mapping[str, str]] = MappingProxyType({
    "objection_upheld": "异议成立",
    **{code: REMOVAL_REASONS[code] for code in ("decision_revoked", "decision_corrected")},
})

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
    "blacklist_removal": "移出严重失信主体名单",
    "penalty_publicity": "提前停止公示行政处罚信息",
    "other_dishonesty": "其他失信信息的信用修复",
})

TARGET_TYPES: Final = labels.OBJECT_TYPE_NAMES

RECORD_STATUSES: Final[Mapping[str, str]] = MappingProxyType({
    "published": "公示中",
    "expired": "公示期满",
    "revoked": "已撤销",
    "repaired": "已信用修复",
})

# The audit log's actions on the objects of these pages.
ACTIONS: Final[Mapping[str, str]] = MappingProxyType({
    "blacklist.propose": "提请列入",
    "blacklist.notify": "告知当事人",
    "blacklist.list": "列入名单",
    "blacklist.remove": "移出名单",
    "blacklist.withdraw": "撤回提请",
    "blacklist.objection_filed": "提出异议",
    "blacklist.objection_settled": "异议处理完毕",
    "objection.file": "提出异议",
    "objection.decide": "作出异议决定",
    "objection.deadlines_recounted": "按节假日安排重新计算期限",
    "repair.apply": "申请信用修复",
    "repair.approve": "批准信用修复",
    "repair.reject": "驳回信用修复",
})


def name_of(names: Mapping[str, str], code: str | None) -> str:
    """The Chinese for ``code``, or the code itself (an official's own words stay as typed)."""
    if code is None:
        return ""
    return names.get(code, code)
