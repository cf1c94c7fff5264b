-- Optional IMAP / POP3 servers an admin keeps to check (the panel's protocol pages); not
-- part of delivery. The password is sealed under the master key.
CREATE TABLE mailbox_servers (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT    NOT NULL,
    protocol        TEXT    NOT NULL,
    host            TEXT    NOT NULL,
    port            BIGINT  NOT NULL,
    security        TEXT    NOT NULL,
    username        TEXT    NOT NULL,
    password_sealed TEXT    NOT NULL,
    skip_tls_verify BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL
);
