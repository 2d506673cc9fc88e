//! `/api/v1/orgs/{org_id}/alerts`: the alerts wall. Administrators see every
//! alert; others see the alerts addressed to them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_domain::alert::{Alert, validate_alert};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::{AlertScope, AlertSeverity};
use mailbridge_store::{Filter, alerts_for_recipient};
use serde::Deserialize;

use crate::auth::{Auth, Scope};
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// A new alert (raised by an integration or an administrator).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertInput {
    scope: AlertScope,
    severity: AlertSeverity,
    mailbox_id: Option<String>,
    profile_id: Option<String>,
    item_ref: Option<String>,
    message: String,
    fix: Option<String>,
    #[serde(default)]
    recipient_ids: Vec<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    scope: Option<AlertScope>,
    severity: Option<AlertSeverity>,
    mailbox_id: Option<String>,
    profile_id: Option<String>,
}

fn own_filters(scope: &Scope) -> Vec<Filter> {
    match (scope.own_only(), scope.user_id()) {
        (true, Some(user)) => vec![alerts_for_recipient(user)],
        _ => Vec::new(),
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/alerts", tag = "alerts", request_body = AlertInput,
    responses((status = 201, body = Alert), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(i): ApiJson<AlertInput>,
) -> Result<(StatusCode, Json<Alert>), ApiError> {
    auth.check(&s, &org_id, Resource::Alerts, Action::Create)
        .await?;
    let a = Alert {
        id: new_id(),
        org_id,
        scope: i.scope,
        severity: i.severity,
        mailbox_id: i.mailbox_id,
        profile_id: i.profile_id,
        item_ref: i.item_ref,
        message: i.message,
        fix: i.fix,
        recipient_ids: i.recipient_ids,
        created_at: chrono::Utc::now(),
    };
    ApiError::check(validate_alert(&a))?;
    Ok((StatusCode::CREATED, Json(s.store.create_alert(&a).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/alerts", tag = "alerts", params(ListParams),
    responses((status = 200, body = List<Alert>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Alert>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Alerts, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let mut filters = own_filters(&scope);
    let eq = [
        ("t.scope", q.scope.map(|v| v.as_str().to_owned())),
        ("t.severity", q.severity.map(|v| v.as_str().to_owned())),
        ("t.mailbox_id", q.mailbox_id),
        ("t.profile_id", q.profile_id),
    ];
    filters.extend(
        eq.into_iter()
            .filter_map(|(c, v)| v.map(|v| Filter::Eq(c, v))),
    );
    Ok(Json(
        s.store.list_alerts(&org_id, &filters, &page).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/alerts/{id}", tag = "alerts",
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<Alert>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Alerts, Action::Read)
        .await?;
    Ok(Json(
        s.store
            .get_alert(&org_id, &id, &own_filters(&scope))
            .await?,
    ))
}

/// Dismisses an alert.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/alerts/{id}", tag = "alerts",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Alerts, Action::Delete)
        .await?;
    s.store.delete_alert(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
