-- Exchange Online (Microsoft Graph): a folder's sync state is its delta link (or
-- the next link of a round in progress), and each message Graph reports gets a
-- synthetic, increasing UID per (mailbox, folder), kept here, so that the
-- decision trail's uniqueness per (mailbox, folder, UIDVALIDITY, UID) holds for
-- Graph too. An item keeps its UID when the folder is read again (an expired
-- delta link). Kept in step with the other backend's 0010_graph_items.sql.
ALTER TABLE folder_sync ADD COLUMN sync_state TEXT;

CREATE TABLE graph_items (
    mailbox_id  TEXT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    folder      TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    uid         BIGINT NOT NULL,
    UNIQUE (mailbox_id, folder, item_id),
    UNIQUE (mailbox_id, folder, uid)
);
