"""Every label the registry itself shows to people, in Simplified Chinese (zh-CN).

信用西宁 and its readers are on the mainland: what the registry writes for people
(page headings, feed and Atom titles, CSV headers, the names of kinds, grades,
penalty types, document types and subject categories, the objection mark) is
Simplified, and it is written here once. Stored data is never converted: names,
decision numbers and facts reach the public as the regulator typed them.

The 雙公示 column names follow the national administrative-penalty template's
simplified form, in the template's order (DOMAIN.md "Language, time and the
calendar"); the ``cf_*`` codes beside them are the JSON keys and never change.
tests/test_simplified_chinese.py checks that no label here holds a Traditional-only
character and that the CSV header is the template's list.

Changing a label changes the bytes a feed entry is signed over (``objection_mark``,
the item values): that is allowed, the feed promises codes, not label text.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from registry.identifiers import DocumentType

SITE_NAME: Final = "信用西宁"
SITE_TITLE: Final = f"{SITE_NAME} · 创业投资领域信用信息公示"

# Shown beside an item under objection, wherever it is shown (page, feed, exports).
OBJECTION_MARK: Final = "异议处理中"

# --- Headings and titles ------------------------------------------------------------

LATEST_PENALTIES: Final = "最新行政处罚公示"
PENALTIES: Final = "行政处罚公示"
BLACKLIST: Final = "严重失信主体名单"
BLACKLIST_HEADING: Final = "创业投资领域严重失信主体名单"
CREDIT_RECORD: Final = "信用记录"
# A detail page's section on the organisations an item's subject is related to that day.
RELATED_ORGANISATIONS: Final = "关联机构"
FUND_MANAGER: Final = "创业投资管理企业"  # a firm's manager
MANAGED_FIRM: Final = "受托管理的创业投资企业"  # a firm a manager manages
WITHDRAWN: Final = "撤下"


def search_heading(q: str) -> str:
    """The heading of the search results for ``q`` (shown as typed, escaped by the template)."""
    return f"「{q}」的搜索结果"


# --- Names of codes -----------------------------------------------------------------

PENALTY_TYPE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "warning": "警告",
    "fine": "罚款",
    "confiscation": "没收违法所得、没收非法财物",
    "suspension_order": "责令停产停业",
    "licence_suspension": "暂扣许可证、执照",
    "licence_revocation": "吊销许可证、执照",
    "detention": "行政拘留",
    "other": "其他",
})
# 行政相对人类别 by subject kind.
SUBJECT_CATEGORY_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "vc_firm": "法人及非法人组织",
    "vc_manager": "法人及非法人组织",
    "practitioner": "自然人",
})
RECORD_KIND_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "penalty": "行政处罚",
    "filing": "备案信息",
    "commendation": "守信激励",
    "dishonesty_other": "其他失信信息",
})
GRADE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "minor": "轻微",
    "general": "一般",
    "serious": "严重",
})
DOCUMENT_TYPE_NAMES: Final[Mapping[DocumentType, str]] = MappingProxyType({
    DocumentType.RESIDENT_ID: "居民身份证",
    DocumentType.PASSPORT: "护照",
    DocumentType.HK_MACAO_PERMIT: "港澳居民来往内地通行证",
    DocumentType.TAIWAN_PERMIT: "台湾居民来往大陆通行证",
    DocumentType.HMT_RESIDENCE_PERMIT: "港澳台居民居住证",
    DocumentType.FOREIGN_PERMANENT_RESIDENCE: "外国人永久居留身份证",
    DocumentType.OTHER: "其他证件",
})
# Why an item left publication: the codes a withdrawal's ``reason`` may hold (record
# statuses and their reasons, a listing's removal reasons). A regulator's own words
# (a revocation reason) are shown as typed.
WITHDRAWAL_REASON_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "expired": "公示期满",
    "period_ended": "公示期满",
    "revoked": "决定撤销",
    "decision_revoked": "决定撤销",
    "decision_corrected": "决定更正",
    "repaired": "信用修复",
    "credit_repair_approved": "信用修复",
    "removed": "移出名单",
})
OBJECT_TYPE_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "credit_record": CREDIT_RECORD,
    "blacklist_entry": BLACKLIST,
})

# --- 雙公示 columns -----------------------------------------------------------------

# (JSON key, column name) in the template's order; the CSV header is the names.
PENALTY_COLUMNS: Final = (
    ("cf_xdr_mc", "行政相对人名称"),
    ("cf_xdr_lb", "行政相对人类别"),
    ("cf_xdr_shxym", "行政相对人代码_1(统一社会信用代码)"),
    ("cf_xdr_gszc", "行政相对人代码_2(工商注册号)"),
    ("cf_xdr_zzjg", "行政相对人代码_3(组织机构代码)"),
    ("cf_xdr_swdj", "行政相对人代码_4(税务登记号)"),
    ("cf_xdr_sydw", "行政相对人代码_5(事业单位证书号)"),
    ("cf_xdr_shzz", "行政相对人代码_6(社会组织登记证号)"),
    ("cf_frdb", "法定代表人"),
    ("cf_frdb_zjlx", "法定代表人证件类型"),
    ("cf_frdb_zjhm", "法定代表人证件号码"),
    ("cf_xdr_zjlx", "证件类型"),
    ("cf_xdr_zjhm", "证件号码"),
    ("cf_wsh", "行政处罚决定书文号"),
    ("cf_wfxw", "违法行为类型"),
    ("cf_sy", "违法事实"),
    ("cf_yj", "处罚依据"),
    ("cf_cflb", "处罚类别"),
    ("cf_nr", "处罚内容"),
    ("cf_nr_fk", "罚款金额(万元)"),
    ("cf_nr_wfff", "没收违法所得、没收非法财物的金额(万元)"),
    ("cf_nr_zkdx", "暂扣或吊销证照名称及编号"),
    ("cf_jdrq", "处罚决定日期"),
    ("cf_yxq", "处罚有效期"),
    ("cf_gsjzq", "公示截止期"),
    ("cf_cfjg", "处罚机关"),
    ("cf_cfjgdm", "处罚机关统一社会信用代码"),
    ("cf_sjly", "数据来源单位"),
    ("cf_sjlydm", "数据来源单位统一社会信用代码"),
    ("bz", "备注"),
)
# The serious-dishonesty list's columns (no national template: the registry's own).
LISTING_COLUMNS: Final = (
    ("zt_mc", "主体名称"),
    ("zt_lb", "主体类别"),
    ("zt_shxym", "统一社会信用代码"),
    ("zt_zjlx", "证件类型"),
    ("zt_zjhm", "证件号码"),
    ("lr_ly", "列入事由"),
    ("lr_yj", "认定依据"),
    ("lr_rq", "列入日期"),
    ("yc_rq", "计划移出日期"),
    ("bz", "备注"),
)


# --- Error pages --------------------------------------------------------------------

# What a refused page request tells people, per status: a heading and an explanation.
# Never the problem's English detail: it may name internals, and the public reads Chinese.
ERROR_PAGE_TEXTS: Final[Mapping[int, tuple[str, str]]] = MappingProxyType({
    400: ("查询条件有误", "请检查链接或搜索内容后重试。"),
    404: ("未找到该公示信息", "该信息可能已过公示期、已被撤销或从未公示。"),
    405: ("不支持该访问方式", "公示页面只能浏览，请通过页面上的链接或搜索框访问。"),
    413: ("请求内容过大", "请缩短内容后重试。"),
    # A query the search refuses (registry/text.py): to a reader, the same as a 400.
    422: ("查询条件有误", "请检查链接或搜索内容后重试。"),
    429: ("访问过于频繁", "请稍后再试。"),
    500: ("系统出错", "系统暂时无法处理该请求，请稍后再试。"),
    503: ("服务暂时不可用", "服务暂时不可用，请稍后再试。"),
})
# Any other refusal: a 4xx without its own text above (5xx ones read as a 500).
REQUEST_REFUSED: Final = ("无法处理该请求", "请检查链接后重试。")
# The query parameters of the pages, as a reader knows them; another parameter is
# named by its code.
QUERY_PARAMETER_NAMES: Final[Mapping[str, str]] = MappingProxyType({
    "q": "搜索内容",
    "before": "翻页位置",
    "query": "查询参数",  # a parameter whose name itself is refused (api/body_guard.py)
})
BACK_HOME: Final = "返回首页"
ERROR_CODE: Final = "错误代码"


def bad_query_explanation(field: str) -> str:
    """What a page says of a refused query parameter ``field``: its name, never its value."""
    return f"「{QUERY_PARAMETER_NAMES.get(field, field)}」的内容无法识别，请检查后重试。"


def error_page_texts(status: int, field: str | None = None) -> tuple[str, str]:
    """(heading, explanation) of the page answering ``status``; a 400 or 422 about a query
    parameter ``field`` names it."""
    if status >= 500:
        status = status if status in ERROR_PAGE_TEXTS else 500
    heading, explanation = ERROR_PAGE_TEXTS.get(status, REQUEST_REFUSED)
    if status in (400, 422) and field:
        explanation = bad_query_explanation(field)
    return heading, explanation


def all_labels() -> list[str]:
    """Every label above, for the tests that scan them."""
    found: list[str] = [SITE_NAME, SITE_TITLE, OBJECTION_MARK, LATEST_PENALTIES, PENALTIES,
                        BLACKLIST, BLACKLIST_HEADING, CREDIT_RECORD, RELATED_ORGANISATIONS,
                        FUND_MANAGER, MANAGED_FIRM, WITHDRAWN, search_heading(""),
                        *REQUEST_REFUSED, BACK_HOME, ERROR_CODE, bad_query_explanation("")]
    for names in (PENALTY_TYPE_NAMES, SUBJECT_CATEGORY_NAMES, RECORD_KIND_NAMES, GRADE_NAMES,
                  DOCUMENT_TYPE_NAMES, WITHDRAWAL_REASON_NAMES, OBJECT_TYPE_NAMES,
                  QUERY_PARAMETER_NAMES):
        found += names.values()
    found += [name for _, name in PENALTY_COLUMNS + LISTING_COLUMNS]
    found += [text for texts in ERROR_PAGE_TEXTS.values() for text in texts]
    return found
