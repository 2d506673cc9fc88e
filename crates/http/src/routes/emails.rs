//! `/api/v1/orgs/{org_id}/emails`: email activities with their parties. One
//! Message-ID is one email in an organization.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use mailbridge_domain::PartyRole;
use mailbridge_domain::activity::{Email, EmailParty, normalize_message_id, validate_email};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_domain::ids::new_id;
use mailbridge_domain::{CorrelationMethod, EmailDirection, EmailStatus, RegardingType};
use mailbridge_store::Filter;
use mailbridge_store::{AttachmentInfo, Decision};
use serde::{Deserialize, Serialize};

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
    /// The mailbox an outgoing email is sent as (the same field as `mailbox_id`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    from_mailbox_id: Option<Option<String>>,
    /// Recipient addresses; each list replaces the parties of its role.
    to: Option<Vec<String>>,
    cc: Option<Vec<String>>,
    bcc: Option<Vec<String>>,
    /// The plain-text body (the same field as `body`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    body_text: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    body_html: Option<Option<String>>,
    /// The record the email regards, as `{"type", "id"}` (or use regarding_type and regarding_id).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<RegardingRef>)]
    regarding: Option<Option<RegardingRef>>,
    /// Queue the email for sending at once (status `pending_send`).
    send: Option<bool>,
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

/// A regarding record.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegardingRef {
    #[serde(rename = "type")]
    kind: RegardingType,
    id: String,
}

/// An email as the API shows it: the activity, its HTML body, and the decision
/// the engine recorded for it (absent for emails created through the API).
#[derive(Serialize, utoipa::ToSchema)]
pub struct EmailView {
    #[serde(flatten)]
    email: Email,
    body_html: Option<String>,
    /// Attachments found in the message; `stored: false` when over the size limit.
    attachments: Vec<AttachmentInfo>,
    decision: Option<Decision>,
}

async fn view(s: &AppState, email: Email) -> Result<EmailView, ApiError> {
    Ok(views(s, vec![email])
        .await?
        .pop()
        .expect("one view per email"))
}

/// The views of a page of emails, with two queries for the whole page.
async fn views(s: &AppState, emails: Vec<Email>) -> Result<Vec<EmailView>, ApiError> {
    let Some(org) = emails.first().map(|e| e.org_id.clone()) else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = emails.iter().map(|e| e.id.clone()).collect();
    let mut html = s.store.email_bodies_html(&ids).await?;
    let mut decisions = s.store.decisions_for_emails(&org, &ids).await?;
    let mut attachments = s.store.attachments_for_emails(&ids).await?;
    Ok(emails
        .into_iter()
        .map(|e| EmailView {
            body_html: html.remove(&e.id),
            attachments: attachments.remove(&e.id).unwrap_or_default(),
            decision: decisions.remove(&e.id),
            email: e,
        })
        .collect())
}

fn set_recipients(e: &mut Email, role: PartyRole, list: Option<Vec<String>>) {
    if let Some(list) = list {
        e.parties.retain(|p| p.role != role);
        e.parties.extend(list.into_iter().map(|a| EmailParty {
            role,
            address: a.trim().to_owned(),
            party_type: None,
            party_id: None,
        }));
    }
}

impl EmailInput {
    fn apply(mut self, e: &mut Email) -> (Option<Option<String>>, bool) {
        if self.from_mailbox_id.is_some() {
            self.mailbox_id = self.from_mailbox_id.take();
        }
        if self.body_text.is_some() {
            self.body = self.body_text.take();
        }
        if let Some(r) = self.regarding.take() {
            self.regarding_type = Some(r.as_ref().map(|r| r.kind));
            self.regarding_id = Some(r.map(|r| r.id));
        }
        set_recipients(e, PartyRole::To, self.to.take());
        set_recipients(e, PartyRole::Cc, self.cc.take());
        set_recipients(e, PartyRole::Bcc, self.bcc.take());
        let html = self.body_html.take();
        let send = self.send.take().unwrap_or(false);
        self.apply_fields(e);
        (html, send)
    }

