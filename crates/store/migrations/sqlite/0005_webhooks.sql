-- Webhooks for business apps. An event is written in the same transaction as the
-- change it reports, with one delivery per matching enabled subscription; the
-- engine posts the deliveries, in event order per (subscription, order_key).

CREATE TABLE webhook_subscriptions (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    description TEXT,
    -- Event type names separated by single spaces, e.g. 'email.tracked alert.raised'.
    event_types TEXT NOT NULL,
    -- The whsec_ signing secret, sealed (crypto.rs).
    secret_enc  TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (org_id, id)
);
CREATE INDEX webhook_subscriptions_by_org ON webhook_subscriptions (org_id, enabled);

CREATE TABLE webhook_events (
    -- The global order of events; deliveries of one order key follow it.
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The public id, sent as webhook-id: msg_ and a UUID v7.
    id          TEXT NOT NULL UNIQUE,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    event_type  TEXT NOT NULL,
    mailbox_id  TEXT,
    -- The mailbox id, '' for organization-level events, or a key of its own (a test ping).
    order_key   TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    subscription_id     TEXT NOT NULL,
    event_seq           INTEGER NOT NULL REFERENCES webhook_events (seq) ON DELETE CASCADE,
    org_id              TEXT NOT NULL,
    order_key           TEXT NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending',
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT NOT NULL,
    claimed_until       TEXT,
    -- The node holding the claim: a restarted node releases its own at once.
    claimed_by          TEXT,
    last_status_code    INTEGER,
    last_error          TEXT,
    delivered_at        TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (subscription_id, event_seq),
    FOREIGN KEY (org_id, subscription_id) REFERENCES webhook_subscriptions (org_id, id) ON DELETE CASCADE
);
-- The claim: the first open delivery of each (subscription, order key), when due.
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (subscription_id, order_key, event_seq)
    WHERE status IN ('pending', 'delivering');
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'delivering');
-- The delivery log, newest first.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (org_id, subscription_id, event_seq);

-- The delivery log: every attempt with its answer.
CREATE TABLE webhook_attempts (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    event_seq       INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    attempted_at    TEXT NOT NULL,
    status_code     INTEGER,
    error           TEXT,
    duration_ms     INTEGER NOT NULL,
    FOREIGN KEY (subscription_id, event_seq) REFERENCES webhook_deliveries (subscription_id, event_seq) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (subscription_id, event_seq, attempt);
