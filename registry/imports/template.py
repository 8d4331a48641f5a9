"""Reading an import file: the 双公示 template as CSV or XLSX, or API bodies as JSONL.

A template file (CSV in UTF-8 with or without BOM; XLSX, first sheet) starts with a
header row holding the template's simplified column names in the template's order
(``labels.PENALTY_COLUMNS``), optionally followed by one more column, ``失信程度``.
Header cells are compared after NFKC and trimming, so full-width parentheses and
stray spaces do not matter; any other difference stops the import naming the column
expected and the one found. A JSONL file holds one ``POST /v1/records`` body per line.

``open_file`` checks everything that can stop the import (the file is there, readable
in its encoding, the header right) before returning; the rows are then read lazily,
a batch at a time, so a file of 100,000 rows is never held in memory at once.
Blank rows and lines are passed over; rows keep their number in the file.
"""

from __future__ import annotations

import csv
import decimal
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from registry.imports.problems import GRADE_COLUMN, CannotImport, Problem
from registry.publish.labels import PENALTY_COLUMNS

Format = Literal["csv", "xlsx", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx", "jsonl")
# What a row's cells are keyed by: template column names, or the API's field names.
Shape = Literal["template", "api"]

TEMPLATE_COLUMNS: tuple[str, ...] = tuple(name for _, name in PENALTY_COLUMNS)

# A JSONL body's numbers as written: "12.50" and 12.50 both reach the record rules as the
# decimal the API would have read (binary floats would round some amounts).
_JSONL = msgspec.json.Decoder(float_hook=decimal.Decimal)


@dataclass(frozen=True)
class SourceRow:
    """One row of the file: its number (a sheet's row, the header being 1; a JSONL line) and
    its cells by column (or field) name. ``problem``: the row could not be read at all."""

    number: int
    cells: dict[str, Any]
    problem: Problem | None = None


@dataclass(frozen=True)
class ImportFile:
    """An import file whose header (if any) is checked; ``rows()`` reads it from the start."""

    path: Path
    format: Format
    shape: Shape
    # Columns of the header, canonical names: the template's and possibly 失信程度.
    columns: tuple[str, ...]
    # Data rows in the file (for progress; None if unknown). A sheet's count is its stored
    # dimension, which may include blank rows.
    total: int | None

    def rows(self) -> Iterator[SourceRow]:
        if self.format == "csv":
            return _csv_rows(self.path, self.columns)
        if self.format == "xlsx":
            return _xlsx_rows(self.path, self.columns)
        return _jsonl_rows(self.path)


def format_of(path: Path, given: str | None) -> Format:
    """``given`` (``--format``), else the file's suffix; a usage error if neither says."""
    named = given if given is not None else path.suffix.lower().lstrip(".")
    for fmt in FORMATS:
        if named == fmt:
            return fmt
    raise CannotImport(
        f"couldn't tell the format of {path}: give --format csv, xlsx or jsonl "
        "(or name the file .csv, .xlsx or .jsonl)"
    )


def open_file(path: Path, fmt: Format) -> ImportFile:
    """The file, its header checked; ``CannotImport`` if it is missing, unreadable, empty,
    or its header is not the template's."""
    if not path.is_file():
        raise CannotImport(f"couldn't read {path}: no such file")
    try:
        return _open(path, fmt)
    except OSError as error:
        raise CannotImport(f"couldn't read {path}: {error.strerror or error}") from None


def _open(path: Path, fmt: Format) -> ImportFile:
    if fmt == "csv":
        header, count = _csv_header_and_count(path)
        return ImportFile(path, fmt, "template", check_header(header), count)
    if fmt == "xlsx":
        sheet_header, rows = _xlsx_header_and_count(path)
        return ImportFile(path, fmt, "template", check_header(sheet_header), rows)
    return ImportFile(path, fmt, "api", (), _jsonl_count(path))


def _canonical(cell: object) -> str:
    return unicodedata.normalize("NFKC", "" if cell is None else str(cell)).strip()


_EXPECTED = [_canonical(name) for name in TEMPLATE_COLUMNS]


def check_header(header: list[object]) -> tuple[str, ...]:
    """The canonical columns of a template header, or ``CannotImport`` naming the first
    column that differs (expected vs found)."""
    found = [_canonical(cell) for cell in header]
    while found and not found[-1]:  # trailing empty cells of a sheet
        found.pop()
    if not found:
        raise CannotImport("the file is empty: expected a header row with the template's columns")
    for position, expected in enumerate(_EXPECTED, start=1):
        if position > len(found):
            raise CannotImport(
                f"bad header: column {position}: expected {expected}, found nothing (the header "
                f"has {len(found)} columns; the template has {len(_EXPECTED)}, optionally "
                f"followed by {GRADE_COLUMN})"
            )
        if found[position - 1] != expected:
            raise CannotImport(
                f"bad header: column {position}: expected {expected}, found "
                f"{found[position - 1] or '(empty)'}"
            )
    extra = found[len(_EXPECTED):]
    if extra and extra[0] != GRADE_COLUMN:
        raise CannotImport(
            f"bad header: column {len(_EXPECTED) + 1}: expected {GRADE_COLUMN} or nothing, "
            f"found {extra[0]}"
        )
    if len(extra) > 1:
        raise CannotImport(
            f"bad header: column {len(_EXPECTED) + 2}: expected nothing after {GRADE_COLUMN}, "
            f"found {extra[1]}"
        )
    return (*TEMPLATE_COLUMNS, *extra)


def _blank(values: list[Any] | tuple[Any, ...]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _keyed(number: int, columns: tuple[str, ...], values: list[Any] | tuple[Any, ...]) -> SourceRow:
    if len(values) > len(columns) and not _blank(values[len(columns):]):
        return SourceRow(number, {}, Problem(
            number, "", None, f"该行有 {len(values)} 列，多于表头的 {len(columns)} 列",
            f"the row has {len(values)} cells but the header {len(columns)}",
        ))
    # A row shorter than the header (trailing empty cells left out) has empty cells.
    cells = {column: values[i] if i < len(values) else None for i, column in enumerate(columns)}
    return SourceRow(number, cells)


# ---- CSV ---------------------------------------------------------------------------


def _csv_header_and_count(path: Path) -> tuple[list[object], int]:
    """The header row and the number of rows after it; reading the whole file once here
    also finds an encoding error before anything is checked or written."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header: list[object] = list(next(reader, []))
            total = sum(1 for values in reader if not _blank(values))
    except UnicodeDecodeError as error:
        raise CannotImport(
            f"couldn't read {path} as UTF-8 (byte {error.start}): save the CSV as UTF-8"
        ) from None
    except csv.Error as error:
        raise CannotImport(f"couldn't read {path} as CSV: {error}") from None
    return header, total


def _csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[SourceRow]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for number, values in enumerate(reader, start=2):
            if not _blank(values):
                yield _keyed(number, columns, values)


# ---- XLSX --------------------------------------------------------------------------


def _open_workbook(path: Path) -> Any:
    from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs in the package; types-openpyxl is not a dependency

    try:
        return load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises zipfile, KeyError, ValueError… for a bad file
        raise CannotImport(f"couldn't read {path} as an XLSX workbook: {error}") from None


def _xlsx_header_and_count(path: Path) -> tuple[list[object], int | None]:
    book = _open_workbook(path)
    try:
        sheet = book.worksheets[0]
        header = next(sheet.iter_rows(max_row=1, values_only=True), ())
        rows = sheet.max_row  # from the sheet's stored dimension; None when it has none
        return list(header), None if rows is None else max(0, rows - 1)
    finally:
        book.close()


def _xlsx_rows(path: Path, columns: tuple[str, ...]) -> Iterator[SourceRow]:
    book = _open_workbook(path)
    try:
        sheet = book.worksheets[0]
        # Read-only sheets yield every row from the first, gaps as empty rows: numbers hold.
        for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
            if not _blank(values):
                yield _keyed(number, columns, values)
    finally:
        book.close()


# ---- JSONL -------------------------------------------------------------------------


def _jsonl_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _jsonl_rows(path: Path) -> Iterator[SourceRow]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                body = _JSONL.decode(line)
            except msgspec.DecodeError as error:
                yield SourceRow(number, {}, Problem(
                    number, "", None, "该行不是有效的 JSON", f"the line is not valid JSON: {error}"
                ))
                continue
            if not isinstance(body, dict):
                yield SourceRow(number, {}, Problem(
                    number, "", None, "该行不是 JSON 对象",
                    "the line is not a JSON object (one POST /v1/records body per line)",
                ))
                continue
            yield SourceRow(number, body)
