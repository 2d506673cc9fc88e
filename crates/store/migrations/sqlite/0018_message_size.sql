-- The organization's message size limit for mail pushed to the inbound listener
-- (the email router route): larger messages are refused with 552. 25600 KB is
-- 25 MB, the listener's own default.
-- Kept in step with ../postgres/0018_message_size.sql.

ALTER TABLE email_settings ADD COLUMN max_message_size_kb INTEGER NOT NULL DEFAULT 25600;
