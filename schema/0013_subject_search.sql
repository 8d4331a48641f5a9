-- One search over subjects (registry/search.py): name, credit code and the decision
-- numbers of the subject's records, folded (NFKC, case, Traditional → Simplified) and
-- spelled in ASCII (letters and digits as they are, every other character as five
-- capitals), so pg_trgm makes trigrams of Chinese text under any LC_CTYPE (under C it
-- makes none of Chinese characters) and of one- and two-character Chinese queries.
--
-- The fold needs OpenCC, so this file cannot compute the column: `registry migrate`
-- fills it right after the SQL files, in batches, for every row where it is NULL
-- (registry/db/migrate.py, idempotent), and every write of a subject or of a record's
-- decision number keeps it current from then on. Until a row is filled, searches find it
-- by the literal (unfolded) match of before this migration, through the partial index.
--
-- Derived, not part of the record: left out of the subject's audited body
-- (registry/tlog/leaf.py DERIVED_COLUMNS), so rows written before this migration still
-- equal their audited versions, and refolding (set it NULL, migrate) changes no leaf.

-- pg_trgm ships with PostgreSQL's contrib modules, which some installations leave out;
-- say which package to install rather than fail inside CREATE EXTENSION.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        RAISE EXCEPTION 'couldn''t set up subject search: this PostgreSQL server has no pg_trgm extension'
            USING HINT = 'install PostgreSQL''s contrib modules on the database server (Debian/Ubuntu: '
                'postgresql-contrib, part of postgresql-<major> since PostgreSQL 10; RHEL and the '
                'PGDG RPMs: postgresql<major>-contrib; Alpine: postgresql-contrib), then run '
                '`registry migrate` again';
    END IF;
END
$$;

-- Trusted since PostgreSQL 13: the database owner may create it without superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE subjects ADD COLUMN search_text text;

-- fastupdate off: with it on, writes queue their trigrams in a pending list (up to 4 MB)
-- that every search reads through until VACUUM merges it; subjects are written far less
-- often than searched, so each write updates the index itself.
CREATE INDEX subjects_search ON subjects USING gin (search_text gin_trgm_ops)
    WITH (fastupdate = off);
-- The planner estimates how many subjects a LIKE pattern finds by trying it on the
-- column's histogram: 300 entries (not 100) tell a term of one subject in a hundred from
-- one of one in twenty, which decides between the index and reading the table; more would
-- cost a search more planning (about 1 ms at 1000) than it saves.
ALTER TABLE subjects ALTER COLUMN search_text SET STATISTICS 300;
-- Rows not yet folded: empty once the backfill has run, so this costs nothing after.
CREATE INDEX subjects_search_pending ON subjects (id) WHERE search_text IS NULL;

COMMENT ON COLUMN subjects.search_text IS
    'derived: folded, ASCII-spelled name, credit code and decision numbers (registry/search.py); '
    'not audited; NULL until `registry migrate` fills it';
