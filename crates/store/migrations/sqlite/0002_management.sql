ALTER TABLE accounts ADD COLUMN monthly_limit INTEGER NOT NULL DEFAULT 10000;
ALTER TABLE accounts ADD COLUMN allow_any_local_part INTEGER NOT NULL DEFAULT 0;

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER REFERENCES accounts(id) ON DELETE CASCADE, -- NULL: system admin
    email           TEXT    NOT NULL UNIQUE,
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL, -- admin | owner | member | viewer
    status          TEXT    NOT NULL DEFAULT 'active',
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    first_failed_at INTEGER,
    locked_until    INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Refresh tokens (hashed), one row per login; rotated on refresh, revoked on logout.
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL UNIQUE,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE TABLE audit_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target_type TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    changes     TEXT    NOT NULL, -- JSON object of changed fields, secrets never
    source_ip   TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_logs_account ON audit_logs (account_id, id);
