-- Forward mailboxes: a queue's mailbox that receives copies forwarded by many
-- users; each copy is tracked as its original recipient's (crates/domain/src/
-- ingest/forward.rs), and may be deleted from the forward mailbox once its
-- decision is written.
-- Kept in step with ../postgres/0017_forward.sql.

ALTER TABLE mailboxes ADD COLUMN is_forward_mailbox INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN delete_after_processing INTEGER NOT NULL DEFAULT 0;
