//! The webhook outbox on both SQLite and PostgreSQL: events are written with the
//! changes they report and fanned out to the enabled subscriptions that want
//! them; claims hand out, per subscription and order key, only the first open
//! delivery, once; failures are retried on schedule, given up, and retried by hand.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use mailbridge_domain::alert::Alert;
use mailbridge_domain::ids::new_id;
use mailbridge_domain::webhook::WebhookSubscription;
use mailbridge_domain::{
    AlertScope, AlertSeverity, Role, TrackingFilter, WebhookDeliveryStatus, WebhookEventType,
};
use mailbridge_store::{
    AfterAttempt, AttemptResult, Cipher, ClaimedDelivery, NewUser, PageRequest, Store, Workload,
};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One `#[tokio::test]` per backend for each named async function taking a `Backend`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Backend::Postgres).await
                }
            }
        )+
    };
}

on_both_backends!(
    events_follow_their_changes_to_the_subscriptions_that_want_them,
    each_order_key_goes_out_in_order_through_retries_and_failures,
    concurrent_claims_never_share_a_delivery,
    a_lost_claim_is_attempted_again,
);

const LEASE: Duration = Duration::from_secs(60);

struct Hooks {
    store: Store,
    org: String,
    mailbox: String,
    other_mailbox: String,
    _dir: tempfile::TempDir,
}

impl Hooks {
    async fn start(backend: Backend) -> Hooks {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => dir.path().join("hooks.db").display().to_string(),
            Backend::Postgres => mailbridge_testkit::fresh_postgres_url().await,
        };
        let cipher = Cipher::from_base64(&Cipher::generate_key()).expect("key");
        let store = Store::open(&url, cipher).await.expect("store opens");
        let org = store
            .create_organization("Contoso", None)
            .await
            .expect("organization")
            .id;
        let mut mailboxes = Vec::new();
        for name in ["Alice", "Bob"] {
            let user = NewUser {
                full_name: name.to_owned(),
                email: Some(format!("{}@contoso.com", name.to_lowercase())),
                role: Role::User,
                tracking_filter: TrackingFilter::None,
            };
            mailboxes.push(
                store
                    .create_user(&org, user)
                    .await
                    .expect("user")
                    .mailbox_id,
            );
        }
        Hooks {
            store,
            org,
            mailbox: mailboxes[0].clone(),
            other_mailbox: mailboxes[1].clone(),
            _dir: dir,
        }
    }

    /// A subscription of `org`; returns its id and secret.
    async fn subscribe(
        &self,
        org: &str,
        types: &[WebhookEventType],
        enabled: bool,
    ) -> (String, String) {
        let t = Utc::now();
        let s = WebhookSubscription {
            id: new_id(),
            org_id: org.to_owned(),
            url: "http://127.0.0.1:9/hook".to_owned(),
            description: None,
            event_types: types.to_vec(),
            enabled,
            created_at: t,
            updated_at: t,
        };
        let (s, secret) = self.store.create_webhook(&s).await.expect("subscription");
        (s.id, secret.expose().to_owned())
    }

    /// Raises an alert about `mailbox` (or the organization); returns its id.
    async fn alert(&self, mailbox: Option<&str>, message: &str) -> String {
        let a = Alert {
            id: new_id(),
            org_id: self.org.clone(),
            scope: if mailbox.is_some() {
                AlertScope::Mailbox
            } else {
                AlertScope::Organization
            },
            severity: AlertSeverity::Warning,
            mailbox_id: mailbox.map(str::to_owned),
            profile_id: None,
            item_ref: None,
            message: message.to_owned(),
            fix: None,
            recipient_ids: Vec::new(),
            created_at: Utc::now(),
        };
        self.store.create_alert(&a).await.expect("alert").id
    }

    async fn claim(&self, node: &str) -> Vec<ClaimedDelivery> {
        self.store
            .claim_webhook_deliveries(node, LEASE, 64)
            .await
            .expect("claim")
    }

    /// The delivery log of a subscription, oldest first: (type, status, attempts).
    async fn log(&self, sub: &str) -> Vec<(String, WebhookDeliveryStatus, i64)> {
        let page = PageRequest {
            after: None,
            limit: Some(500),
        };
        let mut items = self
            .store
            .list_webhook_deliveries(&self.org, sub, None, None, &page)
            .await
            .expect("log")
            .items;
        items.reverse();
        items
            .into_iter()
            .map(|d| (d.event_type, d.status, d.attempts))
            .collect()
    }
}

