-- Every new message gets its `queued` event in the same statement's transaction, without
-- another round trip from the accept path.
CREATE FUNCTION messages_queued_event() RETURNS trigger AS $$
BEGIN
    INSERT INTO events (message_id, account_id, kind, detail, created_at)
    VALUES (NEW.id, NEW.account_id, 'queued', '', NEW.created_at);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER messages_queued_event AFTER INSERT ON messages
FOR EACH ROW EXECUTE FUNCTION messages_queued_event();
