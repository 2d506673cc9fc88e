-- The web admin: users' sign-in passwords (Argon2id PHC strings), tokens that
-- expire (a web session's own API token), and the sessions themselves. A session
-- is found by the SHA-256 of its cookie; the cookie's value is never stored.
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;

CREATE TABLE web_sessions (
    id_hash     TEXT PRIMARY KEY,
    -- The API token the session acts with (issued at sign-in, revoked at sign-out).
    token_id    TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    token_enc   TEXT NOT NULL,
    -- The organization the pages show (a system administrator picks one).
    org_id      TEXT REFERENCES organizations (id) ON DELETE SET NULL,
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
