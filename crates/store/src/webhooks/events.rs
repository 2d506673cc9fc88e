//! Writing events: inside the transaction of the change they report, with one
//! delivery per enabled subscription of the organization to that event type, so
//! that a change is never committed without its event nor an event without its
//! change.

use chrono::{DateTime, Utc};
use mailbridge_domain::WebhookEventType;
use mailbridge_domain::WorkloadStatus;
use mailbridge_domain::activity::Email;
use mailbridge_domain::alert::Alert;
use mailbridge_domain::webhook::payload::{
    AlertEvent, EmailEvent, MailboxStatusEvent, WorkloadStatuses, envelope, new_event_id,
    status_changes,
};
use serde::Serialize;

/// An event to write.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub id: String,
    pub org_id: String,
    pub event_type: &'static str,
    pub mailbox_id: Option<String>,
    /// Deliveries of one subscription and order key go out in event order.
    pub order_key: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

impl NewEvent {
    pub fn new<T: Serialize>(
        org_id: &str,
        event_type: &'static str,
        mailbox_id: Option<&str>,
        data: &T,
        at: DateTime<Utc>,
    ) -> NewEvent {
        NewEvent {
            id: new_event_id(),
            org_id: org_id.to_owned(),
            event_type,
            mailbox_id: mailbox_id.map(str::to_owned),
            order_key: mailbox_id.unwrap_or_default().to_owned(),
            payload: envelope(event_type, at, data),
            created_at: at,
        }
    }

    /// `email.tracked`, `email.sent` or `email.failed`.
    pub fn email(t: WebhookEventType, e: &Email, at: DateTime<Utc>) -> NewEvent {
        NewEvent::new(
            &e.org_id,
            t.as_str(),
            e.mailbox_id.as_deref(),
            &EmailEvent::from(e),
            at,
        )
    }

    pub fn alert(a: &Alert, at: DateTime<Utc>) -> NewEvent {
        NewEvent::new(
            &a.org_id,
            WebhookEventType::AlertRaised.as_str(),
            a.mailbox_id.as_deref(),
            &AlertEvent::from(a),
            at,
        )
    }
}

/// A mailbox's statuses, read under the transaction's lock on its row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct MailboxStatusRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub email_address: Option<String>,
    pub incoming_status: WorkloadStatus,
    pub outgoing_status: WorkloadStatus,
    pub act_status: WorkloadStatus,
}

impl MailboxStatusRow {
    pub fn statuses(&self) -> WorkloadStatuses {
        WorkloadStatuses {
            incoming: self.incoming_status,
            outgoing: self.outgoing_status,
            act: self.act_status,
        }
    }

    /// One `mailbox.status_changed` per workload whose status moves to `after`;
    /// `errors` are the incoming, outgoing and ACT errors to report with a failure.
    pub fn changes(
        &self,
        after: WorkloadStatuses,
        errors: [Option<&str>; 3],
        at: DateTime<Utc>,
    ) -> Vec<NewEvent> {
        status_changes(self.statuses(), after)
            .into_iter()
            .map(|(workload, before, after_status)| {
                let error = match workload {
                    "incoming" => errors[0],
                    "outgoing" => errors[1],
                    _ => errors[2],
                };
                let data = MailboxStatusEvent {
                    org_id: self.org_id.clone(),
                    mailbox_id: self.id.clone(),
                    mailbox_name: self.name.clone(),
                    email_address: self.email_address.clone(),
                    workload,
                    status_before: before,
                    status_after: after_status,
                    error: (after_status == WorkloadStatus::Failure)
                        .then(|| error.map(str::to_owned))
                        .flatten(),
                };
                NewEvent::new(
                    &self.org_id,
                    WebhookEventType::MailboxStatusChanged.as_str(),
                    Some(&self.id),
                    &data,
                    at,
                )
            })
            .collect()
    }
}

/// Locks a mailbox's row for the rest of the transaction and returns its
/// statuses as they are: a write first, so that SQLite takes its write lock now
/// (a read first could not be upgraded after another writer committed) and
/// PostgreSQL holds the row until commit. `Option<MailboxStatusRow>`.
macro_rules! lock_mailbox_statuses {
    ($tx:expr, $mailbox_id:expr) => {
        sqlx::query_as::<_, $crate::webhooks::events::MailboxStatusRow>(
            "UPDATE mailboxes SET updated_at = updated_at WHERE id = $1
             RETURNING id, org_id, name, email_address, incoming_status, outgoing_status, act_status",
        )
        .bind($mailbox_id)
        .fetch_optional($tx)
        .await
    };
}
pub(crate) use lock_mailbox_statuses;

/// Writes `events` and their deliveries inside a transaction (`$tx` is `&mut
/// *tx`); `$postgres` says whether it is PostgreSQL. Call it last before the
/// commit. Only events some enabled subscription wants are written.
///
/// Ordering: events of one order key must become visible in `seq` order, or a
/// delivery could pass an earlier event still uncommitted. SQLite has one writer;
/// on PostgreSQL a transaction-scoped advisory lock per order key is taken before
/// the sequence numbers are drawn and held until the commit (taken in sorted
/// order and last in the transaction, so it cannot deadlock).
macro_rules! emit_events {
    ($tx:expr, $events:expr, $postgres:expr) => {{
        let events: &[$crate::webhooks::events::NewEvent] = $events;
        let mut subscribed: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for e in events {
            if !subscribed.contains_key(e.org_id.as_str()) {
                let types: Vec<String> = sqlx::query_scalar(
                    "SELECT event_types FROM webhook_subscriptions WHERE org_id = $1 AND enabled = TRUE",
                )
                .bind(&e.org_id)
                .fetch_all($tx)
                .await?;
                subscribed.insert(e.org_id.as_str(), types);
            }
        }
        let wanted: Vec<&$crate::webhooks::events::NewEvent> = events
            .iter()
            .filter(|e| {
                subscribed[e.org_id.as_str()]
                    .iter()
                    .any(|types| types.split(' ').any(|t| t == e.event_type))
            })
            .collect();
        if $postgres {
            let keys: std::collections::BTreeSet<&str> =
                wanted.iter().map(|e| e.order_key.as_str()).collect();
            for key in keys {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(key)
                    .execute($tx)
                    .await?;
            }
        }
        for chunk in wanted.chunks(200) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO webhook_events (id, org_id, event_type, mailbox_id, order_key, payload, created_at) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(&e.id).push_bind(&e.org_id).push_bind(e.event_type).push_bind(&e.mailbox_id)
                    .push_bind(&e.order_key).push_bind(&e.payload).push_bind(e.created_at);
            });
            qb.build().execute($tx).await?;
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO webhook_deliveries (subscription_id, event_seq, org_id, order_key, status, attempts,
                    next_attempt_at, created_at, updated_at)
                 SELECT s.id, e.seq, e.org_id, e.order_key, 'pending', 0, e.created_at, e.created_at, e.created_at
                 FROM webhook_events e JOIN webhook_subscriptions s ON s.org_id = e.org_id AND s.enabled = TRUE
                    AND (' ' || s.event_types || ' ') LIKE ('% ' || e.event_type || ' %')
                 WHERE e.id IN (",
            );
            let mut ids = qb.separated(", ");
            for e in chunk {
                ids.push_bind(e.id.clone());
            }
            qb.push(")");
            qb.build().execute($tx).await?;
        }
    }};
}
pub(crate) use emit_events;
