-- Foundation: API tokens, subjects, affiliations, and the audit log's storage.
-- Nothing here is ever deleted: current rows are updated in place, and every
-- version of every audited object is kept in tlog_objects, committed in the same
-- transaction as its log leaf.

-- The audit log -------------------------------------------------------------

-- One row, locked by every appender until it commits: this is what makes leaf
-- indexes gap-free and fork-free across processes (a rolled-back append rolls
-- the counter back too).
CREATE TABLE tlog_sequence (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_index bigint  NOT NULL CHECK (next_index >= 0)
);
INSERT INTO tlog_sequence (next_index) VALUES (0);

-- The exact leaf bytes (canonical JSON) of every entry.
CREATE TABLE tlog_leaves (
    idx        bigint PRIMARY KEY CHECK (idx >= 0),
    leaf       bytea  NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The full stored object each leaf commits to: commitment = SHA-256(salt || body).
-- Regulator-only: the body may hold encrypted personal data.
CREATE TABLE tlog_objects (
    log_index   bigint PRIMARY KEY REFERENCES tlog_leaves (idx),
    object_type text   NOT NULL,
    object_id   text   NOT NULL,
    body        bytea  NOT NULL,
    salt        bytea  NOT NULL CHECK (length(salt) = 16)
);
CREATE INDEX tlog_objects_by_object ON tlog_objects (object_type, object_id, log_index);

-- Every complete subtree of the Merkle tree: level 0 = leaf hashes. Proofs read
-- O(log n) of these, never rebuild.
CREATE TABLE tlog_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- The integrated tree head: updated only by compare-and-set on size.
CREATE TABLE tlog_head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    size       bigint  NOT NULL CHECK (size >= 0),
    root       bytea   NOT NULL CHECK (length(root) = 32),
    checkpoint text    NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every checkpoint ever signed, so consistency can be shown from any of them.
CREATE TABLE tlog_checkpoints (
    size       bigint PRIMARY KEY,
    root       bytea  NOT NULL,
    checkpoint text   NOT NULL,
    signed_at  timestamptz NOT NULL DEFAULT now()
);

-- Published verifier keys with their validity windows; the private keys live
-- outside the database (see keys/README.md).
CREATE TABLE tlog_keys (
    verifier_key text PRIMARY KEY,
    key_name     text NOT NULL,
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    valid_from   timestamptz NOT NULL DEFAULT now(),
    valid_until  timestamptz,
    retired_by   text
);
CREATE UNIQUE INDEX tlog_keys_one_current ON tlog_keys ((true)) WHERE valid_until IS NULL;

-- API tokens ----------------------------------------------------------------

CREATE TABLE api_tokens (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role        text NOT NULL CHECK (role IN ('regulator', 'bureau', 'admin')),
    -- SHA-256 of the token: tokens carry 256 random bits, so a fast hash is enough.
    token_hash  bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text,
    log_index   bigint NOT NULL
);

-- Subjects ------------------------------------------------------------------

CREATE TABLE subjects (
    id                   uuid PRIMARY KEY,
    kind                 text NOT NULL CHECK (kind IN ('vc_firm', 'vc_manager', 'practitioner')),
    name                 text NOT NULL,
    status               text NOT NULL CHECK (status IN ('active', 'inactive')),
    -- organisations
    credit_code          text UNIQUE,
    registered_region    text,
    filing_number        text,
    filing_date          date,
    legal_representative text,
    -- practitioners: the number only encrypted, found through its keyed hash
    document_type        text,
    document_cipher      bytea,
    document_lookup      bytea,
    version              integer NOT NULL CHECK (version >= 1),
    created_at           timestamptz NOT NULL,
    created_by           text NOT NULL,
    updated_at           timestamptz NOT NULL,
    updated_by           text NOT NULL,
    log_index            bigint NOT NULL,
    CHECK ((kind = 'practitioner') = (credit_code IS NULL)),
    CHECK ((kind = 'practitioner') = (document_cipher IS NOT NULL AND document_lookup IS NOT NULL
                                      AND document_type IS NOT NULL))
);
CREATE UNIQUE INDEX subjects_document ON subjects (document_type, document_lookup)
    WHERE document_lookup IS NOT NULL;
CREATE INDEX subjects_name ON subjects (name, id);
CREATE INDEX subjects_kind_id ON subjects (kind, id);

CREATE TABLE affiliations (
    id              uuid PRIMARY KEY,
    practitioner_id uuid NOT NULL REFERENCES subjects (id),
    organisation_id uuid NOT NULL REFERENCES subjects (id),
    role            text NOT NULL,
    valid_from      date NOT NULL,
    valid_to        date,
    version         integer NOT NULL,
    created_at      timestamptz NOT NULL,
    created_by      text NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text NOT NULL,
    log_index       bigint NOT NULL,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX affiliations_practitioner ON affiliations (practitioner_id, valid_from);
CREATE INDEX affiliations_organisation ON affiliations (organisation_id, valid_from);
