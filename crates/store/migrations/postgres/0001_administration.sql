-- The administration model: organizations, their users and queues with one mailbox
-- each, email-enabled records, email server profiles, activities, alerts, jobs and
-- API tokens. Kept in step with ../sqlite/0001_administration.sql.
-- Every child row carries org_id, and references between records go through
-- (org_id, id) pairs, so the database itself refuses a link across organizations.

CREATE TABLE organizations (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    default_tenant_id   TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    full_name       TEXT NOT NULL,
    email           TEXT,
    role            TEXT NOT NULL DEFAULT 'user',
    tracking_filter TEXT NOT NULL DEFAULT 'replies',
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id)
);

CREATE TABLE queues (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    email           TEXT,
    description     TEXT,
    tracking_filter TEXT NOT NULL DEFAULT 'replies',
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id)
);

-- Contacts, accounts and leads share one shape; kind says which.
CREATE TABLE parties (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    email       TEXT,
    phone       TEXT,
    company     TEXT,
    account_id  TEXT,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, account_id) REFERENCES parties (org_id, id)
);
CREATE INDEX parties_by_kind ON parties (org_id, kind, id);
CREATE INDEX parties_by_email ON parties (org_id, lower(email));

CREATE TABLE email_server_profiles (
    id                              TEXT PRIMARY KEY,
    org_id                          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                            TEXT NOT NULL,
    description                     TEXT,
    server_type                     TEXT NOT NULL,
    owner_id                        TEXT,
    use_default_tenant_id           BOOLEAN NOT NULL DEFAULT TRUE,
    tenant_id                       TEXT,
    application_id                  TEXT,
    auto_discover                   BOOLEAN NOT NULL DEFAULT FALSE,
    incoming_server_location        TEXT,
    outgoing_server_location        TEXT,
    process_email_from              TIMESTAMPTZ,
    min_polling_interval_minutes    BIGINT NOT NULL DEFAULT 0,
    max_concurrent_connections      BIGINT NOT NULL DEFAULT 10,
    move_failed_to_undeliverable    BOOLEAN NOT NULL DEFAULT FALSE,
    allow_plaintext                 BOOLEAN NOT NULL DEFAULT FALSE,
    authentication_type             TEXT NOT NULL,
    incoming_username               TEXT,
    use_same_settings_for_outgoing  BOOLEAN NOT NULL DEFAULT TRUE,
    outgoing_username               TEXT,
    -- Secrets, sealed with the store key (see crypto.rs); never selected for the API.
    incoming_password_enc           TEXT,
    outgoing_password_enc           TEXT,
    client_secret_enc               TEXT,
    created_at                      TIMESTAMPTZ NOT NULL,
    updated_at                      TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, owner_id) REFERENCES users (org_id, id)
);
CREATE UNIQUE INDEX email_server_profiles_name ON email_server_profiles (org_id, lower(name));

CREATE TABLE email_settings (
    org_id                                  TEXT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    default_profile_id                      TEXT,
    default_incoming_method                 TEXT NOT NULL,
    default_outgoing_method                 TEXT NOT NULL,
    default_act_method                      TEXT NOT NULL,
    process_email_for_approved_users_only   BOOLEAN NOT NULL DEFAULT TRUE,
    process_email_for_approved_queues_only  BOOLEAN NOT NULL DEFAULT TRUE,
    tracking_token_enabled                  BOOLEAN NOT NULL DEFAULT TRUE,
    tracking_token_prefix                   TEXT NOT NULL DEFAULT 'CRM:',
    tracking_token_base_number              BIGINT NOT NULL DEFAULT 0,
    tracking_token_user_digits              BIGINT NOT NULL DEFAULT 3,
    tracking_token_counter_digits           BIGINT NOT NULL DEFAULT 4,
    max_attachment_size_kb                  BIGINT NOT NULL DEFAULT 5120,
    email_between_users                     TEXT NOT NULL DEFAULT 'one_activity',
    FOREIGN KEY (org_id, default_profile_id) REFERENCES email_server_profiles (org_id, id)
);

