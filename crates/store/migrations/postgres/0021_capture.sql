-- Issue O, the capture sandbox (see the SQLite twin for the notes).
ALTER TABLE api_keys ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE smtp_credentials ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE messages ADD COLUMN seen_at BIGINT;
ALTER TABLE accounts ADD COLUMN capture_retention_count BIGINT;
ALTER TABLE accounts ADD COLUMN capture_retention_days BIGINT;
-- Where a captured message may be released to (JSON array of addresses and domains);
-- NULL: anywhere.
ALTER TABLE accounts ADD COLUMN capture_release_allowlist TEXT;
-- Injected SMTP answers for the account's sandboxed senders (core::chaos, JSON); NULL: none.
ALTER TABLE accounts ADD COLUMN capture_chaos TEXT;
-- A captured message released (a copy was queued to a provider): when. It stays captured.
ALTER TABLE messages ADD COLUMN released_at BIGINT;

CREATE TABLE captured_mail (
    message_id      BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    account_id      BIGINT  NOT NULL,
    subject         TEXT    NOT NULL,
    from_text       TEXT    NOT NULL,
    to_text         TEXT    NOT NULL,
    cc_text         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    tags            TEXT    NOT NULL,
    has_attachments BOOLEAN NOT NULL,
    indexed_at      BIGINT  NOT NULL,
    -- Words split on anything but letters and digits, as SQLite's unicode61 does, so a
    -- search finds the same mail on both backends.
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple', regexp_replace(lower(
        subject || ' ' || from_text || ' ' || to_text || ' ' || cc_text || ' ' || body_text
        || ' ' || tags), '[^[:alnum:]]+', ' ', 'g'))) STORED
);
CREATE INDEX captured_mail_account ON captured_mail (account_id, message_id);
CREATE INDEX captured_mail_search ON captured_mail USING GIN (search);
CREATE INDEX messages_captured ON messages (status, id) WHERE status = 'captured';
