-- Ids are AUTOINCREMENT so that a deleted user's id is never handed out again:
-- tokens carry `uid`, and a reused id would resurrect them.
CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    email           TEXT,
    role            TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    scopes          TEXT    NOT NULL DEFAULT 'read write',
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    department      TEXT,
    clearance_level INTEGER NOT NULL DEFAULT 0 CHECK (clearance_level BETWEEN 0 AND 5),
    created_at      TEXT    NOT NULL
);

-- Usernames are ASCII, so SQLite's ASCII-only lower() is exact here.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
CREATE INDEX users_active_admins ON users (role, disabled);
CREATE INDEX users_department ON users (department);

CREATE TABLE todos (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title           TEXT    NOT NULL,
    description     TEXT,
    completed       INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1)),
    visibility      TEXT    NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'department')),
    clearance_level INTEGER NOT NULL DEFAULT 0 CHECK (clearance_level BETWEEN 0 AND 5),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- Serves "this owner's todos, newest first", with or without the completed filter.
CREATE INDEX todos_owner_newest ON todos (owner_id, id DESC);
CREATE INDEX todos_owner_completed_newest ON todos (owner_id, completed, id DESC);
-- Serves department sharing: a colleague's shared todos within a clearance.
-- Not a partial index: SQLite re-prepares every statement on a table with a
-- partial index whenever a bound parameter changes, which cost a fifth of
-- the CPU of each list request.
CREATE INDEX todos_department_shared ON todos (owner_id, visibility, clearance_level, completed);

-- A login session: the family of refresh tokens one login started. Access
-- tokens carry its id (`sid`) and stop working when it is revoked.
CREATE TABLE sessions (
    id          TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The scopes asked for at login, or NULL for "all the user holds".
    scopes      TEXT,
    created_at  TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  TEXT
) WITHOUT ROWID;

CREATE INDEX sessions_user ON sessions (user_id);

-- Each refresh token ever issued; a token is spent once, and presenting a
-- spent one again revokes its session.
CREATE TABLE refresh_tokens (
    jti         TEXT    PRIMARY KEY,
    session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    used_at     TEXT
) WITHOUT ROWID;

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Consecutive failed logins per lower-cased username, known or not, so that
-- throttling holds across instances and tells nothing about who exists.
CREATE TABLE login_failures (
    username_key  TEXT    PRIMARY KEY,
    failures      INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
) WITHOUT ROWID;
