//! The ACT workload's schedule and health on a mailbox (migration 0013): which
//! mailboxes have ACT work due, a run's success or failure (reported to webhooks as
//! `mailbox.status_changed` in the same transaction, like incoming and outgoing),
//! and where the run's change feed of records stands.

use chrono::{DateTime, Utc};
use mailbridge_domain::WorkloadStatus;

use crate::sync::DueWork;
use crate::webhooks::events::{emit_events, lock_mailbox_statuses};
use crate::{Backend, Store, StoreResult, now, with_db};

/// Where a mailbox's ACT change feed stands: the start of its last complete run and
/// the filters that run applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ActRunState {
    pub act_synced_from: Option<DateTime<Utc>>,
    pub act_filters_json: Option<String>,
}

impl Store {
    /// Mailboxes assigned to `node` with ACT work due at `now` that no other node's live lease holds and that may
    /// process (approved, while approval is required). `incoming_due` and
    /// `outgoing_due` are false: the scheduler merges these with the email work.
    pub async fn due_act_mailboxes(
        &self,
        node: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<DueWork>> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT m.id AS mailbox_id, m.org_id, m.profile_id,
                FALSE AS incoming_due, FALSE AS outgoing_due
             FROM mailboxes m JOIN email_settings s ON s.org_id = m.org_id
             WHERE m.profile_id IS NOT NULL
               AND m.act_enabled AND m.act_method = 'server_side_sync'
               AND (m.next_act_at IS NULL OR m.next_act_at <= $1)
               AND m.assigned_node = $3 AND m.assigned_until >= $1
               AND (m.lease_owner IS NULL OR m.lease_expires_at < $1 OR m.lease_owner = $3)
               AND (m.approval_status = 'approved'
                    OR (m.owner_type = 'user' AND NOT s.process_email_for_approved_users_only)
                    OR (m.owner_type = 'queue' AND NOT s.process_email_for_approved_queues_only))
             ORDER BY m.next_act_at, m.id
             LIMIT $2",
        ).bind(now).bind(limit).bind(node).fetch_all(p).await?))
    }

    /// A successful ACT run: failures reset, status `success`, next run at
    /// `next_at` unless something made it due after the run `started`.
    pub async fn act_succeeded(
        &self,
        mailbox_id: &str,
        started: DateTime<Utc>,
        next_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let t = now();
        let postgres = self.backend() == Backend::Postgres;
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let before = lock_mailbox_statuses!(&mut *tx, mailbox_id)?;
            sqlx::query(
                "UPDATE mailboxes SET act_failures = 0, act_error = NULL, last_act_success_at = $2,
                    next_act_at = CASE WHEN next_act_at > $4 THEN next_act_at ELSE $3 END,
                    act_status = 'success'
                 WHERE id = $1",
            )
            .bind(mailbox_id).bind(t).bind(next_at).bind(started).execute(&mut *tx).await?;
            if let Some(before) = before {
                let mut after = before.statuses();
                after.act = WorkloadStatus::Success;
                emit_events!(&mut *tx, &before.changes(after, [None; 3], t), postgres);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A transient ACT failure: counted, retried at `next_at`; the failures so far.
    pub async fn act_failed_transiently(
        &self,
        mailbox_id: &str,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<i64> {
        let n: Option<i64> = with_db!(&self.db, p => sqlx::query_scalar(
            "UPDATE mailboxes SET act_failures = act_failures + 1, act_error = $2, next_act_at = $3
             WHERE id = $1 RETURNING act_failures",
        ).bind(mailbox_id).bind(error).bind(next_at).fetch_optional(p).await?);
        Ok(n.unwrap_or(0))
    }

    /// A permanent ACT failure: disabled and marked failed until tested and
    /// enabled again.
    pub async fn disable_act(&self, mailbox_id: &str, error: &str) -> StoreResult<()> {
        let t = now();
        let postgres = self.backend() == Backend::Postgres;
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let before = lock_mailbox_statuses!(&mut *tx, mailbox_id)?;
            sqlx::query(
                "UPDATE mailboxes SET act_enabled = FALSE, act_status = 'failure', act_error = $2,
                    updated_at = $3
                 WHERE id = $1",
            )
            .bind(mailbox_id).bind(error).bind(t).execute(&mut *tx).await?;
            if let Some(before) = before {
                let mut after = before.statuses();
                after.act = WorkloadStatus::Failure;
                emit_events!(&mut *tx, &before.changes(after, [None, None, Some(error)], t), postgres);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// After Test & Enable tested ACT: its error (none when it passed), no failures
    /// counted, and the first run due at once.
    pub async fn act_tested(&self, mailbox_id: &str, error: Option<&str>) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET act_error = $2, act_failures = 0, next_act_at = NULL WHERE id = $1",
        ).bind(mailbox_id).bind(error).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Where the mailbox's ACT change feed stands.
    pub async fn act_run_state(&self, mailbox_id: &str) -> StoreResult<ActRunState> {
        let v: Option<ActRunState> = with_db!(&self.db, p => sqlx::query_as(
            "SELECT act_synced_from, act_filters_json FROM mailboxes WHERE id = $1",
        ).bind(mailbox_id).fetch_optional(p).await?);
        Ok(v.unwrap_or_default())
    }

    /// Records a complete ACT run that started at `started` with these filters.
    pub async fn set_act_run_state(
        &self,
        mailbox_id: &str,
        started: DateTime<Utc>,
        filters_json: &str,
    ) -> StoreResult<()> {
        with_db!(&self.db, p => sqlx::query(
            "UPDATE mailboxes SET act_synced_from = $2, act_filters_json = $3 WHERE id = $1",
        ).bind(mailbox_id).bind(started).bind(filters_json).execute(p).await?.rows_affected());
        Ok(())
    }
}
