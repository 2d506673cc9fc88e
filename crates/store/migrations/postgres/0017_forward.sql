-- Forward mailboxes: a queue's mailbox that receives copies forwarded by many
-- users; each copy is tracked as its original recipient's (crates/domain/src/
-- ingest/forward.rs), and may be deleted from the forward mailbox once its
-- decision is written.
-- Kept in step with ../sqlite/0017_forward.sql.

ALTER TABLE mailboxes ADD COLUMN is_forward_mailbox BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE mailboxes ADD COLUMN delete_after_processing BOOLEAN NOT NULL DEFAULT FALSE;
