-- Confirming a dry run (registry/imports/jobs.py confirm): the console checks every upload
-- as a dry run first, and the official then confirms it, which queues the real import of
-- the same bytes as a new job. Until now a job's file was dropped when the job ended, so
-- the console kept the dry run's bytes in its own process: a restart, or a confirmation
-- served by another server, lost them. The database keeps them now, and records which
-- import confirmed which dry run, so any server may confirm and none can do it twice.
--
-- The hold: a dry run that ends ``done`` with rows to import keeps its file until it is
-- confirmed (the file moves to the import's row in the same transaction) or until
-- DRY_RUN_FILE_HOURS after it finished, when the worker's housekeeping drops it. Every
-- other ending drops the file at once, as before.

-- The dry run an import confirms (NULL for an import uploaded directly, and for every dry
-- run). UNIQUE: a dry run is confirmed at most once, even by two servers racing (the
-- second insert fails, whatever either of them read).
ALTER TABLE import_jobs ADD COLUMN confirms uuid;
ALTER TABLE import_jobs ADD CONSTRAINT import_jobs_confirmed_once UNIQUE (confirms);
-- Only a real import confirms.
ALTER TABLE import_jobs ADD CONSTRAINT import_jobs_only_an_import_confirms
    CHECK (confirms IS NULL OR NOT dry_run);
-- And what it confirms is a dry run. A CHECK cannot read the other row, so the reference
-- carries it: the foreign key points at (id, dry_run) and this column, true whenever
-- ``confirms`` is set, is the ``dry_run`` it must find there. NULL otherwise, so a row
-- that confirms nothing is not checked (MATCH SIMPLE). It costs one small index (the
-- UNIQUE below, which a foreign key needs); dry_run never changes after the insert.
ALTER TABLE import_jobs ADD COLUMN confirms_dry_run boolean
    GENERATED ALWAYS AS (CASE WHEN confirms IS NOT NULL THEN true END) STORED;
ALTER TABLE import_jobs ADD CONSTRAINT import_jobs_id_dry_run UNIQUE (id, dry_run);
ALTER TABLE import_jobs ADD CONSTRAINT import_jobs_confirms_a_dry_run
    FOREIGN KEY (confirms, confirms_dry_run) REFERENCES import_jobs (id, dry_run);

-- Which jobs hold a file: a job not yet ended (0016), and a dry run that ended well. The
-- service keeps it so; this is the backstop for hand-written SQL.
ALTER TABLE import_jobs ADD CONSTRAINT import_jobs_file_kept_only_to_run_or_confirm
    CHECK (file IS NULL OR finished_at IS NULL OR (dry_run AND state = 'done'));

-- The housekeeping's look for expired holds, run each time a worker looks for work: only
-- the few dry runs holding a file are in this index.
CREATE INDEX import_jobs_held_files ON import_jobs (finished_at)
    WHERE dry_run AND file IS NOT NULL;
