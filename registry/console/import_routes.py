"""``/console/imports``: upload the 双公示 template, see the validation preview, confirm.

The console takes an upload the way ``POST /v1/imports`` does (``api/imports.py``): the
same check before the answer and the same job (``imports.jobs.submit``) run by the app's
one worker (``app.state.import_jobs``) in the name of the signed-in official's token and
authority. An upload here is always a dry run first: its page follows the job (a plain
refresh while it runs) and then previews every refused row (row, template column, the
Chinese reason, values masked as stored). Confirming it queues the real import of the
same bytes as a new job (``imports.jobs.confirm``: the dry run's row holds them until
then, so any server may confirm it), and each page links to the other. Only the
officer's authority's jobs are shown, confirmed or reported: another's is not found, as
in the API.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import PureWindowsPath
from typing import Annotated, Any, Final

import structlog
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from litestar.response import Redirect

from registry.api.records import GRADES
from registry.console import names
from registry.console.forms import FormState
from registry.console.import_held import confirm_permit
from registry.console.render import page
from registry.console.sessions import Officer
from registry.console.texts import reason_zh
from registry.credit.common import decode_cursor, encode_cursor
from registry.credit.ownership import deciding_authority
from registry.errors import Conflict, NotFound
from registry.imports import jobs
from registry.imports.jobs import (
    Confirmation,
    ImportJobs,
    JobActor,
    confirmation_of,
    file_held_until,
    get_job,
    job_problems,
    job_view_numbers,
    list_jobs,
    submit,
)
from registry.imports.problems import CannotImport
from registry.imports.report import report_bytes
from registry.imports.runner import Options
from registry.imports.template import Format
from registry.publish.labels import GRADE_NAMES
from registry.services import Services

log = structlog.get_logger(__name__)

# The formats of the national template a person uploads, by the file's ending; a file
# without one of these endings is taken by the type the browser names.
EXTENSIONS: Final[dict[str, Format]] = {".csv": "csv", ".xlsx": "xlsx"}
MEDIA_TYPES: Final[dict[str, Format]] = {
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
# Refused rows shown on a job's page; all of them are in the report.
PREVIEW_ROWS: Final = 500
PAGE_SIZE: Final = 20
# Seconds between refreshes of a job's page while the job is queued or running.
REFRESH_SECONDS: Final = 2
_BEIJING: Final = timedelta(hours=8)

NO_FILE: Final = "请选择要上传的模板文件（CSV 或 XLSX）。"
EMPTY_FILE: Final = "所选文件为空。"
UNKNOWN_FORMAT: Final = "只接受双公示模板的 CSV（UTF-8 编码）或 XLSX 文件，文件名应以 .csv 或 .xlsx 结尾。"
UNKNOWN_GRADE: Final = "请在列表中选择失信程度。"


def beijing(moment: datetime | None) -> str:
    """A job's time as officials read it: Beijing time, to the minute."""
    return "" if moment is None else (moment + _BEIJING).strftime("%Y-%m-%d %H:%M")


async def _own_job(services: Services, officer: Officer, job_id: uuid.UUID) -> Any:
    """The job, if it is of the officer's authority (another's is not found, as if absent:
    the API's rule, ``api/imports.py``)."""
    job = await get_job(services, job_id)
    if job is None or job["authority_code"] != deciding_authority(officer.principal):
        raise NotFound(f"no import job {job_id} of this authority")
    return job


def _format_of(upload: UploadFile) -> Format | None:
    name = (upload.filename or "").lower()
    for ending, fmt in EXTENSIONS.items():
        if name.endswith(ending):
            return fmt
    return MEDIA_TYPES.get((upload.content_type or "").split(";")[0].strip().lower())


def _file_name(upload: UploadFile) -> str | None:
    """The name to show: the last part of what the browser sent (some send a whole path)."""
    name = PureWindowsPath(upload.filename or "").name.strip()
    return name[:200] or None


def _max_mib(request: Request[Any, Any, Any]) -> float | None:
    """The largest upload the app takes (its ``max_body_bytes``), in MiB, to tell people."""
    limit = request.route_handler.resolve_request_max_body_size()
    return None if not limit else round(limit / (1024 * 1024), 1)


def _new_page(request: Request[Any, Any, Any], officer: Officer, form: FormState,
              status: int = 200) -> Response[str]:
    grades = [(g, GRADE_NAMES[g]) for g in GRADES]
    return page(request, "console_import_new.html", officer=officer, status=status,
                title="上传导入文件", state=form, grades=grades,
                max_mib=_max_mib(request))


@get("/imports/new")
async def import_form(request: Request[Any, Any, Any],
                      officer: NamedDependency[Officer]) -> Response[str]:
    return _new_page(request, officer, FormState())


