//! Microsoft Graph change notifications for Exchange Online mailboxes: an
//! optional way to learn of new mail at once. When `graph_notification_url` is
//! set, each enabled `exchange_online` mailbox with incoming enabled keeps one
//! subscription on its Inbox (created when missing, renewed before it expires,
//! deleted when the mailbox stops syncing); a notification makes the mailbox's
//! incoming work due now, as IMAP IDLE and the mail-events endpoint do. Polling
//! stays the safety net: a subscription that cannot be made is recorded
//! (`graph_subscriptions.last_error`) and retried, never fatal.
//!
//! What to do is decided by [`plan`] (pure); [`run`] applies it, one node at a
//! time per subscription (the row's lease), and [`receive`] handles what Graph
//! posts to the endpoint (`/api/v1/graph/notifications/{org_id}`): the
//! `clientState` of each item is checked against the subscription's sealed
//! secret, and mismatches and unknown subscriptions are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures::StreamExt;
use mailbridge_connectors::graph::{
    GraphMailbox, LifecycleEvent, MAX_MESSAGE_SUBSCRIPTION_MINUTES, Notification, Subscription,
    parse_notifications, renewal_due,
};
use mailbridge_domain::error_model::{ErrorClass, SyncError};
use mailbridge_domain::secret::Secret;
use mailbridge_store::{GraphSubscriptionGranted, GraphSubscriptionRow, Store, StoreResult};
use tokio::sync::Notify;

use crate::Engine;
use crate::context::MailboxContext;

/// The folder each mailbox keeps a subscription on (Graph's well-known name).
pub const INBOX: &str = "inbox";

/// The path, under the public base URL, that Graph posts to for an organization.
pub const NOTIFICATION_PATH: &str = "/api/v1/graph/notifications";

/// QUIRK_SUBSCRIPTION_LIFETIME_LIMIT: Graph refuses an expiration beyond the
/// resource's current limit with a 400 that names the limit in minutes
/// ("Subscription expiration can only be N minutes in the future."); the request
/// is made again once with that limit.
const QUIRK_SUBSCRIPTION_LIFETIME_LIMIT: &str = "can only be ";

/// How long a permanently refused creation waits before it is tried again.
const PERMANENT_RETRY: Duration = Duration::from_secs(3600);

/// Subscription changes made at the same time.
const CONCURRENCY: usize = 8;

/// Wakes the subscription task before its next check (a lifecycle event came in).
/// One per process: a wake-up that reaches another engine only makes it check early.
static NUDGE: Notify = Notify::const_new();

/// Where Graph posts an organization's notifications and lifecycle events.
pub fn notification_url(base: &str, org_id: &str) -> String {
    format!("{}{NOTIFICATION_PATH}/{org_id}", base.trim_end_matches('/'))
}

/// What the planner needs besides its inputs.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Renew when less than this is left (capped at three quarters of the
    /// lifetime granted, so that a short lifetime is not renewed constantly).
    pub renew_margin: ChronoDuration,
}

/// One change to make to a (mailbox, folder)'s subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        org_id: String,
        mailbox_id: String,
        folder: String,
    },
    Renew {
        org_id: String,
        mailbox_id: String,
        folder: String,
        subscription_id: String,
    },
    /// The mailbox no longer wants notifications: end the subscription (if any)
    /// and drop the row.
    Delete {
        org_id: String,
        mailbox_id: String,
        folder: String,
        subscription_id: Option<String>,
    },
}

impl Action {
    fn key(&self) -> (&str, &str, &str) {
        match self {
            Action::Create {
                org_id,
                mailbox_id,
                folder,
            }
            | Action::Renew {
                org_id,
                mailbox_id,
                folder,
                ..
            }
            | Action::Delete {
                org_id,
                mailbox_id,
                folder,
                ..
            } => (org_id, mailbox_id, folder),
        }
    }
}

/// The margin that applies to a row: the policy's, at most three quarters of
/// the lifetime granted.
fn margin_for(row: &GraphSubscriptionRow, policy: &Policy) -> ChronoDuration {
    if row.lifetime_minutes <= 0 {
        return policy.renew_margin;
    }
    let granted = ChronoDuration::seconds(row.lifetime_minutes * 60);
    policy.renew_margin.min(granted * 3 / 4)
}

