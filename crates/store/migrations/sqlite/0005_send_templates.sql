ALTER TABLE messages ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'; -- JSON array
ALTER TABLE messages ADD COLUMN max_attempts INTEGER; -- per-message retry limit, NULL: config

CREATE TABLE templates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER REFERENCES accounts(id) ON DELETE CASCADE, -- NULL: system-wide
    name        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    text_body   TEXT    NOT NULL,
    html_body   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX templates_name ON templates (COALESCE(account_id, 0), name);
