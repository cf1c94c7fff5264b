-- Every new message gets its `queued` event in the same statement's transaction, without
-- another round trip from the accept path.
CREATE TRIGGER messages_queued_event AFTER INSERT ON messages
BEGIN
    INSERT INTO events (message_id, account_id, kind, detail, created_at)
    VALUES (NEW.id, NEW.account_id, 'queued', '', NEW.created_at);
END;
