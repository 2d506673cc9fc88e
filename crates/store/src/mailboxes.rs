//! Mailboxes: read, edit (one or many at once), approve. Mailboxes are created
//! with their owner (see owners.rs) and deleted with it.

use mailbridge_domain::ApprovalStatus;
use mailbridge_domain::mailbox::{DeliveryChange, Mailbox, validate_mailbox};
use mailbridge_domain::secret::Secret;
use mailbridge_domain::webhook::payload::WorkloadStatuses;

use crate::webhooks::events::{emit_events, lock_mailbox_statuses};
use crate::{Backend, Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

const SELECT: &str = "SELECT t.id, t.org_id, t.name, t.owner_type, t.owner_id, t.email_address,
        t.profile_id, t.incoming_method, t.outgoing_method, t.act_method, t.approval_status,
        t.incoming_status, t.outgoing_status, t.act_status, t.incoming_enabled, t.outgoing_enabled,
        t.act_enabled, t.process_email_from, t.sync_with_this_org_only, t.track_sent_items,
        t.is_forward_mailbox, t.delete_after_processing, t.username,
        (t.password_enc IS NOT NULL) AS password_set, t.tested_at, t.discovered_incoming_location,
        t.discovered_outgoing_location, t.discovered_source, t.discovered_at, t.created_at, t.updated_at
    FROM mailboxes t";

/// Writes every editable column of a mailbox inside a transaction or on a pool.
macro_rules! update_mailbox {
    ($exec:expr, $m:expr, $t:expr) => {{
        let m = $m;
        sqlx::query(
            "UPDATE mailboxes SET email_address = $3, profile_id = $4, incoming_method = $5,
                outgoing_method = $6, act_method = $7, approval_status = $8, incoming_status = $9,
                outgoing_status = $10, act_status = $11, incoming_enabled = $12, outgoing_enabled = $13,
                act_enabled = $14, process_email_from = $15, sync_with_this_org_only = $16,
                username = $17, tested_at = $18, updated_at = $19, track_sent_items = $20,
                discovered_incoming_location = $21, discovered_outgoing_location = $22,
                discovered_source = $23, discovered_at = $24, is_forward_mailbox = $25,
                delete_after_processing = $26
             WHERE org_id = $1 AND id = $2",
        )
        .bind(&m.org_id).bind(&m.id).bind(&m.email_address).bind(&m.profile_id)
        .bind(m.incoming_method).bind(m.outgoing_method).bind(m.act_method).bind(m.approval_status)
        .bind(m.incoming_status).bind(m.outgoing_status).bind(m.act_status).bind(m.incoming_enabled)
        .bind(m.outgoing_enabled).bind(m.act_enabled).bind(m.process_email_from)
        .bind(m.sync_with_this_org_only).bind(&m.username).bind(m.tested_at).bind($t)
        .bind(m.track_sent_items)
        .bind(&m.discovered_incoming_location).bind(&m.discovered_outgoing_location)
        .bind(m.discovered_source).bind(m.discovered_at)
        .bind(m.is_forward_mailbox).bind(m.delete_after_processing)
        .execute($exec)
        .await
    }};
}

impl Store {
    pub async fn list_mailboxes(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Mailbox>> {
        self.list_records(SELECT, Some(org_id), filters, page).await
    }

    pub async fn get_mailbox(&self, org_id: &str, id: &str) -> StoreResult<Mailbox> {
        self.get_record(SELECT, Some(org_id), id, &[]).await
    }

    /// The start date of a profile of the organization (checked to exist).
    async fn profile_start(
        &self,
        org_id: &str,
        profile_id: Option<&str>,
    ) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        let Some(profile_id) = profile_id else {
            return Ok(None);
        };
        self.check_reference(
            "profile_id",
            "email_server_profiles",
            org_id,
            Some(profile_id),
            "",
            "an email server profile",
        )
        .await?;
        Ok(self
            .get_profile(org_id, profile_id)
            .await?
            .settings
            .process_email_from)
    }

    /// Validates and writes one mailbox; `password` as in [`crate::ProfileSecretChanges`].
    pub async fn update_mailbox(
        &self,
        m: &Mailbox,
        password: Option<Option<Secret>>,
    ) -> StoreResult<Mailbox> {
        let start = self
            .profile_start(&m.org_id, m.profile_id.as_deref())
            .await?;
        let errors = validate_mailbox(m, start);
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let t = now();
        let postgres = self.backend() == Backend::Postgres;
        let n = with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let before = lock_mailbox_statuses!(&mut *tx, &m.id)?;
            let n = update_mailbox!(&mut *tx, m, t)?.rows_affected();
            if let Some(before) = before.filter(|b| b.org_id == m.org_id) {
                emit_events!(&mut *tx, &before.changes(statuses(m), [None; 3], t), postgres);
            }
            tx.commit().await?;
            n
        });
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(password) = password {
            let sealed = password.map(|s| {
                self.cipher
                    .seal(&mailbox_password_context(&m.id), s.expose())
            });
            with_db!(&self.db, p => sqlx::query("UPDATE mailboxes SET password_enc = $3 WHERE org_id = $1 AND id = $2")
                .bind(&m.org_id).bind(&m.id).bind(sealed).execute(p).await?.rows_affected());
        }
        self.get_mailbox(&m.org_id, &m.id).await
    }

    /// Loads every listed mailbox, or names the first id that is not the organization's.
    async fn load_mailboxes(&self, org_id: &str, ids: &[String]) -> StoreResult<Vec<Mailbox>> {
        if ids.is_empty() {
            return Err(StoreError::invalid(
                "ids",
                "ids must list at least one mailbox id",
            ));
        }
        let mut out = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            match self.get_mailbox(org_id, id).await {
                Ok(m) => out.push(m),
                Err(StoreError::NotFound) => {
                    return Err(StoreError::invalid(
                        &format!("ids[{i}]"),
                        format!("`{id}` is not a mailbox of this organization"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Change Multiple Records: sets the profile and delivery methods of many
    /// mailboxes in one transaction; all change or none.
    pub async fn bulk_update_mailboxes(
        &self,
        org_id: &str,
        ids: &[String],
        change: &DeliveryChange,
    ) -> StoreResult<Vec<Mailbox>> {
        let mut mailboxes = self.load_mailboxes(org_id, ids).await?;
        let start = match &change.profile_id {
            Some(p) => Some(self.profile_start(org_id, p.as_deref()).await?),
            None => None,
        };
        for m in &mut mailboxes {
            m.apply_delivery_change(change);
            let profile_start = match start {
                Some(s) => s,
                None => self.profile_start(org_id, m.profile_id.as_deref()).await?,
            };
            let errors = validate_mailbox(m, profile_start);
            if let Some(e) = errors.into_iter().next() {
                return Err(StoreError::invalid(
                    &e.field,
                    format!("mailbox {}: {}", m.id, e.message),
                ));
            }
        }
        let t = now();
        let postgres = self.backend() == Backend::Postgres;
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let mut events = Vec::new();
            for m in &mailboxes {
                let before = lock_mailbox_statuses!(&mut *tx, &m.id)?;
                update_mailbox!(&mut *tx, m, t)?;
                if let Some(before) = before {
                    events.extend(before.changes(statuses(m), [None; 3], t));
                }
            }
            emit_events!(&mut *tx, &events, postgres);
            tx.commit().await?;
        });
        self.reload(org_id, ids).await
    }

    /// Sets the approval status of many mailboxes in one transaction. A mailbox
    /// without an address cannot be approved.
    pub async fn set_approval(
        &self,
        org_id: &str,
        ids: &[String],
        status: ApprovalStatus,
    ) -> StoreResult<Vec<Mailbox>> {
        let mailboxes = self.load_mailboxes(org_id, ids).await?;
        if let Some((i, m)) = mailboxes
            .iter()
            .enumerate()
            .find(|(_, m)| m.email_address.is_none())
        {
            return Err(StoreError::invalid(
                &format!("ids[{i}]"),
                format!(
                    "mailbox {} has no email address to approve; set the owner's email first",
                    m.id
                ),
            ));
        }
        let t = now();
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            for m in &mailboxes {
                sqlx::query("UPDATE mailboxes SET approval_status = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
                    .bind(org_id).bind(&m.id).bind(status).bind(t).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        self.reload(org_id, ids).await
    }

    async fn reload(&self, org_id: &str, ids: &[String]) -> StoreResult<Vec<Mailbox>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.get_mailbox(org_id, id).await?);
        }
        Ok(out)
    }

    /// A mailbox's password in clear, for a connector. Never for the API.
    pub async fn mailbox_password(&self, org_id: &str, id: &str) -> StoreResult<Option<Secret>> {
        let sealed: Option<Option<String>> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT password_enc FROM mailboxes WHERE org_id = $1 AND id = $2",
        ).bind(org_id).bind(id).fetch_optional(p).await?);
        match sealed.ok_or(StoreError::NotFound)? {
            Some(s) => Ok(Some(Secret::new(
                self.cipher.open(&mailbox_password_context(id), &s)?,
            ))),
            None => Ok(None),
        }
    }
}

fn statuses(m: &Mailbox) -> WorkloadStatuses {
    WorkloadStatuses {
        incoming: m.incoming_status,
        outgoing: m.outgoing_status,
        act: m.act_status,
    }
}

fn mailbox_password_context(id: &str) -> String {
    format!("mailboxes.password_enc:{id}")
}
