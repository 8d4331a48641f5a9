-- Decision numbers are searched with their records (registry/search.py): each record holds
-- its own number folded and spelled (``search_key``) in ``search_number``, with a trigram
-- index of its own, and ``subjects.search_text`` keeps only the name and credit code.
-- Until now a subject's search text held the numbers of all its records, so every record
-- written re-read them all and re-indexed the whole text: a write cost as much as the
-- subject had records (16 clients recording for one subject fell from 166 to 30 writes/s;
-- 8 of 19 s of an import). Now a record write spells one number in its own INSERT or
-- UPDATE and never touches its subject.
--
-- The fold needs OpenCC, so this file cannot compute the column: `registry migrate` fills
-- it right after the SQL files, in batches, for every record where it is NULL (registry/db/migrate.py ``backfill_record_search``, idempotent), and every
-- write of a record keeps it current from then on; a record without a decision number
-- holds '' (NULL means "not folded yet" only). Until a record is filled, searches find it
-- by its number as typed (the unfolded match of before 0013), through the partial index.
--
-- Derived, not part of the record: left out of the record's audited body
-- (registry/tlog/leaf.py DERIVED_COLUMNS), so records written before this migration still
-- equal their audited versions, and refolding (set it NULL, migrate) changes no leaf.
-- Filling it is an UPDATE of every numbered record, so the bureau profile cache's triggers
-- (0005) mark those records' subjects stale once: the profile warmer rebuilds them.

ALTER TABLE credit_records ADD COLUMN search_number text;

-- fastupdate off, as subjects_search (0013): searches never read through a pending list.
CREATE INDEX credit_records_search ON credit_records USING gin (search_number gin_trgm_ops)
    WITH (fastupdate = off);
-- As subjects.search_text (0013): the planner tells a rare number fragment from a common one.
ALTER TABLE credit_records ALTER COLUMN search_number SET STATISTICS 300;
-- Records not yet folded: empty once the backfill has run, so this costs nothing after.
CREATE INDEX credit_records_search_pending ON credit_records (id) WHERE search_number IS NULL;

-- The public page's walk through the newest public records (registry/publish/page.py
-- ``_walked``) keeps those whose own number the search finds: with the number in the
-- covering index of 0015, the walk stays an index-only scan.
DROP INDEX credit_records_public_by_log_index;
CREATE INDEX credit_records_public_by_log_index ON credit_records (log_index)
    INCLUDE (id, subject_id, publicity_start, publicity_end, search_number)
    WHERE status = 'published' AND published;

-- The regulators' search (registry/subjects.py ``list_subjects``) looks through subjects
-- in id order and asks which of them have a record whose number matches: one range of
-- this index for the window's records, from the index alone.
DROP INDEX credit_records_by_subject;
CREATE INDEX credit_records_by_subject ON credit_records (subject_id, decision_date DESC, id DESC)
    INCLUDE (search_number);

-- The subjects' search text loses its decision numbers here, in SQL: it is the spelled
-- parts joined by one space (name, credit code, then numbers), and a spelled part holds
-- only letters and digits, so the first two parts are exactly what the new fold
-- (``subject_search_text`` of name and credit code) makes. Rows not yet folded stay NULL
-- for the backfill of 0013. Only subjects with a numbered record change.
UPDATE subjects
SET search_text = split_part(search_text, ' ', 1) || ' ' || split_part(search_text, ' ', 2)
WHERE search_text LIKE '% % %';

COMMENT ON COLUMN credit_records.search_number IS
    'derived: folded, ASCII-spelled decision_number (registry/search.py), empty without one; '
    'not audited; NULL until `registry migrate` fills it';
COMMENT ON COLUMN subjects.search_text IS
    'derived: folded, ASCII-spelled name and credit code (registry/search.py); decision '
    'numbers are in credit_records.search_number; not audited; NULL until `registry migrate` fills it';
