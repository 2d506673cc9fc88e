//! Test & Enable: for each chosen mailbox, test incoming (connect, authenticate,
//! open the Inbox), outgoing (send a real "Your mailbox is now connected"
//! message to itself) and ACT (the collections and the organization claim, over
//! CalDAV/CardDAV or Microsoft Graph); write the three statuses and the test time, enable
//! what passed, and alert: the owner on success, the owner and the profile's
//! owner on failure.

use futures::StreamExt as _;
use mailbridge_connectors::{SmtpSession, imap_test};
use mailbridge_domain::error_model::SyncError;
use mailbridge_domain::job::Job;
use mailbridge_domain::{
    AlertScope, AlertSeverity, ApprovalStatus, DeliveryMethod, OwnerType, WorkloadStatus,
};

use crate::Engine;
use crate::context::MailboxContext;
use crate::metrics::{Protocol, RunOutcome, Workload};

/// The subject of the test message, as Dynamics administrators know it.
pub const TEST_SUBJECT: &str = "Your mailbox is now connected";

/// Mailboxes of one job tested at the same time. Each test holds one IMAP and at
/// most one SMTP connection, so this stays under the default connection cap of a
/// profile (10) while a job of thousands of mailboxes ends in minutes, not hours.
pub const CONCURRENT_TESTS: usize = 8;

/// Runs one claimed job to its end.
pub async fn run_job(engine: &Engine, job: Job) {
    futures::stream::iter(&job.items)
        .for_each_concurrent(CONCURRENT_TESTS, |item| async {
            let started = std::time::Instant::now();
            let (passed, statuses, message) =
                test_mailbox(engine, &job.org_id, &item.mailbox_id).await;
            // A failed test leaves the mailbox disabled until it is tested again.
            let outcome = match passed {
                true => RunOutcome::Succeeded,
                false => RunOutcome::FailedPermanent,
            };
            engine
                .metrics
                .run_finished(Workload::TestEnable, outcome, started.elapsed());
            let (i, o, a) = statuses;
            if let Err(e) = engine
                .store
                .finish_job_item(&job.id, &item.mailbox_id, passed, i, o, a, &message)
                .await
            {
                tracing::error!(job = %job.id, error = %e, "could not record a job item");
            }
            if passed {
                // Its first run is due now: do not wait for the scheduler's tick.
                engine.wake.notify_one();
            }
        })
        .await;
    if let Err(e) = engine.store.finish_job(&job.id, None).await {
        tracing::error!(job = %job.id, error = %e, "could not finish a job");
    }
}

type Statuses = (WorkloadStatus, WorkloadStatus, WorkloadStatus);

async fn test_mailbox(engine: &Engine, org_id: &str, mailbox_id: &str) -> (bool, Statuses, String) {
    let not_run = (
        WorkloadStatus::NotRun,
        WorkloadStatus::NotRun,
        WorkloadStatus::NotRun,
    );
    let mut ctx = match MailboxContext::load(&engine.store, org_id, mailbox_id).await {
        Ok(c) => c,
        Err(e) => {
            if let Ok(m) = engine.store.get_mailbox(org_id, mailbox_id).await {
                let _ = engine
                    .store
                    .record_test_results(
                        &m.id,
                        WorkloadStatus::Failure,
                        WorkloadStatus::Failure,
                        WorkloadStatus::NotRun,
                        Some(&e.message),
                        Some(&e.message),
                    )
                    .await;
            }
            return (false, not_run, describe(&e));
        }
    };
    let m = &ctx.mailbox;
    let approval_required = match m.owner_type {
        OwnerType::User => ctx.settings.process_email_for_approved_users_only,
        OwnerType::Queue => ctx.settings.process_email_for_approved_queues_only,
    };
    let unapproved =
        (approval_required && m.approval_status != ApprovalStatus::Approved).then(|| {
            format!(
                "the email address {} is not approved; an approver must approve it first",
                m.email_address.as_deref().unwrap_or("(none)")
            )
        });
    if unapproved.is_none()
        && let Err(e) = ctx.discover(&engine.store, &engine.config, true).await
    {
        return location_unknown(engine, &ctx, &e).await;
    }
    let m = &ctx.mailbox;
    let mut notes = Vec::new();
    let mut errors: (Option<String>, Option<String>) = (None, None);
    let mut act_error: Option<String> = None;
    let incoming = if m.incoming_method != DeliveryMethod::ServerSideSync {
        WorkloadStatus::NotRun
    } else if let Some(why) = &unapproved {
        notes.push(format!("incoming: {why}"));
        errors.0 = Some(why.clone());
        WorkloadStatus::Failure
    } else {
        let result = if crate::graph::uses_graph(&ctx) {
            crate::graph::test_enable::test_incoming(engine, &ctx).await
        } else if crate::ews::uses_ews(&ctx) {
            crate::ews::test_enable::test_incoming(engine, &ctx).await
        } else {
            test_incoming(engine, &ctx).await
        };
        match result {
            Ok(()) => WorkloadStatus::Success,
            Err(e) => {
                notes.push(format!("incoming: {}", describe(&e)));
                errors.0 = Some(describe(&e));
                WorkloadStatus::Failure
            }
        }
    };
    let outgoing = if m.outgoing_method != DeliveryMethod::ServerSideSync {
        WorkloadStatus::NotRun
    } else if let Some(why) = &unapproved {
        notes.push(format!("outgoing: {why}"));
        errors.1 = Some(why.clone());
        WorkloadStatus::Failure
    } else {
        let result = if crate::graph::uses_graph(&ctx) {
            crate::graph::test_enable::test_outgoing(engine, &ctx).await
        } else if crate::ews::uses_ews(&ctx) {
            crate::ews::test_enable::test_outgoing(engine, &ctx).await
        } else {
            test_outgoing(engine, &ctx).await
        };
        match result {
            Ok(()) => WorkloadStatus::Success,
            Err(e) => {
                notes.push(format!("outgoing: {}", describe(&e)));
                errors.1 = Some(describe(&e));
                WorkloadStatus::Failure
            }
        }
    };
    let act = if m.act_method == DeliveryMethod::ServerSideSync
        && (crate::graph::uses_graph(&ctx)
            || crate::ews::uses_ews(&ctx)
            || ctx.profile.settings.dav_location.is_some())
    {
        match crate::act::test(engine, &ctx).await {
            Ok(_) => WorkloadStatus::Success,
            Err(e) => {
                notes.push(format!(
                    "appointments, contacts and tasks: {}",
                    describe(&e)
                ));
                act_error = Some(describe(&e));
                WorkloadStatus::Failure
            }
        }
    } else if m.act_method == DeliveryMethod::ServerSideSync {
        notes.push("appointments, contacts and tasks: not available for IMAP/SMTP profiles yet (they need a CalDAV/CardDAV location)".to_owned());
        WorkloadStatus::Failure
    } else {
        WorkloadStatus::NotRun
    };
    if let Err(e) = engine
        .store
        .record_test_results(
            &m.id,
            incoming,
            outgoing,
            act,
            errors.0.as_deref(),
            errors.1.as_deref(),
        )
        .await
    {
        tracing::error!(mailbox = %m.id, error = %e, "could not record test results");
    }
    if act != WorkloadStatus::NotRun
        && let Err(e) = engine.store.act_tested(&m.id, act_error.as_deref()).await
    {
        tracing::error!(mailbox = %m.id, error = %e, "could not record the ACT test");
    }
    let passed = [incoming, outgoing, act]
        .iter()
        .all(|s| *s != WorkloadStatus::Failure);
    let message = if passed {
        format!("incoming {incoming}, outgoing {outgoing}, ACT {act}")
    } else {
        notes.join("; ")
    };
    if passed {
        crate::alerts::raise(
            &engine.store,
            &ctx,
            AlertScope::Mailbox,
            AlertSeverity::Information,
            None,
            format!("Mailbox {} was tested and enabled: {message}", m.name),
            "Nothing to do",
            false,
        )
        .await;
    } else {
        crate::alerts::raise(
            &engine.store,
            &ctx,
            AlertScope::Mailbox,
            AlertSeverity::Error,
            None,
            format!("Test & Enable failed for mailbox {}: {message}", m.name),
            "Fix the cause named above, then run Test & Enable again",
            true,
        )
        .await;
    }
    (passed, (incoming, outgoing, act), message)
}

