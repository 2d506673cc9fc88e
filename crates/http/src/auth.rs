//! Bearer-token authentication and the organization boundary.
//!
//! A token of one organization gets 404 for everything of another, exactly as if
//! the records did not exist; within its organization, the permission matrix of
//! `mailbridge_domain::authz` decides, and a refusal is a 403 that says why.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mailbridge_domain::Role;
use mailbridge_domain::authz::{Access, Action, Principal, Resource, access};

use crate::{ApiError, AppState};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth {
    pub principal: Principal,
}

/// A permitted operation inside one organization.
#[derive(Debug, Clone)]
pub struct Scope {
    pub org_id: String,
    pub access: Access,
    pub principal: Principal,
}

impl Scope {
    /// Whether only the caller's own records may be touched.
    pub fn own_only(&self) -> bool {
        self.access == Access::OwnOnly
    }

    /// The calling user's id (none for the system administrator).
    pub fn user_id(&self) -> Option<&str> {
        match &self.principal {
            Principal::Member { user_id, .. } => Some(user_id),
            Principal::SystemAdmin => None,
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("send an API token as `Authorization: Bearer <token>`")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let info = state.store.authenticate(token).await?.ok_or_else(|| {
            ApiError::unauthorized("the token is unknown, revoked, or its user is disabled")
        })?;
        let principal = match (info.org_id, info.user_id, info.role) {
            (Some(org_id), Some(user_id), Some(role)) => Principal::Member {
                org_id,
                user_id,
                role,
            },
            _ => Principal::SystemAdmin,
        };
        // The organization boundary is enforced here, before the body is read, so
        // that another organization's paths answer 404 whatever the request holds.
        if let Some(path_org) = org_in_path(parts.uri.path()) {
            match &principal {
                Principal::Member { org_id, .. } if org_id != path_org => {
                    return Err(ApiError::not_found());
                }
                Principal::Member { .. } => {}
                Principal::SystemAdmin => {
                    state.store.get_organization(path_org).await?;
                }
            }
        }
        Ok(Auth { principal })
    }
}

/// The organization named by an `/api/v1/orgs/{org_id}/...` or
/// `/api/v1/organizations/{org_id}` path.
fn org_in_path(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/api/v1/orgs/")
        .or_else(|| path.strip_prefix("/api/v1/organizations/"))?;
    rest.split('/').next().filter(|s| !s.is_empty())
}

fn role_name(role: Option<Role>) -> &'static str {
    role.map_or("system administrator", Role::as_str)
}

fn describe(resource: Resource, action: Action) -> String {
    let what = match resource {
        Resource::Organizations => "organizations",
        Resource::Users => "users",
        Resource::Queues => "queues",
        Resource::Parties => "contacts, accounts and leads",
        Resource::Profiles => "email server profiles",
        Resource::Mailboxes => "mailboxes",
        Resource::Activities => "activities",
        Resource::Alerts => "alerts",
        Resource::Jobs => "jobs",
        Resource::EmailSettings => "email settings",
        Resource::Tokens => "API tokens",
        Resource::Webhooks => "webhooks",
        Resource::Certificates => "certificates",
    };
    let verb = match action {
        Action::Read => "read",
        Action::Create => "create",
        Action::Update => "change",
        Action::Delete => "delete",
        Action::Approve => "approve",
    };
    format!("{verb} {what}")
}

impl Auth {
    pub fn role(&self) -> Option<Role> {
        match &self.principal {
            Principal::Member { role, .. } => Some(*role),
            Principal::SystemAdmin => None,
        }
    }

    /// Checks an operation on a resource of `org_id`.
    pub async fn check(
        &self,
        state: &AppState,
        org_id: &str,
        resource: Resource,
        action: Action,
    ) -> Result<Scope, ApiError> {
        match &self.principal {
            Principal::SystemAdmin => {
                // Answers 404 for an organization that does not exist.
                state.store.get_organization(org_id).await?;
            }
            Principal::Member { org_id: mine, .. } if mine != org_id => {
                return Err(ApiError::not_found());
            }
            Principal::Member { .. } => {}
        }
        let decision = access(self.role(), resource, action);
        if decision == Access::Denied {
            let extra = if action == Action::Approve {
                "; approving email addresses takes the approver role"
            } else {
                ""
            };
            return Err(ApiError::forbidden(format!(
                "the {} role may not {}{extra}",
                role_name(self.role()),
                describe(resource, action)
            )));
        }
        Ok(Scope {
            org_id: org_id.to_owned(),
            access: decision,
            principal: self.principal.clone(),
        })
    }

    /// Checks an operation on organizations themselves (no organization scope yet).
    pub fn check_global(&self, action: Action) -> Result<Access, ApiError> {
        match access(self.role(), Resource::Organizations, action) {
            Access::Denied => Err(ApiError::forbidden(format!(
                "the {} role may not {}; only the system administrator can",
                role_name(self.role()),
                describe(Resource::Organizations, action)
            ))),
            a => Ok(a),
        }
    }
}
