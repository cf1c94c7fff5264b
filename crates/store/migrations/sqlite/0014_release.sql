-- A captured message released through a chosen provider goes there, not by the routing rules.
ALTER TABLE messages ADD COLUMN release_provider_id INTEGER;
