//! `/api/v1/orgs/{org_id}/tokens`: API tokens for the organization's users. A
//! token acts with its user's role; its value is shown once, at creation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_store::TokenSummary;
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::ApiJson;
use crate::list::List;
use crate::{ApiError, AppState};

/// The token to issue.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// The user the token acts for, with their role.
    user_id: String,
    /// A label to recognise the token by, e.g. the integration using it.
    name: Option<String>,
}

/// A new token: `token` is shown only in this answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuedTokenView {
    id: String,
    user_id: String,
    name: String,
    token: String,
}

/// A token as listed: never its value.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    id: String,
    user_id: Option<String>,
    name: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<TokenSummary> for TokenView {
    fn from(t: TokenSummary) -> Self {
        TokenView {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/tokens", tag = "tokens", request_body = TokenInput,
    responses((status = 201, body = IssuedTokenView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(i): ApiJson<TokenInput>,
) -> Result<(StatusCode, Json<IssuedTokenView>), ApiError> {
    auth.check(&s, &org_id, Resource::Tokens, Action::Create)
        .await?;
    let name = i.name.unwrap_or_else(|| "api".to_owned());
    let issued = s.store.issue_user_token(&org_id, &i.user_id, &name).await?;
    tracing::info!(token_id = %issued.id, user_id = %i.user_id, "API token issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedTokenView {
            id: issued.id,
            user_id: i.user_id,
            name,
            token: issued.token,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/tokens", tag = "tokens",
    responses((status = 200, body = List<TokenView>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
) -> Result<Json<List<TokenView>>, ApiError> {
    auth.check(&s, &org_id, Resource::Tokens, Action::Read)
        .await?;
    let items = s
        .store
        .list_tokens(&org_id)
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    Ok(Json(List::of(items)))
}

/// Revokes a token at once.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/tokens/{id}", tag = "tokens",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Tokens, Action::Delete)
        .await?;
    s.store.revoke_token(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
