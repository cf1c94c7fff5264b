-- SMTP AUTH logins of an account, each with its own password.
CREATE TABLE smtp_credentials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX smtp_credentials_account ON smtp_credentials (account_id);

-- Messages accepted per account per calendar month (UTC), kept in the enqueue transaction.
CREATE TABLE account_usage (
    account_id INTEGER NOT NULL,
    month      TEXT    NOT NULL, -- YYYY-MM
    messages   INTEGER NOT NULL,
    PRIMARY KEY (account_id, month)
);
