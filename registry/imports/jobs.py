"""Imports as background jobs of the service (``POST /v1/imports``).

A regulator uploads a template file; ``submit`` checks it as ``registry import`` does
before anything is written (format, header) and stores it with a job row
(schema/0016_import_jobs.sql). ``ImportJobs``, one per running app, takes queued jobs
one at a time and runs ``runner.run_import`` on them, in the name of the uploading
token's authority and with its actor, writing the tally to the job row after every
batch and the refused rows (masked) beside it.

Crash points: a job whose server stops mid-way stays ``running`` with a heartbeat that
stops moving; after ``STALE_SECONDS`` any server takes it up again from its stored file.
An import is idempotent (a recorded decision number is skipped), so the rerun writes
only what the first attempt did not commit; its counts start afresh, so ``skipped``
then includes the rows the earlier attempt imported. After ``MAX_ATTEMPTS`` the job
fails instead: a file that stops every server it runs on is not run forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
import structlog

from registry.db.types import required
from registry.imports.problems import CannotImport, Problem
from registry.imports.runner import Options, Tally, run_import
from registry.imports.template import Format, ImportFile, open_file
from registry.services import Services
from registry.tasks import stop_task

log = structlog.get_logger(__name__)

# Heartbeats of a running job; a job whose heartbeat is older than STALE_SECONDS has lost
# its server.
HEARTBEAT_SECONDS: Final = 10.0
STALE_SECONDS: Final = 60.0
MAX_ATTEMPTS: Final = 3
# How often an idle server looks for jobs submitted elsewhere or left by a stopped server.
POLL_SECONDS: Final = 5.0


@dataclass(frozen=True)
class JobActor:
    """Who writes a job's records: the token that uploaded it (``credit/ownership.Acting``)."""

    actor: str
    authority_code: str | None
    role: str = "regulator"
    system: bool = False


def _opened(content: bytes, fmt: Format, folder: Path) -> ImportFile:
    path = folder / f"upload.{fmt}"
    path.write_bytes(content)
    return open_file(path, fmt)


def check_upload(content: bytes, fmt: Format) -> None:
    """``CannotImport`` unless ``content`` is a readable ``fmt`` file with the template's
    header (JSONL: one object per line); what ``registry import`` checks before a row."""
    with tempfile.TemporaryDirectory(prefix="registry-upload-") as folder:
        source = _opened(content, fmt, Path(folder))
        close = getattr(source.rows(), "close", None)
        if close is not None:
            close()


async def submit(
    services: Services,
    who: JobActor,
    content: bytes,
    fmt: Format,
    options: Options,
    file_name: str | None,
) -> asyncpg.Record:
    """Check the upload and queue it; the new job row. ``CannotImport`` if the file is not
    one ``registry import`` would take."""
    await asyncio.to_thread(check_upload, content, fmt)
    row = await services.pool.fetchrow(
        "INSERT INTO import_jobs (id, authority_code, actor, format, file_name, file_bytes,"
        " file, default_grade, create_subjects, dry_run, state, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued', $11) RETURNING *",
        uuid.uuid4(), who.authority_code, who.actor, fmt, file_name, len(content), content,
        options.default_grade, options.create_subjects, options.dry_run, services.clock.now(),
    )  # fmt: skip
    return required(row, "import job")


_COLUMNS: Final = (
    "id, authority_code, actor, format, file_name, file_bytes, default_grade,"
    " create_subjects, dry_run, state, attempts, total_rows, done_rows, imported, skipped,"
    " refused, subjects_registered, last_index, checkpoint, error, created_at, started_at,"
    " heartbeat_at, finished_at"
)


async def get_job(services: Services, job_id: uuid.UUID) -> asyncpg.Record | None:
    """The job (without its file), or None."""
    row: asyncpg.Record | None = await services.pool.fetchrow(
        f"SELECT {_COLUMNS} FROM import_jobs WHERE id = $1", job_id  # noqa: S608 - fixed text
    )
    return row


