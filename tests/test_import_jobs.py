"""Imports over HTTP (``POST /v1/imports``, registry/imports/jobs.py), through the real app
and its background worker against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.clock import ManualClock
from registry.errors import Conflict, NotFound
from registry.imports import jobs
from registry.imports.jobs import DRY_RUN_FILE_HOURS, MAX_ATTEMPTS, STALE_SECONDS
from tests.conftest import OTHER_AUTHORITY, TEST_AUTHORITY, ensure_authority
from tests.credit_helpers import subject
from tests.logcheck import assert_log_consistent
from tests.test_import import PERSON, person_row, stored, template_row, write_csv

Client = AsyncTestClient[Litestar]
CSV = {"Content-Type": "text/csv"}


def csv_bytes(tmp_path: Path, rows: list[dict[str, Any]]) -> bytes:
    return write_csv(tmp_path / f"{uuid.uuid4()}.csv", rows).read_bytes()


async def finished(client: Client, headers: dict[str, str], location: str) -> dict[str, Any]:
    """The job at ``location`` once it has ended (the worker runs beside the test)."""
    for _ in range(300):
        answer = await client.get(location, headers=headers)
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["state"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"the job did not end: {job}")


async def upload(client: Client, headers: dict[str, str], body: bytes,
                 query: str = "") -> tuple[str, dict[str, Any]]:
    answer = await client.post(f"/v1/imports{query}", content=body,
                               headers={**headers, **CSV})
    assert answer.status_code == 202, answer.text
    return answer.headers["location"], answer.json()


async def test_an_uploaded_file_is_imported_in_the_background_with_its_leaves(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, tmp_path: Path,
) -> None:
    await subject(client, regulator)
    body = csv_bytes(tmp_path, [template_row(f"J-{i}") for i in range(1, 6)])
    location, queued = await upload(client, regulator, body, "?file_name=penalties.csv")
    assert queued["state"] in ("queued", "running")
    assert (queued["file_name"], queued["file_bytes"], queued["format"]) == (
        "penalties.csv", len(body), "csv")
    job = await finished(client, regulator, location)
    assert job["state"] == "done", job
    assert (job["total_rows"], job["done_rows"], job["imported"], job["skipped"],
            job["refused"]) == (5, 5, 5, 0, 0)
    assert job["report"] is None and job["error"] is None and job["attempts"] == 1
    rows = await stored(db)
    assert [r["decision_number"] for r in rows] == [f"J-{i}" for i in range(1, 6)]
    # In the name of the uploading token, each with its leaf, signed once the job is done.
    token_id = await db.fetchval("SELECT id FROM api_tokens WHERE role = 'regulator'")
    assert {r["created_by"] for r in rows} == {f"regulator:{token_id}@{TEST_AUTHORITY[0]}"}
    assert job["last_index"] == max(r["log_index"] for r in rows)
    assert f"\n{job['last_index'] + 1}\n" in job["checkpoint"] or int(
        job["checkpoint"].splitlines()[1]) > job["last_index"]
    # The file is not kept once the job has ended.
    assert await db.fetchval("SELECT file FROM import_jobs WHERE id = $1",
                             uuid.UUID(job["id"])) is None
    # Uploading it again imports nothing twice.
    again = await finished(client, regulator, (await upload(client, regulator, body))[0])
    assert (again["imported"], again["skipped"]) == (0, 5)
    await assert_log_consistent(db, integrated=True)


async def test_refused_rows_are_in_the_report_masked(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, tmp_path: Path,
) -> None:
    await subject(client, regulator)
    rows = [template_row("R-1"), template_row("R-2", cf_jdrq="2026-13-01"),
            person_row("R-3", PERSON)]  # the practitioner is not registered
    location, _ = await upload(client, regulator, csv_bytes(tmp_path, rows))
    job = await finished(client, regulator, location)
    assert (job["state"], job["imported"], job["refused"]) == ("done", 1, 2)
    assert job["report"] == f"/v1/imports/{job['id']}/report"
    report = await client.get(job["report"], headers=regulator)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    assert report.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.DictReader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert [line["行号"] for line in lines] == ["3", "4"]
    assert "2026-13-01" in lines[0]["值"]
    assert PERSON not in report.text and PERSON[:6] in report.text  # masked as published
    assert [r["decision_number"] for r in await stored(db)] == ["R-1"]


async def test_only_the_authoritys_regulators_see_its_jobs(
    client: Client, regulator: dict[str, str], other_regulator: dict[str, str],
    bureau: dict[str, str], tmp_path: Path,
) -> None:
    await subject(client, regulator)
    location, job = await upload(client, regulator, csv_bytes(tmp_path, [template_row("A-1")]))
    await finished(client, regulator, location)
    assert (await client.get(location, headers=other_regulator)).status_code == 404
    assert (await client.get(f"{location}/report", headers=other_regulator)).status_code == 404
    mine = (await client.get("/v1/imports", headers=regulator)).json()
    theirs = (await client.get("/v1/imports", headers=other_regulator)).json()
    assert [j["id"] for j in mine["items"]] == [job["id"]] and theirs["items"] == []
    refused = await client.post("/v1/imports", content=b"x", headers={**bureau, **CSV})
    assert refused.status_code == 403


async def test_jobs_are_listed_newest_first_page_by_page(
    client: Client, regulator: dict[str, str], clock: ManualClock, tmp_path: Path,
) -> None:
    await subject(client, regulator)
    ids = []
    for i in range(3):
        location, job = await upload(client, regulator,
                                     csv_bytes(tmp_path, [template_row(f"L-{i}")]))
        await finished(client, regulator, location)
        ids.append(job["id"])
        clock.advance(seconds=1)
    first = (await client.get("/v1/imports?limit=2", headers=regulator)).json()
    assert [j["id"] for j in first["items"]] == ids[::-1][:2]
    rest = (await client.get(f"/v1/imports?limit=2&cursor={first['next_cursor']}",
                             headers=regulator)).json()
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    bad = await client.get("/v1/imports?cursor=nonsense", headers=regulator)
    assert bad.status_code == 422 and bad.json()["field"] == "cursor"


async def test_what_is_not_a_template_file_is_refused_before_a_job_exists(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, tmp_path: Path,
) -> None:
    as_json = await client.post("/v1/imports", content=b"{}",
                                headers={**regulator, "Content-Type": "application/json"})
    assert as_json.status_code == 415
    assert as_json.json()["field"] == "Content-Type"
    assert "text/csv" in as_json.headers["accept-post"]
    empty = await client.post("/v1/imports", content=b"", headers={**regulator, **CSV})
    assert empty.status_code == 422 and empty.json()["field"] == "file"
    wrong = csv_bytes(tmp_path, [template_row("H-1")]).replace("行政相对人名称".encode(), b"name")
    header = await client.post("/v1/imports", content=wrong, headers={**regulator, **CSV})
    assert header.status_code == 422 and header.json()["field"] == "file"
    assert "行政相对人名称" in header.json()["detail"]
    grade = await client.post("/v1/imports?grade=huge", content=wrong,
                              headers={**regulator, **CSV})
    assert grade.status_code == 422 and grade.json()["field"] == "grade"
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 0


async def test_a_dry_run_writes_nothing(
    client: Client, regulator: dict[str, str], db: asyncpg.Pool, tmp_path: Path,
) -> None:
    await subject(client, regulator)
    before = await db.fetchval("SELECT count(*) FROM tlog_leaves")
    body = csv_bytes(tmp_path, [template_row("D-1"), template_row("D-2")])
    job = await finished(client, regulator, (await upload(client, regulator, body,
                                                          "?dry_run=true"))[0])
    assert (job["state"], job["dry_run"], job["imported"], job["last_index"]) == (
        "done", True, 2, None)
    assert await stored(db) == []
    assert await db.fetchval("SELECT count(*) FROM tlog_leaves") == before
    # Its file is kept for its confirmation (a failed or real job's is not).
    assert await db.fetchval("SELECT file FROM import_jobs WHERE id = $1",
                             uuid.UUID(job["id"])) == body


async def test_two_confirmations_at_once_queue_one_import(
    client: Client, app: Litestar, regulator: dict[str, str], db: asyncpg.Pool,
    clock: ManualClock, tmp_path: Path,
) -> None:
    """Two confirmations of one dry run racing (two servers, or a double click): one
    import is queued, with the dry run's bytes copied in the database; the other is
    refused, and so is every later one, another authority's, and a real import's."""
    await subject(client, regulator)
    body = csv_bytes(tmp_path, [template_row("R-1")])
    dry = await finished(client, regulator, (await upload(client, regulator, body,
                                                          "?dry_run=true"))[0])
    dry_id = uuid.UUID(dry["id"])
    services = replace(app.state.services, pool=db)
    actor = f"regulator:00000000-0000-0000-0000-00000000000c@{TEST_AUTHORITY[0]}"

    async def attempt() -> Any:
        return await jobs.confirm(services, dry_id, authority_code=TEST_AUTHORITY[0],
                                  actor=actor)

    outcomes = await asyncio.gather(attempt(), attempt(), return_exceptions=True)
    (queued,) = [o for o in outcomes if not isinstance(o, BaseException)]
    (refused,) = [o for o in outcomes if isinstance(o, BaseException)]
    assert isinstance(refused, Conflict)
    assert f"dry run {dry_id} is already confirmed" in refused.detail
    assert (queued["confirms"], queued["dry_run"], queued["actor"], queued["state"]) == (
        dry_id, False, actor, "queued")
    assert "file" not in queued.keys()  # noqa: SIM118 - a Record, not a dict
    files = {r["id"]: r["file"] for r in await db.fetch("SELECT id, file FROM import_jobs")}
    assert files == {dry_id: None, queued["id"]: body}
    assert await jobs.confirmation_of(services, dry_id) == jobs.Confirmation(
        file_held=False, confirmed_by=queued["id"])

    with pytest.raises(Conflict, match="is already confirmed by import job"):
        await attempt()
    with pytest.raises(NotFound):
        await jobs.confirm(services, dry_id, authority_code=OTHER_AUTHORITY[0], actor=actor)
    with pytest.raises(Conflict, match="is not a dry run"):
        await jobs.confirm(services, queued["id"], authority_code=TEST_AUTHORITY[0],
                           actor=actor)
    app.state.import_jobs.wake()
    done = await finished(client, regulator, f"/v1/imports/{queued['id']}")
    assert (done["state"], done["imported"]) == ("done", 1)
    assert await db.fetchval("SELECT count(*) FROM import_jobs") == 2
    await assert_log_consistent(db, integrated=True)


async def test_a_dry_runs_file_goes_when_its_hold_runs_out(
    client: Client, app: Litestar, regulator: dict[str, str], db: asyncpg.Pool,
    clock: ManualClock, tmp_path: Path,
) -> None:
    """``DRY_RUN_FILE_HOURS`` after the dry run it cannot be confirmed, and the
    housekeeping drops exactly the files ``confirm`` counts as gone."""
    await subject(client, regulator)
    body = csv_bytes(tmp_path, [template_row("E-1")])
    dry_id = uuid.UUID((await finished(client, regulator, (await upload(
        client, regulator, body, "?dry_run=true"))[0]))["id"])
    services = replace(app.state.services, pool=db)
    clock.advance(hours=DRY_RUN_FILE_HOURS, seconds=-1)
    assert await jobs.drop_expired_files(db, clock.now()) == 0
    clock.advance(seconds=1)
    with pytest.raises(Conflict, match=f"no longer held \\(it is kept {DRY_RUN_FILE_HOURS} hours"):
        await jobs.confirm(services, dry_id, authority_code=TEST_AUTHORITY[0], actor="a")
    assert await db.fetchval("SELECT file FROM import_jobs WHERE id = $1", dry_id) == body
    assert await jobs.drop_expired_files(db, clock.now()) == 1
    assert await db.fetchval("SELECT file FROM import_jobs WHERE id = $1", dry_id) is None
    with pytest.raises(Conflict, match="no longer held"):
        await jobs.confirm(services, dry_id, authority_code=TEST_AUTHORITY[0], actor="a")


async def test_the_schema_confirms_only_dry_runs_and_each_once(
    db: asyncpg.Pool, clock: ManualClock,
) -> None:
    """Schema 0022's backstops, whatever writes the rows."""
    now = clock.now()

    async def job(*, dry_run: bool, confirms: uuid.UUID | None = None, state: str = "done",
                  file: bytes | None = None) -> uuid.UUID:
        job_id = uuid.uuid4()
        await db.execute(
            "INSERT INTO import_jobs (id, authority_code, actor, format, file_bytes, file,"
            " create_subjects, dry_run, state, created_at, finished_at, confirms)"
            " VALUES ($1, $2, 'regulator:x', 'csv', 1, $3, false, $4, $5, $6,"
            " CASE WHEN $5 IN ('done', 'failed') THEN $6::timestamptz END, $7)",
            job_id, TEST_AUTHORITY[0], file, dry_run, state, now, confirms,
        )  # fmt: skip
        return job_id

    await ensure_authority(db, *TEST_AUTHORITY)
    dry = await job(dry_run=True, file=b"x")
    await job(dry_run=False, confirms=dry, state="queued", file=b"x")
    with pytest.raises(asyncpg.UniqueViolationError, match="import_jobs_confirmed_once"):
        await job(dry_run=False, confirms=dry, state="queued", file=b"x")
    with pytest.raises(asyncpg.CheckViolationError, match="import_jobs_only_an_import_confirms"):
        await job(dry_run=True, confirms=await job(dry_run=True))
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="import_jobs_confirms_a_dry_run"):
        await job(dry_run=False, confirms=await job(dry_run=False))
    with pytest.raises(asyncpg.CheckViolationError, match="file_kept_only_to_run_or_confirm"):
        await job(dry_run=True, state="failed", file=b"x")
    with pytest.raises(asyncpg.CheckViolationError, match="file_kept_only_to_run_or_confirm"):
        await job(dry_run=False, state="done", file=b"x")


