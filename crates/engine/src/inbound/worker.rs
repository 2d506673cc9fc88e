//! The worker that runs received messages (`inbound_messages`, written by the
//! listener before its 250) through the same batch pipeline as synchronized
//! mail: each router mailbox is a mailbox whose only folder is `router`, whose
//! UIDs are the messages' sequence numbers under one constant UIDVALIDITY. So the
//! decisions, one email per Message-ID, correlation, alerts, metrics and webhooks
//! are those of server-side synchronization.
//!
//! Exactly once: a claimed message is marked processed only after its decision
//! is committed; a crash in between leaves the claim to expire, and the next
//! claim finds the decision and only marks the message processed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mailbridge_connectors::FetchedMessage;
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::inbound::Tag;
use mailbridge_domain::ingest::FolderKind;
use mailbridge_domain::{AlertScope, AlertSeverity, RegardingType};
use mailbridge_store::{HELD_PREFIX, InboundMessage, StoreError, Workload};
use tokio::sync::{Notify, watch};

use crate::Engine;
use crate::batch::{self, FolderRef};
use crate::context::{MailboxContext, store_error};

/// The folder name of pushed mail in decisions and emails' folder links.
pub const ROUTER_FOLDER: &str = "router";
/// Pushed mail has one numbering per mailbox that never restarts.
pub const ROUTER_UIDVALIDITY: u32 = 1;

/// How the worker claims and paces its work.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claim lasts; a crashed node's claims are taken again after it.
    pub lease: Duration,
    /// Messages claimed at once.
    pub batch: i64,
    /// How often the worker looks for messages when nothing woke it.
    pub idle_poll: Duration,
    /// When a message that could not be created is tried again.
    pub retry_after: Duration,
    /// When the messages of a mailbox that may not process mail (not approved)
    /// are looked at again.
    pub hold_recheck: Duration,
    /// When messages are taken again after the store (or the mailbox's settings)
    /// failed while they were processed.
    pub store_retry: Duration,
    /// How long a processed message's raw copy is kept (failed ones are kept
    /// until retried).
    pub retention: Duration,
    /// How often processed messages older than `retention` are deleted.
    pub purge_every: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            lease: Duration::from_secs(120),
            batch: 200,
            idle_poll: Duration::from_secs(2),
            retry_after: Duration::from_secs(60),
            hold_recheck: Duration::from_secs(60),
            store_retry: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 24 * 3600),
            purge_every: Duration::from_secs(600),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub claimed: usize,
    pub processed: usize,
    pub held: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// The worker's memory between passes.
#[derive(Debug, Default)]
pub struct Worker {
    /// Mailboxes whose owners were told that mail is held for approval (once
    /// each, until the mailbox processes mail again).
    held_alerted: HashSet<String>,
}

