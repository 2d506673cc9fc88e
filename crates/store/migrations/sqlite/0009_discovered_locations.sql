-- Autodiscover: where a mailbox's servers were found, when its profile has
-- auto_discover. Locations are in the profile's syntax (imaps://host:993; for
-- Exchange the EWS URL in both); the source is srv, autoconfig or
-- autodiscover_v2. Kept in step with the other backend's 0009_discovered_locations.sql.
ALTER TABLE mailboxes ADD COLUMN discovered_incoming_location TEXT;
ALTER TABLE mailboxes ADD COLUMN discovered_outgoing_location TEXT;
ALTER TABLE mailboxes ADD COLUMN discovered_source TEXT;
ALTER TABLE mailboxes ADD COLUMN discovered_at TEXT;
