-- Each subject's bureau profile lists (affiliations, records, listings) as the JSON
-- the bureau API sends, so a profile read is one point lookup instead of scans of
-- scattered records and JSON building (registry/bureau/profiles.py).
--
-- Correctness rests on two rules, both enforced here or in one statement:
-- 1. Any change to a row a profile is made of bumps that subject's generation and
--    clears its lists, in the writer's own transaction (the triggers below), so no
--    write path, present or future, can leave a stale profile behind.
-- 2. A reader fills the lists only if the generation is still the one it read in
--    the same snapshot as the data (an upsert guarded by generation): a write that
--    committed in between makes the fill a no-op.
-- Lists computed for day ``as_of`` hold until ``valid_until`` (exclusive; NULL: no
-- publicity window starts or ends ahead), so items still leave at midnight.
CREATE TABLE bureau_profile_cache (
    subject_id   uuid PRIMARY KEY,
    generation   bigint NOT NULL,
    as_of        date,
    valid_until  date,
    -- UTF-8 JSON as bytes: served as they are, with no decoding on the way.
    affiliations bytea,
    records      bytea,
    listings     bytea,
    CHECK ((as_of IS NULL) = (records IS NULL)
           AND (records IS NULL) = (affiliations IS NULL)
           AND (records IS NULL) = (listings IS NULL))
);

-- Statement-level with transition tables: a COPY of a million records costs one
-- upsert per subject touched, not one per row. TG_ARGV[0] names the column holding
-- the subject whose profile shows the row.
CREATE FUNCTION bureau_profile_cache_stale() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT %I AS sid FROM new_rows', TG_ARGV[0])
        WHEN 'DELETE' THEN format('SELECT %I AS sid FROM old_rows', TG_ARGV[0])
        ELSE format('SELECT %1$I AS sid FROM old_rows UNION SELECT %1$I FROM new_rows',
                    TG_ARGV[0])
    END;
BEGIN
    -- In subject order, so two writers touching the same subjects lock them alike.
    EXECUTE 'INSERT INTO bureau_profile_cache AS c (subject_id, generation)'
        || ' SELECT DISTINCT sid, 1 FROM (' || changed || ') t WHERE sid IS NOT NULL'
        || ' ORDER BY sid'
        || ' ON CONFLICT (subject_id) DO UPDATE SET generation = c.generation + 1,'
        || ' as_of = NULL, valid_until = NULL, affiliations = NULL, records = NULL,'
        || ' listings = NULL';
    RETURN NULL;
END
$$;

CREATE FUNCTION bureau_profile_cache_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bureau_profile_cache SET generation = generation + 1, as_of = NULL,
        valid_until = NULL, affiliations = NULL, records = NULL, listings = NULL;
    RETURN NULL;
END
$$;

-- Per table, one trigger per event (a trigger with transition tables takes one event).
DO $$
DECLARE
    source record;
BEGIN
    FOR source IN SELECT * FROM (VALUES
        ('credit_records', 'subject_id'),
        ('blacklist_entries', 'subject_id'),
        ('affiliations', 'practitioner_id')) AS t (tbl, subject_column)
    LOOP
        EXECUTE format('CREATE TRIGGER %1$s_profile_insert AFTER INSERT ON %1$I'
            ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT'
            ' EXECUTE FUNCTION bureau_profile_cache_stale(%2$L)', source.tbl, source.subject_column);
        EXECUTE format('CREATE TRIGGER %1$s_profile_update AFTER UPDATE ON %1$I'
            ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT'
            ' EXECUTE FUNCTION bureau_profile_cache_stale(%2$L)', source.tbl, source.subject_column);
        EXECUTE format('CREATE TRIGGER %1$s_profile_delete AFTER DELETE ON %1$I'
            ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT'
            ' EXECUTE FUNCTION bureau_profile_cache_stale(%2$L)', source.tbl, source.subject_column);
        EXECUTE format('CREATE TRIGGER %1$s_profile_truncate AFTER TRUNCATE ON %1$I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION bureau_profile_cache_clear()', source.tbl);
    END LOOP;
END
$$;
