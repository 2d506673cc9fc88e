//! `/api/v1/organizations`: tenants, managed by the system administrator.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_domain::authz::{Access, Action, Principal};
use mailbridge_domain::organization::{Organization, validate_organization};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of an organization that can be written.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    name: Option<String>,
    /// The Microsoft Entra directory (tenant) ID profiles use by default (a GUID).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    default_tenant_id: Option<Option<String>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations", request_body = OrganizationInput,
    responses((status = 201, body = Organization), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> Result<(StatusCode, Json<Organization>), ApiError> {
    auth.check_global(Action::Create)?;
    let name = input.name.ok_or_else(|| ApiError::required("name"))?;
    let tenant = input.default_tenant_id.flatten();
    ApiError::check(validate_organization(&name, tenant.as_deref()))?;
    let org = s
        .store
        .create_organization(name.trim(), tenant.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(org)))
}

#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations", params(ListParams),
    responses((status = 200, body = List<Organization>)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Organization>>, ApiError> {
    let page = page_request(q.cursor, q.limit)?;
    match (auth.check_global(Action::Read)?, &auth.principal) {
        (Access::OwnOnly, Principal::Member { org_id, .. }) => {
            let org = s.store.get_organization(org_id).await?;
            Ok(Json(List {
                items: vec![org],
                next_cursor: None,
            }))
        }
        _ => Ok(Json(s.store.list_organizations(&page).await?.into())),
    }
}

/// Members see only their own organization; any other is a 404.
fn visible(auth: &Auth, org_id: &str) -> Result<(), ApiError> {
    match &auth.principal {
        Principal::Member { org_id: mine, .. } if mine != org_id => Err(ApiError::not_found()),
        _ => Ok(()),
    }
}

#[utoipa::path(get, path = "/api/v1/organizations/{org_id}", tag = "organizations",
    responses((status = 200, body = Organization), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
) -> Result<Json<Organization>, ApiError> {
    auth.check_global(Action::Read)?;
    visible(&auth, &org_id)?;
    Ok(Json(s.store.get_organization(&org_id).await?))
}

#[utoipa::path(patch, path = "/api/v1/organizations/{org_id}", tag = "organizations", request_body = OrganizationInput,
    responses((status = 200, body = Organization), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> Result<Json<Organization>, ApiError> {
    visible(&auth, &org_id)?;
    auth.check(
        &s,
        &org_id,
        mailbridge_domain::authz::Resource::Organizations,
        Action::Update,
    )
    .await?;
    let mut org = s.store.get_organization(&org_id).await?;
    set(&mut org.name, input.name);
    set(&mut org.default_tenant_id, input.default_tenant_id);
    ApiError::check(validate_organization(
        &org.name,
        org.default_tenant_id.as_deref(),
    ))?;
    Ok(Json(s.store.update_organization(&org).await?))
}
