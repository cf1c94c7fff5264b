ALTER TABLE accounts ADD COLUMN monthly_limit BIGINT NOT NULL DEFAULT 10000;
ALTER TABLE accounts ADD COLUMN allow_any_local_part BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT REFERENCES accounts(id) ON DELETE CASCADE, -- NULL: system admin
    email           TEXT    NOT NULL UNIQUE,
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL, -- admin | owner | member | viewer
    status          TEXT    NOT NULL DEFAULT 'active',
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    first_failed_at BIGINT,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Refresh tokens (hashed), one row per login; rotated on refresh, revoked on logout.
CREATE TABLE sessions (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL UNIQUE,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE audit_logs (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target_type TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    changes     TEXT    NOT NULL, -- JSON object of changed fields, secrets never
    source_ip   TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_logs_account ON audit_logs (account_id, id);
