"""One row of an import file → what ``POST /v1/records`` would receive, or its problems.

Pure: no I/O, no clock (the day is an argument). This module maps the template's
values to the API's and states no record rule of its own: each value is checked
against the type ``RecordIn`` declares for its field (lengths, enums, decimals),
and the whole record by ``credit.records.in_the_name_of`` and ``normalise``, the
functions ``create_record`` runs, so a row passes here exactly when the API would
accept the same values.

The mapping (template column → API field):

- 行政处罚决定书文号 → ``decision_number`` (also the import's natural key, with the
  authority); 违法行为类型, 违法事实, 处罚依据, 处罚内容, 备注 → ``violation_type``,
  ``facts``, ``legal_basis``, ``penalty_content``, ``remarks``, as typed;
- 处罚类别 → ``penalty_types``: the names of ``labels.PENALTY_TYPE_NAMES`` (or the codes),
  several separated by ``;``, ``,`` or ``、``; 没收违法所得 and 没收非法财物 alone each
  mean ``confiscation``;
- 罚款金额(万元), 没收违法所得、没收非法财物的金额(万元) → ``fine_amount``,
  ``confiscation_amount``, in 万元 as in the template;
- 暂扣或吊销证照名称及编号 → ``licence_name`` and ``licence_number``, split at the last
  space (the exports write them so);
- 处罚决定日期, 处罚有效期 → ``decision_date``, ``valid_until``: YYYY-MM-DD, also
  YYYY/MM/DD, YYYY.MM.DD, YYYY年M月D日 and Excel dates; 公示截止期 is computed by the
  registry from the grade and penalty types and is not read;
- 处罚机关, 处罚机关统一社会信用代码, 数据来源单位, 数据来源单位统一社会信用代码 →
  ``authority_name``, ``authority_code``, ``source_name``, ``source_code``;
- 失信程度 (轻微/一般/严重) → ``grade``; left empty, the import's default grade;
- the subject: 行政相对人类别 自然人 → a practitioner found by 证件类型 and 证件号码;
  otherwise an organisation found by 行政相对人代码_1 (统一社会信用代码); 法人及非法人组织
  registers as a venture-capital enterprise (``vc_firm``), 创业投资管理企业 as
  ``vc_manager``. The other codes (_2…_6) and the representative's document are not read.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from registry.credit.records import GRADED_KINDS, in_the_name_of, normalise
from registry.errors import Forbidden, InvalidInput
from registry.identifiers import (
    DocumentType,
    parse_document_type,
    validate_credit_code,
    validate_document,
)
from registry.imports.problems import COLUMN, GRADE_COLUMN, Problem, rule_reason_zh
from registry.imports.template import Shape, SourceRow
from registry.publish.labels import DOCUMENT_TYPE_NAMES, GRADE_NAMES, PENALTY_TYPE_NAMES
from registry.structs.credit import RecordIn  # the API's request body: the rules live on it
from registry.structs.subjects import SubjectCreate
from registry.subjects import birth_date_to_store
from registry.text import clean_text

# The API's request fields with their declared types (Meta constraints included).
_RECORD_FIELDS = {info.name: info for info in msgspec.structs.fields(RecordIn)}
_REQUIRED_FIELDS = tuple(name for name, info in _RECORD_FIELDS.items() if info.required)
# Stands in for the subject while a row's values are checked: the subject is found (or
# registered) in the database later, and only its id is missing from the body.
_UNRESOLVED = uuid.UUID(int=0)

# API field → the template column holding it (cf_* codes, registry/publish/labels.py).
_FIELD_KEY = {
    "decision_number": "cf_wsh", "violation_type": "cf_wfxw", "facts": "cf_sy",
    "legal_basis": "cf_yj", "penalty_types": "cf_cflb", "penalty_content": "cf_nr",
    "fine_amount": "cf_nr_fk", "confiscation_amount": "cf_nr_wfff",
    "licence_name": "cf_nr_zkdx", "licence_number": "cf_nr_zkdx", "decision_date": "cf_jdrq",
    "valid_until": "cf_yxq", "authority_name": "cf_cfjg", "authority_code": "cf_cfjgdm",
    "source_name": "cf_sjly", "source_code": "cf_sjlydm", "remarks": "bz",
    # The subject's fields, for problems found while registering it.
    "kind": "cf_xdr_lb", "name": "cf_xdr_mc", "credit_code": "cf_xdr_shxym",
    "legal_representative": "cf_frdb", "document_type": "cf_xdr_zjlx",
    "document_number": "cf_xdr_zjhm", "birth_date": "cf_xdr_zjhm", "subject_id": "cf_xdr_shxym",
}
# Free-text fields taken from the template as typed (the rules trim and check them).
_TEXT_FIELDS = ("decision_number", "violation_type", "facts", "legal_basis", "penalty_content",
                "authority_name", "source_name", "remarks")
_CODE_FIELDS = ("authority_code", "source_code")


def column_of(shape: Shape, name: str) -> str:
    """Where a field is in the file: its template column, or (JSONL) the field itself."""
    if shape == "api":
        return name
    if name == "grade":
        return GRADE_COLUMN
    key = _FIELD_KEY.get(name)
    return COLUMN[key] if key is not None else ""


# ---- the subject ---------------------------------------------------------------------


@dataclass(frozen=True)
class ByCode:
    """An organisation, found by its unified social credit code (行政相对人代码_1)."""

    credit_code: str
    # What registering it would send (the body of POST /v1/subjects, less nothing).
    new: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ByDocument:
    """A practitioner, found by document type and number (personal data: never shown)."""

    document_type: str
    number: str = field(repr=False)
    new: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class ById:
    """A registered subject named by its id (JSONL, as ``POST /v1/records`` names it)."""

    subject_id: uuid.UUID


SubjectRef = ByCode | ByDocument | ById


def subject_key(ref: SubjectRef) -> tuple[str, ...]:
    if isinstance(ref, ByCode):
        return ("code", ref.credit_code)
    if isinstance(ref, ByDocument):
        return ("document", ref.document_type, ref.number)
    return ("id", str(ref.subject_id))


@dataclass(frozen=True)
class Candidate:
    """A row whose values have the types the API declares; the record rules come next."""

    number: int
    shape: Shape
    # RecordIn's fields but ``subject_id``, as the API hands them to ``create_record``.
    fields: dict[str, Any]
    subject: SubjectRef
    cells: dict[str, Any] = field(repr=False)

    def problem(self, name: str, zh: str, en: str) -> Problem:
        """A problem with field ``name``, showing the value the file holds for it."""
        column = column_of(self.shape, name)
        return Problem(self.number, column, cell_text(self.cells.get(column)), zh, en)


# ---- cells -------------------------------------------------------------------------


def cell_text(value: Any) -> str | None:
    """A cell as text, None when empty (a sheet's numbers and dates as people read them)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


_EXCEL_NUMBER = (
    "Excel 把该号码存成了数字，只保留 15 位有效数字：请把该列设为文本后重新填写",
    "Excel stored the number as a number, which keeps only 15 digits: format the column as "
    "text and type the number again",
)


def _identifier(value: Any) -> str | tuple[str, str] | None:
    """A code or document number as text; (zh, en) when a sheet stored it as a float."""
    if isinstance(value, float):
        return _EXCEL_NUMBER
    return cell_text(value)


def _amount(value: Any) -> Any:
    """An amount cell as the API would receive it: a decimal string (the type checks it)."""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the cell's number
    if isinstance(value, int | Decimal):
        return str(value)
    return cell_text(value)


_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)
# Day 0 of Excel's 1900 date system, for the days after 1 March 1900 (all of ours).
_EXCEL_EPOCH = date(1899, 12, 30)
_DATE_ZH = "日期无法识别：应为 YYYY-MM-DD（也接受 YYYY/MM/DD、YYYY年M月D日和 Excel 日期）"


