-- Mail pushed to mailbridge by the inbound SMTP/LMTP listener (the "email router"
-- route), one row per accepted recipient. A row is written, for all recipients of
-- a message in one transaction, before the client is told 250; the processing
-- worker claims pending rows, runs them through the incoming pipeline and marks
-- them processed. Kept in step with ../sqlite/0016_inbound.sql.

CREATE TABLE inbound_messages (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mailbox_id      TEXT NOT NULL,
    -- The message's number in the mailbox's "router" folder (the UID the
    -- pipeline records its decision under), from inbound_sequences.
    seq             BIGINT NOT NULL,
    -- The message as received, after dot-unstuffing.
    raw             BYTEA NOT NULL,
    -- The SMTP reverse-path; empty for the null path <> (bounces).
    envelope_from   TEXT NOT NULL DEFAULT '',
    -- The RCPT TO address as given (it may carry a +tag).
    recipient       TEXT NOT NULL,
    -- The plus-address tag, naming the record the message is regarding.
    tag             TEXT,
    client_address  TEXT NOT NULL DEFAULT '',
    received_at     TIMESTAMPTZ NOT NULL,
    -- pending, processed or failed.
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- A claim by a node's worker; one that outlived its node expires.
    claimed_until   TIMESTAMPTZ,
    claimed_by      TEXT,
    last_error      TEXT,
    processed_at    TIMESTAMPTZ,
    UNIQUE (org_id, mailbox_id, seq),
    FOREIGN KEY (org_id, mailbox_id) REFERENCES mailboxes (org_id, id) ON DELETE CASCADE
);
CREATE INDEX inbound_messages_open ON inbound_messages (status, received_at);

-- The last seq given out per mailbox; never reused, even when rows are deleted.
CREATE TABLE inbound_sequences (
    org_id          TEXT NOT NULL,
    mailbox_id      TEXT NOT NULL,
    last_seq        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, mailbox_id),
    FOREIGN KEY (org_id, mailbox_id) REFERENCES mailboxes (org_id, id) ON DELETE CASCADE
);
