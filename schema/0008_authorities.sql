-- Authorities: the public bodies that share the registry (市發改委 and the member units
-- of the city's social-credit leading group). Each records, and answers for, its own
-- decisions: a regulator token belongs to one authority, the deciding authority of a
-- record is its token's authority, and only that authority may change what rests on
-- the decision (registry/authorities.py, registry/credit/ownership.py).
--
-- Audited like every other registry object (object type 'authority'); never deleted,
-- deactivated instead.
CREATE TABLE authorities (
    id          uuid PRIMARY KEY,
    -- GB 32100 unified social credit code of a government body: registration
    -- authority 1 (機構編制), category 1 (機關). The check character is checked in Python.
    code        text NOT NULL UNIQUE CHECK (code ~ '^11[0-9A-HJ-NPQRTUWXY]{16}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    active      boolean NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    created_at  timestamptz NOT NULL,
    created_by  text NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text NOT NULL,
    log_index   bigint NOT NULL
);

-- A regulator token's authority; NULL for bureau and admin tokens. Tokens issued before
-- this migration have none: a regulator token without an authority may still read but
-- records no decision (403 naming the fix). The column is left out of a token's audited
-- body while NULL (registry/tlog/leaf.py LATE_COLUMNS), so rows written before it existed
-- still match their audited versions.
ALTER TABLE api_tokens ADD COLUMN authority_code text REFERENCES authorities (code);
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_authority_only_for_regulators
    CHECK (role = 'regulator' OR authority_code IS NULL);
CREATE INDEX api_tokens_by_authority ON api_tokens (authority_code) WHERE authority_code IS NOT NULL;

-- A token's name is what people read in listings: unique among the live tokens of a
-- role, so "which 'ndrc-desk' did this?" always has one answer. (The audit log names
-- tokens by id, never by name.)
--
-- A trigger rather than a unique index: a database of the previous release may hold live
-- tokens that share a name, and an index would make this migration fail, and with it
-- every command, including the `registry keys revoke` that would resolve the clash. The
-- trigger checks each token issued or renamed from now on; clashes already there stay
-- until one of them is revoked (`registry keys list` shows them). A transaction-scoped
-- advisory lock on (role, name) makes two concurrent issues of one name take turns, so the
-- second sees the first; the error is a unique_violation like an index's (409 in the API).
CREATE FUNCTION api_tokens_live_name_unique() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS NULL AND (TG_OP = 'INSERT' OR NEW.name IS DISTINCT FROM OLD.name
                                   OR NEW.role IS DISTINCT FROM OLD.role) THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('api_tokens.name:' || NEW.role || ':'
                                                       || NEW.name, 0));
        IF EXISTS (SELECT 1 FROM api_tokens WHERE role = NEW.role AND name = NEW.name
                   AND revoked_at IS NULL AND id <> NEW.id) THEN
            RAISE EXCEPTION 'a live % token is already named %', NEW.role, quote_literal(NEW.name)
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'api_tokens_live_name';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER api_tokens_live_name BEFORE INSERT OR UPDATE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_live_name_unique();
CREATE INDEX api_tokens_by_role_name ON api_tokens (role, name) WHERE revoked_at IS NULL;
