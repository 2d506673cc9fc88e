-- Cluster mode: the nodes sharing this database and which of them is responsible
-- for each mailbox. Kept in step with ../sqlite/0014_cluster.sql.

-- One row per engine that ever ran on this database. A node is live while its
-- heartbeat is younger than the lease time and it has not stopped.
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    version       TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    heartbeat_at  TIMESTAMPTZ NOT NULL,
    stopped_at    TIMESTAMPTZ
);

-- The node that schedules the mailbox's work and watches it for push, until
-- `assigned_until` (renewed by that node's heartbeat). Not the run lease
-- (`lease_owner`), which is held only while a run is in flight.
ALTER TABLE mailboxes ADD COLUMN assigned_node TEXT;
ALTER TABLE mailboxes ADD COLUMN assigned_until TIMESTAMPTZ;
CREATE INDEX mailboxes_assigned_node ON mailboxes (assigned_node);
