"""`registry import`: the 双公示 template (CSV, XLSX) and API bodies (JSONL) loaded as records.

Most tests run the command as a user does (a subprocess, tests/test_cli.py) against the
test's database, sharing the test app's home so both use the same keys; the comparison
with the API and the interruption hook run the use case in-process on the test's clock.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from registry.bootstrap import close_services, open_services
from registry.clock import ManualClock
from registry.identifiers import mask_document_number, uscc_check_character
from registry.imports import lookups
from registry.imports import rows as import_rows
from registry.imports import runner as runner_module
from registry.imports.problems import CannotImport
from registry.imports.runner import Importer, Options, Tally, run_import
from registry.imports.template import TEMPLATE_COLUMNS, open_file
from registry.publish.labels import PENALTY_COLUMNS
from registry.search import record_search_number
from registry.settings import Settings
from registry.tlog.leaf import decode_leaf
from tests.conftest import OTHER_AUTHORITY, TEST_AUTHORITY
from tests.credit_helpers import AUTHORITY, Client, log_size, penalty, record, subject
from tests.logcheck import assert_log_consistent
from tests.test_cli import run

COLUMN = dict(PENALTY_COLUMNS)
FIRM = "91630100MA752LKX1M"
PERSON = "630102199003071231"  # tests/credit_helpers.py's practitioner
UNREGISTERED_PERSON = "630102198807151232"


def code(n: int) -> str:
    """A valid credit code of a (not yet registered) firm, one per ``n``."""
    body = f"9163010{n:010d}"[:17]
    return body + uscc_check_character(body)


def template_row(number: str, **overrides: Any) -> dict[str, Any]:
    """A template row holding credit_helpers.penalty()'s values, by cf_* code (and 失信程度)."""
    row: dict[str, Any] = {key: "" for key, _ in PENALTY_COLUMNS}
    row.update({
        "cf_xdr_mc": "西寧創新投資有限公司", "cf_xdr_lb": "法人及非法人组织", "cf_xdr_shxym": FIRM,
        "cf_wsh": number, "cf_wfxw": "未按規定備案", "cf_sy": "未按規定報送年度報告",
        "cf_yj": "《創業投資企業管理暫行辦法》第二十八條", "cf_cflb": "罚款",
        "cf_nr": "罰款人民幣十二萬五千元", "cf_nr_fk": "12.5", "cf_jdrq": "2026-03-02",
        "cf_yxq": "2027-03-01", "cf_cfjg": TEST_AUTHORITY[1], "cf_cfjgdm": AUTHORITY,
        "cf_sjly": TEST_AUTHORITY[1], "cf_sjlydm": AUTHORITY, "grade": "一般",
    })
    row.update(overrides)
    return row


def person_row(number: str, document: Any, **overrides: Any) -> dict[str, Any]:
    person = {"cf_xdr_mc": "李四", "cf_xdr_lb": "自然人", "cf_xdr_shxym": "",
              "cf_xdr_zjlx": "身份证", "cf_xdr_zjhm": document}
    return template_row(number, **{**person, **overrides})


async def import_in_process(
    settings: Settings, database_url: str, clock: ManualClock, rows: list[dict[str, Any]],
    tmp_path: Path, options: Options | None = None,
) -> Tally:
    """``rows`` as a template CSV imported by ``run_import`` in this process (AUTHORITY)."""
    file = open_file(write_csv(tmp_path / "f.csv", rows), "csv")
    services = await open_services(settings, clock=clock, url=database_url)
    try:
        return await run_import(services, Importer(AUTHORITY), file, options or Options())
    finally:
        await close_services(services)


