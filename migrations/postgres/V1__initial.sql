-- The PostgreSQL schema: the same tables and rules as migrations/sqlite,
-- in PostgreSQL's own types.

-- Identity ids are never handed out again, even after a delete: tokens carry
-- `uid`, and a reused id would resurrect them.
CREATE TABLE users (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text        NOT NULL,
    password_hash   text        NOT NULL,
    name            text        NOT NULL,
    email           text,
    role            text        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    scopes          text        NOT NULL DEFAULT 'read write',
    disabled        boolean     NOT NULL DEFAULT false,
    department      text,
    clearance_level smallint    NOT NULL DEFAULT 0 CHECK (clearance_level BETWEEN 0 AND 5),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Usernames are unique in any case (they are ASCII, so lower() is exact).
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
-- Counting the active admins, which the last-admin rule does on every change.
CREATE INDEX users_active_admins ON users (id) WHERE role = 'admin' AND NOT disabled;
-- With the id, listing a department's members is an index-only scan.
CREATE INDEX users_department ON users (department, id);

CREATE TABLE todos (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id        bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title           text        NOT NULL,
    description     text,
    completed       boolean     NOT NULL DEFAULT false,
    visibility      text        NOT NULL DEFAULT 'private'
                                CHECK (visibility IN ('private', 'department')),
    clearance_level smallint    NOT NULL DEFAULT 0 CHECK (clearance_level BETWEEN 0 AND 5),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Serves "this owner's todos, newest first", with or without the completed filter.
CREATE INDEX todos_owner_newest ON todos (owner_id, id DESC);
CREATE INDEX todos_owner_completed_newest ON todos (owner_id, completed, id DESC);
-- Serves department sharing: a colleague's shared todos within a clearance.
-- Covering, so the shared listing gathers ids from indexes alone.
CREATE INDEX todos_department_shared ON todos (owner_id, clearance_level)
    INCLUDE (completed, id) WHERE visibility = 'department';

-- A login session: the family of refresh tokens one login started. Access
-- tokens carry its id (`sid`) and stop working when it is revoked.
-- expires_at is in Unix seconds, as the services count time.
CREATE TABLE sessions (
    id          text        PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The scopes asked for at login, or NULL for "all the user holds".
    scopes      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  bigint      NOT NULL,
    revoked_at  timestamptz
);

CREATE INDEX sessions_user ON sessions (user_id);

-- Each refresh token ever issued; a token is spent once, and presenting a
-- spent one again revokes its session. expires_at is in Unix seconds.
CREATE TABLE refresh_tokens (
    jti         text        PRIMARY KEY,
    session_id  text        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at  bigint      NOT NULL,
    used_at     timestamptz
);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Consecutive failed logins per lower-cased username, known or not, so that
-- throttling holds across instances and tells nothing about who exists.
-- A login name is whatever a client sent (up to the body limit, NUL bytes
-- included), which neither a btree key nor `text` can hold: the key is the
-- SHA-256 of its UTF-8 bytes, so no typed name is kept either.
-- blocked_until is in Unix milliseconds.
CREATE TABLE login_failures (
    username_key  bytea   PRIMARY KEY,
    failures      integer NOT NULL,
    blocked_until bigint  NOT NULL
);
