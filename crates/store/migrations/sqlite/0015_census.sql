-- The completeness census of each mailbox: when it runs next, when the last one
-- finished and how many gaps (messages on the server, in a processed folder, that
-- were never decided) it found and back-filled. A row is made at the mailbox's
-- first successful incoming run; the first census is due one interval later.
-- Kept in step with ../postgres/0015_census.sql.

CREATE TABLE mailbox_census (
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mailbox_id          TEXT NOT NULL,
    next_census_at      TEXT NOT NULL,
    -- When the last successful census finished; NULL before the first.
    last_census_at      TEXT,
    -- What the last successful census found and back-filled.
    census_gaps         INTEGER NOT NULL DEFAULT 0,
    census_backfilled   INTEGER NOT NULL DEFAULT 0,
    -- Failed censuses in a row (each waits longer, up to the interval), and why
    -- the last one failed.
    census_failures     INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (org_id, mailbox_id),
    FOREIGN KEY (org_id, mailbox_id) REFERENCES mailboxes (org_id, id) ON DELETE CASCADE
);
