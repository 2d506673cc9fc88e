//! One fetched batch of new messages: analyzed, looked up, decided and written in
//! one transaction, without the IMAP session — so the next batch can be fetched
//! meanwhile. What needs the session (moving a given-up message to Undeliverable)
//! is handed back to be done after the batch, before its checkpoint moves.

use mailbridge_connectors::FetchedMessage;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::ingest::{FolderKind, TrackingTokenFormat};

use crate::Engine;
use crate::context::{MailboxContext, store_error};
use crate::metrics::{ItemOutcome, Workload};
use crate::pipeline::{self, ItemError};

/// The folder a batch belongs to.
#[derive(Debug, Clone, Copy)]
pub struct FolderRef<'a> {
    pub name: &'a str,
    pub kind: &'a FolderKind,
    pub uidvalidity: u32,
}

/// A message whose last attempt failed: still to be moved (when the profile says
/// so) and recorded as failed.
#[derive(Debug)]
pub struct GivenUp {
    pub uid: u32,
    pub message_id: Option<String>,
    pub subject: String,
    pub reason: String,
    pub attempts: i64,
}

/// What a processed batch leaves to do.
#[derive(Debug, Default)]
pub struct BatchDone {
    pub processed: usize,
    pub tracked: usize,
    /// In UID order; each holds the checkpoint until it is settled.
    pub given_up: Vec<GivenUp>,
    /// Where the checkpoint may move once `given_up` is settled.
    pub advance_to: Option<u32>,
    /// The UIDs whose decisions this batch committed (a forward mailbox may
    /// delete them from the server).
    pub written: Vec<u32>,
}

impl BatchDone {
    /// A message needs nothing more: the checkpoint may pass it, unless an
    /// earlier one is retried.
    fn done_with(&mut self, uid: u32, blocked: bool) {
        if !blocked {
            self.advance_to = Some(uid);
        }
    }

    /// The checkpoint a write may carry: none past a message that is retried
    /// (`blocked`) or not yet settled.
    fn checkpoint(&self, uid: u32, blocked: bool) -> Option<u32> {
        (!blocked && self.given_up.is_empty()).then_some(uid)
    }
}

/// A fetched batch, parsed: each message with its analysis, `None` for those
/// decided before (a resumed run skips them).
pub struct Fetched {
    messages: Vec<FetchedMessage>,
    analyzed: Vec<Option<pipeline::Analyzed>>,
}

/// Parses the messages of a batch not decided before, on a blocking thread
/// (parsing is CPU work; the IMAP session and the store keep going meanwhile).
pub async fn analyze(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: FolderRef<'_>,
    messages: Vec<FetchedMessage>,
) -> Result<Fetched, SyncError> {
    let first = messages.first().map_or(0, |m| m.uid);
    let decided = engine
        .store
        .decided_uids(&ctx.mailbox.id, folder.name, folder.uidvalidity, first)
        .await
        .map_err(store_error)?;
    let format = TrackingTokenFormat::from_settings(&ctx.settings);
    let parse = move || {
        let analyzed = messages
            .iter()
            .map(|m| {
                (!decided.contains(&m.uid)).then(|| pipeline::analyze_with(format.as_ref(), m))
            })
            .collect();
        Fetched { messages, analyzed }
    };
    tokio::task::spawn_blocking(parse)
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(cancelled) => SyncError {
                class: ErrorClass::Transient { retry_after: None },
                scope: ErrorScope::Mailbox,
                message: format!("parsing a batch of messages was cancelled: {cancelled}"),
                fix: Some("none: the run is retried".to_owned()),
            },
        })
}