/// Runs passes until `shutdown`: at once when `wake` is notified (the listener
/// stored a message), else every `idle_poll`.
pub async fn run(
    engine: Arc<Engine>,
    config: WorkerConfig,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut worker = Worker::default();
    let mut purged_at: Option<std::time::Instant> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if purged_at.is_none_or(|t| t.elapsed() >= config.purge_every) {
            purge(&engine, &config).await;
            purged_at = Some(std::time::Instant::now());
        }
        let busy = match worker.pass(&engine, &config).await {
            Ok(r) => r.claimed > 0,
            Err(e) => {
                tracing::warn!(error = %e.message, "inbound worker: claiming received messages failed");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(config.idle_poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Deletes processed messages past their retention, a thousand at a time (at
/// most a hundred thousand per call, so a backlog does not hold the worker).
pub async fn purge(engine: &Engine, config: &WorkerConfig) -> u64 {
    const CHUNK: i64 = 1000;
    let before = Utc::now() - chrono_duration(config.retention);
    let mut total = 0;
    for _ in 0..100 {
        match engine
            .store
            .purge_processed_inbound_messages(before, CHUNK)
            .await
        {
            Ok(n) => {
                total += n;
                if n < CHUNK as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "inbound worker: deleting processed messages failed; tried again later");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(
            deleted = total,
            "inbound worker: processed messages past their retention deleted"
        );
    }
    total
}

impl Worker {
    /// Claims a batch of received messages and processes it, mailbox by mailbox.
    pub async fn pass(
        &mut self,
        engine: &Engine,
        config: &WorkerConfig,
    ) -> Result<PassReport, SyncError> {
        let node = engine.config.node_id.as_str();
        let claimed = engine
            .store
            .claim_inbound_messages(node, config.lease, config.batch)
            .await
            .map_err(store_error)?;
        let mut report = PassReport {
            claimed: claimed.len(),
            ..PassReport::default()
        };
        let mut by_mailbox: BTreeMap<(String, String), Vec<InboundMessage>> = BTreeMap::new();
        for m in claimed {
            by_mailbox
                .entry((m.org_id.clone(), m.mailbox_id.clone()))
                .or_default()
                .push(m);
        }
        for ((org, mailbox), mut messages) in by_mailbox {
            messages.sort_by_key(|m| m.seq);
            let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
            let result = self
                .mailbox(engine, config, &org, &mailbox, messages, &mut report)
                .await;
            if let Err(e) = result {
                // The store or the mailbox's settings failed: the messages wait,
                // and are taken again after a short while.
                tracing::warn!(mailbox, error = %e.message, "inbound worker: received messages kept for later");
                let until = Utc::now() + chrono_duration(config.store_retry);
                let _ = engine
                    .store
                    .defer_inbound_messages(&ids, node, until, &e.message)
                    .await;
            }
        }
        Ok(report)
    }

    /// One mailbox's claimed messages, in sequence order.
    async fn mailbox(
        &mut self,
        engine: &Engine,
        config: &WorkerConfig,
        org: &str,
        mailbox: &str,
        messages: Vec<InboundMessage>,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        let store = &engine.store;
        let node = engine.config.node_id.as_str();
        let ctx = match MailboxContext::load_router(store, org, mailbox).await {
            Ok(ctx) => ctx,
            Err(e) if mailbox_gone(store, org, mailbox).await => {
                // Deleted after the mail was accepted: nothing can own it now;
                // the message stays in the store, failed, with the reason.
                let reason = format!(
                    "the mailbox was deleted before the message was processed ({})",
                    e.message
                );
                for m in &messages {
                    let _ = store
                        .release_inbound_message(&m.id, node, &reason, true)
                        .await;
                }
                report.failed += messages.len();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !ctx.may_process() {
            self.hold(engine, config, &ctx, &messages).await?;
            report.held += messages.len();
            return Ok(());
        }
        self.held_alerted.remove(mailbox);
        let started = Utc::now();
        let mut kinds = Kinds::default();
        let mut run: Vec<InboundMessage> = Vec::new();
        let mut run_kind: Option<FolderKind> = None;
        for m in messages {
            let kind = kinds.of(engine, org, m.tag.as_deref()).await?;
            if run_kind.as_ref().is_some_and(|k| *k != kind) {
                let k = run_kind.take().expect("a run has a kind");
                process_run(engine, config, &ctx, &k, std::mem::take(&mut run), report).await?;
            }
            run_kind = Some(kind);
            run.push(m);
        }
        if let Some(k) = run_kind {
            process_run(engine, config, &ctx, &k, run, report).await?;
        }
        // The mailbox's incoming workload is healthy, as after a synchronization
        // run: Monitoring shows the last success, and a change of status is
        // reported to webhooks. The scheduler never runs a router mailbox (it
        // looks only at server-side synchronization), so the next run time is moot.
        store
            .workload_succeeded(mailbox, Workload::Incoming, started, started, false)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// A mailbox that may not process mail yet keeps its messages; its owner is
    /// told once.
    async fn hold(
        &mut self,
        engine: &Engine,
        config: &WorkerConfig,
        ctx: &MailboxContext,
        messages: &[InboundMessage],
    ) -> Result<(), SyncError> {
        let reason = format!(
            "{HELD_PREFIX} the mailbox is not approved, and its organization processes email only for approved mailboxes"
        );
        let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
        let until = Utc::now() + chrono_duration(config.hold_recheck);
        engine
            .store
            .defer_inbound_messages(&ids, &engine.config.node_id, until, &reason)
            .await
            .map_err(store_error)?;
        if self.held_alerted.insert(ctx.mailbox.id.clone()) {
            crate::alerts::raise(
                &engine.store,
                ctx,
                AlertScope::Mailbox,
                AlertSeverity::Warning,
                None,
                format!(
                    "Email delivered to {} is held: the mailbox is not approved",
                    ctx.mailbox
                        .email_address
                        .as_deref()
                        .unwrap_or("the mailbox")
                ),
                "Approve the mailbox's email address; the held messages are then processed",
                false,
            )
            .await;
        }
        Ok(())
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(60))
}

async fn mailbox_gone(store: &mailbridge_store::Store, org: &str, mailbox: &str) -> bool {
    matches!(
        store.get_mailbox(org, mailbox).await,
        Err(StoreError::NotFound)
    )
}

/// The folder kind a plus-address tag gives its messages: tracked to the record
/// it names when that record exists, else the Inbox (the owner's filter
/// decides). Looked up once per tag and pass.
#[derive(Default)]
struct Kinds {
    known: BTreeMap<String, FolderKind>,
}

impl Kinds {
    async fn of(
        &mut self,
        engine: &Engine,
        org: &str,
        tag: Option<&str>,
    ) -> Result<FolderKind, SyncError> {
        let Some(raw) = tag else {
            return Ok(FolderKind::Inbox);
        };
        if let Some(k) = self.known.get(raw) {
            return Ok(k.clone());
        }
        let tag = Tag::parse(raw);
        let candidates: Vec<RegardingType> = match (tag.regarding_type, &tag.regarding_id) {
            (_, None) => Vec::new(),
            (Some(t), Some(_)) => vec![t],
            (None, Some(_)) => vec![
                RegardingType::Contact,
                RegardingType::Account,
                RegardingType::Lead,
                RegardingType::Email,
            ],
        };
        let mut kind = FolderKind::Inbox;
        if let Some(id) = &tag.regarding_id {
            for t in candidates {
                match engine.store.check_regarding_exists(org, t, id).await {
                    Ok(()) => {
                        kind = FolderKind::Tracked {
                            regarding_type: t,
                            regarding_id: id.clone(),
                        };
                        break;
                    }
                    Err(StoreError::Invalid(_)) => {}
                    Err(e) => return Err(store_error(e)),
                }
            }
            if kind == FolderKind::Inbox {
                tracing::warn!(
                    org,
                    tag = raw,
                    "the address tag names no existing record: the message is handled as the mailbox's Inbox mail"
                );
            }
        }
        self.known.insert(raw.to_owned(), kind.clone());
        Ok(kind)
    }
}

/// Messages of one mailbox and one folder kind, in sequence order, through the
/// batch pipeline; then each is marked processed, failed, or kept to retry.
async fn process_run(
    engine: &Engine,
    config: &WorkerConfig,
    ctx: &MailboxContext,
    kind: &FolderKind,
    messages: Vec<InboundMessage>,
    report: &mut PassReport,
) -> Result<(), SyncError> {
    let store = &engine.store;
    let node = engine.config.node_id.as_str();
    let folder = FolderRef {
        name: ROUTER_FOLDER,
        kind,
        uidvalidity: ROUTER_UIDVALIDITY,
    };
    let mut fetched = Vec::with_capacity(messages.len());
    let mut by_uid: BTreeMap<u32, InboundMessage> = BTreeMap::new();
    for mut m in messages {
        let Ok(uid) = u32::try_from(m.seq) else {
            let reason = "the mailbox's router sequence exceeded 2^32 messages";
            let _ = store
                .release_inbound_message(&m.id, node, reason, true)
                .await;
            report.failed += 1;
            continue;
        };
        fetched.push(FetchedMessage {
            uid,
            flags: Vec::new(),
            internal_date: Some(m.received_at),
            size: m.raw.len() as u32,
            // The bytes move to the pipeline: only the row's id is needed after.
            bytes: std::mem::take(&mut m.raw),
        });
        by_uid.insert(uid, m);
    }
    let Some(first) = fetched.first().map(|m| m.uid) else {
        return Ok(());
    };
    let parsed = batch::analyze(engine, ctx, folder, fetched).await?;
    let mut blocked = false;
    let done = batch::process(engine, ctx, folder, parsed, &mut blocked).await?;
    let decided = store
        .decided_uids(&ctx.mailbox.id, ROUTER_FOLDER, ROUTER_UIDVALIDITY, first)
        .await
        .map_err(store_error)?;
    for g in &done.given_up {
        // Nothing to move on a server: the message stays in the store, failed.
        let reason = format!(
            "given up after {} attempts: {}; the message is kept in the inbound store",
            g.attempts, g.reason
        );
        batch::record_given_up(engine, ctx, folder, g, &reason).await?;
        if let Some(m) = by_uid.remove(&g.uid) {
            store
                .release_inbound_message(&m.id, node, &reason, true)
                .await
                .map_err(store_error)?;
            report.failed += 1;
        }
    }
    let retry_at = Utc::now() + chrono_duration(config.retry_after);
    for (uid, m) in by_uid {
        if decided.contains(&uid) {
            store
                .complete_inbound_message(&m.id, node)
                .await
                .map_err(store_error)?;
            report.processed += 1;
        } else {
            let reason = "could not be created; it is tried again (see the mailbox's failed items)";
            store
                .defer_inbound_messages(&[m.id], node, retry_at, reason)
                .await
                .map_err(store_error)?;
            report.retrying += 1;
        }
    }
    Ok(())
}
