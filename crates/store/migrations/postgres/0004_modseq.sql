-- CONDSTORE (RFC 7162): the folder's HIGHESTMODSEQ at the last run, so that a
-- folder where nothing changed costs one SELECT, and flag changes (a tracking
-- keyword added by hand) are searched only among messages changed since.
ALTER TABLE folder_sync ADD COLUMN highestmodseq BIGINT;
