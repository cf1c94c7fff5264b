-- Sandbox mode: everything the account sends is captured (status `captured`), whatever its
-- rules and providers say, until someone turns it off on purpose (audited `sandbox_off`).
ALTER TABLE accounts ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT FALSE;