/// Autodiscover found nothing: the directions that synchronize fail with its
/// error, and the "mailbox location could not be determined" alert is raised.
async fn location_unknown(
    engine: &Engine,
    ctx: &MailboxContext,
    e: &SyncError,
) -> (bool, Statuses, String) {
    let m = &ctx.mailbox;
    let status = |method| match method {
        DeliveryMethod::ServerSideSync => WorkloadStatus::Failure,
        _ => WorkloadStatus::NotRun,
    };
    let (incoming, outgoing) = (status(m.incoming_method), status(m.outgoing_method));
    let text = describe(e);
    let error = |s| (s == WorkloadStatus::Failure).then_some(text.as_str());
    if let Err(err) = engine
        .store
        .record_test_results(
            &m.id,
            incoming,
            outgoing,
            WorkloadStatus::NotRun,
            error(incoming),
            error(outgoing),
        )
        .await
    {
        tracing::error!(mailbox = %m.id, error = %err, "could not record test results");
    }
    crate::failures::alert_location_unknown(&engine.store, ctx, e).await;
    (false, (incoming, outgoing, WorkloadStatus::NotRun), text)
}

fn describe(e: &SyncError) -> String {
    match &e.fix {
        Some(fix) => format!("{} ({fix})", e.message),
        None => e.message.clone(),
    }
}

async fn test_incoming(engine: &Engine, ctx: &MailboxContext) -> Result<(), SyncError> {
    let cfg = ctx.imap(&engine.store, &engine.config).await?;
    let (steps, result) = imap_test(&cfg).await;
    // The probe opens and closes its own connection: count it once it got in.
    if steps.iter().any(|s| s.name == "authenticate" && s.passed) {
        drop(
            engine
                .metrics
                .connection_opened(Protocol::Imap, Workload::TestEnable),
        );
    }
    result
}

async fn test_outgoing(engine: &Engine, ctx: &MailboxContext) -> Result<(), SyncError> {
    let cfg = ctx.smtp(&engine.store, &engine.config).await?;
    let address = ctx.address()?;
    let message = mail_builder::MessageBuilder::new()
        .from((ctx.mailbox.name.clone(), address.clone()))
        .to(address.clone())
        .subject(TEST_SUBJECT)
        .message_id(format!(
            "{}@mailbridge.test-and-enable",
            uuid::Uuid::now_v7().simple()
        ))
        .text_body("mailbridge can now send email from this mailbox. You can delete this message.")
        .write_to_vec()
        .unwrap_or_default();
    let mut session = SmtpSession::connect(&cfg).await?;
    let _open = engine
        .metrics
        .connection_opened(Protocol::Smtp, Workload::TestEnable);
    let result = session
        .send(&address, std::slice::from_ref(&address), &message)
        .await;
    session.quit().await;
    result
}
