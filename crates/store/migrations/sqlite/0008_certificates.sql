-- Certificates of an organization for server-to-server authentication with
-- Exchange Online, and the identity settings of a profile. Kept in step with
-- ../postgres/0008_certificates.sql.

CREATE TABLE certificates (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    subject             TEXT NOT NULL,
    -- SHA-1 of the DER in upper-case hex, as Microsoft Entra ID shows it.
    thumbprint          TEXT NOT NULL,
    -- SHA-256 of the DER in base64url: the x5t#S256 header of client assertions.
    x5t_s256            TEXT NOT NULL,
    not_before          TEXT NOT NULL,
    not_after           TEXT NOT NULL,
    key_bits            INTEGER NOT NULL,
    source              TEXT NOT NULL,
    certificate_pem     TEXT NOT NULL,
    -- The PKCS#8 PEM private key, sealed with the store key (crypto.rs); never
    -- selected into a model.
    private_key_enc     TEXT NOT NULL,
    -- When each expiry alert was raised: each once.
    alerted_30_days_at  TEXT,
    alerted_7_days_at   TEXT,
    alerted_expired_at  TEXT,
    created_at          TEXT NOT NULL,
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX certificates_name ON certificates (org_id, lower(name));
CREATE UNIQUE INDEX certificates_thumbprint ON certificates (org_id, thumbprint);
CREATE INDEX certificates_by_expiry ON certificates (not_after);

-- SQLite cannot add a two-column foreign key to an existing table: the column
-- references the certificate's id (so a certificate in use cannot be deleted),
-- and the triggers refuse a certificate of another organization, as the
-- (org_id, id) foreign key does on PostgreSQL.
ALTER TABLE email_server_profiles ADD COLUMN certificate_id TEXT REFERENCES certificates (id);
ALTER TABLE email_server_profiles ADD COLUMN authority_url TEXT;
ALTER TABLE email_server_profiles ADD COLUMN graph_url TEXT;

CREATE TRIGGER email_server_profiles_certificate_insert
BEFORE INSERT ON email_server_profiles
WHEN NEW.certificate_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.id = NEW.certificate_id AND c.org_id = NEW.org_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

CREATE TRIGGER email_server_profiles_certificate_update
BEFORE UPDATE OF certificate_id, org_id ON email_server_profiles
WHEN NEW.certificate_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.id = NEW.certificate_id AND c.org_id = NEW.org_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;
