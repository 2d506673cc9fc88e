//! Email server profiles. Their secrets are sealed with the store key, written in
//! their own columns and never selected into the model: the API can only learn
//! whether each secret is set.

use mailbridge_domain::ids::new_id;
use mailbridge_domain::profile::{EmailServerProfile, ProfileSecretsSet, ProfileSettings};
use mailbridge_domain::secret::Secret;

use crate::{Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

const SELECT: &str = "SELECT t.id, t.org_id, t.name, t.description, t.server_type, t.owner_id,
        t.use_default_tenant_id, t.tenant_id, t.application_id, t.certificate_id, t.authority_url,
        t.graph_url, t.auto_discover, t.incoming_server_location, t.outgoing_server_location, t.process_email_from,
        t.min_polling_interval_minutes, t.max_concurrent_connections, t.move_failed_to_undeliverable,
        t.allow_plaintext, t.authentication_type, t.incoming_username, t.use_same_settings_for_outgoing,
        t.outgoing_username, t.dav_location,
        (t.incoming_password_enc IS NOT NULL) AS incoming_password_set,
        (t.outgoing_password_enc IS NOT NULL) AS outgoing_password_set,
        (t.client_secret_enc IS NOT NULL) AS client_secret_set,
        t.created_at, t.updated_at
    FROM email_server_profiles t";

/// A secret of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileSecret {
    IncomingPassword,
    OutgoingPassword,
    ClientSecret,
}

impl ProfileSecret {
    fn column(self) -> &'static str {
        match self {
            ProfileSecret::IncomingPassword => "incoming_password_enc",
            ProfileSecret::OutgoingPassword => "outgoing_password_enc",
            ProfileSecret::ClientSecret => "client_secret_enc",
        }
    }
}

/// Changes to a profile's secrets: `None` keeps one, `Some(None)` clears it,
/// `Some(Some(s))` replaces it.
#[derive(Debug, Clone, Default)]
pub struct ProfileSecretChanges {
    pub incoming_password: Option<Option<Secret>>,
    pub outgoing_password: Option<Option<Secret>>,
    pub client_secret: Option<Option<Secret>>,
}

impl ProfileSecretChanges {
    /// Which secrets will be set once these changes are applied to `current`.
    pub fn resulting(&self, current: ProfileSecretsSet) -> ProfileSecretsSet {
        let after = |change: &Option<Option<Secret>>, now: bool| {
            change.as_ref().map_or(now, Option::is_some)
        };
        ProfileSecretsSet {
            incoming_password_set: after(&self.incoming_password, current.incoming_password_set),
            outgoing_password_set: after(&self.outgoing_password, current.outgoing_password_set),
            client_secret_set: after(&self.client_secret, current.client_secret_set),
        }
    }
}

impl Store {
    async fn check_profile_references(&self, org_id: &str, s: &ProfileSettings) -> StoreResult<()> {
        self.check_reference(
            "owner_id",
            "users",
            org_id,
            s.owner_id.as_deref(),
            "",
            "a user",
        )
        .await?;
        self.check_reference(
            "certificate_id",
            "certificates",
            org_id,
            s.certificate_id.as_deref(),
            "",
            "a certificate",
        )
        .await
    }

    fn name_taken(e: sqlx::Error, name: &str) -> StoreError {
        if StoreError::is_unique_violation(&e) {
            StoreError::conflict(
                Some("name"),
                format!(
                    "a profile named `{name}` already exists in this organization; choose another name"
                ),
            )
        } else {
            e.into()
        }
    }

