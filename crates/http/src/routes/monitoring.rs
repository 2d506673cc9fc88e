//! `/api/v1/orgs/{org_id}/monitoring`: how synchronization is doing. The
//! organization at a glance, each email server profile and each mailbox (paged,
//! worst first): the last successful run of each workload, lag, items processed
//! and failed, errors, the last completeness census and the gaps it found; and
//! throughput over time.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{Duration, Utc};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_store::{
    Filter, HealthSort, MailboxHealth, MonitoringSummary, ProfileHealth, ThroughputBucket,
    ThroughputScope, bucket_starts,
};
use serde::{Deserialize, Serialize};

use crate::auth::{Auth, Scope};
use crate::error::ErrorBody;
use crate::input::ApiQuery;
use crate::{ApiError, AppState};

/// The order of a list read by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    OldestFirst,
    /// The cursor then leads to older records.
    NewestFirst,
}

/// The window that activity counts cover.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum Window {
    /// The last hour, per minute on the throughput chart.
    #[serde(rename = "1h")]
    Hour,
    /// The last 24 hours, per hour on the throughput chart.
    #[default]
    #[serde(rename = "24h")]
    Day,
}

impl Window {
    /// (bucket width, bucket count).
    fn buckets(self) -> (Duration, usize) {
        match self {
            Window::Hour => (Duration::minutes(1), 60),
            Window::Day => (Duration::hours(1), 24),
        }
    }

    fn duration(self) -> Duration {
        match self {
            Window::Hour => Duration::hours(1),
            Window::Day => Duration::hours(24),
        }
    }
}

/// How the per-mailbox list is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Failed workloads first, then the most failed items, then the largest lag.
    #[default]
    Worst,
    /// The largest incoming lag first.
    Lag,
    /// The most failed items first.
    Errors,
    Name,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowParams {
    /// `24h` (the default) or `1h`.
    window: Option<Window>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MailboxParams {
    /// A `next_cursor` of a previous page.
    cursor: Option<String>,
    limit: Option<u32>,
    sort: Option<Sort>,
    window: Option<Window>,
    profile_id: Option<String>,
    /// Part of the name or address.
    search: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ThroughputParams {
    window: Option<Window>,
    profile_id: Option<String>,
    mailbox_id: Option<String>,
}

/// A page of mailboxes' health.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MailboxHealthList {
    items: Vec<MailboxHealth>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
    since: chrono::DateTime<Utc>,
}

/// Throughput per bucket, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Throughput {
    /// The width of each bucket in seconds (60 or 3600).
    bucket_seconds: i64,
    buckets: Vec<ThroughputBucket>,
}

/// Monitoring the organization takes an administrator's view of its mailboxes.
pub(crate) async fn org_wide(s: &AppState, auth: &Auth, org_id: &str) -> Result<Scope, ApiError> {
    let scope = auth
        .check(s, org_id, Resource::Mailboxes, Action::Read)
        .await?;
    if scope.own_only() {
        return Err(ApiError::forbidden(
            "monitoring the organization takes the org_admin or approver role; see your own mailbox under monitoring/mailboxes/{id}",
        ));
    }
    Ok(scope)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/monitoring/summary", tag = "monitoring", params(WindowParams),
    responses((status = 200, body = MonitoringSummary), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn summary(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<WindowParams>,
) -> Result<Json<MonitoringSummary>, ApiError> {
    org_wide(&s, &auth, &org_id).await?;
    let since = Utc::now() - q.window.unwrap_or_default().duration();
    Ok(Json(s.store.monitoring_summary(&org_id, since).await?))
}

/// Every email server profile, the most failing first.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/monitoring/profiles", tag = "monitoring", params(WindowParams),
    responses((status = 200, body = crate::list::List<ProfileHealth>), (status = 403, body = ErrorBody)))]
pub async fn profiles(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<WindowParams>,
) -> Result<Json<crate::list::List<ProfileHealth>>, ApiError> {
    org_wide(&s, &auth, &org_id).await?;
    let since = Utc::now() - q.window.unwrap_or_default().duration();
    Ok(Json(crate::list::List::of(
        s.store.profile_health(&org_id, since).await?,
    )))
}

/// The offset a monitoring cursor stands for.
fn offset(cursor: Option<&str>) -> Result<u64, ApiError> {
    match cursor {
        None => Ok(0),
        Some(c) => c.parse().map_err(|_| {
            ApiError::field(
                "invalid_value",
                "cursor",
                "cursor must be a next_cursor value from a previous page",
            )
        }),
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/monitoring/mailboxes", tag = "monitoring", params(MailboxParams),
    responses((status = 200, body = MailboxHealthList), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn mailboxes(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<MailboxParams>,
) -> Result<Json<MailboxHealthList>, ApiError> {
    org_wide(&s, &auth, &org_id).await?;
    let page = crate::list::page_request(None, q.limit)?;
    let offset = offset(q.cursor.as_deref())?;
    let since = Utc::now() - q.window.unwrap_or_default().duration();
    let mut filters = Vec::new();
    if let Some(p) = q.profile_id {
        filters.push(Filter::Eq("t.profile_id", p));
    }
    if let Some(text) = q.search.filter(|t| !t.trim().is_empty()) {
        filters.push(Filter::Search(
            &["t.name", "t.email_address"],
            text.trim().to_owned(),
        ));
    }
    let sort = match q.sort.unwrap_or_default() {
        Sort::Worst => HealthSort::Worst,
        Sort::Lag => HealthSort::Lag,
        Sort::Errors => HealthSort::Errors,
        Sort::Name => HealthSort::Name,
    };
    let (items, next) = s
        .store
        .mailbox_health(&org_id, &filters, sort, since, offset, page.limit())
        .await?;
    Ok(Json(MailboxHealthList {
        items,
        next_cursor: next.map(|n| n.to_string()),
        since,
    }))
}

/// One mailbox's health: what its owner may see of their own mailbox too.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/monitoring/mailboxes/{id}", tag = "monitoring", params(WindowParams),
    responses((status = 200, body = MailboxHealth), (status = 404, body = ErrorBody)))]
pub async fn mailbox(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<WindowParams>,
) -> Result<Json<MailboxHealth>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    crate::routes::mailboxes::visible(&s, &scope, &id).await?;
    let since = Utc::now() - q.window.unwrap_or_default().duration();
    Ok(Json(s.store.one_mailbox_health(&org_id, &id, since).await?))
}

/// Emails tracked, emails sent and failures per bucket: per hour over the last
/// 24 hours, or per minute over the last hour; for the organization, one profile
/// or one mailbox.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/monitoring/throughput", tag = "monitoring", params(ThroughputParams),
    responses((status = 200, body = Throughput), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn throughput(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ThroughputParams>,
) -> Result<Json<Throughput>, ApiError> {
    match &q.mailbox_id {
        Some(m) => {
            let scope = auth
                .check(&s, &org_id, Resource::Mailboxes, Action::Read)
                .await?;
            crate::routes::mailboxes::visible(&s, &scope, m).await?;
        }
        None => {
            org_wide(&s, &auth, &org_id).await?;
        }
    }
    let (width, count) = q.window.unwrap_or_default().buckets();
    let now = Utc::now();
    let starts = bucket_starts(now, width, count);
    let end = starts.last().map(|l| *l + width).unwrap_or(now);
    let scope = ThroughputScope {
        mailbox_id: q.mailbox_id,
        profile_id: q.profile_id,
    };
    let buckets = s.store.throughput(&org_id, &scope, &starts, end).await?;
    Ok(Json(Throughput {
        bucket_seconds: width.num_seconds(),
        buckets,
    }))
}