/// What to do with one stored row, given whether its mailbox and folder still
/// want a subscription.
pub fn decide(
    row: &GraphSubscriptionRow,
    wanted: bool,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Option<Action> {
    let (org_id, mailbox_id, folder) = (
        row.org_id.clone(),
        row.mailbox_id.clone(),
        row.folder.clone(),
    );
    if !wanted {
        return Some(Action::Delete {
            org_id,
            mailbox_id,
            folder,
            subscription_id: row.subscription_id.clone(),
        });
    }
    if row.retry_at.is_some_and(|t| t > now) {
        return None;
    }
    let create = Action::Create {
        org_id: org_id.clone(),
        mailbox_id: mailbox_id.clone(),
        folder: folder.clone(),
    };
    let (Some(id), Some(expires)) = (&row.subscription_id, row.expires_at) else {
        return Some(create);
    };
    if expires <= now {
        // Lapsed: Graph has dropped it; a new one replaces it.
        return Some(create);
    }
    (row.renew_requested || renewal_due(expires, now, margin_for(row, policy))).then(|| {
        Action::Renew {
            org_id,
            mailbox_id,
            folder,
            subscription_id: id.clone(),
        }
    })
}

/// What to create, renew and delete, given the (org, mailbox) pairs that want
/// notifications, the stored rows and now: one Inbox subscription per wanted
/// mailbox; rows of other mailboxes or folders are deleted.
pub fn plan(
    wanted: &[(String, String)],
    stored: &[GraphSubscriptionRow],
    now: DateTime<Utc>,
    policy: &Policy,
) -> Vec<Action> {
    let wanted: BTreeSet<(&str, &str)> = wanted
        .iter()
        .map(|(o, m)| (o.as_str(), m.as_str()))
        .collect();
    let mut have: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut actions = Vec::new();
    for row in stored {
        let key = (row.org_id.as_str(), row.mailbox_id.as_str());
        let wants = row.folder == INBOX && wanted.contains(&key);
        if wants {
            have.insert(key);
        }
        actions.extend(decide(row, wants, now, policy));
    }
    for (org_id, mailbox_id) in wanted.difference(&have) {
        actions.push(Action::Create {
            org_id: (*org_id).to_owned(),
            mailbox_id: (*mailbox_id).to_owned(),
            folder: INBOX.to_owned(),
        });
    }
    actions
}

/// Keeps the subscriptions in step until `shutdown`; does nothing when
/// notifications are off (no `graph_notification_url`).
pub async fn run(engine: Arc<Engine>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some(base) = engine.config.graph_notification_url.clone() else {
        return;
    };
    if !base.starts_with("https://") {
        tracing::warn!(url = %base, "graph_notification_url is not https://: Microsoft Graph posts only to public HTTPS URLs (fine for test servers)");
    }
    tracing::info!(url = %notification_url(&base, "{org_id}"), "Exchange Online change notifications on");
    while !*shutdown.borrow() {
        if let Err(e) = check(&engine, &base, Utc::now()).await {
            tracing::warn!(error = %e, "graph subscriptions: could not check");
        }
        tokio::select! {
            _ = tokio::time::sleep(engine.config.graph_subscription_check) => {}
            _ = NUDGE.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
}

fn policy(engine: &Engine) -> Policy {
    Policy {
        renew_margin: ChronoDuration::from_std(engine.config.graph_subscription_renew_margin)
            .unwrap_or(ChronoDuration::hours(12)),
    }
}

/// One round: plans and applies every change due at `now`.
async fn check(engine: &Engine, base: &str, now: DateTime<Utc>) -> StoreResult<()> {
    let wanted = engine.store.graph_notification_mailboxes().await?;
    let stored = engine.store.graph_subscriptions().await?;
    let actions = plan(&wanted, &stored, now, &policy(engine));
    futures::stream::iter(actions)
        .for_each_concurrent(CONCURRENCY, |a| async move {
            if let Err(e) = apply(engine, base, &a).await {
                let (org, mailbox, folder) = a.key();
                tracing::warn!(org = %org, mailbox = %mailbox, folder = %folder, error = %e, "graph subscription: store error");
            }
        })
        .await;
    Ok(())
}

/// Applies one planned action under the row's lease, deciding again on the row
/// as claimed (another node may have acted meanwhile).
async fn apply(engine: &Engine, base: &str, action: &Action) -> StoreResult<()> {
    let (org, mailbox, folder) = action.key();
    let node = &engine.config.node_id;
    let lease = ChronoDuration::from_std(engine.config.lease).unwrap_or(ChronoDuration::minutes(2))
        + ChronoDuration::from_std(engine.config.network_timeout)
            .unwrap_or(ChronoDuration::minutes(1));
    let wanted = !matches!(action, Action::Delete { .. });
    let Some(row) = engine
        .store
        .claim_graph_subscription(
            org,
            mailbox,
            folder,
            node,
            Utc::now() + lease,
            matches!(action, Action::Create { .. }),
        )
        .await?
    else {
        return Ok(());
    };
    match decide(&row, wanted, Utc::now(), &policy(engine)) {
        None => {
            engine
                .store
                .release_graph_subscription(org, mailbox, folder, node)
                .await
        }
        Some(Action::Create { .. }) => create(engine, base, &row).await,
        Some(Action::Renew {
            subscription_id, ..
        }) => renew(engine, &row, &subscription_id).await,
        Some(Action::Delete {
            subscription_id, ..
        }) => delete(engine, &row, subscription_id.as_deref()).await,
    }
}

async fn graph_mailbox(
    engine: &Engine,
    org: &str,
    mailbox: &str,
) -> Result<GraphMailbox, SyncError> {
    let ctx = MailboxContext::load(&engine.store, org, mailbox).await?;
    if !super::uses_graph(&ctx) {
        return Err(crate::context::config_error(
            "the mailbox's profile is not an Exchange Online profile",
            "nothing: change notifications are for Exchange Online mailboxes",
        ));
    }
    super::mailbox(engine, &ctx).await
}

/// A new `clientState`: 244 random bits as hex, within Graph's 128 characters.
fn new_client_state() -> Secret {
    Secret::new(format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// The limit a refusal names (QUIRK_SUBSCRIPTION_LIFETIME_LIMIT), in minutes.
fn lifetime_limit(e: &SyncError) -> Option<i64> {
    let (_, rest) = e.message.split_once(QUIRK_SUBSCRIPTION_LIFETIME_LIMIT)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    let minutes: i64 = digits.parse().ok()?;
    (after.starts_with(" minutes") && minutes > 0).then_some(minutes)
}

/// Calls `call` with `minutes` (at most 4,230), and once more with the limit
/// Graph names when it refuses that lifetime; returns the subscription and the
/// minutes granted.
async fn with_lifetime<F, Fut>(minutes: i64, mut call: F) -> Result<(Subscription, i64), SyncError>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<Subscription, SyncError>>,
{
    let minutes = minutes.clamp(1, MAX_MESSAGE_SUBSCRIPTION_MINUTES);
    match call(minutes).await {
        Ok(s) => Ok((s, minutes)),
        Err(e) => match lifetime_limit(&e) {
            Some(limit) if limit < minutes => call(limit).await.map(|s| (s, limit)),
            _ => Err(e),
        },
    }
}

fn retry_after(engine: &Engine, e: &SyncError) -> DateTime<Utc> {
    let wait = match e.class {
        ErrorClass::Permanent => PERMANENT_RETRY,
        ErrorClass::Transient { retry_after } => retry_after
            .unwrap_or(engine.config.timing.retry_delay)
            .max(engine.config.timing.retry_delay),
    };
    Utc::now() + ChronoDuration::from_std(wait).unwrap_or(ChronoDuration::hours(1))
}

async fn create(engine: &Engine, base: &str, row: &GraphSubscriptionRow) -> StoreResult<()> {
    let (org, mailbox, folder) = (&row.org_id, &row.mailbox_id, &row.folder);
    let node = &engine.config.node_id;
    let url = notification_url(base, org);
    let secret = new_client_state();
    let made = async {
        let gm = graph_mailbox(engine, org, mailbox).await?;
        with_lifetime(engine.config.graph_subscription_minutes, |m| {
            gm.subscribe(folder, &url, Some(&url), secret.expose(), m)
        })
        .await
    }
    .await;
    match made {
        Ok((s, minutes)) => {
            tracing::info!(org = %org, mailbox = %mailbox, folder = %folder, subscription = %s.id,
                expires = %s.expiration_date_time, "graph subscription created");
            let granted = GraphSubscriptionGranted {
                subscription_id: &s.id,
                expires_at: s.expiration_date_time,
                lifetime_minutes: minutes,
            };
            engine
                .store
                .graph_subscription_created(org, mailbox, folder, node, &granted, &secret)
                .await
        }
        Err(e) => {
            tracing::warn!(org = %org, mailbox = %mailbox, folder = %folder, error = %e.message,
                "graph subscription could not be created (polling continues)");
            engine
                .store
                .graph_subscription_failed(
                    org,
                    mailbox,
                    folder,
                    node,
                    &e.message,
                    retry_after(engine, &e),
                    true,
                )
                .await
        }
    }
}

async fn renew(engine: &Engine, row: &GraphSubscriptionRow, id: &str) -> StoreResult<()> {
    let (org, mailbox, folder) = (&row.org_id, &row.mailbox_id, &row.folder);
    let node = &engine.config.node_id;
    let asked = match row.lifetime_minutes {
        m if m > 0 => m.min(engine.config.graph_subscription_minutes),
        _ => engine.config.graph_subscription_minutes,
    };
    let renewed = async {
        let gm = graph_mailbox(engine, org, mailbox).await?;
        with_lifetime(asked, |m| gm.renew_subscription(id, m)).await
    }
    .await;
    match renewed {
        Ok((s, minutes)) => {
            tracing::debug!(org = %org, mailbox = %mailbox, subscription = %id,
                expires = %s.expiration_date_time, "graph subscription renewed");
            let granted = GraphSubscriptionGranted {
                subscription_id: id,
                expires_at: s.expiration_date_time,
                lifetime_minutes: minutes,
            };
            engine
                .store
                .graph_subscription_renewed(org, mailbox, folder, node, &granted)
                .await
        }
        Err(e) => {
            // A permanent refusal (the subscription is gone, 404) drops it: the
            // next round creates a new one at once.
            let gone = e.class == ErrorClass::Permanent;
            tracing::warn!(org = %org, mailbox = %mailbox, subscription = %id, error = %e.message, gone,
                "graph subscription could not be renewed (polling continues)");
            let at = if gone {
                Utc::now()
            } else {
                retry_after(engine, &e)
            };
            engine
                .store
                .graph_subscription_failed(org, mailbox, folder, node, &e.message, at, gone)
                .await?;
            if gone {
                NUDGE.notify_one();
            }
            Ok(())
        }
    }
}

async fn delete(engine: &Engine, row: &GraphSubscriptionRow, id: Option<&str>) -> StoreResult<()> {
    let (org, mailbox, folder) = (&row.org_id, &row.mailbox_id, &row.folder);
    if let Some(id) = id {
        let ended = async {
            let gm = graph_mailbox(engine, org, mailbox).await?;
            gm.delete_subscription(id).await
        }
        .await;
        // Either way the row goes: a subscription left behind lapses on its own,
        // and notifications for an unknown id are ignored.
        match ended {
            Ok(()) => {
                tracing::info!(org = %org, mailbox = %mailbox, subscription = %id, "graph subscription deleted");
            }
            Err(e) => {
                tracing::info!(org = %org, mailbox = %mailbox, subscription = %id, error = %e.message,
                    "graph subscription could not be deleted; it lapses on its own");
            }
        }
    }
    engine
        .store
        .delete_graph_subscription(org, mailbox, folder)
        .await
}

/// What a notification post did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// Mailboxes made due now.
    pub woken: Vec<String>,
    /// Items whose `clientState` did not match their subscription's (ignored).
    pub rejected: usize,
    /// Items naming a subscription this organization does not have (ignored).
    pub unknown: usize,
    /// Lifecycle events acted on.
    pub lifecycle: usize,
}

/// Handles a notification post to the organization's endpoint: each item is
/// checked against its subscription's `clientState`; new mail and `missed`
/// wake the mailbox, `reauthorizationRequired` flags the subscription for
/// renewal and `subscriptionRemoved` for creation (the subscription task is
/// woken). The caller wakes the scheduler when `woken` is not empty.
///
/// # Errors
/// The body is not a notification post (the words), or the store failed.
pub async fn receive(store: &Store, org_id: &str, body: &[u8]) -> Result<Received, String> {
    let items = parse_notifications(body, "")?;
    let mut by_subscription: BTreeMap<String, usize> = BTreeMap::new();
    for n in &items {
        *by_subscription
            .entry(subscription_of(n).to_owned())
            .or_default() += 1;
    }
    let mut out = Received::default();
    let mut wake: BTreeSet<String> = BTreeSet::new();
    let failed = |e: mailbridge_store::StoreError| format!("the store failed: {e}");
    for (id, count) in by_subscription {
        let known = match id.as_str() {
            "" => None,
            id => store
                .graph_subscription_for_notification(org_id, id)
                .await
                .map_err(failed)?,
        };
        let Some((mailbox, secret)) = known else {
            tracing::debug!(org = %org_id, subscription = %id, items = count, "graph notification for an unknown subscription: ignored");
            out.unknown += count;
            continue;
        };
        let checked = parse_notifications(body, secret.expose())?;
        for n in checked.iter().filter(|n| subscription_of(n) == id) {
            if !is_trusted(n) {
                out.rejected += 1;
                tracing::warn!(org = %org_id, subscription = %id, mailbox = %mailbox,
                    "graph notification with a clientState that does not match: ignored");
                store
                    .graph_notification_rejected(org_id, &id)
                    .await
                    .map_err(failed)?;
                continue;
            }
            match n {
                Notification::Changed { .. } => {
                    wake.insert(mailbox.clone());
                }
                Notification::Lifecycle { event, .. } => {
                    out.lifecycle += 1;
                    match event {
                        LifecycleEvent::ReauthorizationRequired => {
                            store
                                .request_graph_subscription_renewal(org_id, &id)
                                .await
                                .map_err(failed)?;
                            NUDGE.notify_one();
                        }
                        LifecycleEvent::SubscriptionRemoved => {
                            store
                                .graph_subscription_removed(org_id, &id)
                                .await
                                .map_err(failed)?;
                            NUDGE.notify_one();
                            // Mail may have come meanwhile.
                            wake.insert(mailbox.clone());
                        }
                        LifecycleEvent::Missed => {
                            wake.insert(mailbox.clone());
                        }
                        LifecycleEvent::Other(other) => {
                            tracing::debug!(org = %org_id, subscription = %id, event = %other, "graph lifecycle event ignored");
                        }
                    }
                    tracing::info!(org = %org_id, subscription = %id, mailbox = %mailbox, event = ?event, "graph lifecycle event");
                }
            }
        }
    }
    let now = Utc::now();
    for mailbox in wake {
        store.wake_incoming(&mailbox, now).await.map_err(failed)?;
        out.woken.push(mailbox);
    }
    Ok(out)
}

fn subscription_of(n: &Notification) -> &str {
    match n {
        Notification::Changed {
            subscription_id, ..
        }
        | Notification::Lifecycle {
            subscription_id, ..
        } => subscription_id,
    }
}

fn is_trusted(n: &Notification) -> bool {
    match n {
        Notification::Changed { trusted, .. } | Notification::Lifecycle { trusted, .. } => *trusted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn row(
        mailbox: &str,
        subscription: Option<&str>,
        expires: Option<&str>,
    ) -> GraphSubscriptionRow {
        GraphSubscriptionRow {
            org_id: "o".to_owned(),
            mailbox_id: mailbox.to_owned(),
            folder: INBOX.to_owned(),
            subscription_id: subscription.map(str::to_owned),
            expires_at: expires.map(t),
            lifetime_minutes: 4230,
            renew_requested: false,
            retry_at: None,
            last_error: None,
            rejected_notifications: 0,
        }
    }

    fn wanted(ids: &[&str]) -> Vec<(String, String)> {
        ids.iter()
            .map(|m| ("o".to_owned(), (*m).to_owned()))
            .collect()
    }

    fn create(m: &str) -> Action {
        Action::Create {
            org_id: "o".to_owned(),
            mailbox_id: m.to_owned(),
            folder: INBOX.to_owned(),
        }
    }

    fn renew(m: &str, s: &str) -> Action {
        Action::Renew {
            org_id: "o".to_owned(),
            mailbox_id: m.to_owned(),
            folder: INBOX.to_owned(),
            subscription_id: s.to_owned(),
        }
    }

    const POLICY: Policy = Policy {
        renew_margin: ChronoDuration::hours(12),
    };

    #[test]
    fn the_plan_creates_renews_and_deletes() {
        let now = t("2025-03-01T12:00:00Z");
        let mut requested = row("m4", Some("s4"), Some("2025-03-03T12:00:00Z"));
        requested.renew_requested = true;
        let mut waiting = row("m6", None, None);
        waiting.retry_at = Some(t("2025-03-01T12:05:00Z"));
        let mut retry_now = row("m7", None, None);
        retry_now.retry_at = Some(t("2025-03-01T11:59:00Z"));
        retry_now.last_error = Some("validation failed".to_owned());
        let mut other_folder = row("m1", Some("s9"), Some("2025-03-03T12:00:00Z"));
        other_folder.folder = "sentitems".to_owned();
        let stored = vec![
            // Far from expiry: nothing.
            row("m1", Some("s1"), Some("2025-03-03T12:00:00Z")),
            // Within the 12 h margin: renewed.
            row("m2", Some("s2"), Some("2025-03-01T20:00:00Z")),
            // Lapsed: created again.
            row("m3", Some("s3"), Some("2025-03-01T11:00:00Z")),
            // Graph asked for reauthorization: renewed at once.
            requested,
            // Its mailbox stopped syncing: deleted.
            row("m5", Some("s5"), Some("2025-03-03T12:00:00Z")),
            // A failed creation waiting for its retry time; another whose time came.
            waiting,
            retry_now,
            // A folder no longer subscribed to.
            other_folder,
        ];
        let got = plan(
            &wanted(&["m1", "m2", "m3", "m4", "m6", "m7", "m8"]),
            &stored,
            now,
            &POLICY,
        );
        assert_eq!(
            got,
            vec![
                renew("m2", "s2"),
                create("m3"),
                renew("m4", "s4"),
                Action::Delete {
                    org_id: "o".to_owned(),
                    mailbox_id: "m5".to_owned(),
                    folder: INBOX.to_owned(),
                    subscription_id: Some("s5".to_owned()),
                },
                create("m7"),
                Action::Delete {
                    org_id: "o".to_owned(),
                    mailbox_id: "m1".to_owned(),
                    folder: "sentitems".to_owned(),
                    subscription_id: Some("s9".to_owned()),
                },
                // No row yet.
                create("m8"),
            ]
        );
    }

    #[test]
    fn the_same_mailbox_id_in_two_organizations_is_two_mailboxes() {
        let now = t("2025-03-01T12:00:00Z");
        let stored = vec![row("m1", Some("s1"), Some("2025-03-03T12:00:00Z"))];
        let wanted = vec![
            ("o".to_owned(), "m1".to_owned()),
            ("p".to_owned(), "m1".to_owned()),
        ];
        assert_eq!(
            plan(&wanted, &stored, now, &POLICY),
            vec![Action::Create {
                org_id: "p".to_owned(),
                mailbox_id: "m1".to_owned(),
                folder: INBOX.to_owned(),
            }]
        );
    }

    #[test]
    fn a_short_lifetime_caps_the_margin() {
        let now = t("2025-03-01T12:00:00Z");
        // Granted 4 minutes: renewed when less than 3 are left, not at once.
        let cases = [
            ("2025-03-01T12:04:00Z", false),
            ("2025-03-01T12:03:01Z", false),
            ("2025-03-01T12:02:59Z", true),
        ];
        for (expires, due) in cases {
            let mut r = row("m1", Some("s1"), Some(expires));
            r.lifetime_minutes = 4;
            assert_eq!(
                decide(&r, true, now, &POLICY).is_some(),
                due,
                "expires {expires}"
            );
        }
    }

    #[test]
    fn a_failed_renewal_waits_for_its_retry_time() {
        let now = t("2025-03-01T12:00:00Z");
        let mut r = row("m1", Some("s1"), Some("2025-03-01T13:00:00Z"));
        r.retry_at = Some(t("2025-03-01T12:01:00Z"));
        assert_eq!(decide(&r, true, now, &POLICY), None);
        assert_eq!(
            decide(&r, true, t("2025-03-01T12:01:00Z"), &POLICY),
            Some(renew("m1", "s1"))
        );
        // A mailbox that stops syncing is deleted even while waiting.
        assert!(matches!(
            decide(&r, false, now, &POLICY),
            Some(Action::Delete { .. })
        ));
    }

    #[test]
    fn the_lifetime_limit_is_read_from_graphs_refusal() {
        let e = |m: &str| SyncError {
            class: ErrorClass::Permanent,
            scope: mailbridge_domain::error_model::ErrorScope::Item,
            message: m.to_owned(),
            fix: None,
        };
        let cases = [
            (
                "Microsoft Graph refused to subscribe to new mail in the mailbox a@b (400 ExtensionError: Subscription expiration can only be 4230 minutes in the future.)",
                Some(4230),
            ),
            ("... can only be 1 minutes in the future.", Some(1)),
            ("... can only be 0 minutes in the future.", None),
            ("... can only be once", None),
            ("Subscription validation request failed.", None),
        ];
        for (message, limit) in cases {
            assert_eq!(lifetime_limit(&e(message)), limit, "{message}");
        }
    }

    #[test]
    fn the_notification_url_is_per_organization() {
        assert_eq!(
            notification_url("https://mb.example.org/", "org1"),
            "https://mb.example.org/api/v1/graph/notifications/org1"
        );
    }

    #[test]
    fn client_states_are_fresh_and_fit_graphs_limit() {
        let (a, b) = (new_client_state(), new_client_state());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
    }
}
