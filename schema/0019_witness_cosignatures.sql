-- Cosignatures (c2sp.org/tlog-cosignature) the credit bureaus' witnesses returned for
-- the log's checkpoints (registry/tlog/witnessing.py). Kept here, not in a process's
-- memory, so every server process serves them and a restart keeps them.
--
-- A row is written only after its signature line was verified against the witness's key
-- over the exact text of the checkpoint stored at that size, and only for a checkpoint the
-- log signed and stored (the foreign key). At most one cosignature per witness and size:
-- the first stored stays, so every process serves the same lines.
CREATE TABLE tlog_cosignatures (
    tree_size   bigint      NOT NULL REFERENCES tlog_checkpoints (size),
    -- The witness's verifier key string (name+hexid+base64 key): a witness that gets a
    -- new key under the same name is another witness, whose old cosignatures do not count.
    witness_key text        NOT NULL,
    -- The whole signature line as the witness sent it, without its newline.
    signature   text        NOT NULL CHECK (signature LIKE '— %' AND position(E'\n' IN signature) = 0),
    -- The time inside the cosignature (the witness's clock), and when it reached us.
    cosigned_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tree_size, witness_key)
);
-- Each witness's newest cosignature (where to start its next consistency proof).
CREATE INDEX tlog_cosignatures_by_witness ON tlog_cosignatures (witness_key, tree_size DESC);
