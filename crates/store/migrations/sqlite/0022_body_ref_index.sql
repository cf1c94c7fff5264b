-- Start-up reads every `body_ref` to free spool space no row names (sqlite.rs,
-- `open_spool`). Without an index that is a scan of the whole messages table, which the
-- soak (issue P) saw take seconds once hundreds of thousands of delivered messages were
-- kept: seconds in which a restarted node refuses mail. Only rows with a spooled body
-- have an entry.
CREATE INDEX messages_body_ref ON messages (body_ref) WHERE body_ref IS NOT NULL;
