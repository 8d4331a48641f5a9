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
