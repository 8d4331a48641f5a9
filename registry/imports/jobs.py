"""Imports as background jobs of the service (``POST /v1/imports``).

A regulator uploads a template file; ``submit`` checks it as ``registry import`` does
before anything is written (format, header) and stores it with a job row
(schema/0016_import_jobs.sql). ``ImportJobs``, one per running app, takes queued jobs
one at a time and runs ``runner.run_import`` on them, in the name of the uploading
token's authority and with its actor, writing the tally to the job row after every
batch and the refused rows (masked) beside it.

A job drops its file when it ends, except a dry run that ends ``done`` with rows to
import: it keeps it for its confirmation (schema/0022_import_confirmation.sql). ``confirm`` queues the real
import of those bytes as a new job naming the dry run (``confirms``) and drops the dry
run's copy, in one transaction; a dry run is confirmed at most once (a UNIQUE
constraint, so two servers racing cannot both). A file not confirmed within
``DRY_RUN_FILE_HOURS`` of its dry run's end is dropped by the worker's housekeeping
(``drop_expired_files``, each time a worker looks for work); ``confirm_refusal`` counts
it as gone from that moment, whether or not the housekeeping has run yet.

Crash points: a job whose server stops mid-way stays ``running`` with a heartbeat that
stops moving; after ``STALE_SECONDS`` any server takes it up again from its stored file.
An import is idempotent (a recorded decision number is skipped), so the rerun writes
only what the first attempt did not commit; its counts start afresh, so ``skipped``
then includes the rows the earlier attempt imported. After ``MAX_ATTEMPTS`` the job
fails instead: a file that stops every server it runs on is not run forever. A server
that stops during ``confirm`` leaves either both the queued import and the dry run's
dropped copy, or neither (the dry run can then be confirmed again). A dry run's hold
that runs out while its server is stopped is dropped by the next worker to look.
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
from registry.errors import Conflict, NotFound
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
# How long a dry run that ended ``done`` keeps its file for its confirmation: a console
# session's length (console/sessions.py SESSION_LENGTH), so an official who ran it can
# confirm it for as long as they stay signed in, and no file is kept for one who left.
DRY_RUN_FILE_HOURS: Final = 8
DRY_RUN_FILE_HOLD: Final = timedelta(hours=DRY_RUN_FILE_HOURS)


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
    " heartbeat_at, finished_at, confirms"
)
# Whether a job holds its file, and the import that confirmed it: read beside a job's
# columns (``FROM import_jobs j``), never the file itself.
_CONFIRMATION: Final = (
    "j.file IS NOT NULL AS file_held,"
    " (SELECT c.id FROM import_jobs c WHERE c.confirms = j.id) AS confirmed_by"
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


@dataclass(frozen=True)
class Confirmation:
    """Where a job stands for confirmation, beside its row: whether it holds its file and
    which import confirmed it (None: none yet)."""

    file_held: bool
    confirmed_by: uuid.UUID | None


async def confirmation_of(services: Services, job_id: uuid.UUID) -> Confirmation | None:
    """The job's ``Confirmation`` (the file is not read), or None if there is no such job."""
    row = await services.pool.fetchrow(
        f"SELECT {_CONFIRMATION} FROM import_jobs j WHERE j.id = $1", job_id  # noqa: S608
    )
    return None if row is None else Confirmation(row["file_held"], row["confirmed_by"])


def confirm_refusal(job: Any, confirmation: Confirmation, now: datetime) -> str | None:
    """Why ``job`` (a row with ``get_job``'s columns) cannot be confirmed at ``now``, in
    English; None if it can. The rule ``confirm`` enforces on the locked row, and a page
    asks to decide whether to offer the button."""
    job_id = job["id"]
    if not job["dry_run"]:
        return f"import job {job_id} is not a dry run: only a dry run is confirmed"
    if confirmation.confirmed_by is not None:
        return f"dry run {job_id} is already confirmed by import job {confirmation.confirmed_by}"
    if job["state"] in ("queued", "running"):
        return (f"dry run {job_id} has not finished (it is {job['state']}): it can be "
                "confirmed once it is done")
    if job["state"] != "done":
        return f"dry run {job_id} failed: there is nothing to confirm; upload the file again"
    if job["imported"] == 0:
        return (f"dry run {job_id} would import no rows (each was refused or is recorded "
                "already): there is nothing to confirm")
    if not confirmation.file_held or file_expired(job["finished_at"], now):
        return (f"the file of dry run {job_id} is no longer held (it is kept "
                f"{DRY_RUN_FILE_HOURS} hours after the dry run ends, until confirmed): "
                "upload it again for a new dry run")
    return None


