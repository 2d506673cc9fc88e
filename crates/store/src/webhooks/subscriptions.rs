//! Webhook subscriptions: the receiver's URL, the event types, and the signing
//! secret, sealed at rest and shown only when it is made (creation, rotation).

use chrono::{DateTime, Utc};
use mailbridge_domain::secret::Secret;
use mailbridge_domain::webhook::signature::format_secret;
use mailbridge_domain::webhook::{WebhookSubscription, split_event_types, validate_subscription};
use rand::RngCore;

use crate::records::Record;
use crate::{Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

const SELECT: &str = "SELECT t.id, t.org_id, t.url, t.description, t.event_types, t.enabled,
        t.created_at, t.updated_at
    FROM webhook_subscriptions t";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    org_id: String,
    url: String,
    description: Option<String>,
    event_types: String,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Record for Row {
    fn id(&self) -> &str {
        &self.id
    }
}

impl From<Row> for WebhookSubscription {
    fn from(r: Row) -> Self {
        WebhookSubscription {
            id: r.id,
            org_id: r.org_id,
            url: r.url,
            description: r.description,
            event_types: split_event_types(&r.event_types),
            enabled: r.enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn secret_context(id: &str) -> String {
    format!("webhook_subscriptions.secret_enc:{id}")
}

/// A new random signing secret.
fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format_secret(&key)
}

impl Store {
    /// Creates a subscription with a new signing secret; returns both (the only
    /// time the secret leaves the store for the API).
    pub async fn create_webhook(
        &self,
        s: &WebhookSubscription,
    ) -> StoreResult<(WebhookSubscription, Secret)> {
        let errors = validate_subscription(s);
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let secret = new_secret();
        let sealed = self.cipher.seal(&secret_context(&s.id), &secret);
        let t = now();
        with_db!(&self.db, p => sqlx::query(
            "INSERT INTO webhook_subscriptions (id, org_id, url, description, event_types, secret_enc, enabled,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&s.id).bind(&s.org_id).bind(&s.url).bind(&s.description).bind(s.event_types_text())
        .bind(&sealed).bind(s.enabled).bind(t)
        .execute(p).await?.rows_affected());
        Ok((
            self.get_webhook(&s.org_id, &s.id).await?,
            Secret::new(secret),
        ))
    }

    pub async fn list_webhooks(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookSubscription>> {
        let page: Page<Row> = self.list_records(SELECT, Some(org_id), &[], page).await?;
        Ok(page.map(WebhookSubscription::from))
    }

    pub async fn get_webhook(&self, org_id: &str, id: &str) -> StoreResult<WebhookSubscription> {
        let row: Row = self.get_record(SELECT, Some(org_id), id, &[]).await?;
        Ok(row.into())
    }

    /// Writes what an administrator can change: URL, description, event types,
    /// enabled. Events already queued keep their deliveries.
    pub async fn update_webhook(
        &self,
        s: &WebhookSubscription,
    ) -> StoreResult<WebhookSubscription> {
        let errors = validate_subscription(s);
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE webhook_subscriptions SET url = $3, description = $4, event_types = $5, enabled = $6,
                updated_at = $7
             WHERE org_id = $1 AND id = $2",
        )
        .bind(&s.org_id).bind(&s.id).bind(&s.url).bind(&s.description).bind(s.event_types_text())
        .bind(s.enabled).bind(now())
        .execute(p).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_webhook(&s.org_id, &s.id).await
    }

    /// Deletes a subscription with its deliveries and their log.
    pub async fn delete_webhook(&self, org_id: &str, id: &str) -> StoreResult<()> {
        self.delete_record("webhook_subscriptions", org_id, id)
            .await
    }

    /// Replaces the signing secret at once and returns the new one (shown once).
    pub async fn rotate_webhook_secret(&self, org_id: &str, id: &str) -> StoreResult<Secret> {
        let secret = new_secret();
        let sealed = self.cipher.seal(&secret_context(id), &secret);
        let n = with_db!(&self.db, p => sqlx::query(
            "UPDATE webhook_subscriptions SET secret_enc = $3, updated_at = $4 WHERE org_id = $1 AND id = $2",
        ).bind(org_id).bind(id).bind(&sealed).bind(now()).execute(p).await?.rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(Secret::new(secret))
    }

    /// Opens a sealed signing secret of a subscription.
    pub(crate) fn open_webhook_secret(&self, id: &str, sealed: &str) -> StoreResult<Secret> {
        Ok(Secret::new(self.cipher.open(&secret_context(id), sealed)?))
    }
}
