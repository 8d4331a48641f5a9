-- Credit records, the serious-dishonesty list, objections, credit repair.
-- Every table below except idempotency_keys holds audited rows: the current state
-- of one object per row, with `id` and the `log_index` of the leaf that committed
-- to exactly this row (as returned by RETURNING *). Older versions live in
-- tlog_objects; nothing is ever deleted.

CREATE TABLE credit_records (
    id                    uuid PRIMARY KEY,
    subject_id            uuid NOT NULL REFERENCES subjects (id),
    record_kind           text NOT NULL
        CHECK (record_kind IN ('penalty', 'filing', 'commendation', 'dishonesty_other')),
    grade                 text CHECK (grade IN ('minor', 'general', 'serious')),
    -- 雙公示 items (cf_* codes in comments)
    decision_number       text,            -- cf_wsh 行政處罰決定書文號
    violation_type        text,            -- cf_wfxw 違法行為類型
    facts                 text NOT NULL,   -- cf_sy 違法事實 (or the fact recorded)
    legal_basis           text,            -- cf_yj 處罰依據
    penalty_types         text[] NOT NULL DEFAULT '{}',  -- cf_cflb 處罰類別
    penalty_content       text,            -- cf_nr 處罰內容
    fine_amount           numeric(18, 6) CHECK (fine_amount >= 0),          -- cf_nr_fk (萬元)
    confiscation_amount   numeric(18, 6) CHECK (confiscation_amount >= 0),  -- cf_nr_wfff (萬元)
    licence_name          text,            -- cf_nr_zkdx 暫扣或吊銷證照名稱
    licence_number        text,            --            及編號
    decision_date         date NOT NULL,   -- cf_jdrq 處罰決定日期
    valid_until           date,            -- cf_yxq 處罰有效期
    authority_name        text NOT NULL,   -- cf_cfjg 處罰機關
    authority_code        text NOT NULL,   -- cf_cfjgdm
    source_name           text NOT NULL,   -- cf_sjly 數據來源單位
    source_code           text NOT NULL,   -- cf_sjlydm
    remarks               text,            -- bz 備註
    -- publicity, computed by registry.domain.publicity when written
    published             boolean NOT NULL,
    publicity_start       date NOT NULL,
    repair_from           date NOT NULL,   -- end of the minimum period
    publicity_end         date,            -- first day no longer shown; NULL = no end
    publicity_deadline    date,            -- cf_gsjzq 公示截止期: last day shown
    publicity_reason      text NOT NULL,
    -- published | not_published | expired | revoked | repaired
    status                text NOT NULL
        CHECK (status IN ('published', 'not_published', 'expired', 'revoked', 'repaired')),
    publication_ended_on  date,
    status_reason         text,
    under_objection       boolean NOT NULL DEFAULT false,
    -- a correction is a new version of the same record; previous_log_index names
    -- the leaf of the version it replaces
    previous_log_index    bigint,
    correction_note       text,
    version               integer NOT NULL CHECK (version >= 1),
    created_at            timestamptz NOT NULL,
    created_by            text NOT NULL,
    updated_at            timestamptz NOT NULL,
    updated_by            text NOT NULL,
    log_index             bigint NOT NULL,
    CHECK (record_kind <> 'penalty' OR (decision_number IS NOT NULL AND grade IS NOT NULL))
);
CREATE UNIQUE INDEX credit_records_decision
    ON credit_records (authority_code, decision_number) WHERE decision_number IS NOT NULL;
-- Keyset listing: newest decision first, ties by id; one index per filter.
CREATE INDEX credit_records_by_date ON credit_records (decision_date DESC, id DESC);
CREATE INDEX credit_records_by_subject ON credit_records (subject_id, decision_date DESC, id DESC);
CREATE INDEX credit_records_by_authority
    ON credit_records (authority_code, decision_date DESC, id DESC);
CREATE INDEX credit_records_by_status ON credit_records (status, decision_date DESC, id DESC);
CREATE INDEX credit_records_by_grade ON credit_records (grade, decision_date DESC, id DESC);
-- Expiry scans only what is still published.
CREATE INDEX credit_records_due ON credit_records (publicity_end) WHERE status = 'published';