def write_csv(path: Path, rows: Iterable[dict[str, Any]], *, bom: bool = True,
              grade: bool = True, header: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(header or [*TEMPLATE_COLUMNS, *(["失信程度"] if grade else [])])
        for row in rows:
            out.writerow([row[key] for key, _ in PENALTY_COLUMNS] + ([row["grade"]] if grade else []))
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "the report starts with a BOM (Excel reads it as UTF-8)"
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


@pytest.fixture
def home(settings: Settings) -> Path:
    """The test app's home: the command uses the same personal-data and log keys."""
    return settings.home


def import_(home: Path, url: str, file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(["import", str(file), "--authority", AUTHORITY, *extra], home, url)


async def stored(db: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT * FROM credit_records ORDER BY decision_number")
    return rows


async def leaf_of(db: asyncpg.Pool, record: asyncpg.Record) -> Any:
    leaf = await db.fetchval("SELECT leaf FROM tlog_leaves WHERE idx = $1", record["log_index"])
    return decode_leaf(bytes(leaf))


# ---- reading the template (pure) -----------------------------------------------------


@pytest.mark.parametrize(("cell", "codes"), [
    ("罚款", ["fine"]),
    ("警告、罚款", ["warning", "fine"]),
    ("罚款;没收违法所得、没收非法财物", ["fine", "confiscation"]),
    ("罚款；没收违法所得；没收非法财物", ["fine", "confiscation"]),
    ("暂扣许可证、执照", ["licence_suspension"]),
    ("fine,warning", ["fine", "warning"]),
    ("罚款、罚款", ["fine", "fine"]),  # kept: the record rules refuse it as the API does
    ("罚没", "罚没"),
    ("罚款;罚金", "罚金"),
])
def test_penalty_type_names_become_codes(cell: str, codes: list[str] | str) -> None:
    assert import_rows.penalty_types(cell) == codes


@pytest.mark.parametrize(("cell", "day"), [
    ("2026-03-02", date(2026, 3, 2)),
    ("2026/3/2", date(2026, 3, 2)),
    ("2026.03.02", date(2026, 3, 2)),
    ("2026年3月2日", date(2026, 3, 2)),
    ("２０２６－０３－０２", date(2026, 3, 2)),
    ("2026-03-02 00:00:00", date(2026, 3, 2)),
    (datetime(2026, 3, 2), date(2026, 3, 2)),
    (46083, date(2026, 3, 2)),  # an Excel serial day number
    ("", None),
])
def test_dates_in_the_forms_sheets_hold(cell: Any, day: date | None) -> None:
    parsed = import_rows._date(cell)
    assert parsed == day


@pytest.mark.parametrize("cell", ["2026-13-02", "2026-02-30", "03/02/2026", "昨天", "46083"])
def test_what_is_not_a_date_is_named(cell: str) -> None:
    assert isinstance(import_rows._date(cell), str)


def test_header_mismatch_names_expected_and_found(tmp_path: Path) -> None:
    columns = list(TEMPLATE_COLUMNS)
    columns[13] = "处罚决定书文号"
    bad = write_csv(tmp_path / "bad.csv", [], header=columns)
    with pytest.raises(CannotImport, match="column 14: expected 行政处罚决定书文号, found 处罚决定书文号"):
        open_file(bad, "csv")
    short = write_csv(tmp_path / "short.csv", [], header=list(TEMPLATE_COLUMNS[:-1]))
    with pytest.raises(CannotImport, match="column 30: expected 备注, found nothing"):
        open_file(short, "csv")
    extra = write_csv(tmp_path / "extra.csv", [], header=[*TEMPLATE_COLUMNS, "等级"])
    with pytest.raises(CannotImport, match="column 31: expected 失信程度 or nothing, found 等级"):
        open_file(extra, "csv")
    # Full-width parentheses and stray spaces are the same header.
    wide = [c.replace("(", "（").replace(")", "）") + " " for c in TEMPLATE_COLUMNS]
    assert open_file(write_csv(tmp_path / "wide.csv", [], header=wide), "csv").columns == TEMPLATE_COLUMNS


# ---- the command ---------------------------------------------------------------------


async def test_csv_with_and_without_bom_each_row_with_its_leaf(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """Both encodings import, with or without the 失信程度 column (then --grade); every record
    is logged as record.create by the import's actor, and the command returns only once the
    leaves are in a signed checkpoint."""
    await subject(client, regulator)
    with_bom = write_csv(tmp_path / "bom.csv", [template_row("寧發改罰〔2026〕1號"),
                                                template_row("寧發改罰〔2026〕2號")])
    without = write_csv(tmp_path / "plain.csv", [template_row("寧發改罰〔2026〕3號")], bom=False,
                        grade=False)
    first = import_(home, database_url, with_bom)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "imported 2, skipped 0, refused 0"
    second = import_(home, database_url, without, "--grade", "serious")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "imported 1, skipped 0, refused 0"
    records = await stored(db)
    assert [r["decision_number"] for r in records] == [
        "寧發改罰〔2026〕1號", "寧發改罰〔2026〕2號", "寧發改罰〔2026〕3號"]
    for r in records:
        leaf = await leaf_of(db, r)
        assert leaf.action == "record.create"
        assert leaf.object == f"credit_record/{r['id']}"
        assert leaf.actor == f"import:cli@{AUTHORITY}"
        assert r["fine_amount"] == Decimal("12.5")
    assert [r["grade"] for r in records] == ["general", "general", "serious"]
    await assert_log_consistent(db, integrated=True)


async def test_xlsx_first_sheet_with_excel_dates_and_numbers(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """Dates as date cells or serial numbers and amounts as numbers read as typed; a document
    number Excel stored as a number is refused (it kept 15 digits)."""
    from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs installed

    await subject(client, regulator)
    book = Workbook()
    sheet = book.active
    sheet.append([*TEMPLATE_COLUMNS, "失信程度"])

    def cells(row: dict[str, Any]) -> list[Any]:
        return [row[key] or None for key, _ in PENALTY_COLUMNS] + [row["grade"]]

    sheet.append(cells(template_row("寧發改罰〔2026〕1號", cf_nr_fk=12.5,
                                    cf_jdrq=datetime(2026, 3, 2), cf_yxq=46447)))
    sheet.append([None] * 31)  # a blank row in between: passed over, numbers kept
    sheet.append(cells(person_row("寧發改罰〔2026〕2號", float(PERSON))))
    sheet.append(cells(template_row("寧發改罰〔2026〕3號", grade="严重", cf_cflb="警告", cf_nr_fk="")))
    book.create_sheet("说明").append(["not read"])
    path = tmp_path / "penalties.xlsx"
    book.save(path)
    report = tmp_path / "report.csv"
    result = import_(home, database_url, path, "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "imported 2, skipped 0, refused 1"
    records = await stored(db)
    assert [(r["decision_number"], r["decision_date"], r["valid_until"], r["fine_amount"],
             r["grade"], list(r["penalty_types"])) for r in records] == [
        ("寧發改罰〔2026〕1號", date(2026, 3, 2), date(2027, 3, 1), Decimal("12.5"), "general",
         ["fine"]),
        ("寧發改罰〔2026〕3號", date(2026, 3, 2), date(2027, 3, 1), None, "serious", ["warning"]),
    ]
    (problem,) = read_report(report)
    assert problem["行号"] == "4" and problem["列"] == COLUMN["cf_xdr_zjhm"]
    assert "15 digits" in problem["reason"] and "文本" in problem["原因"]


async def test_jsonl_takes_the_api_bodies(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """One POST /v1/records body per line, the API's field names; --grade fills a missing
    grade; a body the API would refuse is refused naming the field."""
    sid = await subject(client, regulator)
    bodies = [penalty(sid, "J-1"), penalty(sid, "J-2", grade=None), penalty(sid, "J-3", colour="red"),
              penalty(sid, "J-4", fine_amount=None), penalty("4e2c8b9a-0000-4000-8000-000000000000", "J-5")]
    path = tmp_path / "records.jsonl"
    lines = [json.dumps(b, ensure_ascii=False) for b in bodies]
    path.write_text("\n".join([*lines[:2], "", "[1, 2]", *lines[2:]]) + "\n", encoding="utf-8")
    report = tmp_path / "report.csv"
    result = import_(home, database_url, path, "--grade", "serious", "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "imported 2, skipped 0, refused 4"
    assert {(r["decision_number"], r["grade"]) for r in await stored(db)} == {
        ("J-1", "general"), ("J-2", "serious")}
    assert [(p["行号"], p["列"]) for p in read_report(report)] == [
        ("4", ""), ("5", "colour"), ("6", "fine_amount"), ("7", "subject_id")]


async def test_each_refusal_reason_names_row_and_column(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """The valid row is imported; every other row is refused with its row number (the header
    is row 1), its column and a reason in both languages, and writes nothing."""
    await subject(client, regulator)
    rows = [
        template_row("R-2"),
        template_row("R-3", grade=""),
        template_row("R-4", cf_cfjgdm=OTHER_AUTHORITY[0]),
        template_row("R-5", cf_xdr_shxym=code(5)),
        template_row("R-6", cf_jdrq="2026-13-45"),
        template_row("R-7", cf_nr_fk=""),
        template_row("R-8", cf_cflb="罚没"),
        template_row("R-2"),
        template_row("R-10", cf_jdrq="2099-01-01", cf_yxq=""),
        template_row("R-11", cf_nr_zkdx="营业执照"),
        template_row("R-12", cf_sjlydm="91630100MA752LKX1A"),
    ]
    report = tmp_path / "report.csv"
    before = await log_size(db)
    result = import_(home, database_url, write_csv(tmp_path / "f.csv", rows), "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "imported 1, skipped 0, refused 10"
    assert [r["decision_number"] for r in await stored(db)] == ["R-2"]
    assert await log_size(db) == before + 1
    problems = read_report(report)
    assert list(problems[0]) == ["行号", "列", "值", "原因", "reason"]
    assert [(p["行号"], p["列"]) for p in problems] == [
        ("3", "失信程度"),
        ("4", COLUMN["cf_cfjgdm"]),
        ("5", COLUMN["cf_xdr_shxym"]),
        ("6", COLUMN["cf_jdrq"]),
        ("7", COLUMN["cf_nr_fk"]),
        ("8", COLUMN["cf_cflb"]),
        ("9", COLUMN["cf_wsh"]),
        ("10", COLUMN["cf_jdrq"]),
        ("11", COLUMN["cf_nr_zkdx"]),
        ("12", COLUMN["cf_sjlydm"]),
    ]
    by_row = {p["行号"]: p for p in problems}
    assert by_row["4"]["值"] == OTHER_AUTHORITY[0] and "本次导入的机关" in by_row["4"]["原因"]
    assert by_row["5"]["值"] == code(5) and "--create-subjects" in by_row["5"]["reason"]
    assert by_row["6"]["值"] == "2026-13-45" and "not a real date" in by_row["6"]["reason"]
    assert "fine_amount: is required" in by_row["7"]["reason"] and "罚款金额" in by_row["7"]["原因"]
    assert by_row["8"]["值"] == "罚没"
    assert "row 2" in by_row["9"]["reason"] and "第 2 行" in by_row["9"]["原因"]
    assert "in the future" in by_row["10"]["reason"] and by_row["10"]["原因"] == "日期晚于今天"
    assert "check character" in by_row["12"]["reason"] and "校验位" in by_row["12"]["原因"]
    await assert_log_consistent(db, integrated=True)


async def test_dry_run_writes_nothing(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """No record, no subject, no leaf; the summary and the report say what a run would do."""
    await subject(client, regulator)
    rows = [template_row("D-1"), template_row("D-2", cf_xdr_shxym=code(1)),
            template_row("D-3", cf_xdr_shxym=code(1)), template_row("D-4", grade="")]
    before = (await log_size(db), await db.fetchval("SELECT count(*) FROM subjects"))
    report = tmp_path / "report.csv"
    result = import_(home, database_url, write_csv(tmp_path / "f.csv", rows), "--dry-run",
                     "--create-subjects", "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == (
        "dry run, nothing written: would import 3, skipped 0, refused 1 "
        "(would register 1 subjects)")
    assert await stored(db) == []
    assert (await log_size(db), await db.fetchval("SELECT count(*) FROM subjects")) == before
    assert [(p["行号"], p["列"]) for p in read_report(report)] == [("5", "失信程度")]


async def test_running_twice_imports_nothing_twice(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """The second run skips every row by authority and decision number (also one recorded
    through the API meanwhile) and writes no leaf."""
    sid = await subject(client, regulator)
    rows = [template_row(f"T-{i}", cf_xdr_shxym=code(i % 3)) for i in range(7)]
    file = write_csv(tmp_path / "f.csv", rows)
    first = import_(home, database_url, file, "--create-subjects", "--batch-size", "3")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "imported 7, skipped 0, refused 0 (registered 3 subjects)"
    await record(client, regulator, penalty(sid, "T-7", decision_date="2026-03-02"))
    size = await log_size(db)
    again = write_csv(tmp_path / "g.csv", [*rows, template_row("T-7")])
    second = import_(home, database_url, again, "--create-subjects", "--batch-size", "3")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "imported 0, skipped 8, refused 0"
    assert await log_size(db) == size
    assert await db.fetchval("SELECT count(*) FROM credit_records") == 8
    await assert_log_consistent(db, integrated=True)


async def test_a_row_refused_at_write_time_takes_only_itself_back(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """A conflict the checks could not see (here a trigger standing in for a decision number
    recorded between the check and the write) refuses that row alone: the other rows of
    its batch commit, and the log has no gap. An error that is no row's fault (a lock
    timeout) stops the import: the batches before stay, the rest is written by a rerun."""
    await subject(client, regulator)
    await db.execute("""
        CREATE FUNCTION refuse_some() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.decision_number = 'W-3' THEN
                RAISE EXCEPTION 'recorded meanwhile' USING ERRCODE = 'unique_violation';
            END IF;
            IF NEW.decision_number = 'W-8' THEN
                RAISE EXCEPTION 'lock wait too long' USING ERRCODE = 'lock_not_available';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_some BEFORE INSERT ON credit_records
            FOR EACH ROW EXECUTE FUNCTION refuse_some();""")
    report = tmp_path / "report.csv"
    first = write_csv(tmp_path / "f.csv", [template_row(f"W-{i}") for i in range(1, 6)])
    result = import_(home, database_url, first, "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "imported 4, skipped 0, refused 1"
    assert [r["decision_number"] for r in await stored(db)] == ["W-1", "W-2", "W-4", "W-5"]
    (problem,) = read_report(report)
    assert (problem["行号"], problem["列"]) == ("4", COLUMN["cf_wsh"])
    assert "already exists" in problem["reason"] and "冲突" in problem["原因"]

    second = write_csv(tmp_path / "g.csv", [template_row(f"W-{i}") for i in range(6, 10)])
    stopped = import_(home, database_url, second, "--batch-size", "2")
    assert stopped.returncode == 1
    assert "couldn't finish the import" in stopped.stderr and "2 rows were imported" in stopped.stderr
    assert [r["decision_number"] for r in await stored(db)][-2:] == ["W-6", "W-7"]
    await db.execute("DROP TRIGGER refuse_some ON credit_records")
    resumed = import_(home, database_url, second, "--batch-size", "2")
    assert resumed.stdout.strip() == "imported 2, skipped 2, refused 0"
    await assert_log_consistent(db, integrated=True)


async def test_resumes_after_sigkill_between_batches(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """Killed with SIGKILL once a batch has committed: whole batches stand, nothing of the
    running one; the same command again imports exactly the rest."""
    total, batch = 3000, 20
    rows = [template_row(f"K-{i:05d}", cf_xdr_shxym=code(i % 40)) for i in range(total)]
    file = write_csv(tmp_path / "big.csv", rows)
    env = {**os.environ, "REGISTRY_HOME": str(home), "DATABASE_URL": database_url,
           "REGISTRY_LOG_FORMAT": "json"}
    # Popen returns at once; the test then polls the database while the command runs.
    process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter and module
        [sys.executable, "-m", "registry", "import", str(file), "--authority", AUTHORITY,
         "--create-subjects", "--batch-size", str(batch)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while await db.fetchval("SELECT count(*) FROM credit_records") == 0:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    committed = await db.fetchval("SELECT count(*) FROM credit_records")
    assert 0 < committed < total, "killed before the end"
    assert committed % batch == 0, "only whole batches are committed"
    again = import_(home, database_url, file, "--create-subjects", "--batch-size", "200")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().startswith(
        f"imported {total - committed}, skipped {committed}, refused 0")
    assert await db.fetchval("SELECT count(DISTINCT decision_number) FROM credit_records") == total
    assert await db.fetchval("SELECT count(*) FROM subjects WHERE credit_code LIKE '9163010%'") == 40
    missing = await db.fetchval(
        "SELECT count(*) FROM credit_records r LEFT JOIN tlog_objects o ON o.log_index = r.log_index"
        " AND o.object_id = r.id::text WHERE o.log_index IS NULL")
    assert missing == 0, "every record has its leaf"
    await assert_log_consistent(db, integrated=True)


async def test_interrupted_import_resumes_in_process(
    settings: Settings, database_url: str, clock: ManualClock, db: asyncpg.Pool,
    client: Client, regulator: dict[str, str], tmp_path: Path,
) -> None:
    """The use case stopped by an exception after its first batch (the progress callback
    here, Ctrl-C for a user) keeps that batch; running it again writes the rest."""
    await subject(client, regulator)
    file = open_file(write_csv(tmp_path / "f.csv", [template_row(f"I-{i}") for i in range(7)]),
                     "csv")
    services = await open_services(settings, clock=clock, url=database_url)

    class Stop(Exception):
        pass

    def stop_after_first_batch(tally: Tally) -> None:
        if tally.done:
            raise Stop

    try:
        with pytest.raises(Stop):
            await run_import(services, Importer(AUTHORITY), file, Options(batch_size=3),
                             progress=stop_after_first_batch)
        assert await db.fetchval("SELECT count(*) FROM credit_records") == 3
        tally = await run_import(services, Importer(AUTHORITY), file, Options(batch_size=3))
    finally:
        await close_services(services)
    assert (tally.imported, tally.skipped, tally.refused) == (4, 3, 0)
    assert tally.checkpoint is not None and tally.last_index is not None
    assert await db.fetchval("SELECT count(*) FROM credit_records") == 7
    await assert_log_consistent(db, integrated=True)


# Columns that differ between two records by construction, whichever way they were made.
_OWN = {"id", "decision_number", "search_number", "created_at", "updated_at", "created_by",
        "updated_by", "log_index"}


async def test_imported_record_equals_the_api_record(
    settings: Settings, database_url: str, clock: ManualClock, db: asyncpg.Pool,
    client: Client, regulator: dict[str, str], tmp_path: Path,
) -> None:
    """The same values through the API and through the import give the same stored record
    (ids, times, actors and indexes aside), each with a record.create leaf."""
    sid = await subject(client, regulator)
    extra = {"penalty_types": ["fine", "confiscation"], "confiscation_amount": "0.5",
             "licence_name": "經營許可證", "licence_number": "QH-001", "remarks": "無",
             "grade": "serious"}
    via_api = await record(client, regulator, penalty(sid, "API-1", **extra))
    row = template_row("IMP-1", cf_cflb="罚款、没收违法所得、没收非法财物", cf_nr_wfff="0.5",
                       cf_nr_zkdx="經營許可證 QH-001", bz="無", grade="严重")
    file = open_file(write_csv(tmp_path / "f.csv", [row]), "csv")
    services = await open_services(settings, clock=clock, url=database_url)
    try:
        tally = await run_import(services, Importer(AUTHORITY), file, Options())
    finally:
        await close_services(services)
    assert (tally.imported, tally.refused) == (1, 0), tally.problems
    by_number = "SELECT * FROM credit_records WHERE decision_number = $1"
    api_row, imported = await db.fetchrow(by_number, "API-1"), await db.fetchrow(by_number, "IMP-1")
    assert api_row is not None and imported is not None
    assert str(api_row["id"]) == via_api["id"]
    assert {k: v for k, v in dict(imported).items() if k not in _OWN} == {
        k: v for k, v in dict(api_row).items() if k not in _OWN}
    # Each number spelled by the one rule (registry/search.py): the search finds both alike.
    assert (imported["search_number"], api_row["search_number"]) == (
        record_search_number("IMP-1"), record_search_number("API-1"))
    assert (await leaf_of(db, imported)).action == (await leaf_of(db, api_row)).action
    await assert_log_consistent(db)


async def test_practitioners_found_by_document_and_numbers_never_shown(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    """A practitioner is found by document type and number; a refused row's number is masked
    in the report and appears in no output or log line."""
    person = await subject(client, regulator, kind="practitioner")
    bad_check = PERSON[:-1] + "2"
    rows = [person_row("P-2", PERSON), person_row("P-3", UNREGISTERED_PERSON),
            person_row("P-4", bad_check), person_row("P-5", "E12345678", cf_xdr_zjlx="护照"),
            person_row("P-6", PERSON, cf_jdrq=UNREGISTERED_PERSON)]  # quoted by the reason
    report = tmp_path / "report.csv"
    result = import_(home, database_url, write_csv(tmp_path / "f.csv", rows), "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "imported 1, skipped 0, refused 4"
    assert [(str(r["subject_id"]), r["decision_number"]) for r in await stored(db)] == [(person, "P-2")]
    problems = read_report(report)
    assert [(p["行号"], p["列"], p["值"]) for p in problems] == [
        ("3", COLUMN["cf_xdr_zjhm"], mask_document_number(UNREGISTERED_PERSON)),
        ("4", COLUMN["cf_xdr_zjhm"], mask_document_number(bad_check)),
        ("5", COLUMN["cf_xdr_zjhm"], mask_document_number("E12345678")),
        ("6", COLUMN["cf_jdrq"], mask_document_number(UNREGISTERED_PERSON)),
    ]
    assert mask_document_number(UNREGISTERED_PERSON) in problems[-1]["reason"]
    created = import_(home, database_url, write_csv(tmp_path / "g.csv", rows), "--create-subjects",
                      "--report", str(report))
    # The resident ID registers; a passport needs a birth date the template does not hold.
    assert created.stdout.strip() == "imported 1, skipped 1, refused 3 (registered 1 subjects)"
    assert "出生日期" in read_report(report)[-2]["原因"]
    text = report.read_text(encoding="utf-8-sig")
    for output in (result.stdout, result.stderr, created.stdout, created.stderr, text):
        for number in (PERSON, UNREGISTERED_PERSON, bad_check, "E12345678"):
            assert number not in output
    await assert_log_consistent(db, integrated=True)


async def test_usage_errors_exit_2_and_write_nothing(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path, database_url: str,
    tmp_path: Path,
) -> None:
    await subject(client, regulator)
    good = write_csv(tmp_path / "f.csv", [template_row("U-1")])
    missing = import_(home, database_url, tmp_path / "nothing.csv")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    unknown = run(["import", str(good), "--authority", OTHER_AUTHORITY[0]], home, database_url)
    assert unknown.returncode == 2 and f"no authority with code {OTHER_AUTHORITY[0]}" in unknown.stderr
    columns = list(TEMPLATE_COLUMNS)
    columns[0] = "名称"
    header = import_(home, database_url, write_csv(tmp_path / "h.csv", [], header=columns))
    assert header.returncode == 2
    assert "column 1: expected 行政相对人名称, found 名称" in header.stderr
    suffix = import_(home, database_url, good.rename(tmp_path / "f.txt"))
    assert suffix.returncode == 2 and "--format" in suffix.stderr
    assert import_(home, database_url, tmp_path / "f.txt", "--format", "csv").returncode == 0
    bad_size = import_(home, database_url, tmp_path / "f.txt", "--format", "csv",
                       "--batch-size", "0")
    assert bad_size.returncode == 2 and "--batch-size" in bad_size.stderr
    assert [r["decision_number"] for r in await stored(db)] == ["U-1"]


async def test_a_number_recorded_between_check_and_write_is_refused_in_the_batch(
    settings: Settings, database_url: str, clock: ManualClock, db: asyncpg.Pool,
    client: Client, regulator: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch write (registry/credit/record_batch.py) leaves out a record whose decision
    number was recorded after the batch was checked, and reports it as the API's conflict;
    the rest of the batch commits, each row with its leaf, and is found by its number."""
    sid = await subject(client, regulator)
    await record(client, regulator, penalty(sid, "RACE-2"))

    async def nothing_recorded(*_: object) -> set[str]:
        return set()  # as the check saw it, before the API's record committed

    monkeypatch.setattr(lookups, "recorded_numbers", nothing_recorded)
    rows = [template_row(f"RACE-{i}") for i in range(1, 4)]
    tally = await import_in_process(settings, database_url, clock, rows, tmp_path)
    assert (tally.imported, tally.refused) == (2, 1)
    (problem,) = tally.problems
    assert problem.row == 3 and "already exists" in problem.en
    numbers = [r["decision_number"] for r in await stored(db)]
    assert sorted(numbers) == ["RACE-1", "RACE-2", "RACE-3"]
    found = await client.get("/v1/subjects", params={"q": "RACE-3"}, headers=regulator)
    assert [s["id"] for s in found.json()["items"]] == [sid]
    await assert_log_consistent(db)


async def test_a_number_twice_in_one_batch_is_written_once(
    settings: Settings, database_url: str, clock: ManualClock, db: asyncpg.Pool,
    client: Client, regulator: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two rows of one batch with one decision number: the first is written, the second
    refused, naming the first; the batch is written whole (one statement), not row by row."""

    async def not_row_by_row(*_: object) -> None:
        raise AssertionError("the batch fell back to writing row by row")

    monkeypatch.setattr(runner_module._Run, "_write_one_by_one", not_row_by_row)
    await subject(client, regulator)
    rows = [template_row("TWICE-1"), template_row("TWICE-2"), template_row("TWICE-1")]
    tally = await import_in_process(settings, database_url, clock, rows, tmp_path)
    assert (tally.imported, tally.refused) == (2, 1)
    (problem,) = tally.problems
    assert problem.row == 4 and "the same as row 2" in problem.en
    assert sorted(r["decision_number"] for r in await stored(db)) == ["TWICE-1", "TWICE-2"]
    await assert_log_consistent(db)


async def test_statistics_are_brought_up_to_date_as_the_table_grows(
    settings: Settings, database_url: str, clock: ManualClock, db: asyncpg.Pool,
    client: Client, regulator: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The import ANALYZEs credit_records each time it has added as many records as the
    table held at the last ANALYZE (at least ANALYZE_EVERY): here after 2 and after 4 of 5,
    so the planner's count is 4, where PostgreSQL alone would still count none."""
    monkeypatch.setattr(runner_module, "ANALYZE_EVERY", 2)
    await subject(client, regulator)
    assert await db.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'credit_records'") < 1
    tally = await import_in_process(settings, database_url, clock,
                                    [template_row(f"ST-{i}") for i in range(5)], tmp_path,
                                    Options(batch_size=2))
    assert tally.imported == 5
    assert await db.fetchval(
        "SELECT reltuples FROM pg_class WHERE relname = 'credit_records'") == 4


async def test_a_row_naming_another_subject_than_its_code_finds_is_refused(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, home: Path,
    database_url: str, tmp_path: Path,
) -> None:
    """行政相对人名称 must be the registered name of the subject the code finds, compared as
    the search compares names (script, width, case): a mistyped code would otherwise record
    the penalty against another firm."""
    await subject(client, regulator)  # registered as 西寧創新投資有限公司
    report = tmp_path / "report.csv"
    rows = [template_row("N-1"), template_row("N-2", cf_xdr_mc="西宁创新投资有限公司"),
            template_row("N-3", cf_xdr_mc="西寧另一家投資有限公司")]
    result = import_(home, database_url, write_csv(tmp_path / "f.csv", rows),
                     "--report", str(report))
    assert result.stdout.strip() == "imported 2, skipped 0, refused 1", result.stderr
    (problem,) = read_report(report)
    assert (problem["行号"], problem["列"]) == ("4", COLUMN["cf_xdr_mc"])
    assert "西寧創新投資有限公司" in problem["reason"] and "不符" in problem["原因"]
    assert [r["decision_number"] for r in await stored(db)] == ["N-1", "N-2"]
