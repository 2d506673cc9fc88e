//! The completeness census: every `census_interval`, within a successful incoming
//! run (so under the mailbox's lease), the messages on the server in each
//! processed folder are compared with the decision trail. A message the incoming
//! sync has passed but never decided is a gap: it is reported (metric, an alert
//! to the owner saying how many, where, and that they were back-filled) and
//! back-filled through batch.rs and pipeline.rs like any new message — the same
//! decisions, one email per Message-ID, one decision per message, so exactly
//! once. What the domain counts as a gap, and why moved, deleted or deliberately
//! skipped messages are not, is in `mailbridge_domain::census`.
//!
//! A gap that cannot be back-filled is not reported again: its failed attempt is
//! recorded (`retrying`), the next censuses try it again without alerting, and
//! after the last attempt it is given up like any message (moved to
//! Undeliverable when the profile says so, an item alert).

mod graph;
mod imap;

use chrono::{DateTime, Utc};
use mailbridge_domain::census::{alert_message, next_census};
use mailbridge_domain::{AlertScope, AlertSeverity};

use crate::Engine;
use crate::context::MailboxContext;
use crate::metrics::RunOutcome;

/// What the census of one folder found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderReport {
    pub folder: String,
    /// Messages on the server the census looked at.
    pub considered: usize,
    /// New gaps: never decided.
    pub missing: usize,
    /// Of those, how many have a final decision now.
    pub missing_backfilled: usize,
    /// Earlier gaps whose back-fill failed, tried again.
    pub stuck: usize,
    /// Of everything tried (missing and stuck), how many have a final decision now.
    pub backfilled: usize,
}

impl FolderReport {
    fn new(folder: &str) -> FolderReport {
        FolderReport {
            folder: folder.to_owned(),
            ..Default::default()
        }
    }
}

/// Runs the mailbox's census when it is due; `incoming_started` is when the
/// incoming run that just succeeded started (Exchange Online's mark: what
/// changed after it may not be processed yet). A failure is logged, counted and
/// tried again later (sooner after the first failures); it never fails the
/// incoming workload.
pub async fn run_if_due(engine: &Engine, ctx: &MailboxContext, incoming_started: DateTime<Utc>) {
    if crate::ews::uses_ews(ctx) {
        // No census for Exchange Server yet: EWS would need its own server-set
        // listing (FindItem by folder); nothing is scheduled.
        return;
    }
    let (org, mailbox) = (&ctx.mailbox.org_id, &ctx.mailbox.id);
    let store = &engine.store;
    let interval = engine.config.census_interval;
    let now = Utc::now();
    let first = next_census(now, interval, engine.config.timing.retry_delay, 0);
    let state = match store.census_due(org, mailbox, now, first).await {
        Ok(Some(state)) => state,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(mailbox = %mailbox, error = %e, "could not read the census schedule");
            return;
        }
    };
    let mut folders = Vec::new();
    let result = if crate::graph::uses_graph(ctx) {
        graph::run(engine, ctx, incoming_started, &mut folders).await
    } else {
        imap::run(engine, ctx, &mut folders).await
    };
    // What the folders done found is reported even when a later folder failed:
    // their gaps are back-filled now, so no later census would find them again.
    let found: usize = folders.iter().map(|f| f.missing).sum();
    let backfilled: usize = folders.iter().map(|f| f.backfilled).sum();
    for f in folders.iter().filter(|f| f.missing > 0) {
        report_gaps(engine, ctx, f).await;
    }
    engine
        .metrics
        .census_finished(RunOutcome::of(&result), found, backfilled);
    let retry_delay = engine.config.timing.retry_delay;
    match result {
        Ok(()) => {
            let next = next_census(Utc::now(), interval, retry_delay, 0);
            let (n, b) = (i64::try_from(found), i64::try_from(backfilled));
            let written = store
                .census_finished(
                    org,
                    mailbox,
                    n.unwrap_or(i64::MAX),
                    b.unwrap_or(i64::MAX),
                    next,
                )
                .await;
            if let Err(e) = written {
                tracing::warn!(mailbox = %mailbox, error = %e, "could not record a census");
            }
            let considered: usize = folders.iter().map(|f| f.considered).sum();
            tracing::info!(mailbox = %mailbox, folders = folders.len(), considered, gaps = found, backfilled, "census");
        }
        Err(e) => {
            let failures =
                u32::try_from(state.census_failures.saturating_add(1)).unwrap_or(u32::MAX);
            let next = next_census(Utc::now(), interval, retry_delay, failures);
            if let Err(err) = store.census_failed(org, mailbox, &e.message, next).await {
                tracing::warn!(mailbox = %mailbox, error = %err, "could not record a failed census");
            }
            tracing::warn!(mailbox = %mailbox, failures, gaps = found, error = %e.message, next = %next, "census failed; tried again later");
        }
    }
}

/// The owner's alert for the new gaps of one folder.
async fn report_gaps(engine: &Engine, ctx: &MailboxContext, f: &FolderReport) {
    tracing::warn!(mailbox = %ctx.mailbox.id, folder = %f.folder, gaps = f.missing,
        backfilled = f.missing_backfilled, "census: messages on the server were never processed");
    crate::alerts::raise(
        &engine.store,
        ctx,
        AlertScope::Mailbox,
        AlertSeverity::Warning,
        Some(format!("census/{}", f.folder)),
        alert_message(&f.folder, f.missing, f.missing_backfilled),
        "Nothing to do for the messages back-filled: they went through the usual decisions now. \
         If gaps recur, look at the mail server's and mailbridge's logs around this mailbox's runs",
        false,
    )
    .await;
}