def _date(value: Any) -> date | str | None:
    """A date cell: None when empty; the text of the problem when it is no date."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 1 <= value < 2958466:  # an Excel serial day number (the cell had no date format)
            return _EXCEL_EPOCH + timedelta(days=int(value))
        return f"{value!r} is not an Excel date"
    text = unicodedata.normalize("NFKC", str(value)).strip()
    found = _DATE.fullmatch(text)
    if found is None:
        return f"{text!r} is not a date"
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return f"{text!r} is not a real date"


# 处罚类别 names (and the codes themselves) → penalty type codes, longest name first so
# that names holding 、 themselves (暂扣许可证、执照) are read whole.
_CONFISCATION_HALVES = ("没收违法所得", "没收非法财物")
_TYPE_NAMES: dict[str, str] = {
    **{code: code for code in PENALTY_TYPE_NAMES},
    **{half: "confiscation" for half in _CONFISCATION_HALVES},
    **{unicodedata.normalize("NFKC", name): code for code, name in PENALTY_TYPE_NAMES.items()},
}
_TYPES_BY_LENGTH = sorted(_TYPE_NAMES, key=len, reverse=True)
_TYPE_SEPARATORS = frozenset(";,、/ ")


def penalty_types(value: Any) -> list[str] | str:
    """The penalty type codes a 处罚类别 cell names, in its order; or the unknown part."""
    if isinstance(value, list):  # already a list of codes
        return [str(v) for v in value]
    text = unicodedata.normalize("NFKC", cell_text(value) or "")
    found: list[str] = []
    names: list[str] = []
    at = 0
    while at < len(text):
        if text[at] in _TYPE_SEPARATORS:
            at += 1
            continue
        name = next((n for n in _TYPES_BY_LENGTH if text.startswith(n, at)), None)
        if name is None:
            end = at
            while end < len(text) and text[end] not in _TYPE_SEPARATORS:
                end += 1
            return text[at:end]
        code = _TYPE_NAMES[name]
        # 没收违法所得、没收非法财物 written as its two halves is one penalty type; any other
        # repetition is kept, for the record rules to refuse as the API does.
        halves = name in _CONFISCATION_HALVES and any(n in _CONFISCATION_HALVES for n in names)
        if not halves:
            found.append(code)
        names.append(name)
        at += len(name)
    return found


_GRADES = {**{name: code for code, name in GRADE_NAMES.items()}, **{c: c for c in GRADE_NAMES}}
# 行政相对人类别 → the kind of subject registered for it (README: 法人及非法人组织 is a vc_firm).
_KINDS = {
    "自然人": "practitioner", "法人及非法人组织": "vc_firm", "法人": "vc_firm",
    "非法人组织": "vc_firm", "创业投资企业": "vc_firm", "创业投资管理企业": "vc_manager",
    "vc_firm": "vc_firm", "vc_manager": "vc_manager", "practitioner": "practitioner",
}
_DOCUMENT_TYPES = {
    **{unicodedata.normalize("NFKC", name): str(kind) for kind, name in DOCUMENT_TYPE_NAMES.items()},
    "身份证": str(DocumentType.RESIDENT_ID),
}


def _document_type(text: str) -> str | None:
    known = _DOCUMENT_TYPES.get(unicodedata.normalize("NFKC", text).strip())
    if known is not None:
        return known
    try:
        return str(parse_document_type(text))
    except InvalidInput:
        return None


# ---- rows --------------------------------------------------------------------------


def _problem(number: int, column: str, value: Any, zh: str, en: str) -> Problem:
    return Problem(number, column, cell_text(value), zh, en)


def _type_problems(number: int, shape: Shape, values: dict[str, Any],
                   cells: dict[str, Any]) -> list[Problem]:
    """Each value checked against the type RecordIn declares for it (every problem, not
    only the first), then the whole body as the API decodes it."""
    problems = []
    for name, value in values.items():
        info = _RECORD_FIELDS.get(name)
        column = column_of(shape, name)
        if info is None:
            problems.append(_problem(number, column, value, rule_reason_zh("unknown field"),
                                     f"{name}: unknown field (POST /v1/records does not take it)"))
            continue
        if value is None and info.required:
            continue  # named below, as missing
        try:
            msgspec.convert(value, info.type)
        except msgspec.ValidationError as error:
            problems.append(_problem(number, column, cells.get(column, value),
                                     rule_reason_zh(str(error)), f"{name}: {error}"))
    for name, info in _RECORD_FIELDS.items():
        # A template row names its subject in other columns (found later, by code or document).
        resolved_later = name == "subject_id" and shape == "template"
        if info.required and not resolved_later and values.get(name) is None:
            column = column_of(shape, name)
            problems.append(_problem(number, column, None, rule_reason_zh("is required"),
                                     f"{name}: is required"))
    return problems


def _as_fields(number: int, shape: Shape, values: dict[str, Any],
               cells: dict[str, Any]) -> dict[str, Any] | list[Problem]:
    body = {**values, "subject_id": values.get("subject_id", _UNRESOLVED)}
    if all(body.get(name) is not None for name in _REQUIRED_FIELDS):
        # Most rows are fine: one conversion of the whole body says so. Only a row it
        # refuses is checked field by field, to name every problem, not only the first.
        with contextlib.suppress(msgspec.ValidationError):
            return _fields_of(msgspec.convert(body, RecordIn))
    problems = _type_problems(number, shape, values, cells)
    if problems:
        return problems
    try:
        checked = msgspec.convert(body, RecordIn)
    except msgspec.ValidationError as error:  # what the per-field checks cannot see
        return [_problem(number, "", None, rule_reason_zh(str(error)), str(error))]
    return _fields_of(checked)


def _fields_of(body: RecordIn) -> dict[str, Any]:
    return {f: getattr(body, f) for f in body.__struct_fields__ if f != "subject_id"}


def _grade_problem(number: int, column: str) -> Problem:
    return Problem(number, column, None,
                   "缺少失信程度（轻微、一般、严重），且导入时未指定 --grade",
                   "grade: none given (失信程度 empty) and no default grade (--grade)")


def from_template(row: SourceRow, default_grade: str | None) -> Candidate | list[Problem]:
    """A template row (CSV or XLSX) as the API's values and the subject it names."""
    cells, number = row.cells, row.number
    problems: list[Problem] = []

    def cell(key: str) -> Any:
        return cells.get(COLUMN[key])

    values: dict[str, Any] = {"record_kind": "penalty"}
    for name in _TEXT_FIELDS:
        values[name] = cell_text(cell(_FIELD_KEY[name]))
    for name in _CODE_FIELDS:
        code = _identifier(cell(_FIELD_KEY[name]))
        if isinstance(code, tuple):
            problems.append(_problem(number, COLUMN[_FIELD_KEY[name]], cell(_FIELD_KEY[name]), *code))
            code = None
        values[name] = code

    grade_text = cell_text(cells.get(GRADE_COLUMN))
    if grade_text is None:
        values["grade"] = default_grade
        if default_grade is None:
            problems.append(_grade_problem(number, GRADE_COLUMN))
    elif grade_text in _GRADES:
        values["grade"] = _GRADES[grade_text]
    else:
        problems.append(_problem(number, GRADE_COLUMN, grade_text, "失信程度只能是轻微、一般或严重",
                                 f"grade: {grade_text!r} is not 轻微, 一般 or 严重"))

    types = penalty_types(cell("cf_cflb"))
    if isinstance(types, str):
        problems.append(_problem(
            number, COLUMN["cf_cflb"], cell("cf_cflb"), f"无法识别的处罚类别「{types}」",
            f"penalty_types: {types!r} is not a penalty type (accepted: "
            f"{'、'.join(PENALTY_TYPE_NAMES.values())}, separated by ; or 、)",
        ))
        types = []
    values["penalty_types"] = types
    values["fine_amount"] = _amount(cell("cf_nr_fk"))
    values["confiscation_amount"] = _amount(cell("cf_nr_wfff"))

    licence = cell_text(cell("cf_nr_zkdx"))
    values["licence_name"] = values["licence_number"] = None
    if licence is not None:
        name, _, licence_number = unicodedata.normalize("NFKC", licence).rpartition(" ")
        if name.strip() and licence_number:
            values["licence_name"], values["licence_number"] = name.strip(), licence_number
        else:
            problems.append(_problem(
                number, COLUMN["cf_nr_zkdx"], licence,
                "证照名称与编号无法区分：请写作「证照名称 编号」，中间用空格分隔",
                "licence_name, licence_number: write the licence's name and number separated "
                "by a space",
            ))

    for name, key in (("decision_date", "cf_jdrq"), ("valid_until", "cf_yxq")):
        day = _date(cell(key))
        if isinstance(day, str):
            problems.append(_problem(number, COLUMN[key], cell(key), _DATE_ZH,
                                     f"{name}: {day}: write YYYY-MM-DD (YYYY/MM/DD, "
                                     "YYYY年M月D日 and Excel dates are accepted too)"))
            day = None
        values[name] = day

    subject = _template_subject(number, cells)
    if isinstance(subject, list):
        problems += subject
    if problems:
        return problems
    assert not isinstance(subject, list)
    fields = _as_fields(number, "template", values, cells)
    if isinstance(fields, list):
        return fields
    return Candidate(number, "template", fields, subject, cells)