@post("/imports/new")
async def upload(request: Request[Any, Any, Any], officer: NamedDependency[Officer],
                 services: NamedDependency[Services],
                 import_jobs: NamedDependency[ImportJobs]) -> Response[str]:
    """Check the file as the API does and queue its dry run; then to the job's page."""
    received = await request.form()
    grade = str(received.get("grade") or "").strip()
    create_subjects = bool(received.get("create_subjects"))
    form = FormState({"grade": [grade], "create_subjects": ["on"] if create_subjects else []})
    errors = form.errors
    file = received.get("file")
    content = b""
    fmt: Format | None = None
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = NO_FILE
    else:
        content = await file.read()
        fmt = _format_of(file)
        if fmt is None:
            errors["file"] = UNKNOWN_FORMAT
        elif not content:
            errors["file"] = EMPTY_FILE
    if grade and grade not in GRADES:
        errors["grade"] = UNKNOWN_GRADE
    if errors or fmt is None or not isinstance(file, UploadFile):
        return _new_page(request, officer, form, status=422)
    options = Options(default_grade=grade or None, create_subjects=create_subjects,
                      dry_run=True)
    who = JobActor(officer.principal.actor, deciding_authority(officer.principal))
    name = _file_name(file)
    try:
        job = await submit(services, who, content, fmt, options, name)
    except CannotImport as error:
        errors["file"] = reason_zh(str(error))
        return _new_page(request, officer, form, status=422)
    import_jobs.wake()
    log.info("console_import_uploaded", job=str(job["id"]), format=fmt, bytes=len(content))
    return Redirect(f"/console/imports/{job['id']}", status_code=303)


def _progress(job: Any, now: datetime) -> dict[str, Any]:
    numbers = job_view_numbers(job, now)
    total, done = job["total_rows"], job["done_rows"]
    percent = None if not total else min(100, round(100 * done / total))
    return {**numbers, "percent": percent}


async def _job_page(request: Request[Any, Any, Any], officer: Officer, services: Services,
                    job: Any, *, alert: str | None = None, status: int = 200) -> Response[str]:
    now = services.clock.now()
    finished = job["finished_at"] is not None
    # The refused rows once the job has ended (while it runs the page refreshes: the
    # counts say how far it got, and the rows are read once, at the end).
    problems = await job_problems(services, job["id"]) if finished else []
    confirmation = await confirmation_of(services, job["id"]) or Confirmation(False, None)
    verdict = confirm_permit(job, confirmation, now)
    held_until = file_held_until(job) if verdict.allowed else None
    return page(
        request, "console_import.html", officer=officer, status=status,
        headers=None if finished else {"Refresh": str(REFRESH_SECONDS)},
        title=("预检" if job["dry_run"] else "正式导入") + " · " + (job["file_name"] or "导入任务"),
        job=job, state_name=names.name_of(names.IMPORT_JOB_STATES, job["state"]),
        finished=finished,
        refresh=REFRESH_SECONDS, progress=_progress(job, now),
        problems=problems[:PREVIEW_ROWS], more_problems=max(0, len(problems) - PREVIEW_ROWS),
        grade_name=GRADE_NAMES.get(job["default_grade"] or "", ""),
        error_zh=reason_zh(job["error"]) if job["error"] else None,
        verdict=verdict, confirmed_as=confirmation.confirmed_by, source=job["confirms"],
        held_until=beijing(held_until),
        created=beijing(job["created_at"]), ended=beijing(job["finished_at"]), alert=alert,
    )


@get("/imports/{job_id:uuid}")
async def import_job(request: Request[Any, Any, Any], job_id: FromPath[uuid.UUID],
                     officer: NamedDependency[Officer],
                     services: NamedDependency[Services]) -> Response[str]:
    """The job: its progress while it runs, then its preview or result."""
    job = await _own_job(services, officer, job_id)
    return await _job_page(request, officer, services, job)


@post("/imports/{job_id:uuid}/confirm")
async def confirm(request: Request[Any, Any, Any], job_id: FromPath[uuid.UUID],
                  officer: NamedDependency[Officer], services: NamedDependency[Services],
                  import_jobs: NamedDependency[ImportJobs]) -> Response[str]:
    """Queue the real import of a dry run's file (a new job); then to that job's page. A
    dry run that cannot be confirmed (already confirmed, here or on another server; its
    file no longer held; ...) is shown again with the reason, 409."""
    try:
        real = await jobs.confirm(services, job_id,
                                  authority_code=deciding_authority(officer.principal),
                                  actor=officer.principal.actor)
    except Conflict as refusal:
        job = await _own_job(services, officer, job_id)
        return await _job_page(request, officer, services, job,
                               alert=reason_zh(refusal.detail), status=409)
    import_jobs.wake()
    log.info("console_import_confirmed", dry_run=str(job_id), job=str(real["id"]))
    return Redirect(f"/console/imports/{real['id']}", status_code=303)


@get("/imports/{job_id:uuid}/report", media_type="text/csv; charset=utf-8")
async def import_report(job_id: FromPath[uuid.UUID], officer: NamedDependency[Officer],
                        services: NamedDependency[Services]) -> Response[bytes]:
    """The refused rows, as the API's report (``GET /v1/imports/{id}/report``) has them."""
    await _own_job(services, officer, job_id)
    body = report_bytes(await job_problems(services, job_id))
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="import-{job_id}-report.csv"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@get("/imports")
async def imports(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Officer],
    services: NamedDependency[Services],
    cursor: Annotated[str | None, Parameter(max_length=200)] = None,
) -> Response[str]:
    """The authority's import jobs, newest first, a page at a time."""
    after = decode_cursor(cursor, (datetime, uuid.UUID)) if cursor else None
    rows = await list_jobs(services, deciding_authority(officer.principal), after, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    listed = [{"job": r, "state_name": names.name_of(names.IMPORT_JOB_STATES, r["state"]),
               "created": beijing(r["created_at"]), "ended": beijing(r["finished_at"])}
              for r in rows]
    return page(request, "console_imports.html", officer=officer, title="批量导入",
                jobs=listed, next_cursor=next_cursor, first_page=cursor is None)


IMPORT_HANDLERS = [imports, import_form, upload, import_job, confirm, import_report]
