-- The profile-cache trigger of schema/0005_bureau_profile_cache.sql, with static
-- statements instead of EXECUTE of text built on each call. Same rows, same effect,
-- same lock order; only the cost differs: an EXECUTE is parsed and planned on every
-- write, a static statement once per trigger and kept. It runs inside every audited
-- write of a subject, record, listing or affiliation, and a new subject's or record's
-- write holds the audit log's sequence lock while it runs (registry/db/audit.py
-- insert_with_leaf), so its cost is paid by every writer queued behind it
-- (tests/bench/bench_writes.py).
--
-- PL/pgSQL plans a statement when it first runs it, so a branch naming a transition
-- table the trigger does not have (old_rows of an INSERT trigger) is never planned.
CREATE OR REPLACE FUNCTION bureau_profile_cache_stale() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched uuid[];
BEGIN
    IF TG_ARGV[0] = 'subject_id' THEN
        IF TG_OP = 'INSERT' THEN
            touched := ARRAY(SELECT DISTINCT subject_id FROM new_rows);
        ELSIF TG_OP = 'DELETE' THEN
            touched := ARRAY(SELECT DISTINCT subject_id FROM old_rows);
        ELSE
            touched := ARRAY(SELECT subject_id FROM old_rows UNION SELECT subject_id FROM new_rows);
        END IF;
    ELSIF TG_ARGV[0] = 'practitioner_id' THEN
        IF TG_OP = 'INSERT' THEN
            touched := ARRAY(SELECT DISTINCT practitioner_id FROM new_rows);
        ELSIF TG_OP = 'DELETE' THEN
            touched := ARRAY(SELECT DISTINCT practitioner_id FROM old_rows);
        ELSE
            touched := ARRAY(SELECT practitioner_id FROM old_rows
                             UNION SELECT practitioner_id FROM new_rows);
        END IF;
    ELSIF TG_ARGV[0] = 'id' THEN
        IF TG_OP = 'INSERT' THEN
            touched := ARRAY(SELECT DISTINCT id FROM new_rows);
        ELSIF TG_OP = 'DELETE' THEN
            touched := ARRAY(SELECT DISTINCT id FROM old_rows);
        ELSE
            touched := ARRAY(SELECT id FROM old_rows UNION SELECT id FROM new_rows);
        END IF;
    ELSE
        RAISE EXCEPTION 'bureau_profile_cache_stale: no static form for subject column %',
            TG_ARGV[0]
            USING HINT = 'add its branch to bureau_profile_cache_stale() in a migration';
    END IF;
    -- In subject order, so two writers touching the same subjects lock them alike.
    INSERT INTO bureau_profile_cache AS c (subject_id, generation)
        SELECT sid, 1 FROM unnest(touched) AS t (sid) WHERE sid IS NOT NULL ORDER BY sid
        ON CONFLICT (subject_id) DO UPDATE SET generation = c.generation + 1,
        as_of = NULL, valid_until = NULL, affiliations = NULL, records = NULL,
        listings = NULL;
    RETURN NULL;
END
$$;
