-- SMTP AUTH logins of an account, each with its own password.
CREATE TABLE smtp_credentials (
    id            BIGSERIAL PRIMARY KEY,
    account_id    BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX smtp_credentials_account ON smtp_credentials (account_id);

-- Messages accepted per account per calendar month (UTC), kept in the enqueue transaction.
CREATE TABLE account_usage (
    account_id BIGINT NOT NULL,
    month      TEXT    NOT NULL, -- YYYY-MM
    messages   BIGINT NOT NULL,
    PRIMARY KEY (account_id, month)
);
