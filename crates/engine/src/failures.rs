//! Applying the error model to a workload: transient errors are retried on the
//! retry policy and then count as permanent; permanent errors disable the
//! workload and alert its owner; many failing mailboxes alert the profile's owner.

use chrono::{Duration as ChronoDuration, Utc};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::schedule::retry_after_failure;
use mailbridge_domain::{AlertScope, AlertSeverity};
use mailbridge_store::Workload;

use crate::Engine;
use crate::context::MailboxContext;

fn name(w: Workload) -> &'static str {
    match w {
        Workload::Incoming => "incoming email",
        Workload::Outgoing => "outgoing email",
    }
}

/// Records a failed run of a workload and decides what follows.
pub async fn workload_failed(engine: &Engine, ctx: &MailboxContext, w: Workload, err: &SyncError) {
    let store = &engine.store;
    let mailbox = &ctx.mailbox.id;
    let now = Utc::now();
    let text = match &err.fix {
        Some(fix) => format!("{}; {fix}", err.message),
        None => err.message.clone(),
    };
    if let ErrorClass::Transient { retry_after } = err.class {
        let delay = engine.config.timing.retry_delay;
        let next = now
            + ChronoDuration::from_std(retry_after.unwrap_or(delay).max(delay))
                .unwrap_or(ChronoDuration::minutes(5));
        match store
            .workload_failed_transiently(mailbox, w, next, &text)
            .await
        {
            Ok(failures) => {
                let so_far = u32::try_from(failures - 1).unwrap_or(u32::MAX);
                if retry_after_failure(&engine.config.timing, so_far, retry_after).is_some() {
                    tracing::warn!(mailbox, workload = name(w), failures, error = %err.message, "transient failure; will retry");
                    return;
                }
                tracing::warn!(
                    mailbox,
                    workload = name(w),
                    failures,
                    "transient failures exhausted the retries; now permanent"
                );
            }
            Err(e) => {
                tracing::error!(mailbox, error = %e, "could not record a failure");
                return;
            }
        }
    }
    let to_profile_owner = err.scope == ErrorScope::Profile;
    crate::alerts::raise(
        store,
        ctx,
        AlertScope::Mailbox,
        AlertSeverity::Error,
        None,
        format!(
            "The {} of mailbox {} stopped: {}",
            name(w),
            ctx.mailbox.name,
            err.message
        ),
        err.fix
            .as_deref()
            .unwrap_or("Fix the cause, then run Test & Enable for the mailbox"),
        to_profile_owner,
    )
    .await;
    // Disabled after the alert is written: whoever sees the failure status
    // finds its alert, and a crash in between leaves an alert and a workload
    // that fails again, never a silent stop.
    if let Err(e) = store.disable_workload(mailbox, w, &text).await {
        tracing::error!(mailbox, error = %e, "could not disable a failing workload");
    }
    tracing::warn!(mailbox, workload = name(w), error = %err.message, "permanent failure; the workload is disabled");
    profile_threshold(engine, ctx).await;
}

/// Autodiscover found no usable location (a permanent failure): both directions
/// stop with the failure status, and one alert tells the mailbox's owner and the
/// profile's owner what was tried and what to do.
pub async fn location_unknown(engine: &Engine, ctx: &MailboxContext, err: &SyncError) {
    let store = &engine.store;
    let text = match &err.fix {
        Some(fix) => format!("{}; {fix}", err.message),
        None => err.message.clone(),
    };
    // The alert first, as in `workload_failed`.
    alert_location_unknown(store, ctx, err).await;
    for (w, enabled) in [
        (Workload::Incoming, ctx.mailbox.incoming_enabled),
        (Workload::Outgoing, ctx.mailbox.outgoing_enabled),
    ] {
        if !enabled {
            continue;
        }
        if let Err(e) = store.disable_workload(&ctx.mailbox.id, w, &text).await {
            tracing::error!(mailbox = %ctx.mailbox.id, error = %e, "could not disable a workload");
        }
    }
    tracing::warn!(mailbox = %ctx.mailbox.id, error = %err.message, "no server location; the mailbox is disabled");
    profile_threshold(engine, ctx).await;
}

/// The "mailbox location could not be determined" alert, to the mailbox's owner
/// and the profile's owner (the fix is on the profile).
pub async fn alert_location_unknown(
    store: &mailbridge_store::Store,
    ctx: &MailboxContext,
    err: &SyncError,
) {
    crate::alerts::raise(
        store,
        ctx,
        AlertScope::Mailbox,
        AlertSeverity::Error,
        None,
        format!("Mailbox {}: {}", ctx.mailbox.name, err.message),
        err.fix
            .as_deref()
            .unwrap_or(mailbridge_domain::autodiscover::LOCATION_UNKNOWN_FIX),
        true,
    )
    .await;
}

/// Alerts the profile's owner when more than half of its mailboxes failed within
/// the last hour (once an hour at most).
pub(crate) async fn profile_threshold(engine: &Engine, ctx: &MailboxContext) {
    let store = &engine.store;
    let since = Utc::now() - ChronoDuration::hours(1);
    let org = &ctx.mailbox.org_id;
    let Ok((failed, total)) = store.profile_failures(org, &ctx.profile.id, since).await else {
        return;
    };
    if total == 0 || failed * 2 <= total {
        return;
    }
    if store
        .profile_alerts_since(org, &ctx.profile.id, since)
        .await
        .unwrap_or(1)
        > 0
    {
        return;
    }
    crate::alerts::raise(
        store,
        ctx,
        AlertScope::Profile,
        AlertSeverity::Error,
        None,
        format!("{failed} of the {total} mailboxes of profile {} failed within the last hour", ctx.profile.settings.name),
        "Check the profile's server locations, credentials and the mail server itself; then run Test & Enable for the profile",
        true,
    )
    .await;
}
