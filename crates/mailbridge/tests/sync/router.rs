//! The push route ("email router") end to end: mail delivered over SMTP to the
//! inbound listener for mailboxes whose incoming method is `router` becomes
//! emails through the same pipeline as synchronized mail — decisions in the
//! `router` folder, one email per Message-ID across mailboxes, a plus-address
//! tag naming the regarding record, mail held while a mailbox is not approved,
//! and a replayed message (a crash after its decision) not tracked twice.

use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailbridge_engine::inbound::{InboundConfig, InboundListener, worker};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::common::{Backend, World, decision_on, email_by_message_id, fast_engine, message, wait};

const WAIT: Duration = Duration::from_secs(20);

/// A World with an SMTP listener on loopback and the worker running.
struct Router {
    w: World,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    _stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Router {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn router(backend: Backend) -> Router {
    router_with(backend, |_| {}).await
}

async fn router_with(
    backend: Backend,
    configure: impl FnOnce(&mut worker::WorkerConfig),
) -> Router {
    let w = World::start(backend, fast_engine()).await;
    let wake = Arc::new(Notify::new());
    let mut config = InboundConfig::disabled("mx.contoso.test");
    config.smtp_listen = Some("127.0.0.1:0".parse().unwrap());
    config.allowed_clients = vec!["127.0.0.1/32".parse().unwrap()];
    config.router_cache = Duration::ZERO;
    config.stored = Some(wake.clone());
    let listener = InboundListener::bind(w.store.clone(), config)
        .await
        .unwrap();
    let port = listener.smtp_addr().unwrap().port();
    let mut tasks = listener.spawn();
    let (stop, stopped) = watch::channel(false);
    let worker_config = worker::WorkerConfig {
        idle_poll: Duration::from_millis(200),
        retry_after: Duration::from_millis(500),
        hold_recheck: Duration::from_millis(300),
        store_retry: Duration::from_millis(300),
        ..Default::default()
    };
    let mut worker_config = worker_config;
    configure(&mut worker_config);
    tasks.push(tokio::spawn(worker::run(
        w.engine.clone(),
        worker_config,
        wake,
        stopped,
    )));
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    Router {
        w,
        smtp,
        _stop: stop,
        tasks,
    }
}

impl Router {
    /// A user whose mailbox receives by the push route (approved when `approve`).
    async fn router_user(&self, name: &str, approve: bool) -> (Value, String, String) {
        let w = &self.w;
        let address = format!("{name}@contoso.test");
        let user = w
            .post(
                "/users",
                json!({"full_name": name, "email": address, "tracking_filter": "all"}),
            )
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        let m = w
            .patch(
                &format!("/mailboxes/{mailbox}"),
                json!({"incoming_method": "router"}),
            )
            .await;
        assert_eq!(m["incoming_method"], "router", "{m}");
        if approve {
            self.approve(&mailbox).await;
        }
        (user, mailbox, address)
    }

    async fn approve(&self, mailbox: &str) {
        let w = &self.w;
        let (status, v) = w
            .try_call(
                Method::POST,
                &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
                json!({"ids": [mailbox]}),
                &w.approver,
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }

    async fn send(&self, to: &[&str], raw: &[u8]) {
        let envelope = Envelope::new(
            Some("carl@fabrikam.com".parse().unwrap()),
            to.iter().map(|a| a.parse().unwrap()).collect(),
        )
        .unwrap();
        let answer = self.smtp.send_raw(&envelope, raw).await;
        assert!(answer.is_ok(), "accepted: {answer:?}");
    }
}

async fn pushed_mail_is_tracked(backend: Backend) {
    let r = router(backend).await;
    let w = &r.w;
    let contact = w
        .post(
            "/contacts",
            json!({"name": "Carl", "email": "carl@fabrikam.com"}),
        )
        .await;
    let contact_id = contact["id"].as_str().unwrap();
    let (rita, rita_mb, rita_address) = r.router_user("rita", true).await;
    let (_, sam_mb, sam_address) = r.router_user("sam", true).await;
    // A subscriber to email.tracked (nothing listens there: the deliveries are
    // queued and tried, which is all this test reads).
    let hook = w
        .post(
            "/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["email.tracked"]}),
        )
        .await;

    // To Rita only: her email, decided in the router folder.
    let (raw, id) = message("Carl <carl@fabrikam.com>", &[&rita_address], "Quote", "");
    r.send(&[&rita_address], &raw).await;
    let email = email_by_message_id(w, &id, WAIT).await;
    assert_eq!(email["mailbox_id"], rita_mb.as_str(), "{email}");
    assert_eq!(email["direction"], "incoming", "{email}");
    let from = email["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "from")
        .cloned()
        .unwrap();
    assert_eq!(
        from["party_id"], contact["id"],
        "the sender resolved: {email}"
    );
    let d = decision_on(w, &rita_mb, &id, "", WAIT).await;
    assert_eq!(d["outcome"], "tracked", "{d}");
    assert_eq!(d["folder"], "router", "{d}");
    let to = email["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "to")
        .cloned()
        .unwrap();
    assert_eq!(to["party_id"], rita["id"], "{email}");

    // One message for Rita and Sam in one transaction: one email, a decision
    // in each mailbox.
    let (raw, id) = message(
        "carl@fabrikam.com",
        &[&rita_address, &sam_address],
        "Both",
        "",
    );
    r.send(&[&rita_address, &sam_address], &raw).await;
    let email = email_by_message_id(w, &id, WAIT).await;
    for mb in [&rita_mb, &sam_mb] {
        let d = wait("both decisions", WAIT, || async {
            w.decisions(mb, &format!("&message_id={id}"))
                .await
                .into_iter()
                .find(|d| d["email_id"] == email["id"])
        })
        .await;
        assert!(d["outcome"] == "tracked" || d["outcome"] == "linked", "{d}");
    }
    assert_eq!(w.emails(&format!("&message_id={id}")).await.len(), 1);

    // A plus-address naming the contact: the email is regarding it.
    let tagged = format!("rita+contact-{contact_id}@contoso.test");
    let (raw, id) = message("someone@elsewhere.org", &[&tagged], "About Carl", "");
    r.send(&[&tagged], &raw).await;
    let email = email_by_message_id(w, &id, WAIT).await;
    assert_eq!(email["regarding_type"], "contact", "{email}");
    assert_eq!(email["regarding_id"], contact["id"], "{email}");

    // One email.tracked per email created, as for synchronized mail.
    let deliveries = w
        .get(&format!(
            "/webhooks/{}/deliveries?limit=100",
            hook["id"].as_str().unwrap()
        ))
        .await;
    let deliveries = deliveries["items"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    assert!(
        deliveries
            .iter()
            .all(|d| d["event_type"] == "email.tracked"),
        "{deliveries:?}"
    );

    // The mailbox's incoming workload shows the push route's success.
    let m = w.get(&format!("/mailboxes/{rita_mb}")).await;
    assert_eq!(m["incoming_status"], "success", "{m}");

    // Every received message is marked processed.
    let stored = w
        .store
        .inbound_messages_of_mailbox(&w.org, &rita_mb)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    wait("Rita's messages processed", WAIT, || async {
        let s = w
            .store
            .inbound_messages_of_mailbox(&w.org, &rita_mb)
            .await
            .unwrap();
        s.iter().all(|m| m.status == "processed").then_some(())
    })
    .await;
}

async fn unapproved_mail_is_held_then_processed(backend: Backend) {
    let r = router(backend).await;
    let w = &r.w;
    let (_, mb, address) = r.router_user("una", false).await;
    let (raw, id) = message("carl@fabrikam.com", &[&address], "Held", "");
    r.send(&[&address], &raw).await;
    let held = wait("the message held", WAIT, || async {
        let s = w
            .store
            .inbound_messages_of_mailbox(&w.org, &mb)
            .await
            .unwrap();
        s.into_iter().next().filter(|m| {
            m.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("held"))
        })
    })
    .await;
    assert_eq!(held.status, "pending");
    assert!(w.emails(&format!("&message_id={id}")).await.is_empty());
    let alerts = w.get(&format!("/alerts?mailbox_id={mb}")).await;
    let alerts = alerts["items"].as_array().unwrap();
    assert_eq!(
        alerts.len(),
        1,
        "one alert, however often it is looked at: {alerts:?}"
    );
    assert!(
        alerts[0]["message"].as_str().unwrap().contains("held"),
        "{alerts:?}"
    );
    let m = w.get(&format!("/mailboxes/{mb}")).await;
    assert_eq!(
        m["incoming_status"], "not_run",
        "nothing processed yet: {m}"
    );
    r.approve(&mb).await;
    let email = email_by_message_id(w, &id, WAIT).await;
    assert_eq!(email["mailbox_id"], mb.as_str(), "{email}");
}

/// A crash after a message's decision was committed but before it was marked
/// processed: the message is claimed again, found decided, and only marked.
async fn a_replayed_message_is_not_tracked_twice(backend: Backend) {
    let r = router(backend).await;
    let w = &r.w;
    let (_, mb, address) = r.router_user("rex", true).await;
    let (raw, id) = message("carl@fabrikam.com", &[&address], "Once", "");
    r.send(&[&address], &raw).await;
    let email = email_by_message_id(w, &id, WAIT).await;
    let processed = || async {
        let s = w
            .store
            .inbound_messages_of_mailbox(&w.org, &mb)
            .await
            .unwrap();
        s.into_iter().next().filter(|m| m.status == "processed")
    };
    let first = wait("processed", WAIT, processed).await;
    // As the crash leaves it: pending, its claim expired.
    let sql = "UPDATE inbound_messages SET status = 'pending', processed_at = NULL, claimed_until = NULL, claimed_by = NULL WHERE id = $1";
    match w.store.db() {
        mailbridge_store::Db::Sqlite(p) => {
            sqlx::query(sql).bind(&first.id).execute(p).await.unwrap();
        }
        mailbridge_store::Db::Postgres(p) => {
            sqlx::query(sql).bind(&first.id).execute(p).await.unwrap();
        }
    }
    let again = wait("processed again", WAIT, processed).await;
    assert!(again.attempts > first.attempts, "claimed again: {again:?}");
    let emails = w.emails(&format!("&message_id={id}")).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["id"], email["id"]);
    let decisions = w.decisions(&mb, &format!("&message_id={id}")).await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
}

/// The store fails while a received message is processed: the message waits,
/// pending with the error, and is tracked once the store works again.
#[tokio::test]
async fn a_store_failure_while_processing_keeps_the_message() {
    let r = router(Backend::Sqlite).await;
    let w = &r.w;
    let (_, mb, address) = r.router_user("sue", true).await;
    let mailbridge_store::Db::Sqlite(pool) = w.store.db() else {
        panic!("a SQLite store")
    };
    sqlx::query(
        "CREATE TRIGGER no_emails BEFORE INSERT ON emails BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(pool)
    .await
    .unwrap();
    let (raw, id) = message("carl@fabrikam.com", &[&address], "Kept", "");
    r.send(&[&address], &raw).await;
    let kept = wait("the failure recorded", WAIT, || async {
        let s = w
            .store
            .inbound_messages_of_mailbox(&w.org, &mb)
            .await
            .unwrap();
        s.into_iter().next().filter(|m| {
            m.last_error
                .as_deref()
                .is_some_and(|e| e.contains("disk full"))
        })
    })
    .await;
    assert_eq!(kept.status, "pending", "{kept:?}");
    assert!(w.emails(&format!("&message_id={id}")).await.is_empty());
    sqlx::query("DROP TRIGGER no_emails")
        .execute(pool)
        .await
        .unwrap();
    let email = email_by_message_id(w, &id, WAIT).await;
    assert_eq!(email["mailbox_id"], mb.as_str(), "{email}");
    let s = w
        .store
        .inbound_messages_of_mailbox(&w.org, &mb)
        .await
        .unwrap();
    assert_eq!(s.len(), 1);
    assert!(s[0].attempts >= 2, "taken again: {:?}", s[0]);
    assert_eq!(w.emails(&format!("&message_id={id}")).await.len(), 1);
}

/// Processed messages go once past their retention; a held one stays.
#[tokio::test]
async fn processed_messages_are_deleted_after_their_retention() {
    let r = router_with(Backend::Sqlite, |c| {
        c.retention = Duration::ZERO;
        c.purge_every = Duration::from_millis(100);
    })
    .await;
    let w = &r.w;
    let (_, mb, address) = r.router_user("pat", true).await;
    let (_, held_mb, held_address) = r.router_user("hal", false).await;
    let (raw, id) = message("carl@fabrikam.com", &[&address], "Purged", "");
    r.send(&[&address], &raw).await;
    let (raw, _) = message("carl@fabrikam.com", &[&held_address], "Held", "");
    r.send(&[&held_address], &raw).await;
    email_by_message_id(w, &id, WAIT).await;
    wait("the processed message deleted", WAIT, || async {
        let s = w
            .store
            .inbound_messages_of_mailbox(&w.org, &mb)
            .await
            .unwrap();
        s.is_empty().then_some(())
    })
    .await;
    let held = w
        .store
        .inbound_messages_of_mailbox(&w.org, &held_mb)
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "a held message is kept");
    // The email and its decision stay.
    assert_eq!(w.emails(&format!("&message_id={id}")).await.len(), 1);
    assert_eq!(
        w.decisions(&mb, &format!("&message_id={id}")).await.len(),
        1
    );
}

#[tokio::test]
async fn pushed_mail_is_tracked_on_sqlite() {
    pushed_mail_is_tracked(Backend::Sqlite).await;
}

#[tokio::test]
async fn pushed_mail_is_tracked_on_postgres() {
    pushed_mail_is_tracked(Backend::Postgres).await;
}

#[tokio::test]
async fn unapproved_mail_is_held_then_processed_on_sqlite() {
    unapproved_mail_is_held_then_processed(Backend::Sqlite).await;
}

#[tokio::test]
async fn unapproved_mail_is_held_then_processed_on_postgres() {
    unapproved_mail_is_held_then_processed(Backend::Postgres).await;
}

#[tokio::test]
async fn a_replayed_message_is_not_tracked_twice_on_sqlite() {
    a_replayed_message_is_not_tracked_twice(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_replayed_message_is_not_tracked_twice_on_postgres() {
    a_replayed_message_is_not_tracked_twice(Backend::Postgres).await;
}
