-- Imports over HTTP (registry/imports/jobs.py, POST /v1/imports): a regulator uploads a
-- template file, the service imports it in the background exactly as `registry import`
-- does, and the job row says how far it got. The records an import writes are audited
-- like every other write; the job itself is bookkeeping, not a change of the registry's
-- data, so it has no leaf.
--
-- The file is kept in the row until the job ends, so a job whose server stopped (crash,
-- restart) is taken up again by the next server from its file: an import is idempotent,
-- so the rerun skips every record already committed. ``heartbeat_at`` is how a server
-- tells a job another live server is running from one whose server is gone.
CREATE TABLE import_jobs (
    id                  uuid PRIMARY KEY,
    authority_code      text NOT NULL REFERENCES authorities (code),
    -- The audit log's actor of every record the job writes: the uploading token's.
    actor               text NOT NULL,
    format              text NOT NULL CHECK (format IN ('csv', 'xlsx', 'jsonl')),
    file_name           text,
    file_bytes          bigint NOT NULL,
    file                bytea,
    default_grade       text,
    create_subjects     boolean NOT NULL,
    dry_run             boolean NOT NULL,
    state               text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    total_rows          integer,
    done_rows           integer NOT NULL DEFAULT 0,
    imported            integer NOT NULL DEFAULT 0,
    skipped             integer NOT NULL DEFAULT 0,
    refused             integer NOT NULL DEFAULT 0,
    subjects_registered integer NOT NULL DEFAULT 0,
    last_index          bigint,
    checkpoint          text,
    error               text,
    created_at          timestamptz NOT NULL,
    started_at          timestamptz,
    heartbeat_at        timestamptz,
    finished_at         timestamptz,
    CHECK ((state IN ('done', 'failed')) = (finished_at IS NOT NULL)),
    CHECK (state IN ('done', 'failed') OR file IS NOT NULL)
);
-- An authority's jobs, newest first (GET /v1/imports).
CREATE INDEX import_jobs_by_authority ON import_jobs (authority_code, created_at DESC, id DESC);
-- The work a server looks for: jobs not yet finished.
CREATE INDEX import_jobs_unfinished ON import_jobs (created_at) WHERE finished_at IS NULL;

-- The refused rows of a job (its report), masked as ``Problem.masked`` masks them: safe
-- to show to anyone who may see the job. A rerun after a crash starts them afresh.
CREATE TABLE import_job_problems (
    job_id      uuid NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    row_number  integer NOT NULL,
    column_name text NOT NULL,
    value       text,
    reason_zh   text NOT NULL,
    reason_en   text NOT NULL,
    PRIMARY KEY (job_id, seq)
);
