-- Profiles are built ahead of lookups (registry/bureau/profile_warmer.py): a background
-- task fills the lists of every subject whose cache row has none, or whose lists ran
-- out (valid_until reached), with the same generation-guarded upsert as a lookup's fill
-- (schema/0005_bureau_profile_cache.sql), so a bureau's first lookup of a subject is a
-- point read instead of scans and JSON building.
--
-- For the task to find that work with an index instead of comparing every subject
-- with the cache, every subject has a cache row: new subjects get one when inserted
-- (generation 1, no lists, the same trigger function the list tables use), and the
-- subjects that had none get one here. Generation 0 for those is what a missing row
-- already meant (registry/bureau/profile_sql.py reads coalesce(generation, 0)), so no
-- generation goes back.
CREATE TRIGGER subjects_profile_insert AFTER INSERT ON subjects
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bureau_profile_cache_stale('id');

INSERT INTO bureau_profile_cache (subject_id, generation)
    SELECT id, 0 FROM subjects ORDER BY id ON CONFLICT (subject_id) DO NOTHING;

-- The two kinds of work: lists never built (or cleared by a write), lists that ran out.
CREATE INDEX bureau_profile_cache_unbuilt ON bureau_profile_cache (subject_id)
    WHERE records IS NULL;
CREATE INDEX bureau_profile_cache_valid_until ON bureau_profile_cache (valid_until)
    WHERE valid_until IS NOT NULL;
