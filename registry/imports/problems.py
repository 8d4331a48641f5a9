"""What can be wrong with an import: the whole file (``CannotImport``) or one row (``Problem``).

A refused row is reported to the people who prepared the file, who read Chinese
(DOMAIN.md, "Language"), and to developers, who read the API's English: every
problem carries both. The English is the API's own reason where the API's rules
refused the row, so the same mistake reads the same in a 422 and in a report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from registry.domain.disclosure import mask_resident_ids, masked_number
from registry.domain.policy import Policy
from registry.publish.labels import PENALTY_COLUMNS

# The template's columns by their cf_* code (registry/publish/labels.py).
COLUMN = dict(PENALTY_COLUMNS)
# The optional last column: the dishonesty grade, which the national template lacks.
GRADE_COLUMN = "失信程度"
# Columns (or, in JSONL, fields) that hold a natural person's document number: their
# values are shown masked, wherever a problem is shown.
PERSONAL_COLUMNS = frozenset({COLUMN["cf_xdr_zjhm"], COLUMN["cf_frdb_zjhm"], "document_number"})


class CannotImport(Exception):
    """The import cannot start: the file is unreadable, its header is not the template's, or
    the authority is unknown. Nothing was checked or written (the command exits 2)."""


@dataclass(frozen=True)
class Problem:
    """Why one row was refused: its number in the file (the header is row 1 of a sheet; a
    JSONL file counts lines from 1), the column (a template column, or an API field for
    JSONL; empty when the row as a whole is meant), the value found, and the reason."""

    row: int
    column: str
    value: str | None
    zh: str
    en: str

    def masked(self, policy: Policy) -> Problem:
        """The problem as anyone may see it: a document number masked like the public sees
        one, and resident-ID numbers inside any other value or a reason (which may quote
        what a cell held) masked too."""
        if self.value is None:
            value = None
        elif self.column in PERSONAL_COLUMNS:
            value = masked_number(self.value, policy)
        else:
            value = mask_resident_ids(self.value, policy)[0]
        return replace(self, value=value, zh=mask_resident_ids(self.zh, policy)[0],
                       en=mask_resident_ids(self.en, policy)[0])


# Chinese for the English reasons of the API's rules (registry/domain/record_rules.py,
# credit/records.py, identifiers.py, text.py), by a phrase each reason contains; the
# first match wins. A reason not listed reads as the generic text below.
_RULE_REASONS_ZH: tuple[tuple[str, str], ...] = (
    ("carries no birth date",
     "该证件号码不含出生日期，无法从模板登记：请先通过接口登记该人员（须填写出生日期）"),
    ("is required: penalty_types includes fine", "处罚类别含罚款，必须填写罚款金额"),
    ("is required: penalty_types includes confiscation",
     "处罚类别含没收违法所得、没收非法财物，必须填写没收金额"),
    ("but penalty_types includes", "金额必须大于零"),
    ("but penalty_types does not include", "填写了金额，但处罚类别中没有对应的类别"),
    ("is listed more than once", "处罚类别重复"),
    ("at least one penalty type is required", "处罚类别为必填项"),
    ("is required", "必填项为空"),
    ("got `null`", "必填项为空"),
    ("missing required field", "必填项为空"),
    ("is in the future", "日期晚于今天"),
    ("is before", "日期早于允许的最早日期或起始日期"),
    ("years after", "日期超出允许的范围（起始日期后 50 年内）"),
    ("check character", "校验位不符，可能有字符输入错误"),
    ("must be 18 characters long", "长度应为 18 位"),
    ("is not allowed in a unified social credit code", "含有统一社会信用代码不允许的字符"),
    ("the subject's own credit code", "处罚机关不能是行政相对人本身"),
    ("is not the registered name of authority", "处罚机关名称与登记的机关名称不一致"),
    ("licence_name and licence_number go together", "证照名称与编号须同时填写"),
    ("more than 6 decimal places", "金额最多保留 6 位小数"),
    ("is out of range", "金额超出允许范围"),
    ("is not a decimal number", "金额不是数字"),
    ("Invalid decimal", "金额不是数字（单位：万元）"),
    ("Invalid RFC3339 encoded date", "日期格式应为 YYYY-MM-DD"),
    ("of length <=", "内容过长"),
    ("of length >=", "必填项为空"),
    ("Invalid enum value", "取值不在允许的范围内"),
    ("unknown field", "含有接口不接受的字段"),
    ("is a valid resident ID number", "该号码是居民身份证号码，证件类型应为居民身份证"),
    ("is not a known document type", "证件类型无法识别"),
    ("character U+", "含有不可见字符或控制字符"),
    ("no visible character", "内容为空白"),
)
_RULE_ZH_OTHERWISE = "不符合登记规则（详见英文说明）"


def rule_reason_zh(reason: str) -> str:
    """The Chinese for an English rule reason (``_RULE_REASONS_ZH``), or the generic text."""
    for phrase, zh in _RULE_REASONS_ZH:
        if phrase in reason:
            return zh
    return _RULE_ZH_OTHERWISE
