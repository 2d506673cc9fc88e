//! The ACT workload (appointments, contacts and tasks) of one mailbox: *plan, then
//! execute*. A run resolves the server side (CalDAV/CardDAV for `imap_smtp`
//! profiles with a `dav_location`, `dav.rs`; Microsoft Graph for `exchange_online`
//! profiles, `graph.rs`; EWS for `exchange_server` profiles, `ews.rs`), enforces the organization claim
//! (`claim.rs`), then, kind by kind, reads the server's changes since its sync
//! token and the owner's records, plans every item with the domain's pure planner
//! and executes the plan with version-guarded writes (`executor.rs`), recording
//! every decision in the ACT trail. docs/ACT-SYNC.md ("Executor") tells the rules.

mod claim;
pub mod dav;
pub mod dav_map;
pub mod ews;
pub mod ews_map;
mod executor;
pub mod graph;
mod health;
pub mod server;
pub mod tz;

use chrono::Utc;
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::schedule::next_poll;
use mailbridge_domain::{OwnerType, ServerType};

use crate::Engine;
use crate::context::{MailboxContext, config_error, store_error};
use crate::metrics::{RunOutcome, Workload};

pub use claim::CONFIGURED_WITH_ANOTHER_ORGANIZATION;
pub use dav::DavServer;
pub use ews::EwsServer;
pub use executor::ActReport;
pub use graph::GraphServer;
pub use server::ActServer;
pub use tz::ChronoTz;

/// The owner whose records the mailbox synchronizes: ACT is a user's.
fn owner(ctx: &MailboxContext) -> Result<&str, SyncError> {
    match ctx.mailbox.owner_type {
        OwnerType::User => Ok(&ctx.mailbox.owner_id),
        OwnerType::Queue => Err(config_error(
            "appointments, contacts and tasks are synchronized for users' mailboxes; a queue has none",
            "Set the queue mailbox's act_method to none",
        )),
    }
}

/// Why the mailbox's profile cannot synchronize ACT, if it cannot.
fn unsupported(ctx: &MailboxContext) -> Option<SyncError> {
    let server_type = ctx.profile.settings.server_type;
    let supported = matches!(
        server_type,
        ServerType::ImapSmtp | ServerType::ExchangeOnline | ServerType::ExchangeServer
    );
    (!supported).then(|| {
        config_error(
            format!("appointments, contacts and tasks are not synchronized for {server_type} profiles by this version"),
            "Set the mailbox's act_method to none until this version supports the profile's server type",
        )
    })
}

/// Test & Enable's ACT test: discover the user's collections and list them, and
/// check the organization claim. Creates and writes nothing.
///
/// # Errors
/// Why ACT cannot run.
pub async fn test(engine: &Engine, ctx: &MailboxContext) -> Result<usize, SyncError> {
    if let Some(e) = unsupported(ctx) {
        return Err(e);
    }
    owner(ctx)?;
    if crate::graph::uses_graph(ctx) {
        return graph::probe(engine, ctx).await;
    }
    if crate::ews::uses_ews(ctx) {
        return ews::probe(engine, ctx).await;
    }
    dav::probe(engine, ctx).await
}

/// One ACT run of the mailbox over CalDAV/CardDAV, Microsoft Graph or EWS.
///
/// # Errors
/// Mailbox-wide failures; item failures are in the trail and on the links.
pub async fn run(engine: &Engine, ctx: &MailboxContext) -> Result<ActReport, SyncError> {
    if let Some(e) = unsupported(ctx) {
        return Err(e);
    }
    owner(ctx)?;
    if crate::graph::uses_graph(ctx) {
        let server = GraphServer::connect(engine, ctx).await?;
        return run_with(engine, ctx, &server).await;
    }
    if crate::ews::uses_ews(ctx) {
        let server = EwsServer::connect(engine, ctx).await?;
        return run_with(engine, ctx, &server).await;
    }
    let server = DavServer::connect(engine, ctx).await?;
    run_with(engine, ctx, &server).await
}

/// One ACT run against any server side: the claim, then each kind's collection.
/// The change feed's position moves only when every kind completed.
///
/// # Errors
/// As [`run`].
pub async fn run_with<S: ActServer>(
    engine: &Engine,
    ctx: &MailboxContext,
    server: &S,
) -> Result<ActReport, SyncError> {
    let user = owner(ctx)?;
    let store = &engine.store;
    let (org, mailbox) = (&ctx.mailbox.org_id, &ctx.mailbox.id);
    let started = Utc::now();
    claim::enforce(server, org, &ctx.mailbox, started).await?;
    let filters = store.sync_filters(org, user).await.map_err(store_error)?;
    let filters_json = serde_json::to_string(&filters).unwrap_or_default();
    let state = store.act_run_state(mailbox).await.map_err(store_error)?;
    let since = state
        .act_synced_from
        .filter(|_| state.act_filters_json.as_deref() == Some(filters_json.as_str()));
    let settings = store
        .get_email_settings(org)
        .await
        .map_err(store_error)?
        .act_settings();
    let mut ex = executor::Executor {
        engine,
        ctx,
        server,
        user_id: user,
        filters: &filters,
        settings,
        since,
        now: started,
        report: ActReport::default(),
        decisions: Vec::new(),
    };
    for c in server.collections() {
        let result = ex.sync_kind(&c).await;
        // The trail of what was done, also when the run stops here.
        let decisions = std::mem::take(&mut ex.decisions);
        store
            .append_act_decisions(org, mailbox, &decisions)
            .await
            .map_err(store_error)?;
        result?;
    }
    store
        .set_act_run_state(mailbox, started, &filters_json)
        .await
        .map_err(store_error)?;
    Ok(ex.report)
}

/// Records a failed ACT run (retry, or disable and alert).
pub(crate) async fn failed(engine: &Engine, ctx: &MailboxContext, err: &SyncError) {
    health::act_failed(engine, ctx, err).await;
}

/// The scheduler's ACT run: measured, then its success or failure recorded.
pub(crate) async fn run_scheduled(engine: &Engine, ctx: &MailboxContext) {
    let started = std::time::Instant::now();
    let started_at = Utc::now();
    let result = run(engine, ctx).await;
    engine
        .metrics
        .run_finished(Workload::Act, RunOutcome::of(&result), started.elapsed());
    match result {
        Ok(report) => {
            let wait = next_poll(
                &engine.config.timing,
                ctx.profile.settings.min_polling_interval_minutes,
                0,
            );
            let next = Utc::now()
                + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(1));
            if let Err(e) = engine
                .store
                .act_succeeded(&ctx.mailbox.id, started_at, next)
                .await
            {
                tracing::warn!(error = %e, "could not record a successful ACT run");
            }
            tracing::debug!(mailbox = %ctx.mailbox.id, written = report.written, skipped = report.skipped,
                failed = report.failed, ms = started.elapsed().as_millis() as u64, "ACT run");
        }
        Err(e) => health::act_failed(engine, ctx, &e).await,
    }
}
