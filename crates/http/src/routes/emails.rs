//! `/api/v1/orgs/{org_id}/emails`: email activities with their parties. One
//! Message-ID is one email in an organization.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use mailbridge_domain::activity::{Email, EmailParty, normalize_message_id, validate_email};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::{CorrelationMethod, EmailDirection, EmailStatus, RegardingType};
use mailbridge_store::Filter;
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::{ApiJson, ApiQuery, nullable, set};
use crate::list::{List, page_request};
use crate::{ApiError, AppState};

/// The fields of an email that can be written.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailInput {
    subject: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    body: Option<Option<String>>,
    /// `outgoing` when absent.
    direction: Option<EmailDirection>,
    /// `draft` for outgoing and `received` for incoming when absent.
    status: Option<EmailStatus>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    message_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    in_reply_to: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    tracking_token: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<CorrelationMethod>)]
    correlation_method: Option<Option<CorrelationMethod>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<RegardingType>)]
    regarding_type: Option<Option<RegardingType>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    regarding_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    mailbox_id: Option<Option<String>>,
    /// Replaces all parties when given.
    parties: Option<Vec<EmailParty>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    status_reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    sent_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    received_at: Option<Option<DateTime<Utc>>>,
}

impl EmailInput {
    fn apply(self, e: &mut Email) {
        set(&mut e.subject, self.subject);
        set(&mut e.body, self.body);
        set(&mut e.direction, self.direction);
        set(&mut e.status, self.status);
        set(
            &mut e.message_id,
            self.message_id.map(|m| m.map(|m| normalize_message_id(&m))),
        );
        set(
            &mut e.in_reply_to,
            self.in_reply_to
                .map(|m| m.map(|m| normalize_message_id(&m))),
        );
        set(&mut e.tracking_token, self.tracking_token);
        set(&mut e.correlation_method, self.correlation_method);
        set(&mut e.regarding_type, self.regarding_type);
        set(&mut e.regarding_id, self.regarding_id);
        set(&mut e.mailbox_id, self.mailbox_id);
        set(&mut e.parties, self.parties);
        set(&mut e.status_reason, self.status_reason);
        set(&mut e.sent_at, self.sent_at);
        set(&mut e.received_at, self.received_at);
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
    /// With or without angle brackets.
    message_id: Option<String>,
    direction: Option<EmailDirection>,
    status: Option<EmailStatus>,
    mailbox_id: Option<String>,
    regarding_id: Option<String>,
    correlation_method: Option<CorrelationMethod>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/emails", tag = "emails", request_body = EmailInput,
    responses((status = 201, body = Email), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<EmailInput>,
) -> Result<(StatusCode, Json<Email>), ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Create)
        .await?;
    let direction = input.direction.unwrap_or(EmailDirection::Outgoing);
    let now = Utc::now();
    let mut e = Email {
        id: new_id(),
        org_id,
        subject: String::new(),
        body: None,
        direction,
        status: match direction {
            EmailDirection::Outgoing => EmailStatus::Draft,
            EmailDirection::Incoming => EmailStatus::Received,
        },
        message_id: None,
        in_reply_to: None,
        tracking_token: None,
        correlation_method: None,
        regarding_type: None,
        regarding_id: None,
        mailbox_id: None,
        parties: Vec::new(),
        status_reason: None,
        sent_at: None,
        received_at: None,
        created_at: now,
        updated_at: now,
    };
    input.apply(&mut e);
    ApiError::check(validate_email(&e))?;
    Ok((StatusCode::CREATED, Json(s.store.create_email(&e).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/emails", tag = "emails", params(ListParams),
    responses((status = 200, body = List<Email>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<Email>>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Read)
        .await?;
    let page = page_request(q.cursor, q.limit)?;
    let eq = [
        (
            "t.message_id",
            q.message_id.map(|m| normalize_message_id(&m)),
        ),
        ("t.direction", q.direction.map(|v| v.as_str().to_owned())),
        ("t.status", q.status.map(|v| v.as_str().to_owned())),
        ("t.mailbox_id", q.mailbox_id),
        ("t.regarding_id", q.regarding_id),
        (
            "t.correlation_method",
            q.correlation_method.map(|v| v.as_str().to_owned()),
        ),
    ];
    let filters: Vec<Filter> = eq
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| Filter::Eq(c, v)))
        .collect();
    Ok(Json(
        s.store.list_emails(&org_id, &filters, &page).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/emails/{id}", tag = "emails",
    responses((status = 200, body = Email), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<Email>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Read)
        .await?;
    Ok(Json(s.store.get_email(&org_id, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/emails/{id}", tag = "emails", request_body = EmailInput,
    responses((status = 200, body = Email), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<EmailInput>,
) -> Result<Json<Email>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Update)
        .await?;
    let mut e = s.store.get_email(&org_id, &id).await?;
    input.apply(&mut e);
    ApiError::check(validate_email(&e))?;
    Ok(Json(s.store.update_email(&e).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/emails/{id}", tag = "emails",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Delete)
        .await?;
    s.store.delete_email(&org_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
