CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    email           TEXT    NOT NULL UNIQUE,
    password_hash   TEXT    NOT NULL,
    allowed_domains TEXT    NOT NULL, -- JSON array of lower-case domains
    status          TEXT    NOT NULL DEFAULT 'active',
    created_at      INTEGER NOT NULL, -- unix ms
    updated_at      INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    prefix      TEXT    NOT NULL,
    key_hash    TEXT    NOT NULL UNIQUE, -- sha256 hex of the whole key
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    source          TEXT    NOT NULL,
    mail_from       TEXT    NOT NULL,
    rcpt_to         TEXT    NOT NULL, -- JSON array, as accepted
    pending_rcpt    TEXT    NOT NULL, -- JSON array, still to deliver
    smtputf8        INTEGER NOT NULL DEFAULT 0,
    eight_bit       INTEGER NOT NULL DEFAULT 0,
    size            INTEGER NOT NULL,
    body            BLOB    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX messages_due ON messages (status, next_attempt_at);
CREATE INDEX messages_lease ON messages (status, lease_until);
CREATE INDEX messages_account ON messages (account_id, created_at);

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    provider    TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    code        INTEGER,
    response    TEXT    NOT NULL,
    recipients  TEXT    NOT NULL, -- JSON array of per-recipient results
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL
);
CREATE INDEX delivery_attempts_message ON delivery_attempts (message_id);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    account_id  INTEGER,
    kind        TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX events_message ON events (message_id);
