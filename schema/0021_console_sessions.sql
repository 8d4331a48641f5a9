-- The regulators' console (registry/console/): server-side sign-in sessions.
--
-- A session is opened by signing in once with a regulator token. The browser holds a
-- random session id in an HttpOnly cookie; only its SHA-256 is stored here, as for
-- tokens. Every request checks the session against its token and authority, so a
-- revoked token or a deactivated authority ends the session at once, whatever its
-- expiry (registry/console/sessions.py). Sessions are not registry changes and are not
-- in the audit log; what a signed-in official writes is, under the token's actor.
CREATE TABLE console_sessions (
    id_hash     bytea PRIMARY KEY,
    token_id    uuid NOT NULL REFERENCES api_tokens (id),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > created_at),
    -- Set by signing out; a session is never reopened.
    ended_at    timestamptz
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

-- The secret behind the console's CSRF tokens (Litestar's double-submit cookie, signed
-- with HMAC): one row, made by the first server to need it, so every server process
-- on this database accepts the forms every other one rendered.
CREATE TABLE console_secret (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret      text NOT NULL CHECK (length(secret) >= 32)
);
