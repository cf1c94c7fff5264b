-- The web panel: its sessions live beside the API's refresh tokens, told apart by kind;
-- small node-wide settings (the panel's session secret) live in settings.
ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'refresh';

CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The dashboard reads the last 24 hours of events and attempts.
CREATE INDEX events_created ON events (created_at);
CREATE INDEX delivery_attempts_finished ON delivery_attempts (finished_at);
