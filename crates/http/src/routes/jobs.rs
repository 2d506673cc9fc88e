//! `/api/v1/orgs/{org_id}/jobs`: background jobs such as Test & Enable. A job is
//! queued here; the engine runs it and fills its progress and per-mailbox items.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::job::{Job, JobItem};
use mailbridge_domain::{JobKind, JobStatus};
use mailbridge_store::{Filter, JobItemCounts, JobItemView};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// A job to queue: for the listed mailboxes, or for every mailbox of a profile.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    kind: JobKind,
    #[serde(default)]
    mailbox_ids: Vec<String>,
    profile_id: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    kind: Option<JobKind>,
    status: Option<JobStatus>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/jobs", tag = "jobs", request_body = JobInput,
    responses((status = 201, body = Job), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(i): ApiJson<JobInput>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Jobs, Action::Create)
        .await?;
    let job = queue(
        &s,
        &scope,
        org_id,
        i.kind,
        "mailbox_ids",
        i.mailbox_ids,
        i.profile_id,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(job)))
}

/// Queues a job for the listed mailboxes, or for every mailbox of a profile.
/// `ids_field` is the name the request gave the list, for error messages.
pub(crate) async fn queue(
    s: &AppState,
    scope: &crate::auth::Scope,
    org_id: String,
    kind: JobKind,
    ids_field: &str,
    ids: Vec<String>,
    profile_id: Option<String>,
) -> Result<Job, ApiError> {
    let mailbox_ids = match (&profile_id, ids.is_empty()) {
        (Some(_), false) => {
            return Err(ApiError::field(
                "invalid_value",
                ids_field,
                format!("give {ids_field} or profile_id, not both"),
            ));
        }
        (None, true) => {
            return Err(ApiError::field(
                "missing_field",
                ids_field,
                format!("give {ids_field}, or profile_id for all of its mailboxes"),
            ));
        }
        (Some(p), true) => {
            s.store.get_profile(&org_id, p).await.map_err(|_| {
                ApiError::field(
                    "invalid_value",
                    "profile_id",
                    format!("profile_id `{p}` is not an email server profile of this organization"),
                )
            })?;
            let ids = s.store.mailbox_ids_of_profile(&org_id, p).await?;
            if ids.is_empty() {
                return Err(ApiError::field(
                    "invalid_value",
                    "profile_id",
                    "the profile has no mailboxes yet",
                ));
            }
            ids
        }
        (None, false) => ids,
    };
    let job = Job {
        id: new_id(),
        org_id,
        kind,
        status: JobStatus::Queued,
        profile_id,
        progress_done: 0,
        progress_total: mailbox_ids.len() as i64,
        items: mailbox_ids
            .into_iter()
            .map(|mailbox_id| JobItem {
                mailbox_id,
                status: JobStatus::Queued,
                message: None,
            })
            .collect(),
        error: None,
        created_by: scope.user_id().map(str::to_owned),
        created_at: chrono::Utc::now(),
        started_at: None,
        finished_at: None,
    };
    Ok(s.store.create_job(&job).await?)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/jobs", tag = "jobs", params(ListParams),
    responses((status = 200, body = List<Job>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Job>>, ApiError> {
    auth.check(&s, &org_id, Resource::Jobs, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let eq = [
        ("t.kind", q.kind.map(|v| v.as_str().to_owned())),
        ("t.status", q.status.map(|v| v.as_str().to_owned())),
    ];
    let filters: Vec<Filter> = eq
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| Filter::Eq(c, v)))
        .collect();
    Ok(Json(
        s.store.list_jobs(&org_id, &filters, &page).await?.into(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// `false` leaves `items` empty (read them page by page from `items`); `true` by default.
    items: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/jobs/{id}", tag = "jobs", params(GetParams),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<GetParams>,
) -> Result<Json<Job>, ApiError> {
    auth.check(&s, &org_id, Resource::Jobs, Action::Read)
        .await?;
    if q.items == Some(false) {
        return Ok(Json(s.store.get_job_summary(&org_id, &id).await?));
    }
    Ok(Json(s.store.get_job(&org_id, &id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ItemParams {
    /// A `next_cursor` of a previous page.
    cursor: Option<String>,
    limit: Option<u32>,
    status: Option<JobStatus>,
}

/// A page of a job's items, in the job's order.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct JobItems {
    /// Every item of the job counted by status (whatever the page and filter).
    counts: JobItemCounts,
    items: Vec<JobItemView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A job's per-mailbox results page by page, with the mailboxes' names, and
/// every item counted by status: what a progress view polls.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/jobs/{id}/items", tag = "jobs", params(ItemParams),
    responses((status = 200, body = JobItems), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn items(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ItemParams>,
) -> Result<Json<JobItems>, ApiError> {
    auth.check(&s, &org_id, Resource::Jobs, Action::Read)
        .await?;
    s.store.get_job_summary(&org_id, &id).await?;
    let page = page_request(None, q.limit)?;
    let after = match q.cursor {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::field(
                "invalid_value",
                "cursor",
                "cursor must be a next_cursor value from a previous page",
            )
        })?),
    };
    let (items, next) = s
        .store
        .job_items(&id, q.status, after, page.limit())
        .await?;
    Ok(Json(JobItems {
        counts: s.store.job_item_counts(&id).await?,
        items,
        next_cursor: next.map(|n| n.to_string()),
    }))
}