def _template_subject(number: int, cells: dict[str, Any]) -> SubjectRef | list[Problem]:
    def cell(key: str) -> Any:
        return cells.get(COLUMN[key])

    category = cell_text(cell("cf_xdr_lb"))
    code = _identifier(cell("cf_xdr_shxym"))
    document = _identifier(cell("cf_xdr_zjhm"))
    if isinstance(code, tuple):
        return [_problem(number, COLUMN["cf_xdr_shxym"], cell("cf_xdr_shxym"), *code)]
    if isinstance(document, tuple):
        return [_problem(number, COLUMN["cf_xdr_zjhm"], cell("cf_xdr_zjhm"), *document)]
    if category is None:
        kind = "practitioner" if document is not None and code is None else "vc_firm"
    elif category in _KINDS:
        kind = _KINDS[category]
    else:
        return [_problem(number, COLUMN["cf_xdr_lb"], category, "行政相对人类别无法识别",
                         f"kind: {category!r} is not a subject category here (accepted: "
                         f"{', '.join(_KINDS)})")]
    name = cell_text(cell("cf_xdr_mc"))
    if kind == "practitioner":
        return _practitioner(number, cells, name, document)
    if code is None:
        return [_problem(number, COLUMN["cf_xdr_shxym"], None,
                         "法人及非法人组织须填写统一社会信用代码（行政相对人代码_1）",
                         "credit_code: is required: the registry finds organisations by their "
                         "unified social credit code")]
    try:
        credit_code = validate_credit_code(code, "credit_code")
    except InvalidInput as error:
        return [_problem(number, COLUMN["cf_xdr_shxym"], code, rule_reason_zh(error.reason),
                         error.detail)]
    new = {"kind": kind, "name": name, "credit_code": credit_code,
           "legal_representative": cell_text(cell("cf_frdb"))}
    return ByCode(credit_code, new)


