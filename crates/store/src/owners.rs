//! Users and queues, the owners of mailboxes. Creating one creates its mailbox
//! with the organization's defaults in the same transaction, so no owner is ever
//! without a mailbox.

use mailbridge_domain::ids::new_id;
use mailbridge_domain::mailbox::{MailboxOwner, new_mailbox};
use mailbridge_domain::party::{Queue, User};
use mailbridge_domain::{OwnerType, Role, TrackingFilter};

use crate::{Filter, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

const SELECT_USERS: &str = "SELECT t.id, t.org_id, t.full_name, t.email, t.role, t.tracking_filter,
        t.disabled, m.id AS mailbox_id, t.created_at, t.updated_at
    FROM users t JOIN mailboxes m ON m.owner_type = 'user' AND m.owner_id = t.id";

const SELECT_QUEUES: &str =
    "SELECT t.id, t.org_id, t.name, t.email, t.description, t.tracking_filter,
        m.id AS mailbox_id, t.created_at, t.updated_at
    FROM queues t JOIN mailboxes m ON m.owner_type = 'queue' AND m.owner_id = t.id";

/// A new user's fields.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub full_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub tracking_filter: TrackingFilter,
}

/// A new queue's fields.
#[derive(Debug, Clone)]
pub struct NewQueue {
    pub name: String,
    pub email: Option<String>,
    pub description: Option<String>,
    pub tracking_filter: TrackingFilter,
}

/// Inserts a mailbox row inside a transaction (either backend).
macro_rules! insert_mailbox {
    ($tx:expr, $m:expr) => {{
        let m = $m;
        sqlx::query(
            "INSERT INTO mailboxes (id, org_id, name, owner_type, owner_id, email_address, profile_id,
                incoming_method, outgoing_method, act_method, approval_status, incoming_status,
                outgoing_status, act_status, incoming_enabled, outgoing_enabled, act_enabled,
                process_email_from, sync_with_this_org_only, username, password_enc, tested_at,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                $18, $19, $20, NULL, $21, $22, $23)",
        )
        .bind(&m.id).bind(&m.org_id).bind(&m.name).bind(m.owner_type).bind(&m.owner_id)
        .bind(&m.email_address).bind(&m.profile_id).bind(m.incoming_method).bind(m.outgoing_method)
        .bind(m.act_method).bind(m.approval_status).bind(m.incoming_status).bind(m.outgoing_status)
        .bind(m.act_status).bind(m.incoming_enabled).bind(m.outgoing_enabled).bind(m.act_enabled)
        .bind(m.process_email_from).bind(m.sync_with_this_org_only).bind(&m.username)
        .bind(m.tested_at).bind(m.created_at).bind(m.updated_at)
        .execute(&mut *$tx)
        .await
    }};
}

/// Renames a mailbox and changes its address after its owner changed; a new
/// address needs approval again.
macro_rules! sync_mailbox_owner {
    ($tx:expr, $owner_type:expr, $owner_id:expr, $name:expr, $email:expr, $t:expr) => {{
        sqlx::query(
            "UPDATE mailboxes SET
                approval_status = CASE
                    WHEN email_address IS NOT DISTINCT FROM $4 THEN approval_status
                    WHEN $4 IS NULL THEN 'empty' ELSE 'pending' END,
                incoming_enabled = CASE WHEN email_address IS NOT DISTINCT FROM $4 THEN incoming_enabled ELSE FALSE END,
                outgoing_enabled = CASE WHEN email_address IS NOT DISTINCT FROM $4 THEN outgoing_enabled ELSE FALSE END,
                act_enabled = CASE WHEN email_address IS NOT DISTINCT FROM $4 THEN act_enabled ELSE FALSE END,
                name = $3, email_address = $4, updated_at = $5
             WHERE owner_type = $1 AND owner_id = $2",
        )
        .bind($owner_type).bind($owner_id).bind($name).bind($email).bind($t)
        .execute(&mut *$tx)
        .await
    }};
}

