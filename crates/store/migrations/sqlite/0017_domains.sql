-- Sender domains an account owns. A domain is usable for sending (MAIL FROM, HTTP send,
-- the webhook's sender, DKIM keys) only once verified: by DNS (the account published
-- `_sluice.<domain> TXT "sluice-verify=<token>"`), by a system admin vouching for it, or by
-- this migration. `accounts.allowed_domains` is no longer read: an account's allowed
-- domains are its verified rows here.
CREATE TABLE domains (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    domain       TEXT    NOT NULL, -- lower case, no trailing dot
    token        TEXT    NOT NULL, -- random; published as sluice-verify=<token>
    verified     INTEGER NOT NULL DEFAULT 0,
    verified_at  INTEGER,
    verified_how TEXT,             -- dns | admin | migration
    checks       TEXT    NOT NULL DEFAULT '{}', -- the last DNS check (SPF, DKIM, DMARC), JSON
    checked_at   INTEGER,
    created_at   INTEGER NOT NULL,
    UNIQUE (account_id, domain)
);
CREATE INDEX domains_domain ON domains (domain, verified);

-- Upgrades keep sending: every domain an account listed before is verified (`migration`).
INSERT INTO domains (account_id, domain, token, verified, verified_at, verified_how, created_at)
SELECT account_id, domain, lower(hex(randomblob(16))), 1, at, 'migration', at
FROM (
    SELECT DISTINCT a.id AS account_id, lower(trim(j.value)) AS domain, a.updated_at AS at
    FROM accounts a, json_each(a.allowed_domains) j
    WHERE j.type = 'text'
) listed
WHERE domain <> '';
