//! The scheduler: every tick (or when woken), claim the mailboxes with due work
//! by lease, run their workloads within each profile's connection cap, record
//! the outcome and the next run time, and give the lease back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use mailbridge_domain::error_model::ErrorClass;
use mailbridge_domain::schedule::next_poll;
use mailbridge_store::{DueWork, Workload};
use tokio::sync::{Semaphore, watch};

use crate::context::MailboxContext;
use crate::metrics::{RunOutcome, Workload as Measured};
use crate::{Engine, failures, incoming, outgoing};

/// Per-profile connection caps, created on first sight and resized when the
/// profile's setting changes.
#[derive(Default)]
struct Caps {
    by_profile: Mutex<HashMap<String, (usize, Arc<Semaphore>)>>,
}

impl Caps {
    fn get(&self, profile: &str, max: usize) -> Arc<Semaphore> {
        let mut map = self.by_profile.lock().expect("caps lock");
        let entry = map
            .entry(profile.to_owned())
            .or_insert_with(|| (max, Arc::new(Semaphore::new(max))));
        if entry.0 != max {
            *entry = (max, Arc::new(Semaphore::new(max)));
        }
        entry.1.clone()
    }
}

/// How soon a failed lease renewal is tried again.
pub(crate) const RENEW_RETRY: Duration = Duration::from_secs(1);

pub(crate) fn chrono(d: Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::minutes(1))
}

pub async fn run(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let caps = Arc::new(Caps::default());
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut rebalanced: Option<std::time::Instant> = None;
    loop {
        // Hold this node's share of the mailboxes, then run those with work due.
        // At most once per tick: wake-ups (push, queued emails) come far more often.
        if rebalanced.is_none_or(|t| t.elapsed() >= engine.config.tick) {
            crate::cluster::rebalance_now(&engine).await;
            rebalanced = Some(std::time::Instant::now());
        }
        let now = Utc::now();
        let node = engine.config.node_id.as_str();
        // ACT work is claimed on its own and merged with the email work of the
        // same mailbox: one lease, one run.
        let act_due = engine
            .store
            .due_act_mailboxes(node, now, engine.config.claim_batch)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "scheduler: could not read due ACT work; retrying");
                Vec::new()
            });
        match engine
            .store
            .due_mailboxes(node, now, engine.config.claim_batch)
            .await
        {
            Ok(mut due) => {
                let act: HashSet<String> = act_due.iter().map(|w| w.mailbox_id.clone()).collect();
                for w in act_due {
                    if !due.iter().any(|d| d.mailbox_id == w.mailbox_id) {
                        due.push(w);
                    }
                }
                for work in due {
                    let act_due = act.contains(&work.mailbox_id);
                    if running
                        .lock()
                        .expect("running lock")
                        .contains(&work.mailbox_id)
                    {
                        continue;
                    }
                    let until = now + chrono(engine.config.lease);
                    match engine
                        .store
                        .acquire_lease(&work.mailbox_id, &engine.config.node_id, now, until)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not take a lease");
                            continue;
                        }
                    }
                    running
                        .lock()
                        .expect("running lock")
                        .insert(work.mailbox_id.clone());
                    let (e, c, r) = (engine.clone(), caps.clone(), running.clone());
                    tasks.spawn(async move {
                        let id = work.mailbox_id.clone();
                        run_mailbox(&e, &c, work, act_due).await;
                        if let Err(err) = e.store.release_lease(&id, &e.config.node_id).await {
                            tracing::warn!(mailbox = %id, error = %err, "could not release a lease; it will expire");
                        }
                        r.lock().expect("running lock").remove(&id);
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduler: could not read due work; retrying"),
        }
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = engine.wake.notified() => {}
            _ = tokio::time::sleep(engine.config.tick) => {}
        }
    }
    // Let the runs in flight finish (each is bounded by network timeouts).
    while tasks.join_next().await.is_some() {}
}

