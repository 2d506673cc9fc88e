//! Monitoring reads for administrators and integrators: mailboxes counted by view,
//! the health of each mailbox's and profile's workloads (last successful runs, lag,
//! items processed and failed), throughput over time, a job's items page by page,
//! and lists read newest first. Every per-mailbox read is paged.

use chrono::{DateTime, Duration, Utc};
use mailbridge_domain::activity::Email;
use mailbridge_domain::job::Job;
use mailbridge_domain::{ApprovalStatus, JobStatus, WorkloadStatus};
use serde::Serialize;
use sqlx::QueryBuilder;

use crate::page::{into_page, push_filters};
use crate::records::Record;
use crate::{Decision, Filter, Page, PageRequest, Store, StoreError, StoreResult, with_db};

/// How many of an organization's mailboxes each view of the Mailboxes grid holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MailboxViewCounts {
    pub all: i64,
    /// At least one workload enabled and none failed.
    pub active: i64,
    /// At least one workload failed.
    pub failed: i64,
    /// The address waits for an approver.
    pub pending_approval: i64,
}

/// The SQL condition of each view, on the mailboxes alias `t`.
pub const VIEW_FAILED: &str = "'failure' IN (t.incoming_status, t.outgoing_status, t.act_status)";
pub const VIEW_ACTIVE: &str = "(t.incoming_enabled OR t.outgoing_enabled OR t.act_enabled)
    AND NOT ('failure' IN (t.incoming_status, t.outgoing_status, t.act_status))";
pub const VIEW_PENDING_APPROVAL: &str = "t.approval_status = 'pending'";

/// The filter for a view of the Mailboxes grid (`all`, or anything else: none).
pub fn mailbox_view_filter(view: &str) -> Option<Filter> {
    const STATUSES: &str = " IN (t.incoming_status, t.outgoing_status, t.act_status))";
    match view {
        "active" => Some(Filter::Around(
            "(t.incoming_enabled OR t.outgoing_enabled OR t.act_enabled) AND NOT (",
            "failure".to_owned(),
            STATUSES,
        )),
        "failed" => Some(Filter::Around("(", "failure".to_owned(), STATUSES)),
        "pending_approval" => Some(Filter::Eq("t.approval_status", "pending".to_owned())),
        _ => None,
    }
}

/// One workload's health on one mailbox, and what the mailbox did in the window.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MailboxHealth {
    pub mailbox_id: String,
    pub name: String,
    pub email_address: Option<String>,
    pub profile_id: Option<String>,
    pub profile_name: Option<String>,
    pub approval_status: ApprovalStatus,
    pub incoming_status: WorkloadStatus,
    pub incoming_enabled: bool,
    pub last_incoming_success_at: Option<DateTime<Utc>>,
    pub next_incoming_at: Option<DateTime<Utc>>,
    /// Transient failures in a row, counted toward the retry limit.
    pub incoming_failures: i64,
    pub incoming_error: Option<String>,
    pub outgoing_status: WorkloadStatus,
    pub outgoing_enabled: bool,
    pub last_outgoing_success_at: Option<DateTime<Utc>>,
    pub next_outgoing_at: Option<DateTime<Utc>>,
    pub outgoing_failures: i64,
    pub outgoing_error: Option<String>,
    pub act_status: WorkloadStatus,
    pub act_enabled: bool,
    pub tested_at: Option<DateTime<Utc>>,
    /// Since when the incoming workload has not completed a run (its last success,
    /// else its test); absent when incoming is not enabled.
    #[sqlx(default)]
    pub lag_seconds: Option<i64>,
    /// Messages looked at in the window (tracked, linked or skipped).
    pub processed: i64,
    /// Messages that failed in the window.
    pub failed: i64,
    /// Emails sent from the mailbox in the window.
    pub sent: i64,
    /// Emails that failed to send in the window.
    pub send_failed: i64,
    /// When the last completeness census of the mailbox finished; absent before
    /// the first.
    pub last_census_at: Option<DateTime<Utc>>,
    /// Messages the last census found on the server, in a processed folder, never
    /// processed (all back-filled since); absent before the first census.
    pub census_gaps: Option<i64>,
    /// The node holding the mailbox now: it schedules its runs and watches it
    /// (docs/CLUSTER.md); absent when no live node holds it.
    pub node: Option<String>,
    #[serde(skip)]
    #[sqlx(default)]
    node_until: Option<DateTime<Utc>>,
    #[serde(skip)]
    #[sqlx(default)]
    incoming_since: Option<DateTime<Utc>>,
}

