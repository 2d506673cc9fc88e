//! Events from a mail server: a server that can call a URL when mail arrives
//! (Dovecot's push-notification plugin, through `contrib/dovecot/mailbridge-push.lua`
//! or its OX driver) tells mailbridge at once, and the mailbox it names is synced
//! now instead of at its next poll. Polling stays the safety net: a lost event
//! delays mail, it never loses it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use mailbridge_domain::authz::{Action, Resource};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::input::ApiJson;
use crate::{ApiError, AppState};

/// One event, in the fields of Dovecot's push notifications (OX driver format).
/// Other fields the server sends (`from`, `subject`, `unseen`...) are ignored.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct MailEvent {
    /// The event: `messageNew` or `messageAppend` wake the mailbox; any other
    /// event is accepted and ignored.
    pub event: String,
    /// Whose mailbox: the mailbox's sign-in name or its email address.
    pub user: String,
    /// The folder the mail arrived in.
    pub folder: Option<String>,
    #[serde(rename = "imap-uidvalidity")]
    pub imap_uidvalidity: Option<u64>,
    #[serde(rename = "imap-uid")]
    pub imap_uid: Option<u64>,
}

/// What the event did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MailEventResult {
    /// How many mailboxes of the profile the event named and woke (0 when the
    /// user is not a mailbox of this profile or the event is not about new mail).
    pub mailboxes_woken: usize,
}

/// Whether an event announces new mail.
fn announces_new_mail(event: &str) -> bool {
    event.eq_ignore_ascii_case("messageNew") || event.eq_ignore_ascii_case("messageAppend")
}

/// Receives a mail server's event: the profile's mailboxes it names are synced now.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/email-server-profiles/{id}/mail-events", tag = "email-server-profiles",
    request_body = MailEvent,
    responses((status = 202, body = MailEventResult), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn receive(
    State(s): State<AppState>,
    auth: Auth,
    Path((org_id, id)): Path<(String, String)>,
    ApiJson(e): ApiJson<MailEvent>,
) -> Result<(StatusCode, Json<MailEventResult>), ApiError> {
    auth.check(&s, &org_id, Resource::Profiles, Action::Update)
        .await?;
    s.store.get_profile(&org_id, &id).await?;
    let user = e.user.trim();
    if user.is_empty() {
        return Err(ApiError::field(
            "missing_field",
            "user",
            "name the mailbox: its sign-in name or email address",
        ));
    }
    let mut woken = 0;
    if announces_new_mail(&e.event) {
        let now = Utc::now();
        for mailbox in s.store.mailboxes_for_login(&org_id, &id, user).await? {
            s.store.wake_incoming(&mailbox, now).await?;
            woken += 1;
        }
        if woken > 0 {
            s.wake.notify_one();
            if let Some(m) = &s.engine_metrics {
                m.push_wakeup(mailbridge_engine::metrics::WakeSource::MailEvent);
            }
        }
    }
    tracing::debug!(profile = %id, event = %e.event, folder = e.folder.as_deref().unwrap_or(""),
        uidvalidity = e.imap_uidvalidity.unwrap_or(0), uid = e.imap_uid.unwrap_or(0), woken, "mail-server event");
    Ok((
        StatusCode::ACCEPTED,
        Json(MailEventResult {
            mailboxes_woken: woken,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::announces_new_mail;

    #[test]
    fn new_mail_events() {
        assert!(announces_new_mail("messageNew"));
        assert!(announces_new_mail("MessageNew"));
        assert!(announces_new_mail("messageAppend"));
        assert!(!announces_new_mail("FlagsSet"));
        assert!(!announces_new_mail(""));
    }
}
