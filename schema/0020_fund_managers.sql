-- Fund managers: a venture-capital enterprise (vc_firm, 创业投资企业) names the
-- management enterprise (vc_manager, 创业投资管理企业) that manages it, for a span of
-- days (registry/fund_managers.py). Audited like affiliations: one row per relation,
-- updated in place with version, who and when; every version kept in tlog_objects
-- with its leaf (object type ``fund_manager``, registry/db/audit.py TABLE_OF).
--
-- The rules, enforced here whatever writes the row (the service checks them first, to
-- answer with the field at fault; these are the backstop for races and hand-written SQL):
-- * the firm is a vc_firm and the manager a vc_manager (a trigger: a CHECK cannot read
--   another table, and a subject's kind never changes);
-- * valid_to, when set, is on or after valid_from: both days count (inclusive), as for
--   affiliations, so a relation ended on the day it began held for that day;
-- * a firm has one manager at a time: no two of its relations share a day (an exclusion
--   constraint, so two writers racing for overlapping spans cannot both commit).

-- The exclusion compares a uuid for equality inside a GiST index, which btree_gist
-- provides. It ships with PostgreSQL's contrib modules, like pg_trgm (0013): say which
-- package to install rather than fail inside CREATE EXTENSION.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist') THEN
        RAISE EXCEPTION 'couldn''t set up fund managers: this PostgreSQL server has no btree_gist extension'
            USING HINT = 'install PostgreSQL''s contrib modules on the database server (Debian/Ubuntu: '
                'postgresql-contrib, part of postgresql-<major> since PostgreSQL 10; RHEL and the '
                'PGDG RPMs: postgresql<major>-contrib; Alpine: postgresql-contrib), then run '
                '`registry migrate` again';
    END IF;
END
$$;

-- Trusted since PostgreSQL 13: the database owner may create it without superuser.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE fund_managers (
    id          uuid PRIMARY KEY,
    firm_id     uuid NOT NULL REFERENCES subjects (id),
    manager_id  uuid NOT NULL REFERENCES subjects (id),
    valid_from  date NOT NULL,
    valid_to    date,
    version     integer NOT NULL CHECK (version >= 1),
    created_at  timestamptz NOT NULL,
    created_by  text NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text NOT NULL,
    log_index   bigint NOT NULL,
    CONSTRAINT fund_managers_dates CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CONSTRAINT fund_managers_one_at_a_time
        EXCLUDE USING gist (firm_id WITH =, daterange(valid_from, valid_to, '[]') WITH &&)
);
-- A firm's relations are found through the exclusion's index; a manager's through this.
CREATE INDEX fund_managers_manager ON fund_managers (manager_id, valid_from);

CREATE FUNCTION fund_managers_kinds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT kind FROM subjects WHERE id = NEW.firm_id) IS DISTINCT FROM 'vc_firm' THEN
        RAISE EXCEPTION 'fund_managers.firm_id must name a vc_firm subject'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'fund_managers_firm_kind',
                  TABLE = 'fund_managers', COLUMN = 'firm_id';
    END IF;
    IF (SELECT kind FROM subjects WHERE id = NEW.manager_id) IS DISTINCT FROM 'vc_manager' THEN
        RAISE EXCEPTION 'fund_managers.manager_id must name a vc_manager subject'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'fund_managers_manager_kind',
                  TABLE = 'fund_managers', COLUMN = 'manager_id';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER fund_managers_kinds BEFORE INSERT OR UPDATE OF firm_id, manager_id
    ON fund_managers FOR EACH ROW EXECUTE FUNCTION fund_managers_kinds();