    pub async fn create_profile(
        &self,
        org_id: &str,
        s: &ProfileSettings,
        secrets: &ProfileSecretChanges,
    ) -> StoreResult<EmailServerProfile> {
        self.check_profile_references(org_id, s).await?;
        let id = new_id();
        let t = now();
        let result = with_db!(&self.db, p => sqlx::query(
            "INSERT INTO email_server_profiles (id, org_id, name, description, server_type, owner_id,
                use_default_tenant_id, tenant_id, application_id, auto_discover, incoming_server_location,
                outgoing_server_location, process_email_from, min_polling_interval_minutes,
                max_concurrent_connections, move_failed_to_undeliverable, allow_plaintext,
                authentication_type, incoming_username, use_same_settings_for_outgoing, outgoing_username,
                created_at, updated_at, certificate_id, authority_url, graph_url, dav_location)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                $19, $20, $21, $22, $23, $24, $25, $26, $27)",
        )
        .bind(&id).bind(org_id).bind(&s.name).bind(&s.description).bind(s.server_type).bind(&s.owner_id)
        .bind(s.use_default_tenant_id).bind(&s.tenant_id).bind(&s.application_id).bind(s.auto_discover)
        .bind(&s.incoming_server_location).bind(&s.outgoing_server_location).bind(s.process_email_from)
        .bind(s.min_polling_interval_minutes).bind(s.max_concurrent_connections)
        .bind(s.move_failed_to_undeliverable).bind(s.allow_plaintext).bind(s.authentication_type)
        .bind(&s.incoming_username).bind(s.use_same_settings_for_outgoing).bind(&s.outgoing_username)
        .bind(t).bind(t).bind(&s.certificate_id).bind(&s.authority_url).bind(&s.graph_url)
        .bind(&s.dav_location)
        .execute(p).await.map(|r| r.rows_affected()));
        result.map_err(|e| Self::name_taken(e, &s.name))?;
        self.write_profile_secrets(org_id, &id, secrets).await?;
        self.get_profile(org_id, &id).await
    }

    pub async fn list_profiles(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<EmailServerProfile>> {
        self.list_records(SELECT, Some(org_id), filters, page).await
    }

    pub async fn get_profile(&self, org_id: &str, id: &str) -> StoreResult<EmailServerProfile> {
        self.get_record(SELECT, Some(org_id), id, &[]).await
    }

    pub async fn update_profile(
        &self,
        org_id: &str,
        id: &str,
        s: &ProfileSettings,
        secrets: &ProfileSecretChanges,
    ) -> StoreResult<EmailServerProfile> {
        self.check_profile_references(org_id, s).await?;
        let result = with_db!(&self.db, p => sqlx::query(
            "UPDATE email_server_profiles SET name = $3, description = $4, server_type = $5, owner_id = $6,
                use_default_tenant_id = $7, tenant_id = $8, application_id = $9, auto_discover = $10,
                incoming_server_location = $11, outgoing_server_location = $12, process_email_from = $13,
                min_polling_interval_minutes = $14, max_concurrent_connections = $15,
                move_failed_to_undeliverable = $16, allow_plaintext = $17, authentication_type = $18,
                incoming_username = $19, use_same_settings_for_outgoing = $20, outgoing_username = $21,
                updated_at = $22, certificate_id = $23, authority_url = $24, graph_url = $25,
                dav_location = $26
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id).bind(id).bind(&s.name).bind(&s.description).bind(s.server_type).bind(&s.owner_id)
        .bind(s.use_default_tenant_id).bind(&s.tenant_id).bind(&s.application_id).bind(s.auto_discover)
        .bind(&s.incoming_server_location).bind(&s.outgoing_server_location).bind(s.process_email_from)
        .bind(s.min_polling_interval_minutes).bind(s.max_concurrent_connections)
        .bind(s.move_failed_to_undeliverable).bind(s.allow_plaintext).bind(s.authentication_type)
        .bind(&s.incoming_username).bind(s.use_same_settings_for_outgoing).bind(&s.outgoing_username)
        .bind(now()).bind(&s.certificate_id).bind(&s.authority_url).bind(&s.graph_url)
        .bind(&s.dav_location)
        .execute(p).await.map(|r| r.rows_affected()));
        if result.map_err(|e| Self::name_taken(e, &s.name))? == 0 {
            return Err(StoreError::NotFound);
        }
        self.write_profile_secrets(org_id, id, secrets).await?;
        self.get_profile(org_id, id).await
    }

    /// Deletes a profile that no mailbox and no default setting uses.
    pub async fn delete_profile(&self, org_id: &str, id: &str) -> StoreResult<()> {
        let in_use: i64 = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM mailboxes WHERE org_id = $1 AND profile_id = $2)
                  + (SELECT COUNT(*) FROM email_settings WHERE org_id = $1 AND default_profile_id = $2)",
        )
        .bind(org_id).bind(id).fetch_one(p).await?);
        if in_use > 0 {
            return Err(StoreError::conflict(
                None,
                "the profile is used by mailboxes or is the organization's default profile; move them to another profile first",
            ));
        }
        self.delete_record("email_server_profiles", org_id, id)
            .await
    }

    async fn write_profile_secrets(
        &self,
        org_id: &str,
        id: &str,
        changes: &ProfileSecretChanges,
    ) -> StoreResult<()> {
        let all = [
            (ProfileSecret::IncomingPassword, &changes.incoming_password),
            (ProfileSecret::OutgoingPassword, &changes.outgoing_password),
            (ProfileSecret::ClientSecret, &changes.client_secret),
        ];
        for (which, change) in all {
            let Some(value) = change else { continue };
            let sealed = value.as_ref().map(|s| {
                self.cipher
                    .seal(&profile_secret_context(id, which), s.expose())
            });
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE email_server_profiles SET {} = $3 WHERE org_id = $1 AND id = $2",
                which.column()
            ));
            with_db!(&self.db, p => sqlx::query(sql).bind(org_id).bind(id).bind(sealed).execute(p).await?.rows_affected());
        }
        Ok(())
    }

    /// A profile's secret in clear, for a connector. Never for the API.
    pub async fn profile_secret(
        &self,
        org_id: &str,
        id: &str,
        which: ProfileSecret,
    ) -> StoreResult<Option<Secret>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM email_server_profiles WHERE org_id = $1 AND id = $2",
            which.column()
        ));
        let sealed: Option<Option<String>> = with_db!(&self.db, p => sqlx::query_scalar(sql).bind(org_id).bind(id).fetch_optional(p).await?);
        match sealed.ok_or(StoreError::NotFound)? {
            Some(s) => Ok(Some(Secret::new(
                self.cipher.open(&profile_secret_context(id, which), &s)?,
            ))),
            None => Ok(None),
        }
    }
}

fn profile_secret_context(id: &str, which: ProfileSecret) -> String {
    format!("email_server_profiles.{}:{id}", which.column())
}
