-- Access accounting for every read of a practitioner's identity, not only bureau
-- answers that found someone (registry/bureau/access.py):
-- * lookups that found nobody: no subject, but the document type and its keyed lookup
--   hash (the HMAC subjects are indexed by, never the number), so when that person is
--   registered, or is a minor answered as unknown, their listing shows who looked;
-- * regulators' reads of a clear document number (role 'regulator');
-- * change-feed pages: one row per practitioner a page discloses (channel 'feed').
-- Still one table, still insert-only. Rows written before this migration are bureau
-- lookups that reached a practitioner: the defaults say so. (A minor answered as unknown
-- was recorded the same way then and cannot be told apart now: found says true.)
ALTER TABLE bureau_access
    ALTER COLUMN subject_id DROP NOT NULL,
    ADD COLUMN role text NOT NULL DEFAULT 'bureau' CHECK (role IN ('bureau', 'regulator')),
    -- A regulator token's authority (schema/0008_authorities.sql) when it read.
    ADD COLUMN authority_code text,
    -- Whether the answer disclosed the person. A minor reached by a lookup is answered
    -- as unknown: subject set, found false.
    ADD COLUMN found boolean NOT NULL DEFAULT true,
    -- Set on lookups by document that disclosed nobody, and only there.
    ADD COLUMN document_type text,
    ADD COLUMN document_lookup bytea,
    DROP CONSTRAINT bureau_access_channel_check,
    ADD CONSTRAINT bureau_access_channel_check CHECK (
        channel IN ('profile', 'lookup', 'bulk', 'feed', 'regulator_read', 'regulator_lookup')
        AND (role = 'regulator') = (channel LIKE 'regulator\_%')
    ),
    -- Every row names whom it is about: the subject, or the document asked for.
    ADD CONSTRAINT bureau_access_names_someone CHECK (
        (document_type IS NULL) = (document_lookup IS NULL)
        AND (document_lookup IS NULL) = found
        AND (subject_id IS NOT NULL OR document_lookup IS NOT NULL)
    );
-- A person's listing: rows naming them, plus lookups for their document (keyset on id).
CREATE INDEX bureau_access_by_document ON bureau_access (document_type, document_lookup, id)
    WHERE document_lookup IS NOT NULL;
