//! The error model applied to the ACT workload, as `failures.rs` does for email:
//! a transient failure is retried on the retry policy and then counts as
//! permanent; a permanent one disables ACT and alerts the mailbox's owner (and the
//! profile's owner when the profile is at fault).

use chrono::{Duration as ChronoDuration, Utc};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::schedule::retry_after_failure;
use mailbridge_domain::{AlertScope, AlertSeverity};

use crate::Engine;
use crate::context::MailboxContext;

/// Records a failed ACT run and decides what follows.
pub async fn act_failed(engine: &Engine, ctx: &MailboxContext, err: &SyncError) {
    let store = &engine.store;
    let mailbox = &ctx.mailbox.id;
    let text = match &err.fix {
        Some(fix) => format!("{}; {fix}", err.message),
        None => err.message.clone(),
    };
    if let ErrorClass::Transient { retry_after } = err.class {
        let delay = engine.config.timing.retry_delay;
        let next = Utc::now()
            + ChronoDuration::from_std(retry_after.unwrap_or(delay).max(delay))
                .unwrap_or(ChronoDuration::minutes(5));
        match store.act_failed_transiently(mailbox, next, &text).await {
            Ok(failures) => {
                let so_far = u32::try_from(failures - 1).unwrap_or(u32::MAX);
                if retry_after_failure(&engine.config.timing, so_far, retry_after).is_some() {
                    tracing::warn!(mailbox, failures, error = %err.message, "ACT: transient failure; will retry");
                    return;
                }
                tracing::warn!(
                    mailbox,
                    failures,
                    "ACT: transient failures exhausted the retries; now permanent"
                );
            }
            Err(e) => {
                tracing::error!(mailbox, error = %e, "could not record an ACT failure");
                return;
            }
        }
    }
    crate::alerts::raise(
        store,
        ctx,
        AlertScope::Mailbox,
        AlertSeverity::Error,
        None,
        format!(
            "The appointments, contacts and tasks of mailbox {} stopped: {}",
            ctx.mailbox.name, err.message
        ),
        err.fix
            .as_deref()
            .unwrap_or("Fix the cause, then run Test & Enable for the mailbox"),
        err.scope == ErrorScope::Profile,
    )
    .await;
    // Disabled after the alert is written, as for email.
    if let Err(e) = store.disable_act(mailbox, &text).await {
        tracing::error!(mailbox, error = %e, "could not disable ACT");
    }
    tracing::warn!(mailbox, error = %err.message, "ACT: permanent failure; disabled");
    crate::failures::profile_threshold(engine, ctx).await;
}
