//! What the email router received for a mailbox (`inbound_messages`): each message
//! with its status, why it is held or failed, and a retry for a failed one. The
//! messages' bytes are never returned; their Subject and Message-ID are read from
//! the header alone.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use mailbridge_domain::authz::{Action, Resource};
use mailbridge_store::{HELD_PREFIX, InboundMessageSummary, StoreError};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::ApiQuery;
use crate::list::{List, page_request};
use crate::routes::mailboxes::visible;
use crate::{ApiError, AppState};

/// The status of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    /// Waiting for the worker: new, to be tried again, or held until the mailbox
    /// is approved (`last_error` then starts with `held:`).
    Pending,
    Processed,
    /// Given up after the last attempt; it can be retried.
    Failed,
}

impl InboundStatus {
    fn as_str(self) -> &'static str {
        match self {
            InboundStatus::Pending => "pending",
            InboundStatus::Processed => "processed",
            InboundStatus::Failed => "failed",
        }
    }
}

/// A message the email router received, for one of its recipients.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InboundMessageView {
    pub id: String,
    pub mailbox_id: String,
    /// Its UID in the mailbox's `router` folder of the decision trail.
    pub seq: i64,
    /// The SMTP reverse-path (`MAIL FROM`); empty for a bounce.
    pub envelope_from: String,
    /// The `RCPT TO` address as given, with its +tag if any.
    pub recipient: String,
    pub tag: Option<String>,
    pub client_address: String,
    /// The message's size in bytes.
    pub size: i64,
    pub subject: Option<String>,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub received_at: DateTime<Utc>,
    /// `pending`, `processed` or `failed`.
    pub status: String,
    /// Pending and waiting for the mailbox's email approval.
    pub held: bool,
    pub attempts: i64,
    /// Why it is held, to be tried again, or failed.
    pub last_error: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// The header of a message from its first bytes: up to the blank line that ends
/// it, or up to the last whole line when the header is longer than those bytes.
fn header_part(head: &[u8]) -> &[u8] {
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .or_else(|| head.iter().rposition(|b| *b == b'\n').map(|i| i + 1))
        .unwrap_or(head.len());
    &head[..end]
}

/// The answer for one of the store's message summaries: its Subject and
/// Message-ID read from the header, and whether it is held for approval.
fn view(m: InboundMessageSummary) -> InboundMessageView {
    let facts = mailbridge_engine::parse::parse(header_part(&m.head), Vec::new()).facts;
    let held = m.status == "pending"
        && m.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(HELD_PREFIX));
    InboundMessageView {
        id: m.id,
        mailbox_id: m.mailbox_id,
        seq: m.seq,
        envelope_from: m.envelope_from,
        recipient: m.recipient,
        tag: m.tag,
        client_address: m.client_address,
        size: m.size,
        subject: Some(facts.subject).filter(|s| !s.is_empty()),
        message_id: facts.message_id,
        received_at: m.received_at,
        status: m.status,
        held,
        attempts: m.attempts,
        last_error: m.last_error,
        processed_at: m.processed_at,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboundParams {
    cursor: Option<String>,
    limit: Option<u32>,
    /// `pending`, `processed` or `failed`.
    #[param(value_type = Option<String>)]
    status: Option<InboundStatus>,
}

/// What the email router received for this mailbox, newest first, without the
/// messages' bytes: each one's status, attempts and why it is held or failed.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/inbound-messages", operation_id = "list_inbound_messages", tag = "mailboxes",
    params(InboundParams),
    responses((status = 200, body = List<InboundMessageView>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<InboundParams>,
) -> Result<Json<List<InboundMessageView>>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    visible(&s, &scope, &id).await?;
    let page = page_request(q.cursor, q.limit)?;
    let page = s
        .store
        .list_inbound_messages(&org_id, &id, q.status.map(InboundStatus::as_str), &page)
        .await?;
    Ok(Json(page.map(view).into()))
}

/// A mailbox's received messages by status.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InboundCountsView {
    pub pending: i64,
    /// Of the pending ones, those waiting for the mailbox's email approval.
    pub held: i64,
    pub processed: i64,
    pub failed: i64,
}

/// How many of the messages the email router received for this mailbox are
/// pending (and of those, held), processed and failed.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/inbound-messages/counts", operation_id = "inbound_message_counts", tag = "mailboxes",
    responses((status = 200, body = InboundCountsView), (status = 404, body = ErrorBody)))]
pub async fn counts(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
) -> Result<Json<InboundCountsView>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Read)
        .await?;
    visible(&s, &scope, &id).await?;
    let c = s.store.inbound_message_counts(&org_id, &id).await?;
    Ok(Json(InboundCountsView {
        pending: c.pending,
        held: c.held,
        processed: c.processed,
        failed: c.failed,
    }))
}

/// Sends a failed message through the pipeline again: it becomes pending with
/// its attempts reset and is taken at the worker's next run. Only a failed
/// message can be retried (409 otherwise).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/mailboxes/{id}/inbound-messages/{message_id}/retry", operation_id = "retry_inbound_message", tag = "mailboxes",
    responses((status = 200, body = InboundMessageView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id, message_id)): Path<(String, String, String)>,
) -> Result<Json<InboundMessageView>, ApiError> {
    let scope = auth
        .check(&s, &org_id, Resource::Mailboxes, Action::Update)
        .await?;
    visible(&s, &scope, &id).await?;
    if !mailbridge_domain::ids::is_valid_id(&message_id) {
        return Err(ApiError::not_found());
    }
    if !s
        .store
        .retry_inbound_message(&org_id, &id, &message_id)
        .await?
    {
        // Not failed, or no such message of this mailbox: tell which.
        let m = s
            .store
            .get_inbound_message(&org_id, &id, &message_id)
            .await?;
        return Err(StoreError::Conflict {
            field: Some("status".to_owned()),
            message: format!(
                "only a failed message can be retried; this one is {}",
                if m.status == "pending" {
                    "pending: it will be processed without a retry"
                } else {
                    m.status.as_str()
                }
            ),
        }
        .into());
    }
    let m = s
        .store
        .get_inbound_message(&org_id, &id, &message_id)
        .await?;
    Ok(Json(view(m)))
}

#[cfg(test)]
mod tests {
    use super::header_part;

    #[test]
    fn the_header_ends_at_the_blank_line_or_the_last_whole_line() {
        assert_eq!(
            header_part(b"Subject: a\r\n\r\nbody\r\n\r\nmore"),
            b"Subject: a\r\n\r\n"
        );
        assert_eq!(header_part(b"Subject: a\n\nbody"), b"Subject: a\n\n");
        assert_eq!(
            header_part(b"Subject: a\r\nX-Long: cut he"),
            b"Subject: a\r\n"
        );
        assert_eq!(header_part(b"no newline"), b"no newline");
    }
}
