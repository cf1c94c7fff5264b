-- Weighted split of a rule: JSON array of {provider_id, weight}.
ALTER TABLE routing_rules ADD COLUMN split TEXT NOT NULL DEFAULT '[]';
-- Which configured provider carried an attempt (NULL: the config's default) and the id it gave.
ALTER TABLE delivery_attempts ADD COLUMN provider_id BIGINT;
ALTER TABLE delivery_attempts ADD COLUMN provider_message_id TEXT;
CREATE INDEX delivery_attempts_provider_message ON delivery_attempts (provider_message_id);
