CREATE TABLE accounts (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT    NOT NULL,
    email           TEXT    NOT NULL UNIQUE,
    password_hash   TEXT    NOT NULL,
    allowed_domains TEXT    NOT NULL, -- JSON array of lower-case domains
    status          TEXT    NOT NULL DEFAULT 'active',
    created_at      BIGINT  NOT NULL, -- unix ms
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE api_keys (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    prefix      TEXT    NOT NULL,
    key_hash    TEXT    NOT NULL UNIQUE, -- sha256 hex of the whole key
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE messages (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES accounts(id),
    source          TEXT    NOT NULL,
    mail_from       TEXT    NOT NULL,
    rcpt_to         TEXT    NOT NULL, -- JSON array, as accepted
    pending_rcpt    TEXT    NOT NULL, -- JSON array, still to deliver
    smtputf8        BOOLEAN NOT NULL DEFAULT FALSE,
    eight_bit       BOOLEAN NOT NULL DEFAULT FALSE,
    size            BIGINT  NOT NULL,
    body            BYTEA   NOT NULL,
    status          TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX messages_due ON messages (status, next_attempt_at);
CREATE INDEX messages_lease ON messages (status, lease_until);
CREATE INDEX messages_account ON messages (account_id, created_at);

CREATE TABLE delivery_attempts (
    id          BIGSERIAL PRIMARY KEY,
    message_id  BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    provider    TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    code        BIGINT,
    response    TEXT    NOT NULL,
    recipients  TEXT    NOT NULL, -- JSON array of per-recipient results
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT  NOT NULL
);
CREATE INDEX delivery_attempts_message ON delivery_attempts (message_id);

CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    message_id  BIGINT REFERENCES messages(id) ON DELETE CASCADE,
    account_id  BIGINT,
    kind        TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX events_message ON events (message_id);
