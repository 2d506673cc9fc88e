-- Appointments, contacts and tasks (ACT): the records' sync fields, the mapping
-- table between records and a mailbox's server items, the collections (calendars,
-- task lists, address books) with their sync tokens, and the ACT decision trail.
-- Kept in step with ../postgres/0012_act.sql.
--
-- Every record the sync touches carries `version`, bumped by every write (the API's
-- and the sync's), so that a sync write names the version it read and loses a race
-- instead of overwriting a change. A deleted record stays as a tombstone
-- (`deleted_at` set): the sync sees it and deletes the server item; the API no
-- longer shows it. JSON columns hold the act model's types (act/model.rs) as text.

ALTER TABLE appointments ADD COLUMN ical_uid TEXT;
-- The organizer's display name (organizer holds the address).
ALTER TABLE appointments ADD COLUMN organizer_name TEXT;
-- The IANA zone the appointment was scheduled in; NULL: UTC.
ALTER TABLE appointments ADD COLUMN time_zone TEXT;
ALTER TABLE appointments ADD COLUMN attendees_json TEXT NOT NULL DEFAULT '[]';
-- NULL: a single appointment, not a series.
ALTER TABLE appointments ADD COLUMN recurrence_json TEXT;
ALTER TABLE appointments ADD COLUMN exceptions_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE appointments ADD COLUMN categories_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE appointments ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE appointments ADD COLUMN deleted_at TEXT;
-- One iCalendar UID is one live appointment per organization; a tombstone keeps
-- its UID without blocking a record created again from the server.
CREATE UNIQUE INDEX appointments_ical_uid ON appointments (org_id, ical_uid)
    WHERE ical_uid IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX appointments_by_owner ON appointments (org_id, owner_id);

ALTER TABLE tasks ADD COLUMN ical_uid TEXT;
ALTER TABLE tasks ADD COLUMN percent_complete INTEGER;
ALTER TABLE tasks ADD COLUMN categories_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN deleted_at TEXT;
CREATE UNIQUE INDEX tasks_ical_uid ON tasks (org_id, ical_uid)
    WHERE ical_uid IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX tasks_by_owner ON tasks (org_id, owner_id);

-- SQLite cannot add a two-column foreign key to an existing table: owner_id
-- references the user's id, and the triggers refuse a user of another
-- organization, as the (org_id, id) foreign key does on PostgreSQL.
ALTER TABLE parties ADD COLUMN owner_id TEXT REFERENCES users (id);
ALTER TABLE parties ADD COLUMN given_name TEXT;
ALTER TABLE parties ADD COLUMN family_name TEXT;
ALTER TABLE parties ADD COLUMN job_title TEXT;
-- Further emails, phones and postal addresses, the note and the categories.
ALTER TABLE parties ADD COLUMN details_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE parties ADD COLUMN ical_uid TEXT;
ALTER TABLE parties ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE parties ADD COLUMN deleted_at TEXT;
CREATE UNIQUE INDEX parties_ical_uid ON parties (org_id, kind, ical_uid)
    WHERE ical_uid IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX parties_by_owner ON parties (org_id, owner_id);

CREATE TRIGGER parties_owner_insert
BEFORE INSERT ON parties
WHEN NEW.owner_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.owner_id AND u.org_id = NEW.org_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

CREATE TRIGGER parties_owner_update
BEFORE UPDATE OF owner_id, org_id ON parties
WHEN NEW.owner_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.owner_id AND u.org_id = NEW.org_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

-- A user's ACT sync filters (act/filters.rs) as JSON; NULL: the defaults.
ALTER TABLE users ADD COLUMN sync_filters_json TEXT;

-- What a record leaving a user's filters does on the server, and what a task
-- deleted on the server does to its record (planner.rs).
ALTER TABLE email_settings ADD COLUMN act_leaving_filters TEXT NOT NULL DEFAULT 'delete_on_server';
ALTER TABLE email_settings ADD COLUMN act_task_deleted_on_server TEXT NOT NULL DEFAULT 'delete_record';

-- The CalDAV/CardDAV base URL of an imap_smtp profile's mail system.
ALTER TABLE email_server_profiles ADD COLUMN dav_location TEXT;

-- One record linked to one server item of a mailbox, with both sides' versions and
-- fingerprints when they were last in step, and the last synced item (the base of
-- a three-way merge). record_id names a row of appointments, tasks or parties by
-- kind; records are never deleted outright (tombstones), so it stays meaningful.
CREATE TABLE act_links (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mailbox_id          TEXT NOT NULL,
    kind                TEXT NOT NULL,
    record_id           TEXT NOT NULL,
    -- The calendar, task list or address book holding the item.
    collection_href     TEXT NOT NULL,
    -- The item's href (CalDAV, CardDAV) or id (Exchange).
    server_href         TEXT NOT NULL,
    server_uid          TEXT,
    record_version      INTEGER NOT NULL,
    record_fingerprint  TEXT NOT NULL,
    -- The ETag or change key.
    server_etag         TEXT,
    server_fingerprint  TEXT NOT NULL,
    snapshot_json       TEXT,
    last_error          TEXT,
    last_error_at       TEXT,
    synced_at           TEXT NOT NULL,
    UNIQUE (mailbox_id, kind, record_id),
    UNIQUE (mailbox_id, server_href),
    FOREIGN KEY (org_id, mailbox_id) REFERENCES mailboxes (org_id, id) ON DELETE CASCADE
);
CREATE INDEX act_links_by_record ON act_links (org_id, kind, record_id);

-- The collections of a mailbox, with the sync token of the last complete
-- sync-collection (or delta) round; tracked: items found here come into the store.
CREATE TABLE act_collections (
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mailbox_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    href        TEXT NOT NULL,
    sync_token  TEXT,
    tracked     INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, kind, href),
    FOREIGN KEY (org_id, mailbox_id) REFERENCES mailboxes (org_id, id) ON DELETE CASCADE
);

-- The ACT decision trail: every action the planner chose for an item of a
-- mailbox, why, and how its execution went. The email trail (message_decisions)
-- is keyed by folder and UID, which ACT items do not have.
CREATE TABLE act_decisions (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    mailbox_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    record_id   TEXT,
    server_href TEXT,
    -- The action's label, e.g. update_server or conflict(merge, organizer=store).
    action      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    -- done, skipped (a lost race: planned again next run) or failed.
    outcome     TEXT NOT NULL,
    error       TEXT,
    created_at  TEXT NOT NULL,
    FOREIGN KEY (org_id, mailbox_id) REFERENCES mailboxes (org_id, id) ON DELETE CASCADE
);
CREATE INDEX act_decisions_by_mailbox ON act_decisions (org_id, mailbox_id, id);
