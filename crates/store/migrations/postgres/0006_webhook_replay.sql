-- Signatures of accepted webhook calls, so each is accepted once on every node.
CREATE TABLE webhook_signatures (
    signature  TEXT    PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