/// The health of one email server profile's mailboxes.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ProfileHealth {
    pub profile_id: String,
    pub name: String,
    pub mailboxes: i64,
    /// Mailboxes with at least one workload enabled and none failed.
    pub active: i64,
    /// Mailboxes with a failed workload.
    pub failed_mailboxes: i64,
    pub last_incoming_success_at: Option<DateTime<Utc>>,
    pub last_outgoing_success_at: Option<DateTime<Utc>>,
    /// The lag of the profile's most lagging mailbox.
    #[sqlx(default)]
    pub lag_seconds: Option<i64>,
    pub processed: i64,
    pub failed: i64,
    pub sent: i64,
    pub send_failed: i64,
    /// One of the errors its failing mailboxes report.
    pub last_error: Option<String>,
    #[serde(skip)]
    #[sqlx(default)]
    oldest_incoming: Option<DateTime<Utc>>,
}

/// The organization at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MonitoringSummary {
    pub mailboxes: MailboxViewCounts,
    /// The start of the window the counts below cover.
    pub since: DateTime<Utc>,
    /// Emails tracked (new emails and links to existing ones) in the window.
    pub tracked: i64,
    pub sent: i64,
    /// Messages that failed to be tracked plus emails that failed to send.
    pub failures: i64,
    /// The largest incoming lag among enabled mailboxes.
    pub oldest_lag_seconds: Option<i64>,
    /// Alerts of severity `error` not dismissed.
    pub error_alerts: i64,
}

/// How a per-mailbox monitoring page is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthSort {
    /// Failed workloads first, then most failures, then most lag.
    Worst,
    Lag,
    Errors,
    Name,
}

/// One bucket of throughput.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ThroughputBucket {
    pub start: DateTime<Utc>,
    pub tracked: i64,
    pub sent: i64,
    pub failed: i64,
}

/// Which mailboxes throughput is counted over.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub mailbox_id: Option<String>,
    pub profile_id: Option<String>,
}

/// A job's result for one mailbox, with the mailbox's name.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct JobItemView {
    pub position: i64,
    pub mailbox_id: String,
    pub mailbox_name: Option<String>,
    pub email_address: Option<String>,
    pub status: JobStatus,
    pub message: Option<String>,
    pub incoming_status: Option<WorkloadStatus>,
    pub outgoing_status: Option<WorkloadStatus>,
    pub act_status: Option<WorkloadStatus>,
}

/// A job's items counted by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct JobItemCounts {
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// Seconds from `since` to `now`, never negative.
fn lag(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<i64> {
    since.map(|s| (now - s).num_seconds().max(0))
}

/// Bucket starts: `count` buckets of `width` ending at the bucket holding `now`,
/// aligned on the width (whole hours, whole minutes).
pub fn bucket_starts(now: DateTime<Utc>, width: Duration, count: usize) -> Vec<DateTime<Utc>> {
    let w = width.num_seconds().max(1);
    let aligned = now.timestamp() - now.timestamp().rem_euclid(w);
    let first = aligned - w * (count as i64 - 1);
    (0..count as i64)
        .filter_map(|i| DateTime::from_timestamp(first + i * w, 0))
        .collect()
}

/// `CAST(CASE WHEN col < b1 THEN 0 WHEN col < b2 THEN 1 ... END AS BIGINT)`.
fn push_bucket_expr<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    col: &str,
    starts: &[DateTime<Utc>],
    end: DateTime<Utc>,
) where
    for<'t> DateTime<Utc>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push("CAST(CASE");
    let bounds = starts.iter().skip(1).copied().chain(std::iter::once(end));
    for (i, b) in bounds.enumerate() {
        qb.push(format!(" WHEN {col} < ")).push_bind(b);
        qb.push(format!(" THEN {i}"));
    }
    qb.push(" ELSE -1 END AS BIGINT)");
}

