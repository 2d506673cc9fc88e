//! The webhook outbox: claims of due deliveries (the first open one of each
//! subscription and order key, so that each key goes out in event order), the
//! outcome of each attempt with its log row, the delivery log, and the retry of
//! a failed delivery by hand.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mailbridge_domain::secret::Secret;
use mailbridge_domain::webhook::payload::TestEvent;
use mailbridge_domain::webhook::{TEST_EVENT_TYPE, WebhookAttempt, WebhookDelivery};
use mailbridge_domain::{WebhookDeliveryStatus, ids::new_id};
use sqlx::QueryBuilder;

use crate::webhooks::events::NewEvent;
use crate::{Db, Page, PageRequest, Store, StoreError, StoreResult, now, with_db};

/// A delivery this node claimed: what to post where, and the secret to sign with.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub subscription_id: String,
    pub event_seq: i64,
    pub org_id: String,
    pub order_key: String,
    /// Sent as `webhook-id`.
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub url: String,
    pub secret: Secret,
    /// Attempts before this one (since it was queued or retried by hand).
    pub attempts: i64,
    /// The claim: the outcome is written only while it still holds.
    pub claimed_until: DateTime<Utc>,
}

/// What one attempt found.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What follows an attempt (the engine decides with the retry schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt(DateTime<Utc>),
    /// The last attempt of the schedule failed.
    GiveUp,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    subscription_id: String,
    event_seq: i64,
    org_id: String,
    order_key: String,
    attempts: i64,
    event_id: String,
    event_type: String,
    payload: String,
    url: String,
    secret_enc: String,
}

#[derive(sqlx::FromRow)]
struct LogRow {
    event_seq: i64,
    #[sqlx(flatten)]
    delivery: WebhookDelivery,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    event_seq: i64,
    #[sqlx(flatten)]
    attempt: WebhookAttempt,
}

/// Open deliveries: queued, or claimed (a claim that outlived its node expires).
const OPEN: &str = "('pending', 'delivering')";

