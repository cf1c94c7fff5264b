-- Issue O, the capture sandbox.
-- Sandbox mode per API key and SMTP credential (the account's own is 0018); a message sent
-- through a sandboxed one is captured whatever the routing says.
ALTER TABLE api_keys ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0;
ALTER TABLE smtp_credentials ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0;
-- When someone marked the message read (the inbox's unread mark); NULL: unread.
ALTER TABLE messages ADD COLUMN seen_at INTEGER;
-- Captured mail kept per account: at most this many, for at most this many days (NULL:
-- the server's `retention.capture_count` / `retention.capture_days`).
ALTER TABLE accounts ADD COLUMN capture_retention_count INTEGER;
ALTER TABLE accounts ADD COLUMN capture_retention_days INTEGER;
-- Where a captured message may be released to (JSON array of addresses and domains);
-- NULL: anywhere.
ALTER TABLE accounts ADD COLUMN capture_release_allowlist TEXT;
-- Injected SMTP answers for the account's sandboxed senders (core::chaos, JSON); NULL: none.
ALTER TABLE accounts ADD COLUMN capture_chaos TEXT;
-- A captured message released (a copy was queued to a provider): when. It stays captured.
ALTER TABLE messages ADD COLUMN released_at INTEGER;

-- What search and the inbox list read of a captured message, parsed once by the capture
-- indexer (worker/src/capture_index.rs). Goes with its message.
CREATE TABLE captured_mail (
    message_id      INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    account_id      INTEGER NOT NULL,
    subject         TEXT    NOT NULL,
    from_text       TEXT    NOT NULL,
    to_text         TEXT    NOT NULL,
    cc_text         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL, -- empty when bodies are encrypted at rest
    tags            TEXT    NOT NULL, -- JSON array
    has_attachments INTEGER NOT NULL,
    indexed_at      INTEGER NOT NULL
);
CREATE INDEX captured_mail_account ON captured_mail (account_id, message_id);
CREATE INDEX messages_captured ON messages (status, id) WHERE status = 'captured';

CREATE VIRTUAL TABLE captured_fts USING fts5(
    subject, from_text, to_text, cc_text, body_text, tags,
    content = 'captured_mail', content_rowid = 'message_id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER captured_mail_fts_insert AFTER INSERT ON captured_mail BEGIN
    INSERT INTO captured_fts (rowid, subject, from_text, to_text, cc_text, body_text, tags)
    VALUES (NEW.message_id, NEW.subject, NEW.from_text, NEW.to_text, NEW.cc_text, NEW.body_text, NEW.tags);
END;
CREATE TRIGGER captured_mail_fts_delete AFTER DELETE ON captured_mail BEGIN
    INSERT INTO captured_fts (captured_fts, rowid, subject, from_text, to_text, cc_text, body_text, tags)
    VALUES ('delete', OLD.message_id, OLD.subject, OLD.from_text, OLD.to_text, OLD.cc_text, OLD.body_text, OLD.tags);
END;
CREATE TRIGGER captured_mail_fts_update AFTER UPDATE ON captured_mail BEGIN
    INSERT INTO captured_fts (captured_fts, rowid, subject, from_text, to_text, cc_text, body_text, tags)
    VALUES ('delete', OLD.message_id, OLD.subject, OLD.from_text, OLD.to_text, OLD.cc_text, OLD.body_text, OLD.tags);
    INSERT INTO captured_fts (rowid, subject, from_text, to_text, cc_text, body_text, tags)
    VALUES (NEW.message_id, NEW.subject, NEW.from_text, NEW.to_text, NEW.cc_text, NEW.body_text, NEW.tags);
END;