/// Decides and writes one parsed batch. `blocked` carries over between
/// batches: once a message fails and will be retried, the checkpoint stays
/// before it; later messages are still processed, and skipped on the retry by
/// their decision.
pub async fn process(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: FolderRef<'_>,
    batch: Fetched,
    blocked: &mut bool,
) -> Result<BatchDone, SyncError> {
    let store = &engine.store;
    let mut done = BatchDone::default();
    let Fetched {
        messages,
        mut analyzed,
    } = batch;
    // A forward mailbox's copies are attributed first: the attached original
    // may replace a copy's analysis, and the look-ups must be the original's.
    let forwarded = match ctx.mailbox.is_forward_mailbox {
        true => crate::forward::attribute_batch(engine, ctx, &messages, &mut analyzed).await?,
        false => Vec::new(),
    };
    let refs: Vec<&pipeline::Analyzed> = analyzed.iter().flatten().collect();
    let found = store
        .batch_lookups(&ctx.mailbox.org_id, &pipeline::keys(ctx, &refs))
        .await
        .map_err(store_error)?;
    let mut pending = pipeline::BatchState::default();
    let mut writes = Vec::with_capacity(messages.len());
    for (i, (msg, a)) in messages.iter().zip(analyzed.iter_mut()).enumerate() {
        let Some(a) = a.take() else {
            done.done_with(msg.uid, *blocked);
            continue;
        };
        done.processed += 1;
        let checkpoint = done.checkpoint(msg.uid, *blocked);
        let prepared = match forwarded.get(i).and_then(Option::as_ref) {
            Some(plan) => {
                crate::forward::prepare(
                    engine,
                    ctx,
                    plan,
                    folder,
                    msg,
                    a,
                    &found,
                    checkpoint,
                    &mut pending,
                )
                .await
            }
            None => {
                pipeline::prepare(
                    engine,
                    ctx,
                    folder.name,
                    folder.kind,
                    folder.uidvalidity,
                    msg,
                    a,
                    &found,
                    checkpoint,
                    &mut pending,
                )
                .await
            }
        };
        match prepared {
            Ok(write) => {
                done.done_with(msg.uid, *blocked);
                writes.push(write);
            }
            Err(ItemError::Sync(e)) => return Err(e),
            Err(ItemError::Item(reason)) => {
                match count_failure(engine, ctx, folder, msg, reason).await? {
                    Some(given_up) => {
                        engine
                            .metrics
                            .items(Workload::Incoming, ItemOutcome::Failed, 1);
                        done.given_up.push(given_up);
                        done.done_with(msg.uid, *blocked);
                    }
                    None => {
                        engine
                            .metrics
                            .items(Workload::Incoming, ItemOutcome::Retrying, 1);
                        *blocked = true;
                    }
                }
            }
        }
    }
    if !writes.is_empty() {
        let ids = store.ingest_batch(&writes).await.map_err(store_error)?;
        done.written = writes.iter().map(|w| w.uid).collect();
        done.tracked = writes
            .iter()
            .zip(&ids)
            .filter(|(w, id)| pipeline::created(w, id))
            .count();
        let m = &engine.metrics;
        m.items(Workload::Incoming, ItemOutcome::Tracked, done.tracked);
        m.items(
            Workload::Incoming,
            ItemOutcome::NotTracked,
            writes.len() - done.tracked,
        );
    }
    Ok(done)
}

/// Counts a failed attempt at a message; returns it as given up after the last
/// attempt, `None` when it will be retried.
async fn count_failure(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: FolderRef<'_>,
    msg: &FetchedMessage,
    reason: String,
) -> Result<Option<GivenUp>, SyncError> {
    let parsed = crate::parse::parse(&msg.bytes, Vec::new());
    let (message_id, subject) = (parsed.facts.message_id, parsed.facts.subject);
    let attempts = engine
        .store
        .record_item_failure(
            &ctx.mailbox.org_id,
            &ctx.mailbox.id,
            folder.name,
            folder.uidvalidity,
            msg.uid,
            message_id.as_deref(),
            Some(&subject),
            "retrying",
            &reason,
            true,
        )
        .await
        .map_err(store_error)?;
    if attempts < engine.config.max_item_attempts {
        tracing::warn!(mailbox = %ctx.mailbox.id, folder = folder.name, uid = msg.uid, attempts, reason, "email not created; will retry");
        return Ok(None);
    }
    Ok(Some(GivenUp {
        uid: msg.uid,
        message_id,
        subject,
        reason,
        attempts,
    }))
}

/// Records a message given up after its last attempt (`final_reason` says whether
/// it was moved to Undeliverable) and alerts the owner. The move itself is the
/// connector's; this part is the same for every connector.
pub async fn record_given_up(
    engine: &Engine,
    ctx: &MailboxContext,
    folder: FolderRef<'_>,
    g: &GivenUp,
    final_reason: &str,
) -> Result<(), SyncError> {
    let (name, uidvalidity) = (folder.name, folder.uidvalidity);
    engine
        .store
        .record_item_failure(
            &ctx.mailbox.org_id,
            &ctx.mailbox.id,
            name,
            uidvalidity,
            g.uid,
            g.message_id.as_deref(),
            Some(&g.subject),
            "failed",
            final_reason,
            false,
        )
        .await
        .map_err(store_error)?;
    crate::alerts::raise(
        &engine.store,
        ctx,
        mailbridge_domain::AlertScope::Item,
        mailbridge_domain::AlertSeverity::Warning,
        Some(format!("{name}/{uidvalidity}/{}", g.uid)),
        format!("An email could not be tracked: {final_reason} (subject: {})", g.subject),
        "Look at the message in the mailbox; fix the cause (for example the record its folder is tracked to), then move it back to be processed again",
        false,
    )
    .await;
    tracing::warn!(mailbox = %ctx.mailbox.id, folder = name, uid = g.uid, "email given up: {final_reason}");
    Ok(())
}
