-- Large bodies live in the body store (issue N): the spool's segment files beside the
-- database. `body_ref` is the store's reference to the content; `body` then holds only the
-- head this relay added (Received, staging headers). NULL: `body` is the whole message,
-- as for every row written before.
ALTER TABLE messages ADD COLUMN body_ref BLOB;
-- The PostgreSQL chunk table's body a row names; always NULL here (the spool finds its
-- orphans from `body_ref` at start). Present so both backends share one INSERT.
ALTER TABLE messages ADD COLUMN body_id INTEGER;
