//! `/api/v1/orgs/{org_id}/email-settings`: the organization's email configuration.

use axum::Json;
use axum::extract::{Path, State};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::organization::{EmailSettings, validate_email_settings};
use mailbridge_domain::{
    ActLeavingFilters, ActTaskDeletedOnServer, DeliveryMethod, EmailBetweenUsers,
};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, nullable, set};
use crate::{ApiError, AppState};

/// The settings that can be written; absent fields keep their value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSettingsInput {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    default_profile_id: Option<Option<String>>,
    default_incoming_method: Option<DeliveryMethod>,
    default_outgoing_method: Option<DeliveryMethod>,
    default_act_method: Option<DeliveryMethod>,
    process_email_for_approved_users_only: Option<bool>,
    process_email_for_approved_queues_only: Option<bool>,
    tracking_token_enabled: Option<bool>,
    tracking_token_prefix: Option<String>,
    tracking_token_base_number: Option<i64>,
    tracking_token_user_digits: Option<i64>,
    tracking_token_counter_digits: Option<i64>,
    max_attachment_size_kb: Option<i64>,
    /// Messages above this size (KB) pushed to the inbound listener are refused
    /// with 552: 1 to 153600 (150 MB), 25600 (25 MB) by default.
    max_message_size_kb: Option<i64>,
    email_between_users: Option<EmailBetweenUsers>,
    similarity_correlation: Option<bool>,
    /// ACT: a linked record leaving its user's sync filters: `delete_on_server`
    /// (default) or `unlink`.
    act_leaving_filters: Option<ActLeavingFilters>,
    /// ACT: a task deleted on the mail system: `delete_record` (default) or `unlink`.
    act_task_deleted_on_server: Option<ActTaskDeletedOnServer>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/email-settings", tag = "email-settings",
    responses((status = 200, body = EmailSettings), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
) -> Result<Json<EmailSettings>, ApiError> {
    auth.check(&s, &org_id, Resource::EmailSettings, Action::Read)
        .await?;
    Ok(Json(s.store.get_email_settings(&org_id).await?))
}

/// New mailboxes take these defaults; existing mailboxes keep theirs.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/email-settings", tag = "email-settings", request_body = EmailSettingsInput,
    responses((status = 200, body = EmailSettings), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(i): ApiJson<EmailSettingsInput>,
) -> Result<Json<EmailSettings>, ApiError> {
    auth.check(&s, &org_id, Resource::EmailSettings, Action::Update)
        .await?;
    let mut e = s.store.get_email_settings(&org_id).await?;
    set(&mut e.default_profile_id, i.default_profile_id);
    set(&mut e.default_incoming_method, i.default_incoming_method);
    set(&mut e.default_outgoing_method, i.default_outgoing_method);
    set(&mut e.default_act_method, i.default_act_method);
    set(
        &mut e.process_email_for_approved_users_only,
        i.process_email_for_approved_users_only,
    );
    set(
        &mut e.process_email_for_approved_queues_only,
        i.process_email_for_approved_queues_only,
    );
    set(&mut e.tracking_token_enabled, i.tracking_token_enabled);
    set(&mut e.tracking_token_prefix, i.tracking_token_prefix);
    set(
        &mut e.tracking_token_base_number,
        i.tracking_token_base_number,
    );
    set(
        &mut e.tracking_token_user_digits,
        i.tracking_token_user_digits,
    );
    set(
        &mut e.tracking_token_counter_digits,
        i.tracking_token_counter_digits,
    );
    set(&mut e.max_attachment_size_kb, i.max_attachment_size_kb);
    set(&mut e.max_message_size_kb, i.max_message_size_kb);
    set(&mut e.email_between_users, i.email_between_users);
    set(&mut e.similarity_correlation, i.similarity_correlation);
    set(&mut e.act_leaving_filters, i.act_leaving_filters);
    set(
        &mut e.act_task_deleted_on_server,
        i.act_task_deleted_on_server,
    );
    ApiError::check(validate_email_settings(&e))?;
    Ok(Json(s.store.update_email_settings(&org_id, &e).await?))
}
