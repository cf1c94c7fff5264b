-- Every message event but `queued` goes into the webhook outbox of the account's endpoints
-- that subscribed to it, in the transaction that writes the event.
CREATE FUNCTION events_webhook_outbox() RETURNS trigger AS $$
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at, created_at, updated_at)
    SELECT w.id, NEW.id, 'pending', NEW.created_at, NEW.created_at, NEW.created_at
    FROM webhook_endpoints w
    WHERE w.enabled
      AND w.account_id = (SELECT account_id FROM messages WHERE id = NEW.message_id)
      AND (w.events LIKE '%"*"%' OR w.events LIKE '%"' || NEW.kind || '"%');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER events_webhook_outbox AFTER INSERT ON events
FOR EACH ROW WHEN (NEW.kind <> 'queued')
EXECUTE FUNCTION events_webhook_outbox();
