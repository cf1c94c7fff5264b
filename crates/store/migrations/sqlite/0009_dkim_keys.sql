-- DKIM keys per account domain. The private key is sealed (AES-256-GCM, master key).
CREATE TABLE dkim_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    domain      TEXT    NOT NULL, -- lower case
    selector    TEXT    NOT NULL,
    algorithm   TEXT    NOT NULL, -- rsa-sha256 | ed25519-sha256
    private_key TEXT    NOT NULL, -- sealed PKCS#8 DER
    dns_record  TEXT    NOT NULL, -- the TXT value to publish
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    UNIQUE (domain, selector)
);
CREATE INDEX dkim_keys_account ON dkim_keys (account_id, domain);
