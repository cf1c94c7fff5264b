-- Addresses an account may not send to (hard bounces, complaints, manual entries).
CREATE TABLE suppressions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address     TEXT    NOT NULL, -- lower case
    reason      TEXT    NOT NULL, -- hard_bounce | complaint | manual
    source      TEXT    NOT NULL, -- api | sendgrid | ses | mailgun | ...
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,          -- NULL: until deleted
    UNIQUE (account_id, address)
);
