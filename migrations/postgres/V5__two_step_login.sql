-- Two-step login. `mfa_enabled` is on the user's row so that the one query
-- behind every request reads it with the rest of the user.
ALTER TABLE users ADD COLUMN mfa_enabled boolean NOT NULL DEFAULT false;

-- A user's TOTP secret, sealed under the configured key; pending until a
-- first code confirms it. Codes of `last_step` and earlier are refused, so
-- each code works once.
CREATE TABLE totp_secrets (
    user_id    bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed     text        NOT NULL,
    confirmed  boolean     NOT NULL DEFAULT false,
    last_step  bigint      NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The SHA-256 of each recovery code (auth::totp), spent once.
CREATE TABLE recovery_codes (
    user_id   bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash text        NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
