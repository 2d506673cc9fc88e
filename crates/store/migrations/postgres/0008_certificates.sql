-- Certificates of an organization for server-to-server authentication with
-- Exchange Online, and the identity settings of a profile. Kept in step with
-- ../sqlite/0008_certificates.sql.

CREATE TABLE certificates (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    subject             TEXT NOT NULL,
    -- SHA-1 of the DER in upper-case hex, as Microsoft Entra ID shows it.
    thumbprint          TEXT NOT NULL,
    -- SHA-256 of the DER in base64url: the x5t#S256 header of client assertions.
    x5t_s256            TEXT NOT NULL,
    not_before          TIMESTAMPTZ NOT NULL,
    not_after           TIMESTAMPTZ NOT NULL,
    key_bits            BIGINT NOT NULL,
    source              TEXT NOT NULL,
    certificate_pem     TEXT NOT NULL,
    -- The PKCS#8 PEM private key, sealed with the store key (crypto.rs); never
    -- selected into a model.
    private_key_enc     TEXT NOT NULL,
    -- When each expiry alert was raised: each once.
    alerted_30_days_at  TIMESTAMPTZ,
    alerted_7_days_at   TIMESTAMPTZ,
    alerted_expired_at  TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX certificates_name ON certificates (org_id, lower(name));
CREATE UNIQUE INDEX certificates_thumbprint ON certificates (org_id, thumbprint);
CREATE INDEX certificates_by_expiry ON certificates (not_after);

ALTER TABLE email_server_profiles ADD COLUMN certificate_id TEXT;
ALTER TABLE email_server_profiles ADD COLUMN authority_url TEXT;
ALTER TABLE email_server_profiles ADD COLUMN graph_url TEXT;
ALTER TABLE email_server_profiles ADD CONSTRAINT email_server_profiles_certificate
    FOREIGN KEY (org_id, certificate_id) REFERENCES certificates (org_id, id);