CREATE TABLE blacklist_entries (
    id                  uuid PRIMARY KEY,
    subject_id          uuid NOT NULL REFERENCES subjects (id),
    criterion           text NOT NULL,
    legal_basis         text NOT NULL,
    record_ids          uuid[] NOT NULL CHECK (cardinality(record_ids) >= 1),
    state               text NOT NULL
        CHECK (state IN ('proposed', 'notified', 'listed', 'removed', 'withdrawn')),
    proposed_on         date NOT NULL,
    notified_on         date,
    notice_channel      text,
    objection_deadline  date,
    listed_on           date,
    planned_removal_on  date,
    removed_on          date,
    removal_reason      text,
    withdrawn_on        date,
    withdrawal_reason   text,
    pending_objection   boolean NOT NULL DEFAULT false,
    under_objection     boolean NOT NULL DEFAULT false,
    version             integer NOT NULL CHECK (version >= 1),
    created_at          timestamptz NOT NULL,
    created_by          text NOT NULL,
    updated_at          timestamptz NOT NULL,
    updated_by          text NOT NULL,
    log_index           bigint NOT NULL
);
CREATE INDEX blacklist_by_state ON blacklist_entries (state, id);
CREATE INDEX blacklist_by_subject ON blacklist_entries (subject_id, id);
CREATE INDEX blacklist_due ON blacklist_entries (planned_removal_on) WHERE state = 'listed';

CREATE TABLE objections (
    id             uuid PRIMARY KEY,
    target_type    text NOT NULL CHECK (target_type IN ('credit_record', 'blacklist_entry')),
    target_id      uuid NOT NULL,
    subject_id     uuid NOT NULL REFERENCES subjects (id),
    filed_by       text NOT NULL CHECK (filed_by IN ('subject', 'bureau')),
    grounds        text NOT NULL,
    state          text NOT NULL CHECK (state IN ('filed', 'upheld', 'rejected')),
    filed_on       date NOT NULL,
    decide_due     date NOT NULL,
    answer_due     date NOT NULL,
    decided_on     date,
    decision_note  text,
    decision_action text,
    version        integer NOT NULL CHECK (version >= 1),
    created_at     timestamptz NOT NULL,
    created_by     text NOT NULL,
    updated_at     timestamptz NOT NULL,
    updated_by     text NOT NULL,
    log_index      bigint NOT NULL
);
CREATE INDEX objections_by_state ON objections (state, id);
CREATE INDEX objections_by_target ON objections (target_id, id);
CREATE INDEX objections_by_subject ON objections (subject_id, id);
-- One undecided objection per record or listing at a time.
CREATE UNIQUE INDEX objections_one_pending ON objections (target_id) WHERE state = 'filed';

CREATE TABLE repairs (
    id             uuid PRIMARY KEY,
    target_type    text NOT NULL CHECK (target_type IN ('credit_record', 'blacklist_entry')),
    target_id      uuid NOT NULL,
    subject_id     uuid NOT NULL REFERENCES subjects (id),
    route          text NOT NULL
        CHECK (route IN ('blacklist_removal', 'penalty_publicity', 'other_dishonesty')),
    grounds        text NOT NULL,
    state          text NOT NULL CHECK (state IN ('applied', 'approved', 'rejected')),
    applied_on     date NOT NULL,
    decided_on     date,
    decision_note  text,
    version        integer NOT NULL CHECK (version >= 1),
    created_at     timestamptz NOT NULL,
    created_by     text NOT NULL,
    updated_at     timestamptz NOT NULL,
    updated_by     text NOT NULL,
    log_index      bigint NOT NULL
);
CREATE INDEX repairs_by_state ON repairs (state, id);
CREATE INDEX repairs_by_subject ON repairs (subject_id, id);
CREATE UNIQUE INDEX repairs_one_pending ON repairs (target_id) WHERE state = 'applied';

-- Idempotency-Key: the first answer to a (token, key), replayed on retries. Not
-- audited: it records responses, not registry state.
CREATE TABLE idempotency_keys (
    token_id     uuid NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer,          -- NULL while the first request is in flight
    body         bytea,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (token_id, key)
);
