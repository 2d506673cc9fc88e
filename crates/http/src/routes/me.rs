//! `/api/v1/me`: who the token belongs to, so that a client (the CLI) can find
//! its organization without being told.

use axum::Json;
use axum::extract::State;
use mailbridge_domain::Role;
use mailbridge_domain::authz::Principal;
use mailbridge_domain::party::User;
use serde::Serialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// The caller.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    /// `system_admin` (manages organizations, acts in any) or `member` (a user of one).
    pub kind: &'static str,
    /// The member's organization; none for the system administrator.
    pub org_id: Option<String>,
    pub role: Option<Role>,
    /// The member's user record.
    pub user: Option<User>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn get(State(s): State<AppState>, auth: Auth) -> Result<Json<Me>, ApiError> {
    Ok(Json(match auth.principal {
        Principal::SystemAdmin => Me {
            kind: "system_admin",
            org_id: None,
            role: None,
            user: None,
        },
        Principal::Member {
            org_id,
            user_id,
            role,
        } => Me {
            user: Some(s.store.get_user(&org_id, &user_id).await?),
            kind: "member",
            org_id: Some(org_id),
            role: Some(role),
        },
    }))
}
