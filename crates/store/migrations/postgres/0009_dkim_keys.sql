-- DKIM keys per account domain. The private key is sealed (AES-256-GCM, master key).
CREATE TABLE dkim_keys (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    domain      TEXT    NOT NULL, -- lower case
    selector    TEXT    NOT NULL,
    algorithm   TEXT    NOT NULL, -- rsa-sha256 | ed25519-sha256
    private_key TEXT    NOT NULL, -- sealed PKCS#8 DER
    dns_record  TEXT    NOT NULL, -- the TXT value to publish
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL,
    UNIQUE (domain, selector)
);
CREATE INDEX dkim_keys_account ON dkim_keys (account_id, domain);
