//! The outgoing workload of an Exchange Server mailbox, as Exchange Online's
//! (graph/outgoing.rs): queued emails are claimed a batch at a time and each is
//! sent as MIME (the Graph path's, Bcc in its header) with `CreateItem`
//! `SendAndSaveCopy`, which saves the copy in Sent Items: no copy to append.
//! Outcomes are recorded as on the SMTP path (sent, retried, failed).
//!
//! Nothing is sent twice for a lost answer: an email tried before (a stop while
//! it was `sending`, or a transient failure such as a timeout, which can come
//! after Exchange sent it) is first looked for in Sent Items by its Message-ID
//! (`FindItem`), and marked sent when its copy is there.

use chrono::{Duration as ChronoDuration, Utc};
use mailbridge_connectors::ews::EwsClient;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::schedule::retry_after_failure;

use crate::Engine;
use crate::context::{MailboxContext, store_error};
use crate::graph::outgoing::mime;
use crate::metrics::{ItemOutcome, Workload};
use crate::outgoing::{CLAIM_BATCH, Claimed};

/// Sends every due email of the mailbox; returns how many were sent.
pub async fn run(engine: &Engine, ctx: &MailboxContext) -> Result<usize, SyncError> {
    let store = &engine.store;
    let mailbox = &ctx.mailbox;
    let client = super::client(engine, ctx).await?;
    recover_in_flight(engine, ctx, &client).await?;
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
                let found = match in_sent_items(&client, &out.email.message_id).await {
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
            let e = match client.send_and_save_copy(&bytes).await {
                Ok(()) => {
                    store
                        .mark_sent(&out.email.id, Utc::now())
                        .await
                        .map_err(store_error)?;
                    metrics.items(Workload::Outgoing, ItemOutcome::Sent, 1);
                    sent += 1;
                    continue;
                }
                Err(e) => SyncError::from(e),
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
/// `SendAndSaveCopy` saves as it sends.
async fn in_sent_items(client: &EwsClient, message_id: &Option<String>) -> Result<bool, SyncError> {
    let Some(mid) = message_id else {
        return Ok(false);
    };
    Ok(client.find_sent_by_message_id(mid).await?.is_some())
}

/// A stop during a run can leave emails in `sending`. One whose copy is in Sent
/// Items was sent: it is marked so. The others go back to the queue after the
/// retry delay, counted as an attempt, so that they are looked for once more
/// before they are sent again.
async fn recover_in_flight(
    engine: &Engine,
    ctx: &MailboxContext,
    client: &EwsClient,
) -> Result<(), SyncError> {
    let store = &engine.store;
    for (org, id) in store
        .in_flight(&ctx.mailbox.id)
        .await
        .map_err(store_error)?
    {
        let email = store.get_email(&org, &id).await.map_err(store_error)?;
        if in_sent_items(client, &email.message_id).await? {
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