def _practitioner(number: int, cells: dict[str, Any], name: str | None,
                  document: str | None) -> SubjectRef | list[Problem]:
    type_column, number_column = COLUMN["cf_xdr_zjlx"], COLUMN["cf_xdr_zjhm"]
    type_text = cell_text(cells.get(type_column))
    if document is None or type_text is None:
        missing = number_column if document is None else type_column
        return [_problem(number, missing, None, "自然人须填写证件类型和证件号码",
                         "document_type, document_number: both are required for a natural "
                         "person (自然人)")]
    doc_type = _document_type(type_text)
    if doc_type is None:
        return [_problem(number, type_column, type_text, "证件类型无法识别",
                         f"document_type: {type_text!r} is not a known document type (accepted: "
                         f"{'、'.join(DOCUMENT_TYPE_NAMES.values())}, or the API's codes)")]
    try:
        kind, normalised = validate_document(doc_type, document)
    except InvalidInput as error:  # its reasons never echo the number
        column = type_column if error.field == "document_type" else number_column
        return [_problem(number, column, document if column == number_column else type_text,
                         rule_reason_zh(error.reason), error.detail)]
    new = {"kind": "practitioner", "name": name, "document_type": str(kind),
           "document_number": normalised}
    return ByDocument(str(kind), normalised, new)


