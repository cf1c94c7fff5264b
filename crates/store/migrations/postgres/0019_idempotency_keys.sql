-- Idempotency keys of the HTTP send API (`Idempotency-Key`), per account, remembered 24 h
-- (the retention sweep deletes older rows). Written in the transaction of the message the
-- first request made. `message_id` is NULL only inside that transaction; `answer` is
-- 'queued' / 'delivered', or NULL while a sync delivery runs.
CREATE TABLE idempotency_keys (
    account_id   BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    idem_key     TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    message_id   BIGINT,
    answer       TEXT,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
