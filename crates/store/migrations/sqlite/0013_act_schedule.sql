-- The ACT workload's schedule and health on each mailbox, as incoming and outgoing
-- have theirs (0003_sync.sql), and where its change feed of records stands.
-- Kept in step with ../postgres/0013_act_schedule.sql.

ALTER TABLE mailboxes ADD COLUMN next_act_at TEXT;
ALTER TABLE mailboxes ADD COLUMN act_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN act_error TEXT;
ALTER TABLE mailboxes ADD COLUMN last_act_success_at TEXT;
-- When the last complete ACT run started: an unlinked record updated after it is
-- new to the sync. NULL: every record counts as new (the first run).
ALTER TABLE mailboxes ADD COLUMN act_synced_from TEXT;
-- The owner's sync filters that run applied (JSON): other filters make every
-- record count as new again.
ALTER TABLE mailboxes ADD COLUMN act_filters_json TEXT;
CREATE INDEX mailboxes_due_act ON mailboxes (next_act_at);
