CREATE TABLE providers (
    id            BIGSERIAL PRIMARY KEY,
    account_id    BIGINT REFERENCES accounts(id) ON DELETE CASCADE, -- NULL: system-wide
    name          TEXT    NOT NULL,
    provider_type TEXT    NOT NULL,
    config        TEXT    NOT NULL, -- JSON settings without secrets
    secrets       TEXT    NOT NULL, -- sealed JSON of the secret settings (AES-256-GCM)
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    priority      BIGINT NOT NULL DEFAULT 100,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX providers_account ON providers (account_id, priority);

CREATE TABLE routing_rules (
    id           BIGSERIAL PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    priority     BIGINT NOT NULL,
    conditions   TEXT    NOT NULL, -- JSON
    provider_id  BIGINT NOT NULL REFERENCES providers(id),
    fallbacks    TEXT    NOT NULL, -- JSON array of provider ids
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX routing_rules_account ON routing_rules (account_id, priority);