/// Runs the due workloads of one leased mailbox, renewing the lease meanwhile.
async fn run_mailbox(engine: &Engine, caps: &Caps, work: DueWork, act_due: bool) {
    let ctx = match MailboxContext::load(&engine.store, &work.org_id, &work.mailbox_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(mailbox = %work.mailbox_id, error = %e.message, "could not load the mailbox");
            return;
        }
    };
    if !ctx.may_process() {
        // Approval was withdrawn after the mailbox was found due.
        return;
    }
    let max = usize::try_from(ctx.profile.settings.max_concurrent_connections)
        .unwrap_or(1)
        .max(1);
    let cap = caps.get(&ctx.profile.id, max);
    let renew = async {
        let every = engine.config.lease / 3;
        let mut wait = every;
        loop {
            tokio::time::sleep(wait).await;
            let until = Utc::now() + chrono(engine.config.lease);
            match engine
                .store
                .renew_lease(&work.mailbox_id, &engine.config.node_id, until)
                .await
            {
                Ok(true) => wait = every,
                Ok(false) => {
                    tracing::warn!(mailbox = %work.mailbox_id, "lease lost; stopping this run");
                    return;
                }
                // A database outage: try again soon, not a third of a lease later,
                // so that the lease does not run out while the database is back.
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew a lease; retrying");
                    wait = RENEW_RETRY.min(every);
                }
            }
        }
    };
    let body = async {
        let mut ctx = ctx;
        // Autodiscover, when the profile says so, before anything connects.
        if let Err(e) = ctx.discover(&engine.store, &engine.config, false).await {
            if act_due {
                // ACT signs in with the mailbox's IMAP credentials, which need it too.
                crate::act::failed(engine, &ctx, &e).await;
            }
            match e.class {
                ErrorClass::Permanent => failures::location_unknown(engine, &ctx, &e).await,
                ErrorClass::Transient { .. } => {
                    for (due, w) in [
                        (work.incoming_due, Workload::Incoming),
                        (work.outgoing_due, Workload::Outgoing),
                    ] {
                        if due {
                            failures::workload_failed(engine, &ctx, w, &e).await;
                        }
                    }
                }
            }
            return;
        }
        let Ok(_permit) = cap.acquire().await else {
            return;
        };
        if work.incoming_due {
            run_incoming(engine, &ctx).await;
        }
        if work.outgoing_due {
            run_outgoing(engine, &ctx).await;
        }
        if act_due {
            crate::act::run_scheduled(engine, &ctx).await;
        }
    };
    tokio::select! {
        _ = body => {}
        _ = renew => {}
    }
}

async fn run_incoming(engine: &Engine, ctx: &MailboxContext) {
    let started = std::time::Instant::now();
    let started_at = Utc::now();
    let result = if crate::graph::uses_graph(ctx) {
        crate::graph::incoming::run(engine, ctx).await
    } else if crate::ews::uses_ews(ctx) {
        crate::ews::incoming::run(engine, ctx).await
    } else {
        incoming::run(engine, ctx).await
    };
    let outcome = RunOutcome::of(&result);
    engine
        .metrics
        .run_finished(Measured::Incoming, outcome, started.elapsed());
    match result {
        Ok(report) => {
            let idle_runs = engine.store.idle_runs(&ctx.mailbox.id).await.unwrap_or(0);
            let idle = report.processed == 0;
            let runs = if idle { idle_runs + 1 } else { 0 };
            let wait = next_poll(
                &engine.config.timing,
                ctx.profile.settings.min_polling_interval_minutes,
                u32::try_from(runs).unwrap_or(16),
            );
            let next = Utc::now() + chrono(wait);
            if let Err(e) = engine
                .store
                .workload_succeeded(&ctx.mailbox.id, Workload::Incoming, started_at, next, idle)
                .await
            {
                tracing::warn!(error = %e, "could not record a successful run");
            }
            // Every folder was read to the end: the census, when due, compares it
            // with the server's set and back-fills gaps, still under the lease.
            crate::census::run_if_due(engine, ctx, started_at).await;
            tracing::debug!(mailbox = %ctx.mailbox.id, processed = report.processed, tracked = report.tracked,
                ms = started.elapsed().as_millis() as u64, "incoming run");
        }
        Err(e) => failures::workload_failed(engine, ctx, Workload::Incoming, &e).await,
    }
}

async fn run_outgoing(engine: &Engine, ctx: &MailboxContext) {
    let started = std::time::Instant::now();
    let started_at = Utc::now();
    let result = if crate::graph::uses_graph(ctx) {
        crate::graph::outgoing::run(engine, ctx).await
    } else if crate::ews::uses_ews(ctx) {
        crate::ews::outgoing::run(engine, ctx).await
    } else {
        outgoing::run(engine, ctx).await
    };
    let outcome = RunOutcome::of(&result);
    engine
        .metrics
        .run_finished(Measured::Outgoing, outcome, started.elapsed());
    match result {
        Ok(sent) => {
            let next = Utc::now();
            if let Err(e) = engine
                .store
                .workload_succeeded(
                    &ctx.mailbox.id,
                    Workload::Outgoing,
                    started_at,
                    next,
                    sent == 0,
                )
                .await
            {
                tracing::warn!(error = %e, "could not record a successful run");
            }
        }
        Err(e) => failures::workload_failed(engine, ctx, Workload::Outgoing, &e).await,
    }
}

/// Claims and runs queued jobs, one at a time per node.
pub async fn run_jobs(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match engine.store.claim_job(&engine.config.node_id).await {
            Ok(Some(job)) => {
                tracing::info!(job = %job.id, kind = %job.kind, items = job.items.len(), "job started");
                crate::test_enable::run_job(&engine, job).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not claim a job"),
        }
        // Jobs are started by people waiting for them: look often (the query is cheap).
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(engine.config.tick.min(std::time::Duration::from_millis(200))) => {}
        }
    }
}
