//! `/api/v1/orgs/{org_id}/contacts`, `/accounts`, `/leads`: the email-enabled
//! records that addresses resolve to. The three share one shape and one
//! implementation; the handlers below only name the kind.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::party::{PartyRecord, validate_party};
use mailbridge_store::{Filter, PartyKind};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of a contact, account or lead that can be written.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyInput {
    /// Contacts and leads: the person's full name; accounts: the company name.
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    company: Option<Option<String>>,
    /// Contacts only: the account the contact belongs to.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    account_id: Option<Option<String>>,
    active: Option<bool>,
    /// The user who owns the record (a contact syncs to its owner's mailbox).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    owner_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    family_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    job_title: Option<Option<String>>,
    /// Further emails (`{"address", "kind": "work|home|other", "preferred"}`), phones
    /// (`{"number", "kind": "work|home|mobile|fax|pager|other"}`), postal addresses
    /// (`{"kind", "street", "locality", "region", "postal_code", "country"}`), the
    /// note and the categories; replaces the whole.
    details: Option<mailbridge_domain::party::ContactDetails>,
    /// The vCard UID; one live record per UID and kind in the organization.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    ical_uid: Option<Option<String>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    /// Exact address, case-insensitive.
    email: Option<String>,
    active: Option<bool>,
    /// Part of the name, address or company.
    search: Option<String>,
}

fn apply(p: &mut PartyRecord, input: PartyInput) {
    set(&mut p.name, input.name);
    set(&mut p.email, input.email);
    set(&mut p.phone, input.phone);
    set(&mut p.company, input.company);
    set(&mut p.account_id, input.account_id);
    set(&mut p.active, input.active);
    set(&mut p.owner_id, input.owner_id);
    set(&mut p.given_name, input.given_name);
    set(&mut p.family_name, input.family_name);
    set(&mut p.job_title, input.job_title);
    set(&mut p.details, input.details);
    set(&mut p.ical_uid, input.ical_uid);
}

async fn create(
    s: AppState,
    auth: Auth,
    kind: PartyKind,
    org_id: String,
    input: PartyInput,
) -> Result<(StatusCode, Json<PartyRecord>), ApiError> {
    auth.check(&s, &org_id, Resource::Parties, Action::Create)
        .await?;
    if input.name.is_none() {
        return Err(ApiError::required("name"));
    }
    let now = chrono::Utc::now();
    let mut p = PartyRecord {
        id: new_id(),
        org_id,
        name: String::new(),
        email: None,
        phone: None,
        company: None,
        account_id: None,
        active: true,
        owner_id: None,
        given_name: None,
        family_name: None,
        job_title: None,
        details: Default::default(),
        ical_uid: None,
        version: 1,
        deleted_at: None,
        created_at: now,
        updated_at: now,
    };
    apply(&mut p, input);
    p.name = p.name.trim().to_owned();
    ApiError::check(validate_party(&p))?;
    Ok((
        StatusCode::CREATED,
        Json(s.store.create_party(kind, &p).await?),
    ))
}

