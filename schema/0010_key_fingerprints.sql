-- Which key this database's data is under: a fingerprint per purpose, never the key.
-- 'pii' is the personal-data master key (registry/keys.py open_pii_cipher): recorded at its
-- first use, then every start compares the key it was given and refuses another one, so a
-- lost key file is never silently replaced by a fresh key (stored document numbers would no
-- longer decrypt, and the lookup hash of a duplicate would no longer match).
-- Written once (INSERT … ON CONFLICT DO NOTHING) and never updated by the service; a key
-- change is a deliberate re-encryption, not something a start does.
CREATE TABLE key_fingerprints (
    purpose     text PRIMARY KEY,
    -- 32 hex digits (registry/pii.py master_key_fingerprint): nothing else fits, so a key
    -- (base64) written here by mistake is refused.
    fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{32}$'),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