fn payload(d: &ClaimedDelivery) -> serde_json::Value {
    serde_json::from_str(&d.payload).expect("JSON payload")
}

fn result(code: Option<u16>) -> AttemptResult {
    AttemptResult {
        at: Utc::now(),
        status_code: code,
        error: (code != Some(204)).then(|| format!("the receiver answered {code:?}")),
        duration_ms: 3,
    }
}

async fn events_follow_their_changes_to_the_subscriptions_that_want_them(backend: Backend) {
    use WebhookEventType::*;
    let h = Hooks::start(backend).await;
    let (all, secret) = h
        .subscribe(&h.org, &[MailboxStatusChanged, AlertRaised], true)
        .await;
    let (alerts_only, _) = h.subscribe(&h.org, &[AlertRaised], true).await;
    let (disabled, _) = h.subscribe(&h.org, &[AlertRaised], false).await;
    let other_org = h
        .store
        .create_organization("Fabrikam", None)
        .await
        .expect("org")
        .id;
    let (stranger, _) = h.subscribe(&other_org, &[AlertRaised], true).await;
    assert!(secret.starts_with("whsec_"));

    // A status that moves is reported once; one that stays is not.
    let t = Utc::now();
    h.store
        .workload_succeeded(&h.mailbox, Workload::Incoming, t, t, false)
        .await
        .unwrap();
    h.store
        .workload_succeeded(&h.mailbox, Workload::Incoming, t, t, true)
        .await
        .unwrap();
    h.store
        .disable_workload(&h.mailbox, Workload::Outgoing, "SMTP refused the login")
        .await
        .unwrap();
    h.store
        .disable_workload(&h.mailbox, Workload::Outgoing, "again")
        .await
        .unwrap();
    h.alert(Some(&h.mailbox), "Mailbox stopped").await;

    use WebhookDeliveryStatus::Pending;
    assert_eq!(
        h.log(&all).await,
        [
            ("mailbox.status_changed".to_owned(), Pending, 0),
            ("mailbox.status_changed".to_owned(), Pending, 0),
            ("alert.raised".to_owned(), Pending, 0),
        ]
    );
    assert_eq!(
        h.log(&alerts_only).await,
        [("alert.raised".to_owned(), Pending, 0)]
    );
    assert!(
        h.log(&disabled).await.is_empty(),
        "a disabled subscription gets nothing"
    );
    let stranger_log = h
        .store
        .list_webhook_deliveries(&other_org, &stranger, None, None, &PageRequest::default())
        .await
        .unwrap();
    assert!(
        stranger_log.items.is_empty(),
        "another organization's events stay there"
    );

    // The first claim takes the first event of each (subscription, order key).
    let claimed = h.claim("n1").await;
    let got: BTreeSet<(String, String)> = claimed
        .iter()
        .map(|d| (d.subscription_id.clone(), d.event_type.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (all.clone(), "mailbox.status_changed".to_owned()),
        (alerts_only.clone(), "alert.raised".to_owned()),
    ]
    .into();
    assert_eq!(got, expected);
    let status = claimed.iter().find(|d| d.subscription_id == all).unwrap();
    assert_eq!(
        status.secret.expose(),
        secret,
        "the claim carries the secret to sign with"
    );
    let p = payload(status);
    assert_eq!(p["type"], "mailbox.status_changed");
    assert_eq!(p["data"]["mailbox_id"], h.mailbox);
    assert_eq!(p["data"]["workload"], "incoming");
    assert_eq!(p["data"]["status_before"], "not_run");
    assert_eq!(p["data"]["status_after"], "success");
    assert!(status.event_id.starts_with("msg_"));
    assert!(
        h.claim("n2").await.is_empty(),
        "claimed once; the rest wait behind"
    );

    for d in &claimed {
        h.store
            .record_webhook_attempt(d, &result(Some(204)), AfterAttempt::Delivered)
            .await
            .unwrap();
    }
    let next = h.claim("n1").await;
    assert_eq!(next.len(), 1, "{next:?}");
    let p = payload(&next[0]);
    assert_eq!(p["data"]["workload"], "outgoing");
    assert_eq!(p["data"]["status_after"], "failure");
    assert_eq!(p["data"]["error"], "SMTP refused the login");
}

async fn each_order_key_goes_out_in_order_through_retries_and_failures(backend: Backend) {
    use WebhookDeliveryStatus::*;
    let h = Hooks::start(backend).await;
    let (sub, _) = h
        .subscribe(&h.org, &[WebhookEventType::AlertRaised], true)
        .await;
    let a1 = h.alert(Some(&h.mailbox), "a1").await;
    let a2 = h.alert(Some(&h.mailbox), "a2").await;
    let b1 = h.alert(Some(&h.other_mailbox), "b1").await;
    let o1 = h.alert(None, "o1").await;
    let alert_of =
        |d: &ClaimedDelivery| payload(d)["data"]["alert_id"].as_str().unwrap().to_owned();

    let first = h.claim("n1").await;
    let ids: BTreeSet<String> = first.iter().map(alert_of).collect();
    assert_eq!(
        ids,
        [a1.clone(), b1.clone(), o1.clone()].into(),
        "one per key; a2 waits for a1"
    );
    assert!(
        h.claim("n2").await.is_empty(),
        "claimed ones are not claimed again"
    );
    for d in &first {
        let (code, next) = if alert_of(d) == a1 {
            (
                500,
                AfterAttempt::RetryAt(Utc::now() + chrono::Duration::hours(1)),
            )
        } else {
            (204, AfterAttempt::Delivered)
        };
        assert!(
            h.store
                .record_webhook_attempt(d, &result(Some(code)), next)
                .await
                .unwrap()
        );
    }
    assert!(
        h.claim("n1").await.is_empty(),
        "a1 waits for its retry time, a2 behind it"
    );

    set_due_now(&h).await;
    let d = h.claim("n1").await;
    assert_eq!(d.iter().map(alert_of).collect::<Vec<_>>(), [a1.as_str()]);
    assert_eq!(d[0].attempts, 1);
    h.store
        .record_webhook_attempt(&d[0], &result(None), AfterAttempt::GiveUp)
        .await
        .unwrap();
    let d = h.claim("n1").await;
    assert_eq!(
        d.iter().map(alert_of).collect::<Vec<_>>(),
        [a2.as_str()],
        "a failed event lets the next go"
    );
    h.store
        .record_webhook_attempt(&d[0], &result(Some(204)), AfterAttempt::Delivered)
        .await
        .unwrap();

    let statuses: Vec<(WebhookDeliveryStatus, i64)> =
        h.log(&sub).await.iter().map(|(_, s, n)| (*s, *n)).collect();
    assert_eq!(
        statuses,
        [(Failed, 2), (Delivered, 1), (Delivered, 1), (Delivered, 1)]
    );
    let page = h
        .store
        .list_webhook_deliveries(&h.org, &sub, Some(Failed), None, &PageRequest::default())
        .await
        .unwrap();
    let failed = &page.items[0];
    let codes: Vec<Option<i64>> = failed.log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), None], "every attempt is in the log");
    assert_eq!(
        failed.log.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(failed.next_attempt_at, None);

    let delivered = h
        .store
        .list_webhook_deliveries(&h.org, &sub, Some(Delivered), None, &PageRequest::default())
        .await
        .unwrap();
    let err = h
        .store
        .retry_webhook_delivery(&h.org, &sub, &delivered.items[0].event_id)
        .await;
    assert!(
        matches!(&err, Err(mailbridge_store::StoreError::Conflict { message, .. }) if message.contains("only a failed delivery")),
        "{err:?}"
    );
    let retried = h
        .store
        .retry_webhook_delivery(&h.org, &sub, &failed.event_id)
        .await
        .unwrap();
    assert_eq!((retried.status, retried.attempts), (Pending, 0));
    let d = h.claim("n1").await;
    assert_eq!(d.iter().map(alert_of).collect::<Vec<_>>(), [a1.as_str()]);
    h.store
        .record_webhook_attempt(&d[0], &result(Some(204)), AfterAttempt::Delivered)
        .await
        .unwrap();
    let log = h
        .store
        .list_webhook_deliveries(&h.org, &sub, None, None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        log.items.last().unwrap().log.len(),
        3,
        "the hand retry continues the log"
    );

    // Newest first, paged by event id.
    let two = |after| PageRequest {
        after,
        limit: Some(2),
    };
    let page = h
        .store
        .list_webhook_deliveries(&h.org, &sub, None, None, &two(None))
        .await
        .unwrap();
    let rest = h
        .store
        .list_webhook_deliveries(&h.org, &sub, None, None, &two(page.next_cursor.clone()))
        .await
        .unwrap();
    assert!(rest.next_cursor.is_none());
    let order: Vec<String> = page
        .items
        .iter()
        .chain(&rest.items)
        .map(|d| d.event_id.clone())
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "event ids are time-ordered: newest first");
    assert_eq!(order.len(), 4);
    let _ = (a2, b1, o1);
}

