-- Addresses an account may not send to (hard bounces, complaints, manual entries).
CREATE TABLE suppressions (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address     TEXT    NOT NULL, -- lower case
    reason      TEXT    NOT NULL, -- hard_bounce | complaint | manual
    source      TEXT    NOT NULL, -- api | sendgrid | ses | mailgun | ...
    created_at  BIGINT NOT NULL,
    expires_at   BIGINT,          -- NULL: until deleted
    UNIQUE (account_id, address)
);
