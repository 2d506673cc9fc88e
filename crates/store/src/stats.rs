//! Aggregates for the `/metrics` endpoint: one cheap query each, read at scrape
//! time. They count across every organization on purpose: they describe the
//! service, and they return numbers only — no id, name or address of any record.

use chrono::{DateTime, Utc};
use mailbridge_domain::{AlertSeverity, ApprovalStatus, JobStatus, WorkloadStatus};

use crate::{Store, StoreResult, with_db};

/// How many mailboxes share one combination of statuses.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailboxStatusCount {
    pub incoming_status: WorkloadStatus,
    pub outgoing_status: WorkloadStatus,
    pub act_status: WorkloadStatus,
    pub approval_status: ApprovalStatus,
    pub incoming_enabled: bool,
    pub outgoing_enabled: bool,
    pub mailboxes: i64,
}

/// How far behind the incoming workload is, over the mailboxes that may run it
/// (enabled, on a profile, approved when approval is required).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IncomingLag {
    pub mailboxes: i64,
    /// The oldest last successful run (the test time for one never run since).
    pub oldest_success: Option<DateTime<Utc>>,
    /// Mailboxes whose next run was due before the `late_before` asked.
    pub overdue: i64,
}

/// The send queue.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutgoingQueue {
    /// Emails waiting in `pending_send`, due or not.
    pub pending: i64,
    /// Emails claimed by a run (`sending`).
    pub sending: i64,
    /// Pending emails whose send was due before the `late_before` asked.
    pub overdue: i64,
    /// When the longest-waiting due email became due.
    pub oldest_due: Option<DateTime<Utc>>,
}

impl Store {
    /// Mailboxes counted by their statuses and enabled workloads.
    pub async fn mailbox_status_counts(&self) -> StoreResult<Vec<MailboxStatusCount>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT incoming_status, outgoing_status, act_status, approval_status,
                incoming_enabled, outgoing_enabled, COUNT(*) AS mailboxes
             FROM mailboxes
             GROUP BY incoming_status, outgoing_status, act_status, approval_status,
                incoming_enabled, outgoing_enabled",
        ).fetch_all(p).await?))
    }

    /// The incoming workload's lag; `late_before` is the due time after which a
    /// mailbox not yet run counts as overdue.
    pub async fn incoming_lag(&self, late_before: DateTime<Utc>) -> StoreResult<IncomingLag> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT COUNT(*) AS mailboxes,
                MIN(COALESCE(m.last_incoming_success_at, m.tested_at, m.created_at)) AS oldest_success,
                COALESCE(SUM(CASE WHEN m.next_incoming_at < $1 THEN 1 ELSE 0 END), 0) AS overdue
             FROM mailboxes m JOIN email_settings s ON s.org_id = m.org_id
             WHERE m.incoming_enabled AND m.incoming_method = 'server_side_sync'
               AND m.profile_id IS NOT NULL
               -- The scheduler's condition (Store::due_mailboxes).
               AND (m.approval_status = 'approved'
                    OR (m.owner_type = 'user' AND NOT s.process_email_for_approved_users_only)
                    OR (m.owner_type = 'queue' AND NOT s.process_email_for_approved_queues_only))",
        ).bind(late_before).fetch_one(p).await?))
    }

    /// The send queue at `now`; `late_before` as for [`Store::incoming_lag`].
    pub async fn outgoing_queue(
        &self,
        now: DateTime<Utc>,
        late_before: DateTime<Utc>,
    ) -> StoreResult<OutgoingQueue> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT
                COALESCE(SUM(CASE WHEN status = 'pending_send' THEN 1 ELSE 0 END), 0) AS pending,
                COALESCE(SUM(CASE WHEN status = 'sending' THEN 1 ELSE 0 END), 0) AS sending,
                COALESCE(SUM(CASE WHEN status = 'pending_send'
                    AND COALESCE(next_attempt_at, updated_at) < $2 THEN 1 ELSE 0 END), 0) AS overdue,
                MIN(CASE WHEN status = 'pending_send' AND COALESCE(next_attempt_at, updated_at) <= $1
                    THEN COALESCE(next_attempt_at, updated_at) END) AS oldest_due
             FROM emails WHERE status IN ('pending_send', 'sending')",
        ).bind(now).bind(late_before).fetch_one(p).await?))
    }

    /// Jobs not finished, by status (queued, running).
    pub async fn unfinished_jobs(&self) -> StoreResult<Vec<(JobStatus, i64)>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running') GROUP BY status",
        ).fetch_all(p).await?))
    }

    /// Alerts (kept until dismissed) by severity.
    pub async fn alerts_by_severity(&self) -> StoreResult<Vec<(AlertSeverity, i64)>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT severity, COUNT(*) FROM alerts GROUP BY severity",
        ).fetch_all(p).await?))
    }

    /// Webhook deliveries waiting, by status (`pending`, `delivering`: what the
    /// partial indexes of the table cover, so no scan of the delivery log); `None`
    /// while the store has no `webhook_deliveries` table.
    ///
    /// WEBHOOKS: the table comes with migration 0005; until then the query fails
    /// with "no such table" (SQLite) or undefined_table (PostgreSQL, 42P01), which
    /// is read as "no webhooks". Once every store has the table this fallback can go.
    pub async fn webhook_outbox(&self) -> StoreResult<Option<Vec<(String, i64)>>> {
        let rows: Result<Vec<(String, i64)>, sqlx::Error> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT status, COUNT(*) FROM webhook_deliveries
             WHERE status IN ('pending', 'delivering') GROUP BY status",
        ).fetch_all(p).await);
        match rows {
            Ok(rows) => Ok(Some(rows)),
            Err(sqlx::Error::Database(d))
                if d.code().as_deref() == Some("42P01")
                    || d.message().contains("no such table") =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The migrations this build knows that the database has not applied
    /// successfully (empty once `open` succeeded, unless the schema was changed
    /// by hand since).
    pub async fn pending_migrations(&self) -> StoreResult<Vec<i64>> {
        let (known, applied): (Vec<i64>, Vec<i64>) = with_db!(&self.db, p => {
            let applied = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(p)
                .await?;
            let known = match self.backend() {
                crate::Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
                crate::Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
            }
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .collect();
            (known, applied)
        });
        Ok(known.into_iter().filter(|v| !applied.contains(v)).collect())
    }
}
