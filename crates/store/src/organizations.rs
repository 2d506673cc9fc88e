//! Organizations and their email configuration settings.

use mailbridge_domain::ids::new_id;
use mailbridge_domain::organization::{EmailSettings, Organization};

use crate::{Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

const SELECT: &str =
    "SELECT t.id, t.name, t.default_tenant_id, t.created_at, t.updated_at FROM organizations t";

const SELECT_SETTINGS: &str =
    "SELECT default_profile_id, default_incoming_method, default_outgoing_method,
        default_act_method, process_email_for_approved_users_only,
        process_email_for_approved_queues_only, tracking_token_enabled, tracking_token_prefix,
        tracking_token_base_number, tracking_token_user_digits, tracking_token_counter_digits,
        max_attachment_size_kb, email_between_users, similarity_correlation, act_leaving_filters,
        act_task_deleted_on_server, max_message_size_kb
    FROM email_settings WHERE org_id = $1";

impl Store {
    /// Creates an organization with the default email settings.
    pub async fn create_organization(
        &self,
        name: &str,
        default_tenant_id: Option<&str>,
    ) -> StoreResult<Organization> {
        let t = now();
        let org = Organization {
            id: new_id(),
            name: name.to_owned(),
            default_tenant_id: default_tenant_id.map(str::to_owned),
            created_at: t,
            updated_at: t,
        };
        let s = EmailSettings::default();
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO organizations (id, name, default_tenant_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&org.id).bind(&org.name).bind(&org.default_tenant_id).bind(t).bind(t)
            .execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO email_settings (org_id, default_profile_id, default_incoming_method,
                    default_outgoing_method, default_act_method, process_email_for_approved_users_only,
                    process_email_for_approved_queues_only, tracking_token_enabled, tracking_token_prefix,
                    tracking_token_base_number, tracking_token_user_digits, tracking_token_counter_digits,
                    max_attachment_size_kb, email_between_users, max_message_size_kb)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&org.id).bind(&s.default_profile_id).bind(s.default_incoming_method)
            .bind(s.default_outgoing_method).bind(s.default_act_method)
            .bind(s.process_email_for_approved_users_only).bind(s.process_email_for_approved_queues_only)
            .bind(s.tracking_token_enabled).bind(&s.tracking_token_prefix).bind(s.tracking_token_base_number)
            .bind(s.tracking_token_user_digits).bind(s.tracking_token_counter_digits)
            .bind(s.max_attachment_size_kb).bind(s.email_between_users).bind(s.max_message_size_kb)
            .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(org)
    }

    pub async fn list_organizations(&self, page: &PageRequest) -> StoreResult<Page<Organization>> {
        self.list_records(SELECT, None, &[], page).await
    }

    pub async fn get_organization(&self, id: &str) -> StoreResult<Organization> {
        self.get_record(SELECT, None, id, &[]).await
    }

    /// Writes an organization's editable fields.
    pub async fn update_organization(&self, org: &Organization) -> StoreResult<Organization> {
        let t = now();
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE organizations SET name = $2, default_tenant_id = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(&org.id).bind(&org.name).bind(&org.default_tenant_id).bind(t)
        .execute(p).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_organization(&org.id).await
    }

    pub async fn get_email_settings(&self, org_id: &str) -> StoreResult<EmailSettings> {
        let row: Option<EmailSettings> = with_db!(&self.db, p =>
            sqlx::query_as(SELECT_SETTINGS).bind(org_id).fetch_optional(p).await?);
        row.ok_or(StoreError::NotFound)
    }

    /// Writes the settings after checking that the default profile is the organization's.
    pub async fn update_email_settings(
        &self,
        org_id: &str,
        s: &EmailSettings,
    ) -> StoreResult<EmailSettings> {
        self.check_reference(
            "default_profile_id",
            "email_server_profiles",
            org_id,
            s.default_profile_id.as_deref(),
            "",
            "an email server profile",
        )
        .await?;
        with_db!(&self.db, p => sqlx::query(
            "UPDATE email_settings SET default_profile_id = $2, default_incoming_method = $3,
                default_outgoing_method = $4, default_act_method = $5,
                process_email_for_approved_users_only = $6, process_email_for_approved_queues_only = $7,
                tracking_token_enabled = $8, tracking_token_prefix = $9, tracking_token_base_number = $10,
                tracking_token_user_digits = $11, tracking_token_counter_digits = $12,
                max_attachment_size_kb = $13, email_between_users = $14, similarity_correlation = $15,
                act_leaving_filters = $16, act_task_deleted_on_server = $17,
                max_message_size_kb = $18
             WHERE org_id = $1",
        )
        .bind(org_id).bind(&s.default_profile_id).bind(s.default_incoming_method)
        .bind(s.default_outgoing_method).bind(s.default_act_method)
        .bind(s.process_email_for_approved_users_only).bind(s.process_email_for_approved_queues_only)
        .bind(s.tracking_token_enabled).bind(&s.tracking_token_prefix).bind(s.tracking_token_base_number)
        .bind(s.tracking_token_user_digits).bind(s.tracking_token_counter_digits)
        .bind(s.max_attachment_size_kb).bind(s.email_between_users).bind(s.similarity_correlation)
        .bind(s.act_leaving_filters).bind(s.act_task_deleted_on_server).bind(s.max_message_size_kb)
        .execute(p).await?.rows_affected());
        self.get_email_settings(org_id).await
    }
}
