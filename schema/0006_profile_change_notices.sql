-- Every committed transaction that changes a table bureau profiles are made of
-- announces itself on 'registry_profiles_changed' (registry/db/changes.py
-- PROFILES_CHANNEL), so servers that send profiles they hold without asking
-- PostgreSQL (registry/bureau/profile_memo.py) hear of changes made elsewhere: by
-- another server, the CLI, an operator's SQL.
--
-- Statement-level and with an empty payload: PostgreSQL folds identical notices of
-- one transaction into one, so a COPY of a million records sends a single notice,
-- and a listener drops everything it holds on any notice. A statement that changed
-- no row still announces; hearing too much costs a re-read, never correctness.
CREATE FUNCTION announce_profiles_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('registry_profiles_changed', '');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    source text;
BEGIN
    FOREACH source IN ARRAY ARRAY['subjects', 'credit_records', 'blacklist_entries',
                                  'affiliations']
    LOOP
        EXECUTE format('CREATE TRIGGER %1$s_profiles_changed'
            ' AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %1$I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION announce_profiles_changed()', source);
    END LOOP;
END
$$;

-- A kept profile is confirmed by its subject's version and list generation
-- (registry/bureau/profile_sql.py CURRENT), so a generation must never go back: a
-- deleted cache row would restart it at 0 and let an old profile match again. Lists are
-- cleared by setting them NULL, which keeps the generation.
CREATE FUNCTION bureau_profile_cache_keep_generations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bureau_profile_cache rows are never deleted (their generations must not go back)'
        USING HINT = 'clear lists with UPDATE bureau_profile_cache SET as_of = NULL,'
            ' valid_until = NULL, affiliations = NULL, records = NULL, listings = NULL';
END
$$;

CREATE TRIGGER bureau_profile_cache_no_delete BEFORE DELETE ON bureau_profile_cache
    FOR EACH ROW EXECUTE FUNCTION bureau_profile_cache_keep_generations();
CREATE TRIGGER bureau_profile_cache_no_truncate BEFORE TRUNCATE ON bureau_profile_cache
    FOR EACH STATEMENT EXECUTE FUNCTION bureau_profile_cache_keep_generations();