def file_expired(finished_at: datetime, now: datetime) -> bool:
    """Whether a dry run that ended at ``finished_at`` has given up its file at ``now``;
    ``drop_expired_files`` drops exactly these (``finished_at <= now - hold``)."""
    return finished_at <= now - DRY_RUN_FILE_HOLD


def file_held_until(job: Any) -> datetime | None:
    """Until when a finished dry run's file is held for its confirmation."""
    finished: datetime | None = job["finished_at"]
    return None if finished is None or not job["dry_run"] else finished + DRY_RUN_FILE_HOLD


async def drop_expired_files(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> int:
    """Drop the files of the dry runs not confirmed in time (``file_expired``); how many.
    Cheap when there are none (a partial index of the files held, schema 0022)."""
    status: str = await conn.execute(
        "UPDATE import_jobs SET file = NULL WHERE dry_run AND file IS NOT NULL"
        " AND finished_at <= $1",
        now - DRY_RUN_FILE_HOLD,
    )
    return int(status.rsplit(" ", 1)[1])


# The import confirming dry run $1: a copy of it (the file copied in SQL) as job $2 of
# actor $3, queued at $4.
_CONFIRMING_IMPORT: Final = (
    "INSERT INTO import_jobs (id, authority_code, actor, format, file_name, file_bytes,"  # noqa: S608 - fixed text
    " file, default_grade, create_subjects, dry_run, state, created_at, confirms)"
    " SELECT $2, authority_code, $3, format, file_name, file_bytes, file, default_grade,"
    " create_subjects, false, 'queued', $4, id FROM import_jobs WHERE id = $1"
    f" RETURNING {_COLUMNS}"
)


async def confirm(services: Services, dry_run_id: uuid.UUID, *, authority_code: str,
                  actor: str) -> asyncpg.Record:
    """Queue the real import of a dry run's file, in the name of ``actor`` (the confirming
    token's) of ``authority_code``; the new job row (without its file).

    One transaction: the dry run's row is locked, checked (``confirm_refusal``), the
    import inserted with a copy of the file made in SQL (the bytes never come to this
    process) and the dry run's copy dropped. Durable on return. ``NotFound`` if there is
    no such job of this authority (another's is not found, as in the API); ``Conflict``
    with the reason if it cannot be confirmed, including when another confirmation of
    it committed first, here or on another server."""
    now = services.clock.now()
    try:
        async with services.pool.acquire() as conn, conn.transaction():
            # Lock first, then read in a statement of its own: in READ COMMITTED the read
            # then sees a confirmation that committed while this waited for the lock.
            await conn.execute("SELECT 1 FROM import_jobs WHERE id = $1 FOR UPDATE", dry_run_id)
            job = await conn.fetchrow(
                f"SELECT {_COLUMNS}, {_CONFIRMATION} FROM import_jobs j"  # noqa: S608
                " WHERE j.id = $1",
                dry_run_id,
            )
            if job is None or job["authority_code"] != authority_code:
                raise NotFound(f"no import job {dry_run_id} of this authority")
            refusal = confirm_refusal(job, Confirmation(job["file_held"], job["confirmed_by"]),
                                      now)
            if refusal is not None:
                raise Conflict(refusal)
            row = await conn.fetchrow(_CONFIRMING_IMPORT, dry_run_id, uuid.uuid4(), actor, now)
            await conn.execute("UPDATE import_jobs SET file = NULL WHERE id = $1", dry_run_id)
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name != "import_jobs_confirmed_once":
            raise
        raise Conflict(f"dry run {dry_run_id} is already confirmed (by another confirmation "
                       "made at the same time)") from error
    return required(row, "import job")


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
        """The oldest job waiting, or left by a stopped server, now running here (after
        the housekeeping: expired dry-run files dropped, jobs that stopped too often failed)."""
        now = self._services.clock.now()
        stale = now - timedelta(seconds=STALE_SECONDS)
        # Housekeeping first, in a statement of its own (the claim's locks stay few).
        await drop_expired_files(self._services.pool, now)
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
        # The file goes, but a dry run that ended well keeps it for its confirmation (until
        # ``confirm`` or ``drop_expired_files`` drops it); one that would import nothing
        # cannot be confirmed (``confirm_refusal``), so it keeps nothing. ``imported`` is
        # the final tally's, written just before.
        await self._services.pool.execute(
            "UPDATE import_jobs SET state = $2, error = $3, checkpoint = $4, finished_at = $5,"
            " heartbeat_at = $5,"
            " file = CASE WHEN dry_run AND $2 = 'done' AND imported > 0 THEN file END"
            " WHERE id = $1",
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
