//! Queueing an email for sending: checks that it can be sent as its mailbox,
//! gives it its Message-ID (so replies correlate) and its tracking token, and
//! wakes the engine's outgoing workload.

use chrono::Utc;
use mailbridge_domain::activity::{Email, EmailParty};
use mailbridge_domain::authz::Principal;
use mailbridge_domain::ingest::TrackingTokenFormat;
use mailbridge_domain::mailbox::Mailbox;
use mailbridge_domain::{DeliveryMethod, EmailDirection, OwnerType, PartyRole, PartyType, Role};

use crate::auth::Scope;
use crate::{ApiError, AppState};

/// Checks, without changing anything, that an email can be sent as its mailbox;
/// returns the mailbox and its address.
pub async fn check(
    s: &AppState,
    scope: &Scope,
    email: &Email,
) -> Result<(Mailbox, String), ApiError> {
    if email.direction != EmailDirection::Outgoing {
        return Err(ApiError::field(
            "invalid_value",
            "direction",
            "only outgoing email can be sent",
        ));
    }
    let mailbox_id = email.mailbox_id.clone().ok_or_else(|| {
        ApiError::field(
            "missing_field",
            "from_mailbox_id",
            "from_mailbox_id is required to send: the mailbox the email is sent as",
        )
    })?;
    let mailbox = s.store.get_mailbox(&email.org_id, &mailbox_id).await?;
    if let Principal::Member {
        role: Role::User | Role::Approver,
        user_id,
        ..
    } = &scope.principal
        && !(mailbox.owner_type == OwnerType::User && &mailbox.owner_id == user_id)
    {
        return Err(ApiError::forbidden(
            "you may send only from your own mailbox",
        ));
    }
    if mailbox.outgoing_method != DeliveryMethod::ServerSideSync {
        return Err(ApiError::field(
            "invalid_value",
            "from_mailbox_id",
            format!(
                "mailbox {} does not send by server-side synchronization; set its outgoing_method to server_side_sync",
                mailbox.name
            ),
        ));
    }
    let address = mailbox.email_address.clone().ok_or_else(|| {
        ApiError::field(
            "invalid_value",
            "from_mailbox_id",
            "the mailbox has no email address to send from",
        )
    })?;
    if !email
        .parties
        .iter()
        .any(|p| matches!(p.role, PartyRole::To | PartyRole::Cc | PartyRole::Bcc))
    {
        return Err(ApiError::field(
            "missing_field",
            "to",
            "an email to send needs at least one recipient in to, cc or bcc",
        ));
    }
    Ok((mailbox, address))
}

/// Queues an email that [`check`] accepts.
pub async fn queue(s: &AppState, scope: &Scope, mut email: Email) -> Result<Email, ApiError> {
    let (mailbox, address) = check(s, scope, &email).await?;
    let mailbox_id = mailbox.id.clone();
    // The sender is the mailbox, whatever the parties said.
    email.parties.retain(|p| p.role != PartyRole::From);
    let sender_type = match mailbox.owner_type {
        OwnerType::User => PartyType::User,
        OwnerType::Queue => PartyType::Queue,
    };
    email.parties.insert(
        0,
        EmailParty {
            role: PartyRole::From,
            address: address.clone(),
            party_type: Some(sender_type),
            party_id: Some(mailbox.owner_id.clone()),
        },
    );
    let email = s.store.update_email(&email).await?;
    let settings = s.store.get_email_settings(&email.org_id).await?;
    let (subject, token) = match TrackingTokenFormat::from_settings(&settings) {
        Some(format) => {
            let (number, counter) = s
                .store
                .take_token_numbers(&email.org_id, &mailbox_id)
                .await?;
            let token = format.format(number, counter);
            (format.apply(&email.subject, &token), Some(token))
        }
        None => (email.subject.clone(), None),
    };
    let domain = address
        .rsplit_once('@')
        .map_or("mailbridge.invalid", |(_, d)| d);
    let message_id = format!("{}.mailbridge@{domain}", uuid::Uuid::now_v7().simple());
    s.store
        .queue_for_sending(
            &email.org_id,
            &email.id,
            &message_id,
            &subject,
            token.as_deref(),
        )
        .await?;
    s.store.wake_outgoing(&mailbox_id, Utc::now()).await?;
    s.wake.notify_one();
    Ok(s.store.get_email(&email.org_id, &email.id).await?)
}