async def list_jobs(
    services: Services, authority_code: str, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[asyncpg.Record]:
    """An authority's jobs, newest first, after the keyset ``after`` (created_at, id)."""
    if after is None:
        rows = await services.pool.fetch(
            f"SELECT {_COLUMNS} FROM import_jobs WHERE authority_code = $1"  # noqa: S608
            " ORDER BY created_at DESC, id DESC LIMIT $2",
            authority_code, limit,
        )  # fmt: skip
    else:
        rows = await services.pool.fetch(
            f"SELECT {_COLUMNS} FROM import_jobs WHERE authority_code = $1"  # noqa: S608
            " AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4",
            authority_code, after[0], after[1], limit,
        )  # fmt: skip
    return list(rows)


async def job_problems(services: Services, job_id: uuid.UUID) -> list[Problem]:
    """The job's refused rows (masked when stored), in file order."""
    rows = await services.pool.fetch(
        "SELECT row_number, column_name, value, reason_zh, reason_en FROM import_job_problems"
        " WHERE job_id = $1 ORDER BY row_number, seq",
        job_id,
    )
    return [Problem(r["row_number"], r["column_name"], r["value"], r["reason_zh"],
                    r["reason_en"]) for r in rows]


class ImportJobs:
    """The running app's import worker: one job at a time, in this process."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="import-jobs")

    async def stop(self) -> None:
        """Stop at once; a job cut short is taken up again (module docstring)."""
        await stop_task(self._task)
        self._task = None

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            try:
                job = await self._claim()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("import_jobs_unreachable", error=type(error).__name__)
                job = None
            if job is not None:
                await self._work(job)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), POLL_SECONDS)
            self._wakeup.clear()

    async def _claim(self) -> asyncpg.Record | None:
        """The oldest job waiting, or left by a stopped server, now running here."""
        now = self._services.clock.now()
        stale = now - timedelta(seconds=STALE_SECONDS)
        async with self._services.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE import_jobs SET state = 'failed', finished_at = $1, file = NULL,"
                " error = $3 WHERE finished_at IS NULL AND state = 'running'"
                " AND heartbeat_at < $2 AND attempts >= $4",
                now, stale,
                f"stopped {MAX_ATTEMPTS} times without finishing (its server was stopped each "
                "time); the records imported so far stay: upload the file again to go on",
                MAX_ATTEMPTS,
            )  # fmt: skip
            job: asyncpg.Record | None = await conn.fetchrow(
                "UPDATE import_jobs SET state = 'running', attempts = attempts + 1,"
                " started_at = coalesce(started_at, $1), heartbeat_at = $1, done_rows = 0,"
                " imported = 0, skipped = 0, refused = 0, subjects_registered = 0"
                " WHERE id = (SELECT id FROM import_jobs WHERE finished_at IS NULL"
                " AND (state = 'queued' OR heartbeat_at < $2) ORDER BY created_at"
                " LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
                now, stale,
            )  # fmt: skip
            if job is not None:
                await conn.execute("DELETE FROM import_job_problems WHERE job_id = $1", job["id"])
        return job

    async def _work(self, job: asyncpg.Record) -> None:
        services = self._services
        job_id = job["id"]
        log.info("import_job_started", job=str(job_id), attempt=job["attempts"],
                 format=job["format"], bytes=job["file_bytes"])
        beating = asyncio.create_task(self._heartbeat(job_id), name="import-job-heartbeat")
        stored = 0

        async def progress(tally: Tally) -> None:
            nonlocal stored
            fresh = tally.problems[stored:]
            async with services.pool.acquire() as conn, conn.transaction():
                if fresh:
                    await conn.copy_records_to_table(
                        "import_job_problems",
                        columns=["job_id", "seq", "row_number", "column_name", "value",
                                 "reason_zh", "reason_en"],
                        records=[(job_id, stored + i, p.row, p.column, p.value, p.zh, p.en)
                                 for i, p in enumerate(fresh)],
                    )
                await conn.execute(
                    "UPDATE import_jobs SET total_rows = $2, done_rows = $3, imported = $4,"
                    " skipped = $5, refused = $6, subjects_registered = $7, last_index = $8,"
                    " heartbeat_at = $9 WHERE id = $1",
                    job_id, tally.total, tally.done, tally.imported, tally.skipped,
                    tally.refused, tally.subjects_registered, tally.last_index,
                    services.clock.now(),
                )  # fmt: skip
            stored += len(fresh)

        try:
            with tempfile.TemporaryDirectory(prefix="registry-import-job-") as folder:
                source = await asyncio.to_thread(
                    _opened, bytes(job["file"]), job["format"], Path(folder)
                )
                options = Options(default_grade=job["default_grade"],
                                  create_subjects=job["create_subjects"], dry_run=job["dry_run"])
                who = JobActor(job["actor"], job["authority_code"])
                tally = await run_import(services, who, source, options, progress=progress)
            await progress(tally)
            await self._finish(job_id, "done", None, tally.checkpoint)
            log.info("import_job_finished", job=str(job_id), imported=tally.imported,
                     skipped=tally.skipped, refused=tally.refused)
        except asyncio.CancelledError:
            # The server stops: queued again, the next server to start takes it up at once
            # (if this does not get through, it does so once the heartbeat is stale).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._services.pool.execute(
                    "UPDATE import_jobs SET state = 'queued' WHERE id = $1 AND finished_at IS NULL",
                    job_id)), 1.0)
            raise
        except CannotImport as error:
            await self._finish(job_id, "failed", str(error), None)
        except Exception as error:
            # The records committed so far stay; a rerun of the same file skips them.
            log.error("import_job_failed", job=str(job_id), error=type(error).__name__)
            with contextlib.suppress(Exception):
                await self._finish(
                    job_id, "failed",
                    f"couldn't finish the import ({type(error).__name__}); the records "
                    "imported so far stay: upload the file again to go on",
                    None,
                )  # fmt: skip
        finally:
            await stop_task(beating)

    async def _finish(self, job_id: uuid.UUID, state: str, error: str | None,
                      checkpoint: str | None) -> None:
        await self._services.pool.execute(
            "UPDATE import_jobs SET state = $2, error = $3, checkpoint = $4, finished_at = $5,"
            " heartbeat_at = $5, file = NULL WHERE id = $1",
            job_id, state, error, checkpoint, self._services.clock.now(),
        )  # fmt: skip

    async def _heartbeat(self, job_id: uuid.UUID) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._services.pool.execute(
                    "UPDATE import_jobs SET heartbeat_at = $2 WHERE id = $1",
                    job_id, self._services.clock.now(),
                )


def job_view_numbers(job: asyncpg.Record, now: datetime) -> dict[str, Any]:
    """Rows a second and the seconds left, from the job's counts and times (None until
    they mean something)."""
    started, done, total = job["started_at"], job["done_rows"], job["total_rows"]
    if started is None or not done or job["state"] != "running":
        return {"rows_per_second": None, "eta_seconds": None}
    elapsed = max((now - started).total_seconds(), 0.001)
    rate = done / elapsed
    left = None if total is None else max(total - done, 0) / rate
    return {"rows_per_second": round(rate, 1), "eta_seconds": None if left is None else round(left)}