/// Every pending delivery due now (the test does not wait an hour).
async fn set_due_now(h: &Hooks) {
    let t = Utc::now();
    mailbridge_store::with_db!(h.store.db(), p => sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE status = 'pending'",
    ).bind(t).execute(p).await.map(|r| r.rows_affected()))
    .unwrap();
}

async fn concurrent_claims_never_share_a_delivery(backend: Backend) {
    let h = Hooks::start(backend).await;
    h.subscribe(&h.org, &[WebhookEventType::AlertRaised], true)
        .await;
    // 30 order keys: the organization and 29 more mailboxes, 2 alerts each.
    let mut mailboxes = vec![h.mailbox.clone(), h.other_mailbox.clone()];
    for i in 0..27 {
        let user = NewUser {
            full_name: format!("User {i}"),
            email: Some(format!("user{i}@contoso.com")),
            role: Role::User,
            tracking_filter: TrackingFilter::None,
        };
        mailboxes.push(h.store.create_user(&h.org, user).await.unwrap().mailbox_id);
    }
    for round in 0..2 {
        for m in &mailboxes {
            h.alert(Some(m), &format!("{round}")).await;
        }
        h.alert(None, &format!("{round}")).await;
    }
    let mut handles = Vec::new();
    for n in 0..4 {
        let store = h.store.clone();
        handles.push(tokio::spawn(async move {
            store
                .claim_webhook_deliveries(&format!("n{n}"), LEASE, 10)
                .await
                .expect("claim")
        }));
    }
    let mut seen = Vec::new();
    for handle in handles {
        for d in handle.await.unwrap() {
            seen.push((d.order_key.clone(), d.event_seq));
        }
    }
    let keys: BTreeSet<&String> = seen.iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), seen.len(), "one per key, never twice: {seen:?}");
    assert_eq!(seen.len(), 30, "every key's first event, by someone");
}

