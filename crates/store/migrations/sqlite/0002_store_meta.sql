-- Facts about the store itself, such as a value sealed with the store key that
-- proves at start-up that the configured key is the one the secrets were sealed with.
CREATE TABLE store_meta (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
