//! `/api/v1/orgs/{org_id}/queues`: shared inboxes, each with a mailbox created with them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_domain::TrackingFilter;
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::party::{Queue, validate_owner};
use mailbridge_store::{Filter, NewQueue};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of a queue that can be written.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueInput {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    tracking_filter: Option<TrackingFilter>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    email: Option<String>,
    search: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/queues", tag = "queues", request_body = QueueInput,
    responses((status = 201, body = Queue), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<QueueInput>,
) -> Result<(StatusCode, Json<Queue>), ApiError> {
    auth.check(&s, &org_id, Resource::Queues, Action::Create)
        .await?;
    let name = input.name.ok_or_else(|| ApiError::required("name"))?;
    let email = input.email.flatten();
    ApiError::check(validate_owner("name", &name, email.as_deref()))?;
    let queue = NewQueue {
        name: name.trim().to_owned(),
        email,
        description: input.description.flatten(),
        tracking_filter: input
            .tracking_filter
            .unwrap_or(TrackingFilter::RepliesToTrackedEmail),
    };
    Ok((
        StatusCode::CREATED,
        Json(s.store.create_queue(&org_id, queue).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/queues", tag = "queues", params(ListParams),
    responses((status = 200, body = List<Queue>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Queue>>, ApiError> {
    auth.check(&s, &org_id, Resource::Queues, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let mut filters = Vec::new();
    if let Some(e) = q.email {
        filters.push(Filter::EqIgnoreCase("t.email", e));
    }
    if let Some(text) = q.search {
        filters.push(Filter::Search(&["t.name", "t.email"], text));
    }
    Ok(Json(
        s.store.list_queues(&org_id, &filters, &page).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/queues/{id}", tag = "queues",
    responses((status = 200, body = Queue), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<Queue>, ApiError> {
    auth.check(&s, &org_id, Resource::Queues, Action::Read)
        .await?;
    Ok(Json(s.store.get_queue(&org_id, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/queues/{id}", tag = "queues", request_body = QueueInput,
    responses((status = 200, body = Queue), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<QueueInput>,
) -> Result<Json<Queue>, ApiError> {
    auth.check(&s, &org_id, Resource::Queues, Action::Update)
        .await?;
    let mut q = s.store.get_queue(&org_id, &id).await?;
    set(&mut q.name, input.name);
    set(&mut q.email, input.email);
    set(&mut q.description, input.description);
    set(&mut q.tracking_filter, input.tracking_filter);
    ApiError::check(validate_owner("name", &q.name, q.email.as_deref()))?;
    Ok(Json(s.store.update_queue(&q).await?))
}

/// Deletes the queue and its mailbox.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/queues/{id}", tag = "queues",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Queues, Action::Delete)
        .await?;
    s.store.delete_queue(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