CREATE TABLE mailboxes (
    id                      TEXT PRIMARY KEY,
    org_id                  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    owner_type              TEXT NOT NULL,
    owner_id                TEXT NOT NULL,
    email_address           TEXT,
    profile_id              TEXT,
    incoming_method         TEXT NOT NULL,
    outgoing_method         TEXT NOT NULL,
    act_method              TEXT NOT NULL,
    approval_status         TEXT NOT NULL DEFAULT 'empty',
    incoming_status         TEXT NOT NULL DEFAULT 'not_run',
    outgoing_status         TEXT NOT NULL DEFAULT 'not_run',
    act_status              TEXT NOT NULL DEFAULT 'not_run',
    incoming_enabled        BOOLEAN NOT NULL DEFAULT FALSE,
    outgoing_enabled        BOOLEAN NOT NULL DEFAULT FALSE,
    act_enabled             BOOLEAN NOT NULL DEFAULT FALSE,
    process_email_from      TIMESTAMPTZ,
    sync_with_this_org_only BOOLEAN NOT NULL DEFAULT FALSE,
    username                TEXT,
    password_enc            TEXT,
    tested_at               TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id),
    UNIQUE (owner_type, owner_id),
    FOREIGN KEY (org_id, profile_id) REFERENCES email_server_profiles (org_id, id)
);
CREATE INDEX mailboxes_by_profile ON mailboxes (org_id, profile_id);

CREATE TABLE emails (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    subject             TEXT NOT NULL DEFAULT '',
    body                TEXT,
    direction           TEXT NOT NULL,
    status              TEXT NOT NULL,
    message_id          TEXT,
    in_reply_to         TEXT,
    tracking_token      TEXT,
    correlation_method  TEXT,
    regarding_type      TEXT,
    regarding_id        TEXT,
    mailbox_id          TEXT,
    status_reason       TEXT,
    sent_at             TIMESTAMPTZ,
    received_at         TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id)
);
-- One Message-ID is one email activity in an organization.
CREATE UNIQUE INDEX emails_message_id ON emails (org_id, message_id) WHERE message_id IS NOT NULL;

CREATE TABLE email_parties (
    email_id    TEXT NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    role        TEXT NOT NULL,
    address     TEXT NOT NULL,
    party_type  TEXT,
    party_id    TEXT,
    PRIMARY KEY (email_id, position)
);

CREATE TABLE appointments (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    location        TEXT,
    body            TEXT,
    start           TIMESTAMPTZ NOT NULL,
    "end"           TIMESTAMPTZ NOT NULL,
    all_day         BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT NOT NULL,
    owner_id        TEXT,
    organizer       TEXT,
    regarding_type  TEXT,
    regarding_id    TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (org_id, owner_id) REFERENCES users (org_id, id)
);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    description     TEXT,
    start           TIMESTAMPTZ,
    due             TIMESTAMPTZ,
    completed_at    TIMESTAMPTZ,
    priority        TEXT NOT NULL,
    status          TEXT NOT NULL,
    owner_id        TEXT,
    regarding_type  TEXT,
    regarding_id    TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (org_id, owner_id) REFERENCES users (org_id, id)
);

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    mailbox_id  TEXT,
    profile_id  TEXT,
    item_ref    TEXT,
    message     TEXT NOT NULL,
    fix         TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, id)
);
CREATE INDEX alerts_by_mailbox ON alerts (org_id, mailbox_id);

CREATE TABLE alert_recipients (
    alert_id    TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    PRIMARY KEY (alert_id, user_id)
);
CREATE INDEX alert_recipients_by_user ON alert_recipients (user_id);

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    profile_id      TEXT,
    progress_done   BIGINT NOT NULL DEFAULT 0,
    progress_total  BIGINT NOT NULL DEFAULT 0,
    error           TEXT,
    created_by      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX jobs_by_status ON jobs (status, created_at);

CREATE TABLE job_items (
    job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    mailbox_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT,
    PRIMARY KEY (job_id, position)
);

-- API tokens are stored as SHA-256 hashes; the token itself is shown once.
-- org_id and user_id are NULL for the system administrator's token.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    org_id      TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
