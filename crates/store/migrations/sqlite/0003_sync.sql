-- Server-side synchronization of email: the engine's state per mailbox and per
-- folder, the decision trail, the mailboxes holding each email, attachments, and
-- folder-level tracking. Kept in step with ../postgres/0003_sync.sql.

ALTER TABLE emails ADD COLUMN references_header TEXT;
ALTER TABLE emails ADD COLUMN conversation_key TEXT;
ALTER TABLE emails ADD COLUMN normalized_subject TEXT;
ALTER TABLE emails ADD COLUMN body_html TEXT;
ALTER TABLE emails ADD COLUMN fingerprint TEXT;
ALTER TABLE emails ADD COLUMN correlated_email_id TEXT;
ALTER TABLE emails ADD COLUMN send_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emails ADD COLUMN next_attempt_at TEXT;
CREATE UNIQUE INDEX emails_fingerprint ON emails (org_id, fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX emails_tracking_token ON emails (org_id, tracking_token);
CREATE INDEX emails_conversation ON emails (org_id, conversation_key);
CREATE INDEX emails_subject ON emails (org_id, normalized_subject);
CREATE INDEX emails_outbox ON emails (status, next_attempt_at);

ALTER TABLE mailboxes ADD COLUMN track_sent_items INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN lease_owner TEXT;
ALTER TABLE mailboxes ADD COLUMN lease_expires_at TEXT;
ALTER TABLE mailboxes ADD COLUMN next_incoming_at TEXT;
ALTER TABLE mailboxes ADD COLUMN next_outgoing_at TEXT;
ALTER TABLE mailboxes ADD COLUMN incoming_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN outgoing_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN idle_runs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN incoming_error TEXT;
ALTER TABLE mailboxes ADD COLUMN outgoing_error TEXT;
ALTER TABLE mailboxes ADD COLUMN last_incoming_success_at TEXT;
ALTER TABLE mailboxes ADD COLUMN last_outgoing_success_at TEXT;
ALTER TABLE mailboxes ADD COLUMN token_number INTEGER;
ALTER TABLE mailboxes ADD COLUMN token_counter INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX mailboxes_token_number ON mailboxes (org_id, token_number) WHERE token_number IS NOT NULL;
CREATE INDEX mailboxes_due_incoming ON mailboxes (next_incoming_at);

-- Where each mailbox stands in each folder: a UIDVALIDITY change restarts the
-- folder from UID 0 (duplicates are then caught by Message-ID).
CREATE TABLE folder_sync (
    mailbox_id      TEXT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder          TEXT NOT NULL,
    uidvalidity     INTEGER NOT NULL,
    last_uid        INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, folder)
);

-- The decision trail: one row for every message the engine looked at.
CREATE TABLE message_decisions (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mailbox_id          TEXT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder              TEXT NOT NULL,
    uidvalidity         INTEGER NOT NULL,
    uid                 INTEGER NOT NULL,
    message_id          TEXT,
    subject             TEXT,
    from_address        TEXT,
    received_at         TEXT,
    outcome             TEXT NOT NULL,
    rule                TEXT NOT NULL,
    reason              TEXT NOT NULL,
    correlation_method  TEXT,
    correlated_email_id TEXT,
    email_id            TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    error               TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (mailbox_id, folder, uidvalidity, uid)
);
CREATE INDEX message_decisions_by_email ON message_decisions (email_id);
CREATE INDEX message_decisions_by_mailbox ON message_decisions (org_id, mailbox_id, id);

-- One email, many mailboxes: which mailboxes hold a tracked email.
CREATE TABLE email_mailboxes (
    email_id    TEXT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    mailbox_id  TEXT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (email_id, mailbox_id)
);

CREATE TABLE email_attachments (
    email_id        TEXT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    file_name       TEXT,
    content_type    TEXT NOT NULL,
    size            INTEGER NOT NULL,
    -- FALSE when the attachment was over the organization's size limit: recorded,
    -- not stored.
    stored          INTEGER NOT NULL,
    content         BLOB,
    PRIMARY KEY (email_id, position)
);

-- Folder-level tracking: mail in this folder is tracked and regards this record.
CREATE TABLE tracked_folders (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mailbox_id      TEXT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder          TEXT NOT NULL,
    regarding_type  TEXT NOT NULL,
    regarding_id    TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (mailbox_id, folder)
);

ALTER TABLE email_settings ADD COLUMN similarity_correlation INTEGER NOT NULL DEFAULT 0;

ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE job_items ADD COLUMN incoming_status TEXT;
ALTER TABLE job_items ADD COLUMN outgoing_status TEXT;
ALTER TABLE job_items ADD COLUMN act_status TEXT;
