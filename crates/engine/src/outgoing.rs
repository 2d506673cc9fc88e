//! The outgoing workload: each queued email is sent as its mailbox through the
//! mailbox's SMTP server, a copy is saved to Sent, and the email becomes Sent or
//! Failed. An email is marked `sending` while in flight.

use chrono::{Duration as ChronoDuration, Utc};
use mail_builder::MessageBuilder;
use mailbridge_connectors::{ImapSession, SmtpSession, SpecialUse};
use mailbridge_domain::PartyRole;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::schedule::retry_after_failure;
use mailbridge_store::OutgoingEmail;

use crate::Engine;
use crate::context::{MailboxContext, store_error};

/// Builds the RFC 5322 message of an email; returns it with its envelope recipients.
pub fn build(from_name: &str, from: &str, out: &OutgoingEmail) -> (Vec<u8>, Vec<String>) {
    let e = &out.email;
    let list = |role: PartyRole| -> Vec<String> {
        e.parties
            .iter()
            .filter(|p| p.role == role)
            .map(|p| p.address.clone())
            .collect()
    };
    let (to, cc, bcc) = (
        list(PartyRole::To),
        list(PartyRole::Cc),
        list(PartyRole::Bcc),
    );
    let mut b = MessageBuilder::new()
        .from((from_name.to_owned(), from.to_owned()))
        .subject(e.subject.clone())
        .message_id(e.message_id.clone().unwrap_or_default())
        .date(Utc::now().timestamp());
    if !to.is_empty() {
        b = b.to(to.clone());
    }
    if !cc.is_empty() {
        b = b.cc(cc.clone());
    }
    if let Some(r) = &e.in_reply_to {
        b = b.in_reply_to(r.clone()).references(r.clone());
    }
    b = b.text_body(e.body.clone().unwrap_or_default());
    if let Some(html) = &out.body_html {
        b = b.html_body(html.clone());
    }
    // Bcc recipients are in the envelope only, never in the header.
    let recipients = to.into_iter().chain(cc).chain(bcc).collect();
    (b.write_to_vec().unwrap_or_default(), recipients)
}

/// Sends every due email of the mailbox over one SMTP connection (and one IMAP
/// connection for the copies to Sent); returns how many were sent.
pub async fn run(engine: &Engine, ctx: &MailboxContext) -> Result<usize, SyncError> {
    recover_in_flight(engine, ctx).await?;
    let smtp_cfg = ctx.smtp(&engine.store, &engine.config).await?;
    let from = ctx.address()?;
    let mut smtp: Option<SmtpSession> = None;
    let mut sent_box: Option<(ImapSession, String)> = None;
    let result = send_all(engine, ctx, &smtp_cfg, &from, &mut smtp, &mut sent_box).await;
    if let Some(s) = smtp {
        s.quit().await;
    }
    if let Some((s, _)) = sent_box {
        s.logout().await;
    }
    result
}

async fn send_all(
    engine: &Engine,
    ctx: &MailboxContext,
    smtp_cfg: &mailbridge_connectors::SmtpConfig,
    from: &str,
    smtp: &mut Option<SmtpSession>,
    sent_box: &mut Option<(ImapSession, String)>,
) -> Result<usize, SyncError> {
    let store = &engine.store;
    let mut sent = 0;
    while let Some(out) = store
        .next_outgoing(&ctx.mailbox.id, Utc::now())
        .await
        .map_err(store_error)?
    {
        if !store
            .transition_email(&out.email.id, "pending_send", "sending")
            .await
            .map_err(store_error)?
        {
            continue;
        }
        let (bytes, recipients) = build(&ctx.mailbox.name, from, &out);
        let session = match smtp {
            Some(s) => s,
            None => match SmtpSession::connect(smtp_cfg).await {
                Ok(s) => smtp.insert(s),
                Err(e) => {
                    store
                        .transition_email(&out.email.id, "sending", "pending_send")
                        .await
                        .map_err(store_error)?;
                    return Err(e);
                }
            },
        };
        match session.send(from, &recipients, &bytes).await {
            Ok(()) => {
                store
                    .mark_sent(&out.email.id, Utc::now())
                    .await
                    .map_err(store_error)?;
                sent += 1;
                save_to_sent(engine, ctx, sent_box, &bytes).await;
            }
            Err(e) => {
                let reason = e.message.clone();
                match (e.class, e.scope) {
                    (ErrorClass::Permanent, ErrorScope::Item) => {
                        // The session stays usable: the transaction was reset.
                        store
                            .mark_send_failed(&out.email.id, &reason)
                            .await
                            .map_err(store_error)?;
                    }
                    (ErrorClass::Transient { retry_after }, _) => {
                        *smtp = None;
                        let attempts = u32::try_from(out.send_attempts).unwrap_or(u32::MAX);
                        match retry_after_failure(&engine.config.timing, attempts, retry_after) {
                            Some(wait) => {
                                let at = Utc::now()
                                    + ChronoDuration::from_std(wait)
                                        .unwrap_or(ChronoDuration::minutes(5));
                                store
                                    .mark_send_retry(&out.email.id, at, &reason)
                                    .await
                                    .map_err(store_error)?;
                            }
                            None => store
                                .mark_send_failed(&out.email.id, &reason)
                                .await
                                .map_err(store_error)?,
                        }
                        return Err(e);
                    }
                    _ => {
                        // The mailbox or profile is at fault, not this email: it
                        // waits in the queue for the workload to be fixed.
                        store
                            .transition_email(&out.email.id, "sending", "pending_send")
                            .await
                            .map_err(store_error)?;
                        return Err(e);
                    }
                }
            }
        }
    }
    Ok(sent)
}