def from_api(row: SourceRow, default_grade: str | None) -> Candidate | list[Problem]:
    """A JSONL line: a ``POST /v1/records`` body, field names as the API's."""
    body = dict(row.cells)
    graded = body.get("record_kind") in GRADED_KINDS
    if graded and body.get("grade") is None:
        if default_grade is None:
            return [_grade_problem(row.number, "grade")]
        body["grade"] = default_grade
    fields = _as_fields(row.number, "api", body, body)
    if isinstance(fields, list):
        return fields
    subject_id = msgspec.convert(body["subject_id"], uuid.UUID)
    return Candidate(row.number, "api", fields, ById(subject_id), body)


def candidate(row: SourceRow, shape: Shape, default_grade: str | None) -> Candidate | list[Problem]:
    if row.problem is not None:
        return [row.problem]
    if shape == "api":
        return from_api(row, default_grade)
    return from_template(row, default_grade)


# ---- the rules -----------------------------------------------------------------------


def check_record(
    row: Candidate, authority: tuple[str, str], on: date, subject_code: str | None
) -> dict[str, Any] | Problem:
    """The record's values as ``create_record`` would store them, or the first rule it breaks:
    in the name of ``authority`` (code, registered name), on day ``on``, about a subject with
    credit code ``subject_code`` (None: a practitioner)."""
    code, name = authority
    try:
        named = in_the_name_of(row.fields, code, name)
        values = normalise(named, on, subject_code=subject_code)
    except Forbidden as error:
        return row.problem("authority_code", "处罚机关不是本次导入的机关（--authority）",
                           f"authority_code: {error.detail}")
    except InvalidInput as error:
        return row.problem(error.field, rule_reason_zh(error.reason), error.detail)
    if values["decision_number"] is None:
        return row.problem(
            "decision_number", "导入需要行政处罚决定书文号，以免重复导入",
            "decision_number: is required to import: with the authority it tells a row "
            "already imported",
        )
    return values


def subject_to_register(row: Candidate, on: date) -> dict[str, Any] | Problem:
    """What ``subjects.register`` receives for the subject a row names (as POST /v1/subjects
    would pass it), or why it cannot be registered from the row."""
    ref = row.subject
    if isinstance(ref, ById):
        return row.problem("subject_id", "行政相对人未登记", "subject_id: no such subject")
    try:
        data = msgspec.convert(ref.new, SubjectCreate)
        payload = {"kind": data.__struct_config__.tag,
                   **{f: getattr(data, f) for f in data.__struct_fields__ if f != "affiliations"}}
        clean_text(payload["name"], "name", required=True)
        if isinstance(ref, ByDocument):
            birth_date_to_store(None, ref.number, on)
    except msgspec.ValidationError as error:
        found = re.search(r"`\$\.([a-z_]+)|field `([a-z_]+)`", str(error))
        name = (found.group(1) or found.group(2)) if found else "name"
        return row.problem(name, rule_reason_zh(str(error)), f"{name}: {error}")
    except InvalidInput as error:
        return row.problem(error.field, rule_reason_zh(error.reason), error.detail)
    return payload