-- Bureau profiles -------------------------------------------------------------------
--
-- A firm's profile shows its managers, a manager's the firms it manages and the
-- practitioners affiliated to it, each with the bureau view of the subject on the other
-- side (registry/bureau/profile_sql.py). Rule 1 of 0005 holds for them too: a change to
-- any row such a profile is made of bumps that profile's generation (and clears its
-- cached lists) in the writer's own transaction, so a profile kept by a process
-- (registry/bureau/profile_memo.py, confirmed by generation) is never sent stale. Those
-- rows are:
-- * a relation: the firm's and the manager's profiles;
-- * an affiliation: its organisation's profile too (0005 bumps the practitioner's);
-- * a subject: the profiles of the subjects on the other side of its relations and
--   affiliations, which show its name, code, masked number and whether it is a minor.
CREATE FUNCTION bureau_profile_cache_counterparts_stale() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched uuid[];
BEGIN
    -- Static statements, as in 0018; a branch naming a transition table the trigger
    -- lacks is never planned.
    IF TG_TABLE_NAME = 'fund_managers' THEN
        IF TG_OP = 'INSERT' THEN
            touched := ARRAY(SELECT firm_id FROM new_rows UNION SELECT manager_id FROM new_rows);
        ELSIF TG_OP = 'DELETE' THEN
            touched := ARRAY(SELECT firm_id FROM old_rows UNION SELECT manager_id FROM old_rows);
        ELSE
            touched := ARRAY(SELECT firm_id FROM old_rows UNION SELECT manager_id FROM old_rows
                             UNION SELECT firm_id FROM new_rows
                             UNION SELECT manager_id FROM new_rows);
        END IF;
    ELSIF TG_TABLE_NAME = 'affiliations' THEN
        IF TG_OP = 'INSERT' THEN
            touched := ARRAY(SELECT DISTINCT organisation_id FROM new_rows);
        ELSIF TG_OP = 'DELETE' THEN
            touched := ARRAY(SELECT DISTINCT organisation_id FROM old_rows);
        ELSE
            touched := ARRAY(SELECT organisation_id FROM old_rows
                             UNION SELECT organisation_id FROM new_rows);
        END IF;
    ELSIF TG_TABLE_NAME = 'subjects' AND TG_LEVEL = 'ROW' THEN
        touched := ARRAY(SELECT firm_id FROM fund_managers WHERE manager_id = NEW.id
                         UNION SELECT manager_id FROM fund_managers WHERE firm_id = NEW.id
                         UNION SELECT organisation_id FROM affiliations
                               WHERE practitioner_id = NEW.id);
    ELSE
        RAISE EXCEPTION 'bureau_profile_cache_counterparts_stale: no form for %.% (%)',
            TG_TABLE_NAME, TG_OP, TG_LEVEL
            USING HINT = 'add its branch to bureau_profile_cache_counterparts_stale() in a migration';
    END IF;
    -- 0018's upsert: in subject order, so two writers touching the same subjects lock
    -- them alike.
    INSERT INTO bureau_profile_cache AS c (subject_id, generation)
        SELECT sid, 1 FROM unnest(touched) AS t (sid) WHERE sid IS NOT NULL ORDER BY sid
        ON CONFLICT (subject_id) DO UPDATE SET generation = c.generation + 1,
        as_of = NULL, valid_until = NULL, affiliations = NULL, records = NULL,
        listings = NULL;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    source text;
BEGIN
    FOREACH source IN ARRAY ARRAY['fund_managers', 'affiliations']
    LOOP
        EXECUTE format('CREATE TRIGGER %1$s_counterparts_insert AFTER INSERT ON %1$I'
            ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT'
            ' EXECUTE FUNCTION bureau_profile_cache_counterparts_stale()', source);
        EXECUTE format('CREATE TRIGGER %1$s_counterparts_update AFTER UPDATE ON %1$I'
            ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT'
            ' EXECUTE FUNCTION bureau_profile_cache_counterparts_stale()', source);
        EXECUTE format('CREATE TRIGGER %1$s_counterparts_delete AFTER DELETE ON %1$I'
            ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT'
            ' EXECUTE FUNCTION bureau_profile_cache_counterparts_stale()', source);
    END LOOP;
END
$$;
-- affiliations_profile_truncate (0005) already clears every profile's lists.
CREATE TRIGGER fund_managers_profile_truncate AFTER TRUNCATE ON fund_managers
    FOR EACH STATEMENT EXECUTE FUNCTION bureau_profile_cache_clear();

-- Per row, for the columns another subject's profile shows of it (BureauSubject, and
-- the ciphers the minors rule reads): a column list keeps the trigger off the search
-- fold of `registry migrate` and off the stamping of log_index, which runs under the
-- audit log's sequence lock (registry/db/audit.py record) and always follows a change
-- of version in the same transaction, which fired this already. PostgreSQL allows no
-- column list on a trigger with transition tables, hence a row trigger: subjects are
-- written one at a time.
CREATE TRIGGER subjects_counterparts_update
    AFTER UPDATE OF kind, name, status, credit_code, registered_region, filing_number,
        filing_date, legal_representative, document_type, document_cipher, birth_date_cipher,
        version
    ON subjects FOR EACH ROW EXECUTE FUNCTION bureau_profile_cache_counterparts_stale();

-- Change notices (0006): servers that keep profiles hear of relations written elsewhere.
CREATE TRIGGER fund_managers_profiles_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fund_managers
    FOR EACH STATEMENT EXECUTE FUNCTION announce_profiles_changed();