async fn list(
    s: AppState,
    auth: Auth,
    kind: PartyKind,
    org_id: String,
    q: ListParams,
) -> Result<Json<List<PartyRecord>>, ApiError> {
    auth.check(&s, &org_id, Resource::Parties, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let mut filters = Vec::new();
    if let Some(e) = q.email {
        filters.push(Filter::EqIgnoreCase("t.email", e));
    }
    if let Some(a) = q.active {
        filters.push(Filter::Bool("t.active", a));
    }
    if let Some(text) = q.search {
        filters.push(Filter::Search(&["t.name", "t.email", "t.company"], text));
    }
    Ok(Json(
        s.store
            .list_parties(kind, &org_id, filters, &page)
            .await?
            .into(),
    ))
}

async fn get(
    s: AppState,
    auth: Auth,
    kind: PartyKind,
    org_id: String,
    id: String,
) -> Result<Json<PartyRecord>, ApiError> {
    auth.check(&s, &org_id, Resource::Parties, Action::Read)
        .await?;
    Ok(Json(s.store.get_party(kind, &org_id, &id).await?))
}

async fn update(
    s: AppState,
    auth: Auth,
    kind: PartyKind,
    org_id: String,
    id: String,
    input: PartyInput,
) -> Result<Json<PartyRecord>, ApiError> {
    auth.check(&s, &org_id, Resource::Parties, Action::Update)
        .await?;
    let mut p = s.store.get_party(kind, &org_id, &id).await?;
    apply(&mut p, input);
    ApiError::check(validate_party(&p))?;
    Ok(Json(s.store.update_party(kind, &p).await?))
}

async fn delete(
    s: AppState,
    auth: Auth,
    kind: PartyKind,
    org_id: String,
    id: String,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Parties, Action::Delete)
        .await?;
    s.store.delete_party(kind, &org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The five annotated handlers of one kind.
macro_rules! party_routes {
    ($kind:expr, $tag:literal, $collection:literal, $item:literal,
     $list:ident, $create:ident, $get:ident, $update:ident, $delete:ident) => {
        #[utoipa::path(get, path = $collection, tag = $tag, params(ListParams),
            responses((status = 200, body = List<PartyRecord>), (status = 404, body = ErrorBody)))]
        pub async fn $list(State(s): State<AppState>, auth: Auth, Path(org_id): Path<String>, ApiQuery(q): ApiQuery<ListParams>) -> Result<Json<List<PartyRecord>>, ApiError> {
            list(s, auth, $kind, org_id, q).await
        }

        #[utoipa::path(post, path = $collection, tag = $tag, request_body = PartyInput,
            responses((status = 201, body = PartyRecord), (status = 422, body = ErrorBody)))]
        pub async fn $create(State(s): State<AppState>, auth: Auth, Path(org_id): Path<String>, ApiJson(input): ApiJson<PartyInput>) -> Result<(StatusCode, Json<PartyRecord>), ApiError> {
            create(s, auth, $kind, org_id, input).await
        }

        #[utoipa::path(get, path = $item, tag = $tag,
            responses((status = 200, body = PartyRecord), (status = 404, body = ErrorBody)))]
        pub async fn $get(State(s): State<AppState>, auth: Auth, Path((org_id, id)): Path<(String, String)>) -> Result<Json<PartyRecord>, ApiError> {
            get(s, auth, $kind, org_id, id).await
        }

        #[utoipa::path(patch, path = $item, tag = $tag, request_body = PartyInput,
            responses((status = 200, body = PartyRecord), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
        pub async fn $update(State(s): State<AppState>, auth: Auth, Path((org_id, id)): Path<(String, String)>, ApiJson(input): ApiJson<PartyInput>) -> Result<Json<PartyRecord>, ApiError> {
            update(s, auth, $kind, org_id, id, input).await
        }

        #[utoipa::path(delete, path = $item, tag = $tag,
            responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        pub async fn $delete(State(s): State<AppState>, auth: Auth, Path((org_id, id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
            delete(s, auth, $kind, org_id, id).await
        }
    };
}

party_routes!(
    PartyKind::Contact,
    "contacts",
    "/api/v1/orgs/{org_id}/contacts",
    "/api/v1/orgs/{org_id}/contacts/{id}",
    list_contacts,
    create_contact,
    get_contact,
    update_contact,
    delete_contact
);
party_routes!(
    PartyKind::Account,
    "accounts",
    "/api/v1/orgs/{org_id}/accounts",
    "/api/v1/orgs/{org_id}/accounts/{id}",
    list_accounts,
    create_account,
    get_account,
    update_account,
    delete_account
);
party_routes!(
    PartyKind::Lead,
    "leads",
    "/api/v1/orgs/{org_id}/leads",
    "/api/v1/orgs/{org_id}/leads/{id}",
    list_leads,
    create_lead,
    get_lead,
    update_lead,
    delete_lead
);
