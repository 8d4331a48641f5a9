"""Imports at the console (``/console/imports``): the upload is a dry run of the API's own
job, its preview names each refused row's row, template column and Chinese reason, and
confirming it imports the same file as a new job, on any server and at most once, while
the dry run's row holds the file; only the authority's officials see it. Through the real
app, its CSRF middleware and its background worker, on PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.api.app import create_app
from registry.clock import ManualClock
from registry.console.import_routes import NO_FILE, UNKNOWN_FORMAT
from registry.imports.jobs import DRY_RUN_FILE_HOURS
from registry.imports.problems import COLUMN
from registry.imports.template import TEMPLATE_COLUMNS
from registry.publish.labels import PENALTY_COLUMNS
from registry.settings import Settings
from tests.conftest import OTHER_AUTHORITY
from tests.console_helpers import Client, csrf_from, signed_in_regulator
from tests.credit_helpers import subject
from tests.logcheck import assert_log_consistent
from tests.test_import import template_row, write_csv

CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WRONG_CODE = "91630100MA752LKX1X"  # the suite's firm with a wrong check character
_JOB_PATH = re.compile(r"^/console/imports/([0-9a-f-]{36})$")
# Why a dry run cannot be confirmed, as the page and the refused POST say it.
ALREADY_CONFIRMED = "该预检已确认导入，请查看正式导入任务。"
NOT_FINISHED = "预检尚未完成，完成后方可确认导入。"
FILE_GONE = f"该预检的文件已不再保留（预检完成后保留 {DRY_RUN_FILE_HOURS} 小时，确认前有效），不能确认导入"
CONFIRM_BUTTON = "确认导入</button>"


def csv_bytes(tmp_path: Path, rows: list[dict[str, Any]]) -> bytes:
    return write_csv(tmp_path / f"{uuid.uuid4()}.csv", rows).read_bytes()


async def upload(client: Client, name: str, content: bytes, content_type: str = CSV_TYPE,
                 *, token: bool = True, **fields: str) -> Any:
    """Post the upload form as a browser does (multipart, with the page's CSRF token)."""
    data = dict(fields)
    if token:
        data["_csrf_token"] = await csrf_from(client, "/console/imports/new")
    return await client.post("/console/imports/new", data=data,
                             files={"file": (name, content, content_type)},
                             follow_redirects=False)


def job_path(answer: Any) -> str:
    assert answer.status_code == 303, (answer.status_code, answer.text[:500])
    location: str = answer.headers["location"]
    assert _JOB_PATH.match(location), location
    return location


async def finished_page(client: Client, path: str) -> str:
    """The job's page once the job has ended (until then it refreshes itself)."""
    for _ in range(300):
        answer = await client.get(path)
        assert answer.status_code == 200, answer.text[:500]
        if 'http-equiv="refresh"' not in answer.text:
            assert "refresh" not in answer.headers
            return answer.text
        assert answer.headers["refresh"] == "2"
        await asyncio.sleep(0.05)
    raise AssertionError(f"the job at {path} did not end")


def preview(html: str) -> list[list[str]]:
    """The refused rows of a job's page: [row, column, value, reason] each."""
    section = html.split('id="problems-heading"', 1)
    if len(section) < 2:
        return []
    body = section[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def counts(html: str) -> dict[str, str]:
    body = html.split('id="counts-heading"', 1)[1].split("</table>", 1)[0]
    return dict(re.findall(r'<th scope="row">(.*?)</th><td>(.*?)</td>', body))


async def confirm(client: Client, dry_path: str) -> Any:
    """Press the dry run page's confirm button (its form's CSRF token)."""
    return await client.post(f"{dry_path}/confirm",
                             data={"_csrf_token": await csrf_from(client, dry_path)},
                             follow_redirects=False)


def job_id(path: str) -> uuid.UUID:
    return uuid.UUID(path.rsplit("/", 1)[1])


async def decision_numbers(client: Client, headers: dict[str, str], subject_id: str) -> list[str]:
    answer = await client.get(f"/v1/records?subject_id={subject_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return sorted(r["decision_number"] for r in answer.json()["items"])


async def test_a_bad_row_is_previewed_in_chinese_then_the_good_rows_are_imported_on_confirm(
    client: Client, db: asyncpg.Pool, regulator: dict[str, str], clock: ManualClock,
    tmp_path: Path,
) -> None:
    """The dry run writes nothing and names the row, the template column and the reason;
    confirming queues the real import of the same file, listed with its result."""
    firm = await subject(client, regulator)
    await signed_in_regulator(client, db)
    rows = [template_row("C-1"), template_row("C-2", cf_xdr_shxym=WRONG_CODE),
            template_row("C-3")]
    dry_path = job_path(await upload(client, "处罚-三月.csv", csv_bytes(tmp_path, rows),
                                     grade="general"))
    page = await finished_page(client, dry_path)
    assert "预检：处罚-三月.csv" in page and "已完成" in page
    assert counts(page) == {"文件中的行": "3", "可以导入": "2", "已登记过（跳过）": "0",
                            "将被拒绝": "1", "将登记的新主体": "0"}
    assert preview(page) == [["3", COLUMN["cf_xdr_shxym"], WRONG_CODE,
                              "校验位不符，可能有字符输入错误"]]
    assert "默认失信程度：一般" in page
    assert await decision_numbers(client, regulator, firm) == []  # a dry run writes nothing
    report = await client.get(f"{dry_path}/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert [(line["行号"], line["列"]) for line in lines] == [("3", COLUMN["cf_xdr_shxym"])]

    assert '<button type="submit">确认导入</button>' in page
    clock.advance(seconds=30)
    real_path = job_path(await client.post(
        f"{dry_path}/confirm", data={"_csrf_token": await csrf_from(client, dry_path)},
        follow_redirects=False))
    assert real_path != dry_path
    result = await finished_page(client, real_path)
    assert "正式导入：处罚-三月.csv" in result and f'href="{dry_path}"' in result
    assert counts(result)["已导入"] == "2" and counts(result)["被拒绝"] == "1"
    assert preview(result)[0][:2] == ["3", COLUMN["cf_xdr_shxym"]]
    assert f'href="{real_path}/report"' in result
    assert await decision_numbers(client, regulator, firm) == ["C-1", "C-3"]
    # In the name of the signed-in official's token, like the API's import.
    job = (await client.get(f"/v1/imports/{real_path.rsplit('/', 1)[1]}",
                            headers=regulator)).json()
    assert (job["dry_run"], job["imported"], job["refused"], job["default_grade"]) == (
        False, 2, 1, "general")

    # Confirmed once: the dry run's page links to the import and a second POST is refused.
    again = await finished_page(client, dry_path)
    assert ALREADY_CONFIRMED in again and f'href="{real_path}"' in again
    assert "确认导入</button>" not in again
    twice = await client.post(f"{dry_path}/confirm",
                              data={"_csrf_token": await csrf_from(client, dry_path)})
    assert twice.status_code == 409 and ALREADY_CONFIRMED in twice.text
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 2

    listed = await client.get("/console/imports")
    assert listed.status_code == 200
    links = re.findall(r'<td><a href="(/console/imports/[0-9a-f-]{36})">', listed.text)
    assert links == [real_path, dry_path]  # newest first
    assert listed.text.count("已完成") == 2 and "正式导入 · 上传于 2026-03-02 10:00" in listed.text
    assert "可导入 2 · 跳过 0 · 拒绝 1" in listed.text and "导入 2 · 跳过 0 · 拒绝 1" in listed.text
    assert f'href="{real_path}/report"' in listed.text
    await assert_log_consistent(db, integrated=True)


async def test_an_xlsx_template_is_previewed_and_imported(
    client: Client, db: asyncpg.Pool, regulator: dict[str, str], tmp_path: Path,
) -> None:
    from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs installed

    firm = await subject(client, regulator)
    await signed_in_regulator(client, db)
    book = Workbook()
    sheet = book.active
    sheet.append([*TEMPLATE_COLUMNS, "失信程度"])
    for cells in (template_row("X-1", cf_nr_fk=12.5), template_row("X-2", cf_jdrq="2026-13-01")):
        sheet.append([cells[key] or None for key, _ in PENALTY_COLUMNS] + [cells["grade"]])
    path = tmp_path / "penalties.xlsx"
    book.save(path)
    dry_path = job_path(await upload(client, "penalties.xlsx", path.read_bytes(), XLSX_TYPE))
    page = await finished_page(client, dry_path)
    assert "XLSX" in page and counts(page)["可以导入"] == "1"
    ((row, column, value, reason),) = preview(page)
    assert (row, column, value) == ("3", COLUMN["cf_jdrq"], "2026-13-01")
    assert reason.startswith("日期无法识别：应为 YYYY-MM-DD")
    real_path = job_path(await client.post(
        f"{dry_path}/confirm", data={"_csrf_token": await csrf_from(client, dry_path)},
        follow_redirects=False))
    assert counts(await finished_page(client, real_path))["已导入"] == "1"
    assert await decision_numbers(client, regulator, firm) == ["X-1"]


async def test_another_authority_neither_sees_nor_confirms_the_job(
    client: Client, db: asyncpg.Pool, regulator: dict[str, str],
    other_regulator: dict[str, str], tmp_path: Path,
) -> None:
    firm = await subject(client, regulator)
    await signed_in_regulator(client, db)
    dry_path = job_path(await upload(client, "a.csv", csv_bytes(tmp_path, [template_row("O-1")])))
    await finished_page(client, dry_path)
    await signed_in_regulator(client, db, authority=OTHER_AUTHORITY[0])
    assert (await client.get(dry_path)).status_code == 404
    assert (await client.get(f"{dry_path}/report")).status_code == 404
    token = await csrf_from(client, "/console/imports")
    refused = await client.post(f"{dry_path}/confirm", data={"_csrf_token": token})
    assert refused.status_code == 404 and "未找到" in refused.text
    listed = await client.get("/console/imports")
    assert dry_path not in listed.text and "本机关还没有导入任务" in listed.text
    # The API agrees: the same job, not found by the other authority's token.
    job_id = dry_path.rsplit("/", 1)[1]
    assert (await client.get(f"/v1/imports/{job_id}", headers=other_regulator)).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 1
    assert await decision_numbers(client, regulator, firm) == []


async def test_an_upload_without_the_csrf_token_is_refused(
    client: Client, db: asyncpg.Pool, regulator: dict[str, str], tmp_path: Path,
) -> None:
    await subject(client, regulator)
    await signed_in_regulator(client, db)
    body = csv_bytes(tmp_path, [template_row("T-1")])
    await client.get("/console/imports/new")  # the browser holds the CSRF cookie
    refused = await upload(client, "t.csv", body, token=False)
    assert refused.status_code == 403 and "CSRF" in refused.text
    forged = await client.post("/console/imports/new", data={"_csrf_token": "x" * 80},
                               files={"file": ("t.csv", body, CSV_TYPE)})
    assert forged.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 0
    job_path(await upload(client, "t.csv", body))
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 1


async def test_a_file_the_import_cannot_take_is_refused_at_its_field_in_chinese(
    client: Client, db: asyncpg.Pool, tmp_path: Path,
) -> None:
    await signed_in_regulator(client, db)
    header = ["行政相对人名称", "行政相对人类别", "代码"]
    bad_header = write_csv(tmp_path / "bad.csv", [], header=header).read_bytes()
    answer = await upload(client, "bad.csv", bad_header, create_subjects="on")
    assert answer.status_code == 422
    assert ('<p id="file-error" class="error">表头第 3 列应为“行政相对人代码_1(统一社会信用代码)”'
            "，实际为“代码”") in answer.text
    assert 'name="create_subjects" type="checkbox" value="on" checked' in answer.text
    latin1 = "行政相对人名称".encode("gb18030") + b"\n"
    answer = await upload(client, "gbk.csv", latin1)
    assert answer.status_code == 422 and "请将 CSV 另存为 UTF-8 编码" in answer.text
    answer = await upload(client, "notes.txt", b"hello", "text/plain")
    assert answer.status_code == 422 and UNKNOWN_FORMAT in answer.text
    answer = await upload(client, "", b"", "application/octet-stream")
    assert answer.status_code == 422 and NO_FILE in answer.text
    answer = await upload(client, "a.csv", bad_header, grade="worst")
    assert answer.status_code == 422 and '<p id="grade-error" class="error">' in answer.text
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 0


async def test_an_upload_over_the_apps_body_limit_is_refused(
    client: Client, db: asyncpg.Pool, settings: Settings,
) -> None:
    await signed_in_regulator(client, db)
    limit = settings.max_body_bytes
    answer = await upload(client, "big.csv", b"x" * (limit + 1))
    assert answer.status_code == 413 and "文件过大" in answer.text
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 0


async def test_a_queued_dry_run_shows_progress_and_cannot_be_confirmed_yet(
    client: Client, db: asyncpg.Pool, app: Litestar, regulator: dict[str, str], tmp_path: Path,
) -> None:
    """While the job waits the page refreshes itself and offers no confirmation."""
    await subject(client, regulator)
    await signed_in_regulator(client, db)
    # Nothing takes the job until the worker is back (it runs in the app's event loop).
    await asyncio.to_thread(client.blocking_portal.call, app.state.import_jobs.stop)
    dry_path = job_path(await upload(client, "q.csv", csv_bytes(tmp_path, [template_row("Q-1")])))
    waiting = await client.get(dry_path)
    assert '<meta http-equiv="refresh" content="2">' in waiting.text
    assert waiting.headers["refresh"] == "2" and "排队等待处理" in waiting.text
    assert "确认导入</button>" not in waiting.text
    early = await client.post(f"{dry_path}/confirm",
                              data={"_csrf_token": await csrf_from(client, dry_path)})
    assert early.status_code == 409 and NOT_FINISHED in early.text
    await asyncio.to_thread(client.blocking_portal.call, app.state.import_jobs.start)
    assert CONFIRM_BUTTON in await finished_page(client, dry_path)
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 1


async def test_a_dry_run_is_confirmed_on_another_server_and_only_once(
    client: Client, db: asyncpg.Pool, regulator: dict[str, str], settings: Settings,
    database_url: str, clock: ManualClock, tmp_path: Path,
) -> None:
    """The file is held by the dry run's row, not by the server that ran it: a second
    app on the same database confirms it (as after a restart, or behind a load
    balancer), the first then links to that import and refuses a second confirmation."""
    firm = await subject(client, regulator)
    await signed_in_regulator(client, db)
    body = csv_bytes(tmp_path, [template_row("M-1"), template_row("M-2")])
    dry_path = job_path(await upload(client, "两台.csv", body))
    assert CONFIRM_BUTTON in await finished_page(client, dry_path)
    assert await db.fetchval("SELECT file FROM import_jobs WHERE id = $1",
                             job_id(dry_path)) == body

    second = create_app(settings, clock=clock, database_url=database_url, configure_logs=False)
    async with AsyncTestClient(app=second) as other:
        official = await signed_in_regulator(other, db)
        real_path = job_path(await confirm(other, dry_path))
        result = await finished_page(other, real_path)
        assert "正式导入：两台.csv" in result and counts(result)["已导入"] == "2"
        assert f'由<a href="{dry_path}">预检</a>确认导入' in result
    assert await decision_numbers(client, regulator, firm) == ["M-1", "M-2"]
    real = await db.fetchrow("SELECT * FROM import_jobs WHERE id = $1", job_id(real_path))
    dry = await db.fetchrow("SELECT * FROM import_jobs WHERE id = $1", job_id(dry_path))
    assert real is not None and dry is not None
    assert (real["confirms"], real["dry_run"], real["file_bytes"], real["file"], dry["file"]) == (
        dry["id"], False, len(body), None, None)
    # In the name of the confirming official's token, not the uploading one's.
    confirming = await db.fetchval("SELECT id FROM api_tokens WHERE token_hash = sha256($1)",
                                   official.encode())
    assert real["actor"] == f"regulator:{confirming}@{real['authority_code']}" != dry["actor"]

    # The first server knows it from the database: a link, no button, a second POST refused.
    again = await finished_page(client, dry_path)
    assert ALREADY_CONFIRMED in again and f'href="{real_path}"' in again
    assert CONFIRM_BUTTON not in again
    twice = await confirm(client, dry_path)
    assert twice.status_code == 409 and ALREADY_CONFIRMED in twice.text
    assert f'href="{real_path}"' in twice.text
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 2
    await assert_log_consistent(db, integrated=True)


async def test_a_dry_runs_file_is_held_for_a_session_then_dropped(
    client: Client, db: asyncpg.Pool, app: Litestar, regulator: dict[str, str],
    clock: ManualClock, tmp_path: Path,
) -> None:
    """Until DRY_RUN_FILE_HOURS after the dry run the page offers the confirmation and
    says until when; from then on it is refused (before the worker's housekeeping has
    dropped the file too), and the housekeeping drops it."""
    await subject(client, regulator)
    await signed_in_regulator(client, db)
    dry_path = job_path(await upload(client, "晚.csv", csv_bytes(tmp_path, [template_row("L-1")])))
    await finished_page(client, dry_path)
    finished_at = await db.fetchval("SELECT finished_at FROM import_jobs WHERE id = $1",
                                    job_id(dry_path))
    clock.advance(hours=DRY_RUN_FILE_HOURS, seconds=-1)
    page = await finished_page(client, dry_path)
    assert CONFIRM_BUTTON in page and "预检的文件保留至 2026-03-02 18:00（北京时间）" in page
    assert clock.now() - finished_at < timedelta(hours=DRY_RUN_FILE_HOURS)

    clock.advance(seconds=1)
    await signed_in_regulator(client, db)  # the session lasted as long as the hold
    page = await finished_page(client, dry_path)
    assert FILE_GONE in page and CONFIRM_BUTTON not in page and "重新上传文件" in page
    late = await confirm(client, dry_path)
    assert late.status_code == 409 and FILE_GONE in late.text
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 1

    app.state.import_jobs.wake()  # its housekeeping runs each time it looks for work
    for _ in range(200):
        if await db.fetchval("SELECT file IS NULL FROM import_jobs WHERE id = $1",
                             job_id(dry_path)):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the housekeeping did not drop the expired file")
    assert (await confirm(client, dry_path)).status_code == 409
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 1