impl Store {
    /// Creates a user and their mailbox.
    pub async fn create_user(&self, org_id: &str, u: NewUser) -> StoreResult<User> {
        let settings = self.get_email_settings(org_id).await?;
        let t = now();
        let id = new_id();
        let owner = MailboxOwner {
            org_id: org_id.to_owned(),
            owner_type: OwnerType::User,
            owner_id: id.clone(),
            name: u.full_name.clone(),
            email: u.email.clone(),
        };
        let mailbox = new_mailbox(new_id(), owner, &settings, t);
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO users (id, org_id, full_name, email, role, tracking_filter, disabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8)",
            )
            .bind(&id).bind(org_id).bind(&u.full_name).bind(&u.email).bind(u.role)
            .bind(u.tracking_filter).bind(t).bind(t)
            .execute(&mut *tx).await?;
            insert_mailbox!(tx, &mailbox)?;
            tx.commit().await?;
        });
        self.get_user(org_id, &id).await
    }

    pub async fn list_users(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<User>> {
        self.list_records(SELECT_USERS, Some(org_id), filters, page)
            .await
    }

    pub async fn get_user(&self, org_id: &str, id: &str) -> StoreResult<User> {
        self.get_record(SELECT_USERS, Some(org_id), id, &[]).await
    }

    /// Writes a user's editable fields, and keeps their mailbox's name and address in step.
    pub async fn update_user(&self, u: &User) -> StoreResult<User> {
        let t = now();
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE users SET full_name = $3, email = $4, role = $5, tracking_filter = $6,
                    disabled = $7, updated_at = $8
                 WHERE org_id = $1 AND id = $2",
            )
            .bind(&u.org_id).bind(&u.id).bind(&u.full_name).bind(&u.email).bind(u.role)
            .bind(u.tracking_filter).bind(u.disabled).bind(t)
            .execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            sync_mailbox_owner!(tx, OwnerType::User, &u.id, &u.full_name, &u.email, t)?;
            tx.commit().await?;
        });
        self.get_user(&u.org_id, &u.id).await
    }

    /// Creates a queue and its mailbox.
    pub async fn create_queue(&self, org_id: &str, q: NewQueue) -> StoreResult<Queue> {
        let settings = self.get_email_settings(org_id).await?;
        let t = now();
        let id = new_id();
        let owner = MailboxOwner {
            org_id: org_id.to_owned(),
            owner_type: OwnerType::Queue,
            owner_id: id.clone(),
            name: q.name.clone(),
            email: q.email.clone(),
        };
        let mailbox = new_mailbox(new_id(), owner, &settings, t);
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO queues (id, org_id, name, email, description, tracking_filter, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&id).bind(org_id).bind(&q.name).bind(&q.email).bind(&q.description)
            .bind(q.tracking_filter).bind(t).bind(t)
            .execute(&mut *tx).await?;
            insert_mailbox!(tx, &mailbox)?;
            tx.commit().await?;
        });
        self.get_queue(org_id, &id).await
    }

    pub async fn list_queues(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Queue>> {
        self.list_records(SELECT_QUEUES, Some(org_id), filters, page)
            .await
    }

    pub async fn get_queue(&self, org_id: &str, id: &str) -> StoreResult<Queue> {
        self.get_record(SELECT_QUEUES, Some(org_id), id, &[]).await
    }

    pub async fn update_queue(&self, q: &Queue) -> StoreResult<Queue> {
        let t = now();
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE queues SET name = $3, email = $4, description = $5, tracking_filter = $6, updated_at = $7
                 WHERE org_id = $1 AND id = $2",
            )
            .bind(&q.org_id).bind(&q.id).bind(&q.name).bind(&q.email).bind(&q.description)
            .bind(q.tracking_filter).bind(t)
            .execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            sync_mailbox_owner!(tx, OwnerType::Queue, &q.id, &q.name, &q.email, t)?;
            tx.commit().await?;
        });
        self.get_queue(&q.org_id, &q.id).await
    }

    /// Deletes a queue together with its mailbox.
    pub async fn delete_queue(&self, org_id: &str, id: &str) -> StoreResult<()> {
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM mailboxes WHERE org_id = $1 AND owner_type = 'queue' AND owner_id = $2")
                .bind(org_id).bind(id).execute(&mut *tx).await?;
            let n = sqlx::query("DELETE FROM queues WHERE org_id = $1 AND id = $2")
                .bind(org_id).bind(id).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
