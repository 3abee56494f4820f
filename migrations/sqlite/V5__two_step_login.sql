-- Two-step login. `mfa_enabled` is on the user's row so that the one query
-- behind every request reads it with the rest of the user.
ALTER TABLE users ADD COLUMN mfa_enabled INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1));

-- A user's TOTP secret, sealed under the configured key; pending until a
-- first code confirms it. Codes of `last_step` and earlier are refused, so
-- each code works once.
CREATE TABLE totp_secrets (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed     TEXT    NOT NULL,
    confirmed  INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1)),
    last_step  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT    NOT NULL
);

-- The SHA-256 of each recovery code (auth::totp), spent once.
CREATE TABLE recovery_codes (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT    NOT NULL,
    used_at   TEXT,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;
