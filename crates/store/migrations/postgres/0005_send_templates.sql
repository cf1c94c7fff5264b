ALTER TABLE messages ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'; -- JSON array
ALTER TABLE messages ADD COLUMN max_attempts BIGINT; -- per-message retry limit, NULL: config

CREATE TABLE templates (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT REFERENCES accounts(id) ON DELETE CASCADE, -- NULL: system-wide
    name        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    text_body   TEXT    NOT NULL,
    html_body   TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX templates_name ON templates (COALESCE(account_id, 0), name);