async fn a_lost_claim_is_attempted_again(backend: Backend) {
    let h = Hooks::start(backend).await;
    h.subscribe(&h.org, &[WebhookEventType::AlertRaised], true)
        .await;
    h.alert(Some(&h.mailbox), "a1").await;
    let short = h
        .store
        .claim_webhook_deliveries("dead", Duration::from_millis(200), 64)
        .await
        .unwrap();
    assert_eq!(short.len(), 1);
    assert!(h.claim("n1").await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = h.claim("n1").await;
    assert_eq!(again.len(), 1, "an expired claim is claimed again");
    assert_eq!(again[0].event_id, short[0].event_id);
    // The dead node's late answer does not overwrite the new claim's.
    let held = h
        .store
        .record_webhook_attempt(&short[0], &result(Some(204)), AfterAttempt::Delivered)
        .await
        .unwrap();
    assert!(!held);
    assert!(
        h.store
            .record_webhook_attempt(&again[0], &result(Some(204)), AfterAttempt::Delivered)
            .await
            .unwrap()
    );
    let log = h.log(&again[0].subscription_id).await;
    assert_eq!(
        log,
        [(
            "alert.raised".to_owned(),
            WebhookDeliveryStatus::Delivered,
            1
        )]
    );
    // A node's own claims come back at its restart.
    h.alert(Some(&h.mailbox), "a2").await;
    assert_eq!(h.claim("n1").await.len(), 1);
    assert_eq!(h.store.release_webhook_claims("n1").await.unwrap(), 1);
    assert_eq!(h.claim("n1").await.len(), 1);
}
