-- Credit-bureau accounting: who looked up which practitioner, when, and why.
-- Not audited in the Merkle log (it records reads, not registry state, and would
-- flood the log); rows are only ever inserted, batched by registry/bureau/access.py.
CREATE TABLE bureau_access (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    token_id   uuid NOT NULL,
    token_name text NOT NULL,
    subject_id uuid NOT NULL,
    purpose    text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('profile', 'lookup', 'bulk'))
);
-- Regulators list one bureau's queries, or who looked up one practitioner (keyset on id).
CREATE INDEX bureau_access_by_token ON bureau_access (token_id, id);
CREATE INDEX bureau_access_by_subject ON bureau_access (subject_id, id);