/// Joins each mailbox `t`'s activity since `since`: `d` (decisions) and `e` (sends).
fn push_activity_joins<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    org_id: &str,
    since: DateTime<Utc>,
) where
    for<'t> DateTime<Utc>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    qb.push(
        " LEFT JOIN (SELECT mailbox_id,
            COALESCE(SUM(CASE WHEN outcome IN ('tracked', 'linked', 'skipped') THEN 1 ELSE 0 END), 0) AS processed,
            COALESCE(SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END), 0) AS failed
        FROM message_decisions WHERE org_id = ",
    )
    .push_bind(org_id.to_owned())
    .push(" AND updated_at >= ")
    .push_bind(since)
    .push(
        " GROUP BY mailbox_id) d ON d.mailbox_id = t.id
        LEFT JOIN (SELECT mailbox_id,
            COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
            COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS send_failed
        FROM emails WHERE org_id = ",
    )
    .push_bind(org_id.to_owned())
    .push(" AND direction = 'outgoing' AND status IN ('sent', 'failed') AND updated_at >= ")
    .push_bind(since)
    .push(" GROUP BY mailbox_id) e ON e.mailbox_id = t.id");
}

const HEALTH_SELECT: &str = "SELECT t.id AS mailbox_id, t.name, t.email_address, t.profile_id,
        p.name AS profile_name, t.approval_status,
        t.incoming_status, t.incoming_enabled, t.last_incoming_success_at, t.next_incoming_at,
        t.incoming_failures, t.incoming_error,
        t.outgoing_status, t.outgoing_enabled, t.last_outgoing_success_at, t.next_outgoing_at,
        t.outgoing_failures, t.outgoing_error,
        t.act_status, t.act_enabled, t.tested_at,
        CASE WHEN t.incoming_enabled THEN COALESCE(t.last_incoming_success_at, t.tested_at, t.created_at) END
            AS incoming_since,
        COALESCE(d.processed, 0) AS processed, COALESCE(d.failed, 0) AS failed,
        COALESCE(e.sent, 0) AS sent, COALESCE(e.send_failed, 0) AS send_failed,
        c.last_census_at, CASE WHEN c.last_census_at IS NULL THEN NULL ELSE c.census_gaps END AS census_gaps,
        t.assigned_node AS node, t.assigned_until AS node_until
    FROM mailboxes t
    LEFT JOIN email_server_profiles p ON p.id = t.profile_id
    LEFT JOIN mailbox_census c ON c.org_id = t.org_id AND c.mailbox_id = t.id";

