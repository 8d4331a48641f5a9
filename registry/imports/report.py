"""The report of an import: every refused row, as a CSV people open in a spreadsheet.

UTF-8 with a BOM (so Excel reads the Chinese), one line per problem, sorted by row:
行号 (the row's number in the file: a sheet's row, the header being 1; a JSONL line),
列 (the template column, or the API field), 值 (the value found, a document number
masked as the public sees one), 原因 (Chinese), reason (English, the API's words).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from registry.imports.problems import Problem

HEADER = ("行号", "列", "值", "原因", "reason")


def report_bytes(problems: Iterable[Problem]) -> bytes:
    """The report of ``problems`` (already masked: ``Problem.masked``), as the file's bytes."""
    text = io.StringIO(newline="")
    out = csv.writer(text)
    out.writerow(HEADER)
    for p in sorted(problems, key=lambda p: p.row):
        out.writerow((p.row, p.column, "" if p.value is None else p.value, p.zh, p.en))
    return text.getvalue().encode("utf-8-sig")


def write_report(path: Path, problems: Iterable[Problem]) -> None:
    """Write ``problems`` (already masked: ``Problem.masked``) to ``path``, replacing it."""
    path.write_bytes(report_bytes(problems))
