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
    # Credit records (credit/ownership.py, domain/record_rules.py, credit/records.py).
    (r"^record \S+ is a decision of (.+?); only that authority may change it",
     r"该信息由其他机关登记（\1），只有登记机关可以操作。"),
    (r"^record \S+ is revoked; a revoked record cannot be corrected",
     "该信息已撤销，已撤销的信息不能再更正。"),
    (r"^record \S+ is already revoked", "该信息已撤销，不能再次撤销。"),
    (r"^credit record \S+ changed while this request ran \(no longer at version (\d+)\)",
     r"该信息已被他人修改（您提交时依据的是第 \1 版），请刷新页面，核对最新内容后重新提交。"),
    (r"a record with this decision_number already exists for this authority_code",
     "本机关已登记过该行政处罚决定书文号，同一文号只能登记一次。"),
    (r"no field to correct", "没有修改任何项目：请修改需要更正的项目后再提交。"),
    (r"record carries no dishonesty grade",
     "备案信息和守信激励不区分失信程度，请选择“不适用”。"),
    (r"record carries no penalty", "备案信息和守信激励没有处罚类别，请不要选择。"),
    (r"cannot be cleared", "该项不能清空。"),
    # Subjects (registry/subjects.py; console/subject_routes.py).
    (r"is required for a document whose number carries no birth date",
     "该证件号码不含出生日期，请填写出生日期。"),
    (r"differs from the birth date in the document number",
     "与证件号码中的出生日期不一致；居民身份证号码已含出生日期，可不填。"),
    (r"is not a possible birth date", "不是有效的出生日期（应在 1900-01-01 至今天之间）。"),
    (r"a subject with this credit_code already exists",
     "该统一社会信用代码已登记为另一主体，请查看已登记的主体，不要重复登记。"),
    (r"a practitioner with this document_type and document_number already exists",
     "持该证件的从业人员已经登记，请查看已登记的主体，不要重复登记。"),
    (r"a blacklist entry must rest on at least one serious record",
     "列入严重失信名单须依据至少一条仍然有效的严重失信记录。"),
    # Imports (console/import_routes.py): an upload the import cannot start on
    # (imports/template.py, CannotImport), a job that could not finish (imports/jobs.py,
    # runner.py); the specific header cases before the general one.
    (r"bad header: column (\d+): expected (.+?), found nothing",
     r"表头第 \1 列应为“\2”，但表头到此为止：请使用国家双公示模板的表头。"),
    (r"bad header: column (\d+): expected (\S+) or nothing, found (.+)",
     r"表头第 \1 列应为“\2”或不填，实际为“\3”。"),
    (r"bad header: column (\d+): expected nothing after (\S+), found (.+)",
     r"表头“\2”之后不应再有列，第 \1 列为“\3”。"),
    (r"bad header: column (\d+): expected (.+?), found (.+)",
     r"表头第 \1 列应为“\2”，实际为“\3”：请使用国家双公示模板的表头。"),
    (r"the file is empty: expected a header row", "文件为空：第一行应为模板的表头。"),
    (r"as UTF-8 \(byte (\d+)\)",
     r"无法按 UTF-8 编码读取该文件（第 \1 字节）：请将 CSV 另存为 UTF-8 编码。"),
    (r"couldn't read .* as CSV", "无法按 CSV 格式读取该文件。"),
    (r"couldn't read .* as an XLSX workbook",
     "无法读取该 XLSX 工作簿：文件可能已损坏，或不是 XLSX 格式。"),
    (r"--grade must be one of", "默认失信程度只能是轻微、一般或严重。"),
    (r"couldn't finish the import",
     "导入未能完成；已导入的记录保留，重新上传该文件即可继续（已登记的行会被跳过）。"),
    (r"stopped (\d+) times without finishing",
     r"导入因服务器停止中断了 \1 次，未能完成；已导入的记录保留，重新上传该文件即可继续。"),
    (r"authority (\S+) \(.*\) is deactivated", r"机关 \1 已停用，不能登记。"),
    # Blacklist steps, objection and repair decisions (console/decision_routes.py:
    # domain/blacklist.py, objections.py, repair.py; credit/blacklist.py, repairs.py).
    (r"is a decision of (.+?); only that authority may change it or decide about it",
     r"该事项由\1作出决定，只有该机关可以办理；您所在的机关不能办理。"),
    (r"^(?:blacklist entry|objection|repair) \S+ (?:is at version (\d+), not (\d+)|changed while)",
     "该信息已被他人修改，请刷新页面，核对最新状态后重新提交。"),
    (r"blacklist entry is 'removed'; '\w+' is allowed only from",
     "该条目已移出名单，办理已终结；如需再次列入，请重新提请。"),
    (r"blacklist entry is 'withdrawn'; '\w+' is allowed only from",
     "该提请已撤回，办理已终结；如需列入，请重新提请。"),
    (r"blacklist entry is 'listed'; 'withdraw' is allowed only from",
     "已列入名单，不能撤回提请；如需移出，请办理“移出名单”。"),
    (r"blacklist entry is '(?:notified|listed)'; 'notify' is allowed only from",
     "已告知当事人，无需重复告知。"),
    (r"blacklist entry is 'listed'; 'list' is allowed only from", "该条目已列入名单。"),
    (r"blacklist entry is 'proposed'; 'list' is allowed only from",
     "尚未告知当事人：告知后异议期届满、且无待处理的异议，方可列入名单。"),
    (r"blacklist entry is '(?:proposed|notified)'; 'remove' is allowed only from",
     "尚未列入名单，无需移出；不再列入的，可撤回提请。"),
    (r"its period runs out on (\d{4}-\d\d-\d\d); removal for 'period_ended' is allowed",
     r"列入期限于 \1 结束，自 \1 起方可以期满为由移出。"),
    (r"blacklist entry \S+ cannot be listed: its basis no longer holds",
     "列入依据已不成立（所依据的记录已撤销或不再是严重失信），不能列入，请撤回提请。"),
    (r"a blacklist entry rests only on serious records in force: record \S+ is revoked",
     "所选记录已撤销，不能作为列入名单的依据。"),
    (r"a blacklist entry rests only on serious records in force",
     "所选记录不是严重失信记录，不能作为列入名单的依据。"),
    (r"record \S+ belongs to another subject", "所选记录属于其他主体。"),
    (r"the notice channel is empty", "请选择告知方式。"),
    (r"the withdrawal reason is empty", "请填写撤回理由。"),
    (r"is outside the serious-grade listing period", "计划移出日期超出严重失信的列入期限范围。"),
    (r"objection is 'upheld' since (\d{4}-\d\d-\d\d)",
     r"该异议已于 \1 决定（异议成立）；每项异议只决定一次，对决定有异议的可重新提出异议。"),
    (r"objection is 'rejected' since (\d{4}-\d\d-\d\d)",
     r"该异议已于 \1 决定（异议不成立）；每项异议只决定一次，对决定有异议的可重新提出异议。"),
    (r"an upheld objection needs an action on the disputed item",
     "异议成立时，须选择对异议对象的处理（撤销或更正）。"),
    (r"a rejected objection changes nothing", "异议不成立时，不对异议对象作任何处理。"),
    (r"action 'correct' needs the corrected fields", "选择“更正”时，请填写需要更正的内容。"),
    (r"only action 'correct' takes corrections", "只有选择“更正”时才填写更正内容。"),
    (r"repair application is 'approved' since (\d{4}-\d\d-\d\d)",
     r"该申请已于 \1 批准；每项申请只决定一次。"),
    (r"repair application is 'rejected' since (\d{4}-\d\d-\d\d)",
     r"该申请已于 \1 驳回；每项申请只决定一次，当事人可重新申请。"),
    (r"the record is '\w+', not in publication; there is nothing to repair",
     "该记录已不在公示中，无需信用修复，不能批准。"),
    (r"blacklist entry is '\w+'; credit repair removes 'listed' entries only",
     "该条目已不在名单中，无需信用修复，不能批准。"),
    (r"unknown outcome", "请选择批准或驳回。"),
    # Confirming an import's dry run (imports/jobs.py confirm_refusal, confirm).
    (r"^import job \S+ is not a dry run: only a dry run is confirmed",
     "这是正式导入任务，无需确认。"),
    (r"^dry run \S+ is already confirmed", "该预检已确认导入，请查看正式导入任务。"),
    (r"^dry run \S+ has not finished", "预检尚未完成，完成后方可确认导入。"),
    (r"^dry run \S+ failed: there is nothing to confirm",
     "预检未能完成，不能确认导入；请检查文件后重新上传。"),
    (r"^dry run \S+ would import no rows",
     "预检结果中没有可导入的行（各行均被拒绝或已登记），无需确认导入。"),
    (r"^the file of dry run \S+ is no longer held \(it is kept (\d+) hours after",
     r"该预检的文件已不再保留（预检完成后保留 \1 小时，确认前有效），不能确认导入；"
     "请重新上传该文件并预检。"),
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