impl Store {
    /// A page of records, newest first: the cursor is the last id of the previous
    /// page and the next page holds older records.
    pub(crate) async fn list_records_newest_first<T: Record>(
        &self,
        select: &'static str,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<T>> {
        let limit = page.limit();
        let rows: Vec<T> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(select);
            qb.push(" WHERE t.org_id = ").push_bind(org_id.to_owned());
            push_filters(&mut qb, filters);
            if let Some(before) = &page.after {
                qb.push(" AND t.id < ").push_bind(before.clone());
            }
            qb.push(" ORDER BY t.id DESC LIMIT ").push_bind(i64::from(limit) + 1);
            qb.build_query_as::<T>().fetch_all(p).await?
        });
        Ok(into_page(rows, limit, T::id))
    }

    /// The decision trail, newest first.
    pub async fn list_decisions_newest_first(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Decision>> {
        self.list_records_newest_first(crate::sync::DECISIONS_SELECT, org_id, filters, page)
            .await
    }

    /// Emails, newest first, with their parties.
    pub async fn list_emails_newest_first(
        &self,
        org_id: &str,
        filters: &[Filter],
        page: &PageRequest,
    ) -> StoreResult<Page<Email>> {
        let mut page: Page<Email> = self
            .list_records_newest_first(crate::activities::SELECT_EMAILS, org_id, filters, page)
            .await?;
        self.attach_parties(&mut page.items).await?;
        Ok(page)
    }

    /// How many mailboxes each view holds, among those matching `filters`.
    pub async fn mailbox_view_counts(
        &self,
        org_id: &str,
        filters: &[Filter],
    ) -> StoreResult<MailboxViewCounts> {
        let select = format!(
            "SELECT COUNT(*) AS \"all\",
                COALESCE(SUM(CASE WHEN {VIEW_ACTIVE} THEN 1 ELSE 0 END), 0) AS active,
                COALESCE(SUM(CASE WHEN {VIEW_FAILED} THEN 1 ELSE 0 END), 0) AS failed,
                COALESCE(SUM(CASE WHEN {VIEW_PENDING_APPROVAL} THEN 1 ELSE 0 END), 0) AS pending_approval
             FROM mailboxes t WHERE t.org_id = "
        );
        Ok(with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(select);
            qb.push_bind(org_id.to_owned());
            push_filters(&mut qb, filters);
            qb.build_query_as::<MailboxViewCounts>().fetch_one(p).await?
        }))
    }

    /// A page of mailboxes' workload health, ordered by `sort`; activity counted
    /// since `since`. The cursor is an offset (the order is not by id).
    pub async fn mailbox_health(
        &self,
        org_id: &str,
        filters: &[Filter],
        sort: HealthSort,
        since: DateTime<Utc>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<MailboxHealth>, Option<u64>)> {
        let order = match sort {
            HealthSort::Worst => {
                "(CASE WHEN t.incoming_status = 'failure' THEN 1 ELSE 0 END
                  + CASE WHEN t.outgoing_status = 'failure' THEN 1 ELSE 0 END
                  + CASE WHEN t.act_status = 'failure' THEN 1 ELSE 0 END) DESC,
                 COALESCE(d.failed, 0) + COALESCE(e.send_failed, 0) DESC,
                 (t.incoming_failures + t.outgoing_failures) DESC,
                 CASE WHEN t.incoming_enabled THEN 0 ELSE 1 END,
                 COALESCE(t.last_incoming_success_at, t.tested_at, t.created_at), t.id"
            }
            HealthSort::Lag => {
                "CASE WHEN t.incoming_enabled THEN 0 ELSE 1 END,
                 COALESCE(t.last_incoming_success_at, t.tested_at, t.created_at), t.id"
            }
            HealthSort::Errors => {
                "COALESCE(d.failed, 0) + COALESCE(e.send_failed, 0) DESC,
                 (t.incoming_failures + t.outgoing_failures) DESC, t.id"
            }
            HealthSort::Name => "lower(t.name), t.id",
        };
        let mut rows: Vec<MailboxHealth> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(HEALTH_SELECT);
            push_activity_joins(&mut qb, org_id, since);
            qb.push(" WHERE t.org_id = ").push_bind(org_id.to_owned());
            push_filters(&mut qb, filters);
            qb.push(format!(" ORDER BY {order} LIMIT "))
                .push_bind(i64::from(limit) + 1)
                .push(" OFFSET ")
                .push_bind(offset as i64);
            qb.build_query_as::<MailboxHealth>().fetch_all(p).await?
        });
        let next = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            offset + u64::from(limit)
        });
        let now = Utc::now();
        for r in &mut rows {
            r.lag_seconds = lag(r.incoming_since, now);
            // An assignment that ran out is held by nobody.
            if r.node_until.is_none_or(|until| until < now) {
                r.node = None;
            }
        }
        Ok((rows, next))
    }

    /// One mailbox's workload health.
    pub async fn one_mailbox_health(
        &self,
        org_id: &str,
        mailbox_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<MailboxHealth> {
        let filters = [Filter::Eq("t.id", mailbox_id.to_owned())];
        let (mut rows, _) = self
            .mailbox_health(org_id, &filters, HealthSort::Name, since, 0, 1)
            .await?;
        rows.pop().ok_or(StoreError::NotFound)
    }

    /// The health of every email server profile of the organization (at most 500).
    pub async fn profile_health(
        &self,
        org_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<ProfileHealth>> {
        let select = format!(
            "SELECT p.id AS profile_id, p.name, COUNT(t.id) AS mailboxes,
                COALESCE(SUM(CASE WHEN {VIEW_ACTIVE} THEN 1 ELSE 0 END), 0) AS active,
                COALESCE(SUM(CASE WHEN {VIEW_FAILED} THEN 1 ELSE 0 END), 0) AS failed_mailboxes,
                MAX(t.last_incoming_success_at) AS last_incoming_success_at,
                MAX(t.last_outgoing_success_at) AS last_outgoing_success_at,
                MIN(CASE WHEN t.incoming_enabled
                    THEN COALESCE(t.last_incoming_success_at, t.tested_at, t.created_at) END) AS oldest_incoming,
                CAST(COALESCE(SUM(d.processed), 0) AS BIGINT) AS processed, CAST(COALESCE(SUM(d.failed), 0) AS BIGINT) AS failed,
                CAST(COALESCE(SUM(e.sent), 0) AS BIGINT) AS sent, CAST(COALESCE(SUM(e.send_failed), 0) AS BIGINT) AS send_failed,
                MAX(COALESCE(t.incoming_error, t.outgoing_error)) AS last_error
             FROM email_server_profiles p
             LEFT JOIN mailboxes t ON t.profile_id = p.id AND t.org_id = p.org_id"
        );
        let mut rows: Vec<ProfileHealth> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(select.clone());
            push_activity_joins(&mut qb, org_id, since);
            qb.push(" WHERE p.org_id = ").push_bind(org_id.to_owned());
            qb.push(" GROUP BY p.id, p.name ORDER BY failed_mailboxes DESC, lower(p.name) LIMIT 500");
            qb.build_query_as::<ProfileHealth>().fetch_all(p).await?
        });
        let now = Utc::now();
        for r in &mut rows {
            r.lag_seconds = lag(r.oldest_incoming, now);
        }
        Ok(rows)
    }

    /// The organization at a glance, activity counted since `since`.
    pub async fn monitoring_summary(
        &self,
        org_id: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<MonitoringSummary> {
        let mailboxes = self.mailbox_view_counts(org_id, &[]).await?;
        let (tracked, failed): (i64, i64) = with_db!(&self.db, p => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN outcome IN ('tracked', 'linked') THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END), 0)
             FROM message_decisions WHERE org_id = $1 AND updated_at >= $2",
        ).bind(org_id).bind(since).fetch_one(p).await?);
        let (sent, send_failed): (i64, i64) = with_db!(&self.db, p => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0)
             FROM emails WHERE org_id = $1 AND direction = 'outgoing' AND status IN ('sent', 'failed')
                AND updated_at >= $2",
        ).bind(org_id).bind(since).fetch_one(p).await?);
        let oldest: Option<DateTime<Utc>> = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT MIN(COALESCE(last_incoming_success_at, tested_at, created_at))
             FROM mailboxes WHERE org_id = $1 AND incoming_enabled",
        ).bind(org_id).fetch_one(p).await?);
        let error_alerts: i64 = with_db!(&self.db, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM alerts WHERE org_id = $1 AND severity = 'error'",
        ).bind(org_id).fetch_one(p).await?);
        Ok(MonitoringSummary {
            mailboxes,
            since,
            tracked,
            sent,
            failures: failed + send_failed,
            oldest_lag_seconds: lag(oldest, Utc::now()),
            error_alerts,
        })
    }

    /// Emails tracked and sent, and failures, per bucket starting at each of
    /// `starts` (the last bucket ends at `end`).
    pub async fn throughput(
        &self,
        org_id: &str,
        scope: &Scope,
        starts: &[DateTime<Utc>],
        end: DateTime<Utc>,
    ) -> StoreResult<Vec<ThroughputBucket>> {
        let mut out: Vec<ThroughputBucket> = starts
            .iter()
            .map(|s| ThroughputBucket {
                start: *s,
                tracked: 0,
                sent: 0,
                failed: 0,
            })
            .collect();
        let Some(first) = starts.first().copied() else {
            return Ok(out);
        };
        let scope_filters = |profile_col: &'static str| {
            let mut f = Vec::new();
            if let Some(m) = &scope.mailbox_id {
                f.push(Filter::Eq("t.mailbox_id", m.clone()));
            }
            if let Some(p) = &scope.profile_id {
                f.push(Filter::Around(profile_col, p.clone(), ")"));
            }
            f
        };
        const IN_PROFILE: &str = "t.mailbox_id IN (SELECT id FROM mailboxes WHERE profile_id = ";
        let decisions: Vec<(i64, String, i64)> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new("SELECT ");
            push_bucket_expr(&mut qb, "t.updated_at", starts, end);
            qb.push(" AS bucket, CASE WHEN t.outcome = 'failed' THEN 'failed' ELSE 'tracked' END AS kind,
                COUNT(*) AS n FROM message_decisions t WHERE t.org_id = ")
                .push_bind(org_id.to_owned())
                .push(" AND t.outcome IN ('tracked', 'linked', 'failed') AND t.updated_at >= ")
                .push_bind(first)
                .push(" AND t.updated_at < ")
                .push_bind(end);
            push_filters(&mut qb, &scope_filters(IN_PROFILE));
            qb.push(" GROUP BY 1, 2");
            qb.build_query_as::<(i64, String, i64)>().fetch_all(p).await?
        });
        let sends: Vec<(i64, String, i64)> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new("SELECT ");
            push_bucket_expr(&mut qb, "COALESCE(t.sent_at, t.updated_at)", starts, end);
            qb.push(" AS bucket, t.status AS kind, COUNT(*) AS n FROM emails t WHERE t.org_id = ")
                .push_bind(org_id.to_owned())
                .push(" AND t.direction = 'outgoing' AND t.status IN ('sent', 'failed') AND t.updated_at >= ")
                .push_bind(first)
                .push(" AND COALESCE(t.sent_at, t.updated_at) < ")
                .push_bind(end);
            push_filters(&mut qb, &scope_filters(IN_PROFILE));
            qb.push(" GROUP BY 1, 2");
            qb.build_query_as::<(i64, String, i64)>().fetch_all(p).await?
        });
        for (bucket, kind, n) in decisions.into_iter().chain(sends) {
            let Some(b) = usize::try_from(bucket).ok().and_then(|i| out.get_mut(i)) else {
                continue;
            };
            match kind.as_str() {
                "tracked" => b.tracked += n,
                "sent" => b.sent += n,
                _ => b.failed += n,
            }
        }
        Ok(out)
    }

    /// A job without its items.
    pub async fn get_job_summary(&self, org_id: &str, id: &str) -> StoreResult<Job> {
        self.get_record(crate::jobs::SELECT, Some(org_id), id, &[])
            .await
    }

    /// A page of a job's items in order, with the mailboxes' names; the cursor is
    /// the last position of the previous page.
    pub async fn job_items(
        &self,
        job_id: &str,
        status: Option<JobStatus>,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<(Vec<JobItemView>, Option<i64>)> {
        let mut rows: Vec<JobItemView> = with_db!(&self.db, p => {
            let mut qb = QueryBuilder::new(
                "SELECT i.position, i.mailbox_id, m.name AS mailbox_name, m.email_address, i.status,
                    i.message, i.incoming_status, i.outgoing_status, i.act_status
                 FROM job_items i LEFT JOIN mailboxes m ON m.id = i.mailbox_id
                 WHERE i.job_id = ",
            );
            qb.push_bind(job_id.to_owned());
            if let Some(s) = status {
                qb.push(" AND i.status = ").push_bind(s.as_str().to_owned());
            }
            if let Some(a) = after {
                qb.push(" AND i.position > ").push_bind(a);
            }
            qb.push(" ORDER BY i.position LIMIT ").push_bind(i64::from(limit) + 1);
            qb.build_query_as::<JobItemView>().fetch_all(p).await?
        });
        let next = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.position).unwrap_or_default()
        });
        Ok((rows, next))
    }

    /// A job's items counted by status.
    pub async fn job_item_counts(&self, job_id: &str) -> StoreResult<JobItemCounts> {
        Ok(with_db!(&self.db, p => sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0) AS queued,
                COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0) AS running,
                COALESCE(SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), 0) AS succeeded,
                COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed
             FROM job_items WHERE job_id = $1",
        ).bind(job_id).fetch_one(p).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_aligned_and_end_with_now() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:34:56Z")
            .unwrap()
            .with_timezone(&Utc);
        let b = bucket_starts(now, Duration::hours(1), 24);
        assert_eq!(b.len(), 24);
        assert_eq!(b[23].to_rfc3339(), "2026-03-01T12:00:00+00:00");
        assert_eq!(b[0].to_rfc3339(), "2026-02-28T13:00:00+00:00");
        let m = bucket_starts(now, Duration::minutes(1), 60);
        assert_eq!(m[59].to_rfc3339(), "2026-03-01T12:34:00+00:00");
    }

    #[test]
    fn views_have_filters_except_all() {
        assert!(mailbox_view_filter("all").is_none());
        for v in ["active", "failed", "pending_approval"] {
            assert!(mailbox_view_filter(v).is_some(), "{v}");
        }
    }
}
