-- Large bodies live in the body store (issue N): on PostgreSQL, in chunks every node reaches.
-- `body_ref` is the store's reference to the content; `body` then holds only the head this
-- relay added (Received, staging headers). NULL: `body` is the whole message, as for every
-- row written before.
ALTER TABLE messages ADD COLUMN body_ref BYTEA;
-- The chunk table's body a row names (decoded from `body_ref` when the row is written,
-- cleared with it): what the orphan sweep asks "does any row still name this body?".
ALTER TABLE messages ADD COLUMN body_id BIGINT;
CREATE INDEX messages_body_id ON messages (body_id) WHERE body_id IS NOT NULL;

-- One body's content in chunks of at most 64 KiB (sealed, when bodies are encrypted).
-- Written as it arrives, before the message's row; `created_at` is the database's clock in
-- Unix milliseconds. A body no row names and none of whose chunks is younger than a day is
-- an orphan (its writer died) and the retention sweep removes it.
CREATE TABLE message_body_chunks (
    body_id     BIGINT NOT NULL,
    seq         INTEGER NOT NULL,
    data        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (body_id, seq)
);
CREATE SEQUENCE message_body_ids;
