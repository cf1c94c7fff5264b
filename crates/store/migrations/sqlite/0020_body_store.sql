-- Large bodies live in the body store (issue N): the spool's segment files beside the
-- database. `body_ref` is the store's reference to the content; `body` then holds only the
-- head this relay added (Received, staging headers). NULL: `body` is the whole message,
-- as for every row written before.
ALTER TABLE messages ADD COLUMN body_ref BLOB;
