-- Exchange Online change notifications: the Microsoft Graph subscription kept on
-- a folder of a mailbox (the Inbox), so that new mail wakes the mailbox at once;
-- polling stays the safety net. A row without a subscription_id is one to
-- create (never created, removed by Graph, or a failed attempt to retry at
-- retry_at). The clientState secret that authenticates Graph's notifications is
-- sealed with the store key (crypto.rs) and never selected into a model. The
-- lease lets one node at a time create, renew or delete the subscription.
-- Kept in step with the other backend's 0011_graph_subscriptions.sql.

CREATE TABLE graph_subscriptions (
    org_id                  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mailbox_id              TEXT NOT NULL,
    -- The folder subscribed to: a well-known name (inbox) or a folder id.
    folder                  TEXT NOT NULL,
    -- Graph's subscription id; NULL while there is none.
    subscription_id         TEXT,
    client_state_enc        TEXT,
    expires_at              TEXT,
    -- The lifetime Graph granted at the last creation or renewal, in minutes.
    lifetime_minutes        INTEGER NOT NULL DEFAULT 0,
    -- Graph sent reauthorizationRequired: renew at once.
    renew_requested         BOOLEAN NOT NULL DEFAULT FALSE,
    -- After a failure: no new attempt before this time.
    retry_at                TEXT,
    last_error              TEXT,
    -- Notifications naming this subscription whose clientState did not match.
    rejected_notifications  INTEGER NOT NULL DEFAULT 0,
    lease_owner             TEXT,
    lease_expires_at        TEXT,
    updated_at              TEXT NOT NULL,
    PRIMARY KEY (org_id, mailbox_id, folder),
    FOREIGN KEY (org_id, mailbox_id) REFERENCES mailboxes (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX graph_subscriptions_by_id ON graph_subscriptions (org_id, subscription_id);