/// A stop during a send leaves an email in `sending`. When its copy is in Sent,
/// it was sent: it is marked so. Otherwise it goes back to the queue.
/// FIXME: a stop after the SMTP server accepted it but before the copy was
/// appended still sends it twice; closing that needs the send and the copy in
/// one step the server confirms (e.g. BURL or Graph's sendMail).
async fn recover_in_flight(engine: &Engine, ctx: &MailboxContext) -> Result<(), SyncError> {
    let store = &engine.store;
    let stuck = store
        .in_flight(&ctx.mailbox.id)
        .await
        .map_err(store_error)?;
    if stuck.is_empty() {
        return Ok(());
    }
    let cfg = ctx.imap(store, &engine.config).await?;
    let mut session = ImapSession::connect(&cfg).await?;
    let sent_folder = session
        .find_special_use(SpecialUse::Sent)
        .await?
        .unwrap_or_else(|| "Sent".to_owned());
    session.select(&sent_folder).await?;
    for (org, id) in stuck {
        let email = store.get_email(&org, &id).await.map_err(store_error)?;
        let found = match &email.message_id {
            Some(mid) => !session
                .uids_with_header("Message-ID", mid)
                .await?
                .is_empty(),
            None => false,
        };
        if found {
            tracing::info!(email = %id, "an email in flight at the last stop is in Sent: marked sent");
            store
                .mark_sent(&id, chrono::Utc::now())
                .await
                .map_err(store_error)?;
        } else {
            store
                .transition_email(&id, "sending", "pending_send")
                .await
                .map_err(store_error)?;
        }
    }
    session.logout().await;
    Ok(())
}

/// Saves a copy to the mailbox's Sent folder, over the run's IMAP connection
/// (opened on first use). A failure here does not unsend the email: it is logged,
/// the email stays Sent, and the connection is opened again for the next copy.
async fn save_to_sent(
    engine: &Engine,
    ctx: &MailboxContext,
    sent_box: &mut Option<(ImapSession, String)>,
    bytes: &[u8],
) {
    if sent_box.is_none() {
        let opened: Result<(ImapSession, String), SyncError> = async {
            let cfg = ctx.imap(&engine.store, &engine.config).await?;
            let mut session = ImapSession::connect(&cfg).await?;
            let folder = session
                .find_special_use(SpecialUse::Sent)
                .await?
                .unwrap_or_else(|| "Sent".to_owned());
            Ok((session, folder))
        }
        .await;
        match opened {
            Ok(b) => *sent_box = Some(b),
            Err(e) => {
                tracing::warn!(mailbox = %ctx.mailbox.id, error = %e.message, "sent, but the copy to Sent failed");
                return;
            }
        }
    }
    if let Some((session, folder)) = sent_box
        && let Err(e) = session.append(folder, &["\\Seen"], bytes).await
    {
        tracing::warn!(mailbox = %ctx.mailbox.id, error = %e.message, "sent, but the copy to Sent failed");
        *sent_box = None;
    }
}
