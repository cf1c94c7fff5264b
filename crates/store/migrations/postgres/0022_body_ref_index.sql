-- The SQLite twin indexes `body_ref` for the spool's start-up read. PostgreSQL keeps
-- bodies in `message_body_chunks` and already has `messages_body_id` (0020): nothing to
-- do; the step exists so both backends keep the same numbers.
SELECT 1;
