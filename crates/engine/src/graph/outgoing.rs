//! The outgoing workload of an Exchange Online mailbox: queued emails are claimed
//! a batch at a time and each is sent as MIME with Graph's `sendMail`, which
//! also saves the copy in Sent Items (`QUIRK_MIME_SEND_SAVES`): no copy to append.
//! Outcomes are recorded as on the SMTP path (sent, retried, failed).
//!
//! Nothing is sent twice for a lost answer: an email tried before (a stop while
//! it was `sending`, or a transient failure such as a gateway timeout, which can
//! come after Exchange sent it) is first looked for in Sent Items by its
//! Message-ID, and marked sent when its copy is there.

use chrono::{Duration as ChronoDuration, Utc};
use mailbridge_domain::PartyRole;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::schedule::retry_after_failure;
use mailbridge_store::OutgoingEmail;

use crate::Engine;
use crate::context::{MailboxContext, store_error};
use crate::metrics::{ItemOutcome, Workload};
use crate::outgoing::{CLAIM_BATCH, Claimed, build};
use mailbridge_connectors::graph::{GraphMailbox, WellKnownFolder};

/// The MIME Graph sends: the SMTP path's message with its Bcc recipients in a
/// `Bcc` header, since Graph takes the recipients from the headers (and does not
/// deliver or keep that header as such).
pub fn mime(from_name: &str, from: &str, out: &OutgoingEmail) -> Vec<u8> {
    let (bytes, _) = build(from_name, from, out);
    let bcc: Vec<&str> = out
        .email
        .parties
        .iter()
        .filter(|p| p.role == PartyRole::Bcc)
        .map(|p| p.address.as_str())
        .collect();
    if bcc.is_empty() {
        return bytes;
    }
    let mut with = format!("Bcc: {}\r\n", bcc.join(", ")).into_bytes();
    with.extend_from_slice(&bytes);
    with
}

/// Sends every due email of the mailbox; returns how many were sent.
pub async fn run(engine: &Engine, ctx: &MailboxContext) -> Result<usize, SyncError> {
    let store = &engine.store;
    let mailbox = &ctx.mailbox;
    let mbx = super::mailbox(engine, ctx).await?;
    recover_in_flight(engine, ctx, &mbx).await?;
    let from = ctx.address()?;
    let metrics = &engine.metrics;
    let mut sent = 0;
    loop {
        let batch = store
            .claim_outgoing(&mailbox.org_id, &mailbox.id, Utc::now(), CLAIM_BATCH)
            .await
            .map_err(store_error)?;
        if batch.is_empty() {
            return Ok(sent);
        }
        let mut claimed = Claimed::new(store, &mailbox.org_id, batch);
        while let Some(out) = claimed.next() {
            // Only while this node still runs the mailbox (see outgoing.rs).
            if let Err(e) = crate::outgoing::confirm_lease(engine, &mailbox.id).await {
                claimed.put_back(out);
                claimed.release().await;
                return Err(e);
            }
            // Tried before: the answer may have been lost after Exchange sent it.
            if out.send_attempts > 0 {
                let found = match in_sent_items(&mbx, &out.email.message_id).await {
                    Ok(found) => found,
                    Err(e) => {
                        claimed.put_back(out);
                        claimed.release().await;
                        return Err(e);
                    }
                };
                if found {
                    tracing::info!(email = %out.email.id, "an email tried before is in Sent Items: marked sent, not sent again");
                    store
                        .mark_sent(&out.email.id, Utc::now())
                        .await
                        .map_err(store_error)?;
                    metrics.items(Workload::Outgoing, ItemOutcome::Sent, 1);
                    sent += 1;
                    continue;
                }
            }
            let bytes = mime(&mailbox.name, &from, &out);
            let e = match mbx.send_mime(&bytes).await {
                Ok(()) => {
                    store
                        .mark_sent(&out.email.id, Utc::now())
                        .await
                        .map_err(store_error)?;
                    metrics.items(Workload::Outgoing, ItemOutcome::Sent, 1);
                    sent += 1;
                    continue;
                }
                Err(e) => e,
            };
            let reason = e.message.clone();
            match (e.class, e.scope) {
                (ErrorClass::Permanent, ErrorScope::Item) => {
                    store
                        .mark_send_failed(&out.email.id, &reason)
                        .await
                        .map_err(store_error)?;
                    metrics.items(Workload::Outgoing, ItemOutcome::Failed, 1);
                }
                (ErrorClass::Transient { retry_after }, _) => {
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
                            metrics.items(Workload::Outgoing, ItemOutcome::Retried, 1);
                        }
                        None => {
                            store
                                .mark_send_failed(&out.email.id, &reason)
                                .await
                                .map_err(store_error)?;
                            metrics.items(Workload::Outgoing, ItemOutcome::Failed, 1);
                        }
                    }
                    claimed.release().await;
                    return Err(e);
                }
                // The mailbox or profile is at fault: the email waits in the queue.
                _ => {
                    claimed.put_back(out);
                    claimed.release().await;
                    return Err(e);
                }
            }
        }
    }
}

/// Whether Sent Items holds the copy of an email (by its Message-ID), which
/// `sendMail` saves as it sends.
async fn in_sent_items(mbx: &GraphMailbox, message_id: &Option<String>) -> Result<bool, SyncError> {
    let Some(mid) = message_id else {
        return Ok(false);
    };
    Ok(!mbx
        .find_by_message_id(WellKnownFolder::SentItems.name(), mid)
        .await?
        .is_empty())
}

/// A stop during a run can leave emails in `sending`. One whose copy is in Sent
/// Items was sent: it is marked so. The others go back to the queue after the
/// retry delay, counted as an attempt, so that they are looked for once more
/// before they are sent again: Exchange saves the copy moments after it
/// accepts a message, and an email is not sent twice for being looked for too
/// early.
async fn recover_in_flight(
    engine: &Engine,
    ctx: &MailboxContext,
    mbx: &GraphMailbox,
) -> Result<(), SyncError> {
    let store = &engine.store;
    for (org, id) in store
        .in_flight(&ctx.mailbox.id)
        .await
        .map_err(store_error)?
    {
        let email = store.get_email(&org, &id).await.map_err(store_error)?;
        if in_sent_items(mbx, &email.message_id).await? {
            tracing::info!(email = %id, "an email in flight at the last stop is in Sent Items: marked sent");
            store
                .mark_sent(&id, Utc::now())
                .await
                .map_err(store_error)?;
            continue;
        }
        let at = Utc::now()
            + ChronoDuration::from_std(engine.config.timing.retry_delay)
                .unwrap_or(ChronoDuration::minutes(1));
        store
            .mark_send_retry(
                &id,
                at,
                "interrupted while sending; Sent Items is looked at again before it is sent",
            )
            .await
            .map_err(store_error)?;
    }
    Ok(())
}
