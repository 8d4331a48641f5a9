"""Where the working-day calendar comes from: ``chinesecalendar``, then the override file.

The years the registry knows are the library's years and the override file's years;
for a year in both, the file wins (the whole year: its notice replaces the library's,
nothing is merged). The calendar is built once at start (registry/bootstrap.py) and
held by the running app's ``Services``; a new library release or a new year in the
file takes effect at the next start, which also recounts the stored deadlines that
were provisional (registry/credit/objections.py ``recount_provisional_deadlines``).

The override file (``REGISTRY_CALENDAR_FILE``) is TOML, one table per year, written
from the State Council's notice::

    # 国务院办公厅关于2027年部分节假日安排的通知
    [2027]
    notice = "国办发明电〔2026〕N号"          # optional: where the dates come from
    holidays = [
        2027-01-01,                          # one day off
        [2027-02-06, 2027-02-13],            # first and last day of a span, inclusive
    ]
    working_weekends = [2027-02-14, 2027-02-20]   # Saturdays/Sundays worked (调休)

``read_override_file`` checks it completely and names the file, the line where it can
find it, and the field (``[2027].holidays[1]``) of the first thing wrong.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar  # type: ignore[import-untyped]  # ships no type hints; only its date tables are read

from registry.domain.working_days import FIRST_YEAR, LAST_YEAR, WorkingCalendar, YearNotice

LIBRARY = f"chinesecalendar {chinese_calendar.__version__}"
# A holiday span longer than this is a typo (春节 and 国庆节 spans are 8 or 9 days).
MAX_SPAN_DAYS = 31
_KEYS = ("notice", "holidays", "working_weekends")


class CalendarFileError(ValueError):
    """The override file is unusable; the message names the file, line and field."""


def library_notices() -> list[YearNotice]:
    """Every year the installed ``chinesecalendar`` has the notice of."""
    holidays: dict[int, set[date]] = {}
    weekends: dict[int, set[date]] = {}
    for day in chinese_calendar.holidays:
        holidays.setdefault(day.year, set()).add(day)
    for day in chinese_calendar.workdays:
        weekends.setdefault(day.year, set()).add(day)
    return [
        YearNotice(year=year, holidays=frozenset(holidays.get(year, ())),
                   working_weekends=frozenset(weekends.get(year, ())), source=LIBRARY)
        for year in sorted(holidays.keys() | weekends.keys())
    ]


def build_calendar(overrides: Iterable[YearNotice] = ()) -> WorkingCalendar:
    """The library's years, with ``overrides`` (the file's years) winning."""
    return WorkingCalendar(library_notices()).overridden_by(overrides)


def read_override_file(path: Path) -> tuple[YearNotice, ...]:
    """The notices of an override file, checked; CalendarFileError naming what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CalendarFileError(f"{path}: couldn't read the calendar file: "
                                f"{error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CalendarFileError(f"{path} line {line}: not UTF-8 text") from None
    return parse_overrides(text, str(path))


def parse_overrides(text: str, source: str) -> tuple[YearNotice, ...]:
    """The notices in an override document (see the module docstring for the format)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CalendarFileError(f"{source}: not valid TOML: {error}") from None
    lines = text.splitlines()
    notices = []
    for key, table in document.items():
        notices.append(_year(key, table, source, lines))
    return tuple(notices)


def _year(key: str, table: Any, source: str, lines: list[str]) -> YearNotice:
    where = _Where(source, lines, key)
    if not re.fullmatch(r"\d{4}", key) or not FIRST_YEAR <= int(key) <= LAST_YEAR:
        raise where.error(f"[{key}]", f"a table per year, named by the year ({FIRST_YEAR}.."
                                      f"{LAST_YEAR}), e.g. [2027]", needle=key)
    year = int(key)
    if not isinstance(table, dict):
        raise where.error(f"[{key}]", "must be a table: [2027] on a line of its own, then "
                                      "holidays = [...] and working_weekends = [...]")
    for name in table:
        if name not in _KEYS:
            raise where.error(f"[{key}].{name}", f"unknown field; accepted: {', '.join(_KEYS)}",
                              needle=name)
    notice = table.get("notice", "")
    if not isinstance(notice, str):
        raise where.error(f"[{key}].notice", "must be text, e.g. \"国办发明电〔2026〕N号\"",
                          needle="notice")
    if "holidays" not in table:
        raise where.error(f"[{key}].holidays", "missing: every notice has holidays "
                                               "(元旦, 春节, 国庆节…)")
    holidays = _days(table["holidays"], f"[{key}].holidays", where, spans=True)
    if not holidays:
        raise where.error(f"[{key}].holidays", "empty: every notice has holidays "
                                               "(元旦, 春节, 国庆节…)", needle="holidays")
    weekends = _days(table.get("working_weekends", []), f"[{key}].working_weekends", where,
                     spans=False)
    label = f"{source} [{key}]" + (f" ({notice.strip()})" if notice.strip() else "")
    try:
        return YearNotice(year=year, holidays=frozenset(holidays),
                          working_weekends=frozenset(weekends), source=label)
    except ValueError as error:
        # The notice's own rules (registry/domain/working_days.py): a day of another year,
        # a weekday listed as a working weekend day, a day both off and worked.
        field, _, problem = str(error).partition(": ")
        if field not in ("holidays", "working_weekends"):
            field, problem = "", str(error)
        day = re.search(r"\d{4}-\d{2}-\d{2}", problem)
        raise where.error(f"[{key}]" + (f".{field}" if field else ""), problem,
                          needle=day.group() if day else None) from None


def _days(value: Any, field: str, where: _Where, *, spans: bool) -> set[date]:
    accepted = ("TOML dates (2027-10-01, no quotes)"
                + (" or [first, last] spans of them" if spans else ""))
    if not isinstance(value, list):
        raise where.error(field, f"must be a list of {accepted}", needle=field.rsplit(".", 1)[1])
    found: set[date] = set()
    for i, item in enumerate(value):
        at = f"{field}[{i}]"
        if spans and isinstance(item, list):
            if len(item) != 2:
                raise where.error(at, f"a span is [first, last], two dates; got {len(item)} items",
                                  needle=_text(item[0]) if item else None)
            first, last = (_date(part, f"{at}[{j}]", where, accepted)
                           for j, part in enumerate(item))
            if last < first:
                raise where.error(at, f"the span ends ({last.isoformat()}) before it starts "
                                      f"({first.isoformat()})", needle=first.isoformat())
            if (last - first).days >= MAX_SPAN_DAYS:
                raise where.error(at, f"a span of {(last - first).days + 1} days; holiday spans "
                                      f"are at most {MAX_SPAN_DAYS} days", needle=first.isoformat())
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        else:
            days = [_date(item, at, where, accepted)]
        for day in days:
            if day in found:
                # A second plain date is the second time its text appears; a span is
                # found by its first date.
                raise where.error(at, f"{day.isoformat()} is listed twice", needle=_text(item),
                                  occurrence=1 if isinstance(item, list) else 2)
            found.add(day)
    return found


def _date(value: Any, field: str, where: _Where, accepted: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        shown = value.isoformat() if isinstance(value, datetime) else repr(value)
        raise where.error(field, f"{shown} is not a date; write {accepted}", needle=_text(value))
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        return _text(value[0]) if value else None
    if isinstance(value, date | datetime):
        return value.isoformat()[:10]
    return str(value) if isinstance(value, str) else None


class _Where:
    """Finds the line an error is about. TOML parsers report no positions for values, so
    the line is where the offending text first appears in the year's table, after the
    line that assigns the field (``holidays = [``); the table's header line when the text
    is not found, and no line when the table has no header line of its own."""

    def __init__(self, source: str, lines: list[str], key: str) -> None:
        self.source = source
        self.lines = [line.split("#", 1)[0] for line in lines]
        headers = [(i, _header(line)) for i, line in enumerate(lines)]
        self.start = next((i for i, name in headers if name == key), None)
        self.end = len(lines)
        if self.start is not None:
            self.end = next((i for i, name in headers if i > self.start and name is not None),
                            len(lines))

    def line_of(self, field: str, needle: str | None, occurrence: int) -> int | None:
        first = self.start if self.start is not None else 0
        assigned = re.match(r"\[[^\]]*\]\.(\w+)", field)
        if assigned:
            pattern = re.compile(r"\s*" + re.escape(assigned.group(1)) + r"\s*=")
            first = next((i for i in range(first, self.end) if pattern.match(self.lines[i])),
                         first)
        if needle:
            found = [i for i in range(first, self.end) if needle in self.lines[i]]
            if found:
                return found[min(occurrence, len(found)) - 1] + 1
        return None if self.start is None else self.start + 1

    def error(self, field: str, problem: str, *, needle: str | None = None,
              occurrence: int = 1) -> CalendarFileError:
        line = self.line_of(field, needle, occurrence)
        at = f" line {line}" if line is not None else ""
        return CalendarFileError(f"{self.source}{at}: {field}: {problem}")


_HEADER = re.compile(r"""\s*\[\s*(["']?)([^\[\]"',]+?)\1\s*\]\s*(#.*)?""")


def _header(line: str) -> str | None:
    """The key of a ``[table]`` header line; None for any other line (a span such as
    ``[2027-02-06, 2027-02-13]`` is not a header, nor is a one-date list)."""
    match = _HEADER.fullmatch(line)
    if match is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", match.group(2)):
        return None
    return match.group(2)
