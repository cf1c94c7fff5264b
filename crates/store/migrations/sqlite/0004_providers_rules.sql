CREATE TABLE providers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER REFERENCES accounts(id) ON DELETE CASCADE, -- NULL: system-wide
    name          TEXT    NOT NULL,
    provider_type TEXT    NOT NULL,
    config        TEXT    NOT NULL, -- JSON settings without secrets
    secrets       TEXT    NOT NULL, -- sealed JSON of the secret settings (AES-256-GCM)
    enabled       INTEGER NOT NULL DEFAULT 1,
    priority      INTEGER NOT NULL DEFAULT 100,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX providers_account ON providers (account_id, priority);

CREATE TABLE routing_rules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    priority     INTEGER NOT NULL,
    conditions   TEXT    NOT NULL, -- JSON
    provider_id  INTEGER NOT NULL REFERENCES providers(id),
    fallbacks    TEXT    NOT NULL, -- JSON array of provider ids
    enabled      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX routing_rules_account ON routing_rules (account_id, priority);