    fn apply_fields(self, e: &mut Email) {
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
    /// Part of the subject or of any party's address.
    search: Option<String>,
    /// `oldest_first` (the default) or `newest_first`.
    order: Option<crate::routes::monitoring::Order>,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/emails", tag = "emails", request_body = EmailInput,
    responses((status = 201, body = EmailView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<EmailInput>,
) -> Result<(StatusCode, Json<EmailView>), ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Activities, Action::Create)
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
    let (html, send) = input.apply(&mut e);
    ApiError::check(validate_email(&e))?;
    if send {
        // Refuse before anything is created: a refused send leaves no draft behind.
        crate::send::check(&s, &scope, &e).await?;
    }
    let created = s.store.create_email(&e).await?;
    s.store
        .set_email_body_html(&created.id, html.flatten().as_deref())
        .await?;
    let email = if send {
        crate::send::queue(&s, &scope, created).await?
    } else {
        created
    };
    Ok((StatusCode::CREATED, Json(view(&s, email).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/emails", tag = "emails", params(ListParams),
    responses((status = 200, body = List<EmailView>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<EmailView>>, ApiError> {
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
        ("t.regarding_id", q.regarding_id),
        (
            "t.correlation_method",
            q.correlation_method.map(|v| v.as_str().to_owned()),
        ),
    ];
    let mut filters: Vec<Filter> = eq
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| Filter::Eq(c, v)))
        .collect();
    if let Some(m) = q.mailbox_id {
        filters.push(mailbridge_store::emails_of_mailbox(&m));
    }
    if let Some(text) = q.search.filter(|t| !t.trim().is_empty()) {
        let pattern = format!("%{}%", text.trim().to_lowercase().replace(['%', '_'], ""));
        filters.push(Filter::AroundTwice(
            "(lower(t.subject) LIKE ",
            pattern,
            " OR EXISTS (SELECT 1 FROM email_parties sp WHERE sp.email_id = t.id AND lower(sp.address) LIKE ",
            "))",
        ));
    }
    let page = match q.order.unwrap_or_default() {
        crate::routes::monitoring::Order::OldestFirst => {
            s.store.list_emails(&org_id, &filters, &page).await?
        }
        crate::routes::monitoring::Order::NewestFirst => {
            s.store
                .list_emails_newest_first(&org_id, &filters, &page)
                .await?
        }
    };
    let items = views(&s, page.items).await?;
    Ok(Json(List {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/emails/{id}", tag = "emails",
    responses((status = 200, body = EmailView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<EmailView>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Read)
        .await?;
    let email = s.store.get_email(&org_id, &id).await?;
    Ok(Json(view(&s, email).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionParams {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// The decision trail of one email: what each mailbox that saw the message
/// decided, by which rule and why, oldest first.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/emails/{id}/decisions", tag = "emails", params(DecisionParams),
    responses((status = 200, body = List<Decision>), (status = 404, body = ErrorBody)))]
pub async fn decisions(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DecisionParams>,
) -> Result<Json<List<Decision>>, ApiError> {
    auth.check(&s, &org_id, Resource::Activities, Action::Read)
        .await?;
    s.store.get_email(&org_id, &id).await?;
    let page = page_request(q.cursor, q.limit)?;
    let filters = [Filter::Eq("t.email_id", id)];
    Ok(Json(
        s.store
            .list_decisions(&org_id, &filters, &page)
            .await?
            .into(),
    ))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/emails/{id}", tag = "emails", request_body = EmailInput,
    responses((status = 200, body = EmailView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<EmailInput>,
) -> Result<Json<EmailView>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Activities, Action::Update)
        .await?;
    let mut e = s.store.get_email(&org_id, &id).await?;
    let (html, send) = input.apply(&mut e);
    ApiError::check(validate_email(&e))?;
    let updated = s.store.update_email(&e).await?;
    if let Some(html) = html {
        s.store
            .set_email_body_html(&updated.id, html.as_deref())
            .await?;
    }
    let email = if send {
        crate::send::queue(&s, &scope, updated).await?
    } else {
        updated
    };
    Ok(Json(view(&s, email).await?))
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

/// Queues a draft (or a failed email) for sending as its mailbox.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/emails/{id}/send", tag = "emails",
    responses((status = 200, body = EmailView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn send(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<EmailView>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Activities, Action::Update)
        .await?;
    let email = s.store.get_email(&org_id, &id).await?;
    let queued = crate::send::queue(&s, &scope, email).await?;
    Ok(Json(view(&s, queued).await?))
}
