//! `/api/v1/orgs/{org_id}/tasks`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use mailbridge_domain::activity::{Task, validate_task};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::{RegardingType, TaskPriority, TaskStatus};
use mailbridge_store::Filter;
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of a task that can be written.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    subject: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    start: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    due: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    completed_at: Option<Option<DateTime<Utc>>>,
    priority: Option<TaskPriority>,
    status: Option<TaskStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    owner_id: Option<Option<String>>,
    /// The iCalendar UID; one live task per UID in the organization.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    ical_uid: Option<Option<String>>,
    /// 0 to 100.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    percent_complete: Option<Option<i64>>,
    categories: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<RegardingType>)]
    regarding_type: Option<Option<RegardingType>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    regarding_id: Option<Option<String>>,
}

impl TaskInput {
    fn apply(self, t: &mut Task) {
        set(&mut t.subject, self.subject);
        set(&mut t.description, self.description);
        set(&mut t.start, self.start);
        set(&mut t.due, self.due);
        set(&mut t.completed_at, self.completed_at);
        set(&mut t.priority, self.priority);
        set(&mut t.status, self.status);
        set(&mut t.owner_id, self.owner_id);
        set(&mut t.ical_uid, self.ical_uid);
        set(&mut t.percent_complete, self.percent_complete);
        set(&mut t.categories, self.categories);
        set(&mut t.regarding_type, self.regarding_type);
        set(&mut t.regarding_id, self.regarding_id);
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    owner_id: Option<String>,
    status: Option<TaskStatus>,
    regarding_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/tasks", tag = "tasks", request_body = TaskInput,
    responses((status = 201, body = Task), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<TaskInput>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Activities, Action::Create)
        .await?;
    let now = Utc::now();
    let mut t = Task {
        id: new_id(),
        org_id,
        subject: String::new(),
        description: None,
        start: None,
        due: None,
        completed_at: None,
        priority: TaskPriority::Normal,
        status: TaskStatus::NotStarted,
        owner_id: scope.user_id().map(str::to_owned),
        regarding_type: None,
        regarding_id: None,
        ical_uid: None,
        percent_complete: None,
        categories: vec![],
        version: 1,
        deleted_at: None,
        created_at: now,
        updated_at: now,
    };
    input.apply(&mut t);
    ApiError::check(validate_task(&t))?;
    Ok((StatusCode::CREATED, Json(s.store.create_task(&t).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/tasks", tag = "tasks", params(ListParams),
    responses((status = 200, body = List<Task>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Task>>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let eq = [
        ("t.owner_id", q.owner_id),
        ("t.status", q.status.map(|v| v.as_str().to_owned())),
        ("t.regarding_id", q.regarding_id),
    ];
    let filters: Vec<Filter> = eq
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| Filter::Eq(c, v)))
        .collect();
    Ok(Json(
        s.store.list_tasks(&org_id, &filters, &page).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/tasks/{id}", tag = "tasks",
    responses((status = 200, body = Task), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<Task>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Read)
        .await?;
    Ok(Json(s.store.get_task(&org_id, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/tasks/{id}", tag = "tasks", request_body = TaskInput,
    responses((status = 200, body = Task), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<TaskInput>,
) -> Result<Json<Task>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Update)
        .await?;
    let mut t = s.store.get_task(&org_id, &id).await?;
    input.apply(&mut t);
    ApiError::check(validate_task(&t))?;
    Ok(Json(s.store.update_task(&t).await?))
}

/// Deletes a task: it disappears from the API and stays as a tombstone the ACT sync
/// sees, which deletes the item on the mail systems it was synced to.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/tasks/{id}", tag = "tasks",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Delete)
        .await?;
    s.store.delete_task(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
