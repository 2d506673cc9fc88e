//! `/api/v1/orgs/{org_id}/email-server-profiles`: how to reach each mail system.
//! Secrets are accepted here and never returned: the answer says only whether each
//! one is set.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::profile::{
    EmailServerProfile, ProfileContext, ProfileSettings, validate_profile,
};
use mailbridge_domain::secret::Secret;
use mailbridge_domain::{AuthenticationType, ServerType};
use mailbridge_store::{Filter, ProfileSecretChanges};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of a profile that can be written. Absent fields keep their value
/// (or, on create, the default shown); `null` clears a nullable one.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// Required on create; unique in the organization.
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// Required on create; cannot change afterwards.
    server_type: Option<ServerType>,
    /// The user who receives profile-level alerts.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    owner_id: Option<Option<String>>,
    /// Default true (Exchange Online).
    use_default_tenant_id: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    tenant_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    application_id: Option<Option<String>>,
    /// Exchange Online, server_to_server: the organization's certificate that signs
    /// client assertions; null: the client secret when set, else the organization's
    /// newest valid certificate.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    certificate_id: Option<Option<String>>,
    /// Exchange Online: the token service; null: https://login.microsoftonline.com
    /// (national clouds have their own, e.g. https://login.microsoftonline.us).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    authority_url: Option<Option<String>>,
    /// Exchange Online: Microsoft Graph; null: https://graph.microsoft.com.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    graph_url: Option<Option<String>>,
    /// Default true for exchange_online, false otherwise.
    auto_discover: Option<bool>,
    /// `imaps://host:993`, `imap://host:143` (STARTTLS), or `https://...` for Exchange.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    incoming_server_location: Option<Option<String>>,
    /// `smtps://host:465`, `smtp://host:587` (STARTTLS), or `https://...` for Exchange.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    outgoing_server_location: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    process_email_from: Option<Option<DateTime<Utc>>>,
    /// 0 to 1440, default 0.
    min_polling_interval_minutes: Option<i64>,
    /// 1 to 300, default 10.
    max_concurrent_connections: Option<i64>,
    move_failed_to_undeliverable: Option<bool>,
    /// Lab servers only: allow connections without TLS.
    allow_plaintext: Option<bool>,
    authentication_type: Option<AuthenticationType>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    incoming_username: Option<Option<String>>,
    /// Write-only.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Password)]
    incoming_password: Option<Option<Secret>>,
    use_same_settings_for_outgoing: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    outgoing_username: Option<Option<String>>,
    /// Write-only.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Password)]
    outgoing_password: Option<Option<Secret>>,
    /// imap_smtp only: the CalDAV/CardDAV base URL for appointments, contacts and
    /// tasks, e.g. `https://dav.example.org/` (http only with allow_plaintext).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    dav_location: Option<Option<String>>,
    /// Write-only: the app registration's client secret (instead of a certificate).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Password)]
    client_secret: Option<Option<Secret>>,
}

