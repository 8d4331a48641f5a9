"""The console's own words in Simplified Chinese: sign-in, refusals, and the Chinese for
the API's English reasons where an official reads them.

The pages' other words are in their templates (``registry/templates/console_*.html``);
both are scanned for traditional characters (tests/test_simplified_chinese.py).
"""

from __future__ import annotations

import re
from typing import Final

from registry.imports.problems import rule_reason_zh

SIGN_IN_TITLE: Final = "登录监管工作台"
UNKNOWN_CREDENTIAL: Final = "令牌无效或已被撤销，请核对后重新输入。"
NOT_A_REGULATOR: Final = (
    "只有监管机构（成员单位）的令牌可以登录工作台；征信机构和管理员的令牌不能登录。"
)
AUTHORITY_INACTIVE: Final = "该令牌所属的机关已停用，其令牌不能登录。"
MISSING_CREDENTIAL: Final = "请输入令牌。"
SIGNED_OUT: Final = "您已退出登录。"
CSRF_REFUSED: Final = (
    "表单缺少有效的安全校验码（CSRF），请求未被处理。请返回上一页，刷新后重新提交。"
)

_REFUSALS: Final = {
    400: ("请求有误", "请求的内容无法读取，请检查后重试。"),
    401: ("需要登录", "请先登录监管工作台。"),
    403: ("无权操作", "您所在的机关无权进行此项操作，或该操作被拒绝。"),
    404: ("未找到", "您要找的页面或信息不存在。"),
    405: ("请求有误", "该页面不接受这种请求方式。"),
    409: ("暂不能操作", "该信息的当前状态不允许此项操作，或已被他人修改。请刷新后重试。"),
    413: ("文件过大", "上传的内容超过了允许的大小。"),
    415: ("格式不支持", "上传的内容格式不被接受。"),
    422: ("填写有误", "填写的内容不符合登记规则。"),
    429: ("请求过于频繁", "请稍后再试。"),
    500: ("系统错误", "系统出现意外错误，已记录。请稍后再试或联系管理员。"),
    503: ("系统繁忙", "系统暂时无法处理，请稍后再试。"),
}

# Chinese for the use cases' English refusals that an official meets at the console:
# (regular expression searched in the English, Chinese template with \1-style groups
# from it); the first match wins. The import's table (imports/problems.py) covers the
# record rules. Dates in the English are ISO days and stay so in the Chinese.
_REASONS_ZH: Final[tuple[tuple[str, str], ...]] = (
    (r"'list' is allowed only after the objection window ends on (\d{4}-\d\d-\d\d)",
     r"异议期至 \1 届满，届满后方可列入名单。"),
    (r"'list' is allowed only after the objection is settled",
     "有异议尚未处理，处理后方可列入名单。"),
)
_COMPILED: Final = tuple((re.compile(pattern), template) for pattern, template in _REASONS_ZH)


def refusal(status: int) -> tuple[str, str]:
    """(heading, explanation) of the page answering ``status``."""
    if status in _REFUSALS:
        return _REFUSALS[status]
    return _REFUSALS[500] if status >= 500 else _REFUSALS[400]


def reason_zh(detail: str) -> str:
    """The Chinese for a use case's English refusal; the record rules' table otherwise."""
    for pattern, template in _COMPILED:
        found = pattern.search(detail)
        if found:
            return found.expand(template)
    return rule_reason_zh(detail)
