-- Retention: when a finished message's body was removed (its row, attempts and events stay
-- until metadata retention deletes them), and the index both purges walk.
ALTER TABLE messages ADD COLUMN body_purged_at BIGINT;
CREATE INDEX messages_status_updated ON messages (status, updated_at);