impl ProfileInput {
    /// Applies the settings and returns the secret changes.
    fn apply(self, p: &mut ProfileSettings) -> ProfileSecretChanges {
        set(&mut p.name, self.name);
        set(&mut p.description, self.description);
        set(&mut p.owner_id, self.owner_id);
        set(&mut p.use_default_tenant_id, self.use_default_tenant_id);
        set(&mut p.tenant_id, self.tenant_id);
        set(&mut p.application_id, self.application_id);
        set(&mut p.certificate_id, self.certificate_id);
        set(&mut p.authority_url, self.authority_url);
        set(&mut p.graph_url, self.graph_url);
        set(&mut p.auto_discover, self.auto_discover);
        set(
            &mut p.incoming_server_location,
            self.incoming_server_location,
        );
        set(
            &mut p.outgoing_server_location,
            self.outgoing_server_location,
        );
        set(&mut p.process_email_from, self.process_email_from);
        set(
            &mut p.min_polling_interval_minutes,
            self.min_polling_interval_minutes,
        );
        set(
            &mut p.max_concurrent_connections,
            self.max_concurrent_connections,
        );
        set(
            &mut p.move_failed_to_undeliverable,
            self.move_failed_to_undeliverable,
        );
        set(&mut p.allow_plaintext, self.allow_plaintext);
        set(&mut p.authentication_type, self.authentication_type);
        set(&mut p.incoming_username, self.incoming_username);
        set(
            &mut p.use_same_settings_for_outgoing,
            self.use_same_settings_for_outgoing,
        );
        set(&mut p.outgoing_username, self.outgoing_username);
        set(&mut p.dav_location, self.dav_location);
        ProfileSecretChanges {
            incoming_password: self.incoming_password,
            outgoing_password: self.outgoing_password,
            client_secret: self.client_secret,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    server_type: Option<ServerType>,
    /// Part of the name.
    search: Option<String>,
}

async fn validate(
    s: &AppState,
    org_id: &str,
    p: &ProfileSettings,
    ctx_secrets: mailbridge_domain::profile::ProfileSecretsSet,
) -> Result<(), ApiError> {
    let org = s.store.get_organization(org_id).await?;
    let ctx = ProfileContext {
        org_default_tenant_id: org.default_tenant_id.as_deref(),
        secrets: ctx_secrets,
    };
    ApiError::check(validate_profile(p, &ctx))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/email-server-profiles", tag = "email-server-profiles",
    request_body = ProfileInput,
    responses((status = 201, body = EmailServerProfile), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(mut input): ApiJson<ProfileInput>,
) -> Result<(StatusCode, Json<EmailServerProfile>), ApiError> {
    auth.check(&s, &org_id, Resource::Profiles, Action::Create)
        .await?;
    let name = input
        .name
        .take()
        .ok_or_else(|| ApiError::required("name"))?;
    let server_type = input.server_type.take().ok_or_else(|| {
        ApiError::field(
            "missing_field",
            "server_type",
            format!(
                "server_type is required; one of: {}",
                ServerType::expected()
            ),
        )
    })?;
    let mut settings = ProfileSettings::new(name.trim().to_owned(), server_type);
    let secrets = input.apply(&mut settings);
    validate(
        &s,
        &org_id,
        &settings,
        secrets.resulting(Default::default()),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(s.store.create_profile(&org_id, &settings, &secrets).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/email-server-profiles", tag = "email-server-profiles", params(ListParams),
    responses((status = 200, body = List<EmailServerProfile>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<EmailServerProfile>>, ApiError> {
    auth.check(&s, &org_id, Resource::Profiles, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let mut filters = Vec::new();
    if let Some(t) = q.server_type {
        filters.push(Filter::Eq("t.server_type", t.as_str().to_owned()));
    }
    if let Some(text) = q.search {
        filters.push(Filter::Search(&["t.name"], text));
    }
    Ok(Json(
        s.store
            .list_profiles(&org_id, &filters, &page)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/email-server-profiles/{id}", tag = "email-server-profiles",
    responses((status = 200, body = EmailServerProfile), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<EmailServerProfile>, ApiError> {
    auth.check(&s, &org_id, Resource::Profiles, Action::Read)
        .await?;
    Ok(Json(s.store.get_profile(&org_id, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/email-server-profiles/{id}", tag = "email-server-profiles",
    request_body = ProfileInput,
    responses((status = 200, body = EmailServerProfile), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(mut input): ApiJson<ProfileInput>,
) -> Result<Json<EmailServerProfile>, ApiError> {
    auth.check(&s, &org_id, Resource::Profiles, Action::Update)
        .await?;
    let current = s.store.get_profile(&org_id, &id).await?;
    if let Some(t) = input.server_type.take()
        && t != current.settings.server_type
    {
        return Err(ApiError::field(
            "invalid_value",
            "server_type",
            "server_type cannot change after creation; create a new profile and move the mailboxes to it",
        ));
    }
    let mut settings = current.settings.clone();
    let secrets = input.apply(&mut settings);
    validate(&s, &org_id, &settings, secrets.resulting(current.secrets)).await?;
    Ok(Json(
        s.store
            .update_profile(&org_id, &id, &settings, &secrets)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/email-server-profiles/{id}", tag = "email-server-profiles",
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Profiles, Action::Delete)
        .await?;
    s.store.delete_profile(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
