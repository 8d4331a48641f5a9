"""Regulator routes for imports over HTTP: upload a template file, follow the job, get the
report (registry/imports/jobs.py; the import itself is ``registry import``'s)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from registry.api.auth import BEARER, requires
from registry.api.openapi import enum_query, problem_responses
from registry.api.records import GRADES
from registry.credit.common import decode_cursor, encode_cursor
from registry.credit.ownership import deciding_authority
from registry.errors import InvalidInput, NotFound, UnsupportedMediaType
from registry.imports.jobs import (
    ImportJobs,
    JobActor,
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
from registry.services import Services
from registry.tokens import Principal

# The largest file an upload may be: about 150,000 template rows of CSV.
MAX_UPLOAD_BYTES: Final = 64 * 1024 * 1024
# Media type of the upload -> the import's format.
MEDIA_TYPES: Final[dict[str, Format]] = {
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
}
JobState = Literal["queued", "running", "done", "failed"]


@dataclass
class UploadOperation(Operation):
    """The upload's OpenAPI operation: its body is the file, in one of ``MEDIA_TYPES``
    (the handler reads the bytes itself, so Litestar cannot describe them)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The file itself, as sent (no form encoding).",
            content={
                media: OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))
                for media in MEDIA_TYPES
            },
        )


class ImportJob(msgspec.Struct):
    id: uuid.UUID
    state: JobState
    format: Format
    file_name: str | None
    file_bytes: int
    default_grade: str | None
    create_subjects: bool
    dry_run: bool
    # How many times a server started it (more than 1: a server stopped while it ran).
    attempts: int
    total_rows: int | None
    done_rows: int
    imported: int
    skipped: int
    refused: int
    subjects_registered: int
    rows_per_second: float | None
    eta_seconds: int | None
    # The newest leaf the job wrote, and (once done) a signed checkpoint including it.
    last_index: int | None
    checkpoint: str | None
    error: str | None
    report: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportJobPage(msgspec.Struct):
    items: list[ImportJob]
    next_cursor: str | None


def _view(job: Any, now: datetime) -> ImportJob:
    report = f"/v1/imports/{job['id']}/report" if job["refused"] else None
    return ImportJob(
        **{f: job[f] for f in ImportJob.__struct_fields__
           if f not in ("rows_per_second", "eta_seconds", "report")},
        **job_view_numbers(job, now),
        report=report,
    )


def _format_of(content_type: str | None) -> Format:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            "Content-Type",
            f"is {content_type!r}" if content_type else "is missing",
            "text/csv (UTF-8, with or without BOM), "
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet (XLSX), "
            "or application/x-ndjson (one POST /v1/records body per line)",
            media_types=", ".join(MEDIA_TYPES),
        )
    return MEDIA_TYPES[media]


async def _own_job(services: Services, principal: Principal, job_id: uuid.UUID) -> Any:
    """The job, if it is of the token's authority (another's is not found, as if absent)."""
    job = await get_job(services, job_id)
    if job is None or job["authority_code"] != deciding_authority(principal):
        raise NotFound(f"no import job {job_id} of this authority")
    return job


class ImportController(Controller):
    path = "/v1/imports"
    tags = ["imports"]
    security = BEARER

    @post(
        "/",
        middleware=[requires("regulator")],
        status_code=HTTP_202_ACCEPTED,
        request_max_body_size=MAX_UPLOAD_BYTES,
        operation_class=UploadOperation,
        responses={202: ResponseSpec(data_container=ImportJob, description="The job, queued"),
                   **problem_responses(400, 401, 403, 413, 415, 422)},
        summary="Import administrative penalties from the 双公示 template, in the background",
        description=(
            "The body is the file: CSV, XLSX or JSONL, named by `Content-Type`, at most "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MiB. The file is checked as `registry import` "
            "checks it (format, the template's header) before the answer: a file it cannot "
            "read is a 422 naming `file`. Then the job imports it in the name of the token's "
            "authority, each record with its audit-log leaf, exactly as `registry import "
            "--authority` does: rows recorded already are skipped, refused rows are listed in "
            "the report (`GET /v1/imports/{id}/report`). Follow it at the `Location`. A job "
            "whose server stops is taken up again by the next one. With curl: `curl "
            "--data-binary @penalties.csv -H 'Content-Type: text/csv' "
            "'…/v1/imports?grade=general'`."
        ),
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        import_jobs: NamedDependency[ImportJobs],
        grade: Annotated[str | None, enum_query(GRADES, description=(
            "The grade of rows without 失信程度 (JSONL: bodies without grade)"))] = None,
        create_subjects: Annotated[bool, QueryParameter(name="create_subjects", description=(
            "Register the subjects rows name that are not registered yet"))] = False,
        dry_run: Annotated[bool, QueryParameter(name="dry_run", description=(
            "Check every row and write nothing: the report says what would be refused"))] = False,
        file_name: Annotated[str | None, QueryParameter(
            name="file_name", max_length=200, description="The file's name, to show")] = None,
    ) -> Response[ImportJob]:
        if grade is not None and grade not in GRADES:
            raise InvalidInput("grade", f"unknown grade {grade!r}", ", ".join(GRADES),
                               source="query")
        fmt = _format_of(request.headers.get("content-type"))
        content = await request.body()
        if not content:
            raise InvalidInput("file", "the body is empty", "the template file as the body")
        options = Options(default_grade=grade, create_subjects=create_subjects, dry_run=dry_run)
        who = JobActor(principal.actor, deciding_authority(principal))
        try:
            job = await submit(services, who, content, fmt, options, file_name)
        except CannotImport as error:
            raise InvalidInput("file", str(error), "a file of the 双公示 template") from None
        import_jobs.wake()
        return Response(_view(job, services.clock.now()), status_code=HTTP_202_ACCEPTED,
                        headers={"Location": f"/v1/imports/{job['id']}"})

    @get(
        "/",
        middleware=[requires("regulator")],
        responses=problem_responses(400, 401, 403, 422),
        summary="The token's authority's import jobs, newest first",
    )
    async def list_all(
        self,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> ImportJobPage:
        after = decode_cursor(cursor, (datetime, uuid.UUID)) if cursor else None
        rows = await list_jobs(services, deciding_authority(principal), after, limit + 1)
        now = services.clock.now()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
        return ImportJobPage([_view(r, now) for r in rows], next_cursor)

    @get(
        "/{job_id:uuid}",
        middleware=[requires("regulator")],
        status_code=HTTP_200_OK,
        responses=problem_responses(401, 403, 404),
        summary="An import job: its state, counts, speed and time left",
    )
    async def show(self, job_id: FromPath[uuid.UUID], services: NamedDependency[Services],
                   principal: NamedDependency[Principal]) -> ImportJob:
        return _view(await _own_job(services, principal, job_id), services.clock.now())

    @get(
        "/{job_id:uuid}/report",
        middleware=[requires("regulator")],
        media_type="text/csv; charset=utf-8",
        responses=problem_responses(401, 403, 404),
        summary="The refused rows of an import job, as the CSV `registry import --report` writes",
        description=(
            "UTF-8 with BOM; 行号, 列, 值 (document numbers masked), 原因, reason. So far, "
            "while the job runs."
        ),
    )
    async def report(self, job_id: FromPath[uuid.UUID], services: NamedDependency[Services],
                     principal: NamedDependency[Principal]) -> Response[bytes]:
        await _own_job(services, principal, job_id)
        body = report_bytes(await job_problems(services, job_id))
        return Response(body, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="import-{job_id}-report.csv"'})
