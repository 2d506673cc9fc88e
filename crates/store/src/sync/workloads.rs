//! The health of each mailbox's workloads: successes, transient failures counted
//! toward the retry limit, permanent failures that disable the workload, and the
//! results of Test & Enable. Each status change is reported to webhooks
//! (`mailbox.status_changed`) in the transaction that makes it.

use chrono::{DateTime, Utc};
use mailbridge_domain::WorkloadStatus;
use mailbridge_domain::webhook::payload::WorkloadStatuses;

use crate::webhooks::events::{emit_events, lock_mailbox_statuses};
use crate::{Backend, Store, StoreResult, now, with_db};

/// One of a mailbox's workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Incoming,
    Outgoing,
}

impl Workload {
    fn prefix(self) -> &'static str {
        match self {
            Workload::Incoming => "incoming",
            Workload::Outgoing => "outgoing",
        }
    }

    /// The statuses with this workload's set to `status`.
    fn with(self, mut s: WorkloadStatuses, status: WorkloadStatus) -> WorkloadStatuses {
        match self {
            Workload::Incoming => s.incoming = status,
            Workload::Outgoing => s.outgoing = status,
        }
        s
    }

    /// The errors to report with a `mailbox.status_changed`: this workload's.
    fn errors(self, error: &str) -> [Option<&str>; 3] {
        match self {
            Workload::Incoming => [Some(error), None, None],
            Workload::Outgoing => [None, Some(error), None],
        }
    }
}

impl Store {
    /// A successful run: failures reset, next run scheduled. `idle` says whether
    /// the run found nothing (the idle back-off counts those). A wake-up that came
    /// while the run was going (its due time is after `started`) is kept: the change
    /// it announced may have come after the run looked.
    pub async fn workload_succeeded(
        &self,
        mailbox_id: &str,
        w: Workload,
        started: DateTime<Utc>,
        next_at: DateTime<Utc>,
        idle: bool,
    ) -> StoreResult<()> {
        let p_ = w.prefix();
        let idle_sql = match (w, idle) {
            (Workload::Incoming, true) => ", idle_runs = idle_runs + 1",
            (Workload::Incoming, false) => ", idle_runs = 0",
            _ => "",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE mailboxes SET {p_}_failures = 0, {p_}_error = NULL, last_{p_}_success_at = $2,
                next_{p_}_at = CASE WHEN next_{p_}_at > $4 THEN next_{p_}_at ELSE $3 END,
                {p_}_status = 'success'{idle_sql} WHERE id = $1"
        ));
        let t = now();
        let postgres = self.backend() == Backend::Postgres;
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let before = lock_mailbox_statuses!(&mut *tx, mailbox_id)?;
            sqlx::query(sql).bind(mailbox_id).bind(t).bind(next_at).bind(started).execute(&mut *tx).await?;
            if let Some(before) = before {
                let after = w.with(before.statuses(), WorkloadStatus::Success);
                emit_events!(&mut *tx, &before.changes(after, [None; 3], t), postgres);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A transient failure: counted, retried at `next_at`; returns the failures so far.
    pub async fn workload_failed_transiently(
        &self,
        mailbox_id: &str,
        w: Workload,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<i64> {
        let p_ = w.prefix();
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE mailboxes SET {p_}_failures = {p_}_failures + 1, {p_}_error = $2, next_{p_}_at = $3
             WHERE id = $1 RETURNING {p_}_failures"
        ));
        let n: Option<i64> = with_db!(&self.db, p => sqlx::query_scalar(sql).bind(mailbox_id).bind(error).bind(next_at).fetch_optional(p).await?);
        Ok(n.unwrap_or(0))
    }

    /// A permanent failure: the workload is disabled and marked failed until it is
    /// tested and enabled again.
    pub async fn disable_workload(
        &self,
        mailbox_id: &str,
        w: Workload,
        error: &str,
    ) -> StoreResult<()> {
        let p_ = w.prefix();
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE mailboxes SET {p_}_enabled = FALSE, {p_}_status = 'failure', {p_}_error = $2, updated_at = $3 WHERE id = $1"
        ));
        let t = now();
        let postgres = self.backend() == Backend::Postgres;
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let before = lock_mailbox_statuses!(&mut *tx, mailbox_id)?;
            sqlx::query(sql).bind(mailbox_id).bind(error).bind(t).execute(&mut *tx).await?;
            if let Some(before) = before {
                let after = w.with(before.statuses(), WorkloadStatus::Failure);
                emit_events!(&mut *tx, &before.changes(after, w.errors(error), t), postgres);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Writes the results of Test & Enable: each status, what is enabled, when.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_test_results(
        &self,
        mailbox_id: &str,
        incoming: WorkloadStatus,
        outgoing: WorkloadStatus,
        act: WorkloadStatus,
        incoming_error: Option<&str>,
        outgoing_error: Option<&str>,
    ) -> StoreResult<()> {
        let t = now();
        let postgres = self.backend() == Backend::Postgres;
        let after = WorkloadStatuses {
            incoming,
            outgoing,
            act,
        };
        with_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            let before = lock_mailbox_statuses!(&mut *tx, mailbox_id)?;
            sqlx::query(
            "UPDATE mailboxes SET incoming_status = $2, outgoing_status = $3, act_status = $4,
                incoming_enabled = $5, outgoing_enabled = $6, act_enabled = $7, tested_at = $8,
                incoming_error = $9, outgoing_error = $10, incoming_failures = 0, outgoing_failures = 0,
                next_incoming_at = $8, next_outgoing_at = $8, idle_runs = 0, updated_at = $8
             WHERE id = $1",
        )
        .bind(mailbox_id).bind(incoming).bind(outgoing).bind(act)
        .bind(incoming == WorkloadStatus::Success).bind(outgoing == WorkloadStatus::Success).bind(act == WorkloadStatus::Success)
        .bind(t).bind(incoming_error).bind(outgoing_error)
        .execute(&mut *tx).await?;
            if let Some(before) = before {
                let events = before.changes(after, [incoming_error, outgoing_error, None], t);
                emit_events!(&mut *tx, &events, postgres);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Of a profile's mailboxes with a tested workload: how many are failing now
    /// after a failure within the window, and how many there are.
    pub async fn profile_failures(
        &self,
        org_id: &str,
        profile_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<(i64, i64)> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT
                COALESCE(SUM(CASE WHEN (incoming_status = 'failure' OR outgoing_status = 'failure') AND updated_at >= $3 THEN 1 ELSE 0 END), 0),
                COUNT(*)
             FROM mailboxes WHERE org_id = $1 AND profile_id = $2",
        ).bind(org_id).bind(profile_id).bind(since).fetch_one(p).await?))
    }
}

impl Store {
    /// Consecutive incoming runs of a mailbox that found nothing.
    pub async fn idle_runs(&self, mailbox_id: &str) -> StoreResult<i64> {
        let v: Option<i64> = with_db!(&self.db, p => sqlx::query_scalar("SELECT idle_runs FROM mailboxes WHERE id = $1")
            .bind(mailbox_id).fetch_optional(p).await?);
        Ok(v.unwrap_or(0))
    }
}
