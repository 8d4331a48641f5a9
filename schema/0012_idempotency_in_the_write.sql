-- Idempotency-Key answers are stored in the write's own transaction
-- (registry/credit/idempotency.py): a key row exists only for a write that committed,
-- with its answer. The body is the answer without its receipt; the receipt names
-- `receipt_index` with a checkpoint that includes `through_index` (the write's last
-- leaf), signed after the commit and kept in `checkpoint` once known, so every replay
-- sends the same bytes. Rows of the previous release keep their bodies (receipt
-- inside) and NULL in the new columns.
ALTER TABLE idempotency_keys
    ADD COLUMN receipt_index bigint,
    ADD COLUMN through_index bigint,
    ADD COLUMN checkpoint    text,
    ADD CONSTRAINT idempotency_keys_receipt_range
        CHECK (receipt_index IS NULL OR through_index >= receipt_index);

-- Refusals no longer use a key (the corrected retry must run), and a claim left without
-- an answer by a crash under the previous release would answer 409 forever.
DELETE FROM idempotency_keys WHERE status IS NULL OR status >= 400;

COMMENT ON COLUMN idempotency_keys.status IS
    'the answer''s status; NULL only in an in-flight claim of the previous release';
