//! `/api/v1/orgs/{org_id}/users`: people, each with a mailbox created with them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_domain::act::SyncFilters;
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::party::{User, validate_owner};
use mailbridge_domain::{Role, TrackingFilter};
use mailbridge_store::{Filter, NewUser};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of a user that can be written.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    full_name: Option<String>,
    /// The user's primary address; their mailbox gets it (and needs approval again
    /// when it changes).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    /// `user` when absent.
    role: Option<Role>,
    /// `replies` when absent.
    tracking_filter: Option<TrackingFilter>,
    disabled: Option<bool>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    /// Exact address, case-insensitive.
    email: Option<String>,
    role: Option<Role>,
    disabled: Option<bool>,
    /// Part of the name or address.
    search: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/users", tag = "users", request_body = UserInput,
    responses((status = 201, body = User), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<UserInput>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    auth.check(&s, &org_id, Resource::Users, Action::Create)
        .await?;
    if input.disabled.is_some() {
        return Err(ApiError::field(
            "invalid_value",
            "disabled",
            "a new user is enabled; disable them with PATCH",
        ));
    }
    let full_name = input
        .full_name
        .ok_or_else(|| ApiError::required("full_name"))?;
    let email = input.email.flatten();
    ApiError::check(validate_owner("full_name", &full_name, email.as_deref()))?;
    let user = s
        .store
        .create_user(
            &org_id,
            NewUser {
                full_name: full_name.trim().to_owned(),
                email,
                role: input.role.unwrap_or(Role::User),
                tracking_filter: input
                    .tracking_filter
                    .unwrap_or(TrackingFilter::RepliesToTrackedEmail),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/users", tag = "users", params(ListParams),
    responses((status = 200, body = List<User>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<User>>, ApiError> {
    auth.check(&s, &org_id, Resource::Users, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let mut filters = Vec::new();
    if let Some(e) = q.email {
        filters.push(Filter::EqIgnoreCase("t.email", e));
    }
    if let Some(r) = q.role {
        filters.push(Filter::Eq("t.role", r.as_str().to_owned()));
    }
    if let Some(d) = q.disabled {
        filters.push(Filter::Bool("t.disabled", d));
    }
    if let Some(text) = q.search {
        filters.push(Filter::Search(&["t.full_name", "t.email"], text));
    }
    Ok(Json(
        s.store.list_users(&org_id, &filters, &page).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/users/{id}", tag = "users",
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<User>, ApiError> {
    auth.check(&s, &org_id, Resource::Users, Action::Read)
        .await?;
    Ok(Json(s.store.get_user(&org_id, &id).await?))
}

/// Users are not deleted (their records keep their owner): disable them instead.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/users/{id}", tag = "users", request_body = UserInput,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<UserInput>,
) -> Result<Json<User>, ApiError> {
    auth.check(&s, &org_id, Resource::Users, Action::Update)
        .await?;
    let mut user = s.store.get_user(&org_id, &id).await?;
    set(&mut user.full_name, input.full_name);
    set(&mut user.email, input.email);
    set(&mut user.role, input.role);
    set(&mut user.tracking_filter, input.tracking_filter);
    set(&mut user.disabled, input.disabled);
    ApiError::check(validate_owner(
        "full_name",
        &user.full_name,
        user.email.as_deref(),
    ))?;
    Ok(Json(s.store.update_user(&user).await?))
}

/// A user's web admin sign-in password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    /// At least 12 characters; `null` removes the password (the user can then sign
    /// in only with an API token).
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<mailbridge_domain::secret::Secret>,
}

/// Sets a user's sign-in password for the web admin: users set their own, and
/// administrators anyone's. The password is stored as an Argon2id hash only.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/users/{id}/password", tag = "users",
    request_body = PasswordInput,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn set_password(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<PasswordInput>,
) -> Result<StatusCode, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Users, Action::Read)
        .await?;
    if scope.user_id() != Some(id.as_str()) {
        auth.check(&s, &org_id, Resource::Users, Action::Update)
            .await?;
    }
    s.store
        .set_user_password(&org_id, &id, input.password.as_ref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's ACT sync filters: which of the organization's appointments, tasks and
/// contacts go to the user's mailbox (by default: active records the user owns).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/users/{id}/sync-filters", tag = "users",
    responses((status = 200, body = SyncFilters), (status = 404, body = ErrorBody)))]
pub async fn get_sync_filters(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<SyncFilters>, ApiError> {
    auth.check(&s, &org_id, Resource::Users, Action::Read)
        .await?;
    Ok(Json(s.store.sync_filters(&org_id, &id).await?))
}

/// Replaces a user's ACT sync filters: users set their own, administrators anyone's.
/// Absent options take their defaults.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/users/{id}/sync-filters", tag = "users",
    request_body = SyncFilters,
    responses((status = 200, body = SyncFilters), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn set_sync_filters(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(filters): ApiJson<SyncFilters>,
) -> Result<Json<SyncFilters>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Users, Action::Read)
        .await?;
    if scope.user_id() != Some(id.as_str()) {
        auth.check(&s, &org_id, Resource::Users, Action::Update)
            .await?;
    }
    ApiError::check(filters.validate())?;
    Ok(Json(
        s.store.set_sync_filters(&org_id, &id, &filters).await?,
    ))
}