async def _left_running(db: asyncpg.Pool, clock: ManualClock, body: bytes, attempts: int) -> uuid.UUID:
    """A job as a server that stopped mid-way leaves it: running, its heartbeat stale."""
    job_id = uuid.uuid4()
    stale = clock.now() - timedelta(seconds=STALE_SECONDS + 1)
    await db.execute(
        "INSERT INTO import_jobs (id, authority_code, actor, format, file_bytes, file,"
        " create_subjects, dry_run, state, attempts, created_at, started_at, heartbeat_at)"
        " VALUES ($1, $2, 'regulator:00000000-0000-0000-0000-000000000001@' || $2, 'csv', $3,"
        " $4, false, false, 'running', $5, $6, $6, $6)",
        job_id, TEST_AUTHORITY[0], len(body), body, attempts, stale,
    )
    return job_id


async def test_a_job_whose_server_stopped_is_taken_up_again(
    client: Client, app: Litestar, regulator: dict[str, str], db: asyncpg.Pool,
    clock: ManualClock, tmp_path: Path,
) -> None:
    """Half of the file was committed before its server stopped: the rerun writes the
    rest, skips what is there, and the log has every record once."""
    await subject(client, regulator)
    rows = [template_row(f"S-{i}") for i in range(1, 5)]
    half = csv_bytes(tmp_path, rows[:2])
    done = await finished(client, regulator, (await upload(client, regulator, half))[0])
    assert done["imported"] == 2
    job_id = await _left_running(db, clock, csv_bytes(tmp_path, rows), attempts=1)
    app.state.import_jobs.wake()
    job = await finished(client, regulator, f"/v1/imports/{job_id}")
    assert (job["state"], job["attempts"], job["imported"], job["skipped"]) == ("done", 2, 2, 2)
    assert [r["decision_number"] for r in await stored(db)] == [f"S-{i}" for i in range(1, 5)]
    await assert_log_consistent(db, integrated=True)


async def test_a_job_that_stopped_its_server_too_often_fails(
    client: Client, app: Litestar, regulator: dict[str, str], db: asyncpg.Pool,
    clock: ManualClock, tmp_path: Path,
) -> None:
    job_id = await _left_running(db, clock, csv_bytes(tmp_path, [template_row("F-1")]),
                                 attempts=MAX_ATTEMPTS)
    app.state.import_jobs.wake()
    job = await finished(client, regulator, f"/v1/imports/{job_id}")
    assert job["state"] == "failed" and "upload the file again" in job["error"]
    assert await stored(db) == []