impl Store {
    /// Claims up to `limit` due deliveries for `lease`: of each subscription and
    /// order key only the first open one, when it is due and not claimed, and only
    /// for enabled subscriptions. On PostgreSQL rows another node is claiming are
    /// skipped (`FOR UPDATE SKIP LOCKED`); SQLite has one writer.
    pub async fn claim_webhook_deliveries(
        &self,
        node_id: &str,
        lease: std::time::Duration,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let t = now();
        let until = t + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        let lock = match self.db {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE OF d SKIP LOCKED",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "WITH heads AS MATERIALIZED (
                SELECT d.subscription_id, d.event_seq FROM webhook_deliveries d
                WHERE d.status IN {OPEN} AND d.next_attempt_at <= $1
                  AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
                  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                      WHERE p.subscription_id = d.subscription_id AND p.order_key = d.order_key
                        AND p.status IN {OPEN} AND p.event_seq < d.event_seq)
                  AND EXISTS (SELECT 1 FROM webhook_subscriptions s
                      WHERE s.id = d.subscription_id AND s.enabled = TRUE)
                ORDER BY d.next_attempt_at, d.event_seq LIMIT $4{lock})
             UPDATE webhook_deliveries SET status = 'delivering', claimed_until = $2, claimed_by = $3, updated_at = $1
             WHERE (subscription_id, event_seq) IN (SELECT subscription_id, event_seq FROM heads)
               AND status IN {OPEN} AND (claimed_until IS NULL OR claimed_until <= $1)
             RETURNING subscription_id, event_seq"
        ));
        let claimed: Vec<(String, i64)> = with_db!(&self.db, p => sqlx::query_as(sql)
            .bind(t).bind(until).bind(node_id).bind(limit).fetch_all(p).await?);
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ClaimRow> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(
                "SELECT d.subscription_id, d.event_seq, d.org_id, d.order_key, d.attempts, e.id AS event_id,
                    e.event_type, e.payload, s.url, s.secret_enc
                 FROM webhook_deliveries d
                 JOIN webhook_events e ON e.seq = d.event_seq
                 JOIN webhook_subscriptions s ON s.id = d.subscription_id
                 WHERE d.claimed_until = ",
            );
            qb.push_bind(until).push(" AND (");
            for (i, (sub, seq)) in claimed.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                qb.push("(d.subscription_id = ").push_bind(sub.clone())
                    .push(" AND d.event_seq = ").push_bind(*seq).push(")");
            }
            qb.push(") ORDER BY d.event_seq");
            qb.build_query_as::<ClaimRow>().fetch_all(p).await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    secret: self.open_webhook_secret(&r.subscription_id, &r.secret_enc)?,
                    subscription_id: r.subscription_id,
                    event_seq: r.event_seq,
                    org_id: r.org_id,
                    order_key: r.order_key,
                    event_id: r.event_id,
                    event_type: r.event_type,
                    payload: r.payload,
                    url: r.url,
                    attempts: r.attempts,
                    claimed_until: until,
                })
            })
            .collect()
    }

    /// Records an attempt in the log and its consequence on the delivery, while
    /// the claim holds (a claim that expired meanwhile may have been taken by
    /// another node: its outcome wins). Returns whether the claim still held.
    pub async fn record_webhook_attempt(
        &self,
        d: &ClaimedDelivery,
        r: &AttemptResult,
        next: AfterAttempt,
    ) -> StoreResult<bool> {
        let (status, next_at, delivered_at) = match next {
            AfterAttempt::Delivered => (WebhookDeliveryStatus::Delivered, r.at, Some(r.at)),
            AfterAttempt::RetryAt(at) => (WebhookDeliveryStatus::Pending, at, None),
            AfterAttempt::GiveUp => (WebhookDeliveryStatus::Failed, r.at, None),
        };
        let code = r.status_code.map(i64::from);
        let n = with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE webhook_deliveries SET status = $4, attempts = attempts + 1, next_attempt_at = $5,
                    delivered_at = $6, last_status_code = $7, last_error = $8, claimed_until = NULL,
                    claimed_by = NULL, updated_at = $9
                 WHERE subscription_id = $1 AND event_seq = $2 AND status = 'delivering' AND claimed_until = $3",
            )
            .bind(&d.subscription_id).bind(d.event_seq).bind(d.claimed_until).bind(status).bind(next_at)
            .bind(delivered_at).bind(code).bind(&r.error).bind(now())
            .execute(&mut *tx).await?.rows_affected();
            // Logged even when the claim was lost: the receiver got the request.
            sqlx::query(
                "INSERT INTO webhook_attempts (id, subscription_id, event_seq, attempt, attempted_at, status_code,
                    error, duration_ms)
                 SELECT $1, $2, $3, (SELECT COUNT(*) + 1 FROM webhook_attempts WHERE subscription_id = $2 AND event_seq = $3),
                    $4, $5, $6, $7
                 WHERE EXISTS (SELECT 1 FROM webhook_deliveries WHERE subscription_id = $2 AND event_seq = $3)",
            )
            .bind(new_id()).bind(&d.subscription_id).bind(d.event_seq).bind(r.at).bind(code).bind(&r.error)
            .bind(r.duration_ms)
            .execute(&mut *tx).await?;
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    /// Releases the claims a node held when it stopped, so that its restart
    /// delivers them at once instead of after the claims expire.
    pub async fn release_webhook_claims(&self, node_id: &str) -> StoreResult<u64> {
        Ok(with_db!(&self.db, p => sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', claimed_until = NULL, claimed_by = NULL
             WHERE claimed_by = $1 AND status = 'delivering'",
        ).bind(node_id).execute(p).await?.rows_affected()))
    }

    /// The delivery log of a subscription, newest event first, with every
    /// attempt. `page.after` is an event id (the previous page's cursor).
    pub async fn list_webhook_deliveries(
        &self,
        org_id: &str,
        subscription_id: &str,
        status: Option<WebhookDeliveryStatus>,
        event_id: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<WebhookDelivery>> {
        self.get_webhook(org_id, subscription_id).await?;
        let limit = page.limit();
        let mut rows: Vec<LogRow> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(
                "SELECT d.event_seq, e.id AS event_id, e.event_type, e.mailbox_id, d.status, d.attempts,
                    d.next_attempt_at, d.last_status_code, d.last_error, d.delivered_at, e.created_at
                 FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq
                 WHERE d.org_id = ",
            );
            qb.push_bind(org_id.to_owned()).push(" AND d.subscription_id = ").push_bind(subscription_id.to_owned());
            if let Some(s) = status {
                qb.push(" AND d.status = ").push_bind(s.as_str());
            }
            if let Some(id) = event_id {
                qb.push(" AND e.id = ").push_bind(id.to_owned());
            }
            if let Some(after) = &page.after {
                qb.push(" AND d.event_seq < (SELECT seq FROM webhook_events WHERE id = ")
                    .push_bind(after.clone()).push(")");
            }
            qb.push(" ORDER BY d.event_seq DESC LIMIT ").push_bind(i64::from(limit) + 1);
            qb.build_query_as::<LogRow>().fetch_all(p).await?
        });
        let next_cursor = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.delivery.event_id.clone())
        });
        let attempts: Vec<AttemptRow> = if rows.is_empty() {
            Vec::new()
        } else {
            with_db!(&self.db, p => {
                let mut qb = QueryBuilder::new(
                    "SELECT a.event_seq, e.id AS event_id, a.attempt, a.attempted_at, a.status_code, a.error,
                        a.duration_ms
                     FROM webhook_attempts a JOIN webhook_events e ON e.seq = a.event_seq
                     WHERE a.subscription_id = ",
                );
                qb.push_bind(subscription_id.to_owned()).push(" AND a.event_seq IN (");
                let mut seqs = qb.separated(", ");
                for r in &rows {
                    seqs.push_bind(r.event_seq);
                }
                qb.push(") ORDER BY a.event_seq, a.attempt");
                qb.build_query_as::<AttemptRow>().fetch_all(p).await?
            })
        };
        let mut by_seq: HashMap<i64, Vec<WebhookAttempt>> = HashMap::new();
        for a in attempts {
            by_seq.entry(a.event_seq).or_default().push(a.attempt);
        }
        let items = rows
            .into_iter()
            .map(|r| {
                let mut d = r.delivery;
                d.log = by_seq.remove(&r.event_seq).unwrap_or_default();
                if !matches!(
                    d.status,
                    WebhookDeliveryStatus::Pending | WebhookDeliveryStatus::Delivering
                ) {
                    d.next_attempt_at = None;
                }
                d
            })
            .collect();
        Ok(Page {
            items,
            next_cursor: next_cursor.flatten(),
        })
    }

    /// Puts a failed delivery back in the queue, due now, with the whole retry
    /// schedule ahead of it. Deliveries of the same order key queued after it
    /// wait for it again.
    pub async fn retry_webhook_delivery(
        &self,
        org_id: &str,
        subscription_id: &str,
        event_id: &str,
    ) -> StoreResult<WebhookDelivery> {
        let current = self
            .list_webhook_deliveries(
                org_id,
                subscription_id,
                None,
                Some(event_id),
                &PageRequest::default(),
            )
            .await?
            .items
            .pop()
            .ok_or(StoreError::NotFound)?;
        if current.status != WebhookDeliveryStatus::Failed {
            return Err(StoreError::conflict(
                Some("status"),
                format!(
                    "only a failed delivery can be retried; this one is {}",
                    current.status
                ),
            ));
        }
        let t = now();
        with_db!(&self.db, p => sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $4,
                claimed_until = NULL, claimed_by = NULL, updated_at = $4
             WHERE org_id = $1 AND subscription_id = $2 AND status = 'failed'
               AND event_seq = (SELECT seq FROM webhook_events WHERE id = $3)",
        ).bind(org_id).bind(subscription_id).bind(event_id).bind(t).execute(p).await?.rows_affected());
        self.list_webhook_deliveries(
            org_id,
            subscription_id,
            None,
            Some(event_id),
            &PageRequest::default(),
        )
        .await?
        .items
        .pop()
        .ok_or(StoreError::NotFound)
    }

    /// Queues a `webhook.test` ping to one enabled subscription (and no other),
    /// in an order key of its own so that a backlog does not hold it up.
    /// Returns the event id.
    pub async fn queue_webhook_test(
        &self,
        org_id: &str,
        subscription_id: &str,
    ) -> StoreResult<String> {
        let s = self.get_webhook(org_id, subscription_id).await?;
        if !s.enabled {
            return Err(StoreError::conflict(
                Some("enabled"),
                "this subscription is disabled; enable it (PATCH with \"enabled\": true) to test it",
            ));
        }
        let t = now();
        let data = TestEvent {
            org_id: org_id.to_owned(),
            subscription_id: subscription_id.to_owned(),
            message: "a test event from mailbridge",
        };
        let mut event = NewEvent::new(org_id, TEST_EVENT_TYPE, None, &data, t);
        event.order_key = format!("test:{}", event.id);
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO webhook_events (id, org_id, event_type, mailbox_id, order_key, payload, created_at)
                 VALUES ($1, $2, $3, NULL, $4, $5, $6)",
            ).bind(&event.id).bind(org_id).bind(TEST_EVENT_TYPE).bind(&event.order_key).bind(&event.payload).bind(t)
            .execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO webhook_deliveries (subscription_id, event_seq, org_id, order_key, status, attempts,
                    next_attempt_at, created_at, updated_at)
                 SELECT $1, seq, org_id, order_key, 'pending', 0, $3, $3, $3 FROM webhook_events WHERE id = $2",
            ).bind(subscription_id).bind(&event.id).bind(t).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(event.id)
    }
}
