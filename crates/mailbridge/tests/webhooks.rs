//! Webhooks end to end: the real binary, the test Dovecot, and a receiver on
//! 127.0.0.1. The signature verifies with an independent implementation (the
//! `standardwebhooks` crate); a receiver answering 500 is retried until it
//! accepts; and `kill -9` while events accumulate loses and reorders none.

mod support;
mod webhooks {
    pub mod receiver;
}

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use mailbridge_testkit::{TestServers, TestUser};
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;
use webhooks::receiver::{Received, Receiver};

/// Short engine timings, and webhook retries every `retry` seconds, `attempts` times.
fn fast(retry: &str, attempts: usize) -> Vec<(&'static str, String)> {
    let schedule = format!("[{}]", vec![retry; attempts - 1].join(", "));
    vec![
        ("MAILBRIDGE_LOG", "info,mailbridge_engine=debug".to_owned()),
        ("MAILBRIDGE_TICK_MILLIS", "100".to_owned()),
        ("MAILBRIDGE_POLL_INTERVAL_SECONDS", "1".to_owned()),
        ("MAILBRIDGE_MAX_IDLE_POLL_SECONDS", "2".to_owned()),
        ("MAILBRIDGE_RETRY_DELAY_SECONDS", "1".to_owned()),
        ("MAILBRIDGE_LEASE_SECONDS", "5".to_owned()),
        ("MAILBRIDGE_WEBHOOK_POLL_MILLIS", "100".to_owned()),
        ("MAILBRIDGE_WEBHOOK_RETRY_SECONDS", schedule),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn start(data: &Path, log: &str, env: &[(&'static str, String)]) -> Server {
    Server::start_with(data, None, log, &pairs(env)).await
}

async fn ok(s: &Server, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, v) = s.call(method.clone(), path, token, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

/// Polls `probe` every 50 ms until it yields a value or `timeout` passes.
async fn wait<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An organization with Dovecot users whose incoming email is tracked (all of
/// it), and a subscription to `email.tracked` posting to `receiver`.
struct Org {
    base: String,
    admin: String,
    users: Vec<(String, TestUser)>,
    webhook: String,
    secret: String,
}

impl Org {
    async fn set_up(s: &Server, data: &Path, users: usize, receiver: &Receiver) -> Org {
        let servers = TestServers::from_env();
        let admin = std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let org = ok(
            s,
            Method::POST,
            "/api/v1/organizations",
            &admin,
            Some(json!({"name": "Hooks"})),
        )
        .await;
        let base = format!("/api/v1/orgs/{}", org["id"].as_str().unwrap());
        let approver = ok(
            s,
            Method::POST,
            &format!("{base}/users"),
            &admin,
            Some(json!({"full_name": "Ann", "role": "approver"})),
        )
        .await;
        let approver = ok(
            s,
            Method::POST,
            &format!("{base}/tokens"),
            &admin,
            Some(json!({"user_id": approver["id"]})),
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let profile = ok(
            s,
            Method::POST,
            &format!("{base}/email-server-profiles"),
            &admin,
            Some(
                json!({"name": "Dovecot", "server_type": "imap_smtp", "allow_plaintext": true,
                   "incoming_server_location": format!("imap://{}", servers.imap_addr()),
                   "outgoing_server_location": format!("smtp://{}", servers.smtp_addr())}),
            ),
        )
        .await;
        let hook = ok(s, Method::POST, &format!("{base}/webhooks"), &admin,
            Some(json!({"url": receiver.url, "event_types": ["email.tracked"], "description": "test receiver"}))).await;
        let mut out = Vec::new();
        for i in 0..users {
            let name = format!(
                "hook{i}{}",
                &uuid::Uuid::now_v7().simple().to_string()[20..]
            );
            let login = servers.add_user(&name, &format!("pw-{name}")).await;
            let user = ok(s, Method::POST, &format!("{base}/users"), &admin,
                Some(json!({"full_name": format!("User {name}"), "email": login.address, "tracking_filter": "all"}))).await;
            let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
            ok(s, Method::PATCH, &format!("{base}/mailboxes/{mailbox}"), &admin, Some(
                json!({"profile_id": profile["id"], "password": login.password, "outgoing_method": "none"}),
            )).await;
            out.push((mailbox, login));
        }
        let ids: Vec<&String> = out.iter().map(|(m, _)| m).collect();
        ok(
            s,
            Method::POST,
            &format!("{base}/mailboxes/approve"),
            &approver,
            Some(json!({"ids": ids})),
        )
        .await;
        let job = ok(
            s,
            Method::POST,
            &format!("{base}/mailboxes/test-and-enable"),
            &admin,
            Some(json!({"ids": ids})),
        )
        .await;
        let job_path = format!("{base}/jobs/{}", job["id"].as_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let j = ok(s, Method::GET, &job_path, &admin, None).await;
            if j["status"] == "succeeded" {
                break;
            }
            assert!(
                j["status"] != "failed" && Instant::now() < deadline,
                "Test & Enable: {j}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Org {
            base,
            admin,
            users: out,
            webhook: hook["id"].as_str().unwrap().to_owned(),
            secret: hook["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// The delivery log, oldest event first (all pages).
    async fn deliveries(&self, s: &Server) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!(
                "{}/webhooks/{}/deliveries?limit=500{cursor}",
                self.base, self.webhook
            );
            let page = ok(s, Method::GET, &path, &self.admin, None).await;
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        out.reverse();
        out
    }
}

/// Delivers a message to `to` by LMTP; returns its Message-ID.
async fn deliver(to: &TestUser, subject: &str) -> String {
    let id = format!("{}@test.example.org", uuid::Uuid::now_v7().simple());
    let raw = format!(
        "From: carl@fabrikam.com\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: {}\r\n\r\nHello.\r\n",
        to.address,
        chrono::Utc::now().to_rfc2822()
    );
    TestServers::from_env()
        .deliver(&to.address, raw.as_bytes())
        .await
        .unwrap();
    id
}

fn verify(secret: &str, r: &Received) -> Result<(), String> {
    let wh = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
    wh.verify(r.body.as_bytes(), &r.headers)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_signature_verifies_with_the_reference_library() {
    let receiver = Receiver::start().await;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let s = start(&data, "sig.log", &fast("1", 3)).await;
    let org = Org::set_up(&s, &data, 1, &receiver).await;
    let (mailbox, user) = &org.users[0];
    let message_id = deliver(user, "Signed").await;

    let r = wait("the email.tracked request", Duration::from_secs(30), || {
        receiver.requests().into_iter().next()
    })
    .await;
    assert_eq!(verify(&org.secret, &r), Ok(()), "{r:?}");
    let mut tampered = r.clone();
    tampered.body = r.body.replace("Signed", "Signet");
    assert!(
        verify(&org.secret, &tampered).is_err(),
        "a tampered body fails"
    );
    let other = format!("whsec_{}", "QUJD".repeat(8));
    assert!(verify(&other, &r).is_err(), "another secret fails");

    assert_eq!(r.header("content-type"), "application/json");
    assert!(
        r.header("user-agent").starts_with("mailbridge/"),
        "{:?}",
        r.headers
    );
    assert!(r.id().starts_with("msg_"));
    let body = r.json();
    assert_eq!(body["type"], "email.tracked");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
    let d = &body["data"];
    assert_eq!(
        (d["message_id"].as_str(), d["mailbox_id"].as_str()),
        (Some(message_id.as_str()), Some(mailbox.as_str()))
    );
    assert_eq!(
        (d["subject"].as_str(), d["direction"].as_str()),
        (Some("Signed"), Some("incoming"))
    );
    assert!(
        !r.body.contains(&org.secret[6..]),
        "no secret in the payload"
    );

    let log = wait_log(&s, &org, |d| d[0]["status"] == "delivered").await;
    assert_eq!(log[0]["event_id"], r.id().as_str());
    assert_eq!(log[0]["log"][0]["status_code"], 204);
    let text = s.stop().await;
    assert!(
        !text.contains(&org.secret[6..]),
        "the secret is never logged"
    );
}

/// The delivery log once `done` holds for it (bounded).
async fn wait_log(s: &Server, org: &Org, done: impl Fn(&Vec<Value>) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = org.deliveries(s).await;
        if !log.is_empty() && done(&log) {
            return log;
        }
        assert!(Instant::now() < deadline, "delivery log: {log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_receiver_answering_500_is_retried_until_it_accepts() {
    let receiver = Receiver::start().await;
    receiver.fail_next(2);
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let s = start(&data, "retry.log", &fast("0.3", 4)).await;
    let org = Org::set_up(&s, &data, 1, &receiver).await;
    let message_id = deliver(&org.users[0].1, "Retried").await;

    let got = wait("a request answered 2xx", Duration::from_secs(30), || {
        let all = receiver.requests();
        all.iter().any(Received::ok).then_some(all)
    })
    .await;
    let answers: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [500, 500, 204]);
    let ids: BTreeSet<String> = got.iter().map(Received::id).collect();
    assert_eq!(ids.len(), 1, "the same event, the same webhook-id: {ids:?}");
    for r in &got {
        assert_eq!(verify(&org.secret, r), Ok(()), "each attempt is signed");
        assert_eq!(r.json()["data"]["message_id"], message_id.as_str());
    }
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(250),
            "retried after the schedule's 0.3 s, not {gap:?}"
        );
    }

    let log = wait_log(&s, &org, |d| d[0]["status"] == "delivered").await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["attempts"], 3);
    let codes: Vec<&Value> = log[0]["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(204)]);
    let first = &log[0]["log"][0];
    assert_eq!(first["attempt"], 1);
    assert_eq!(
        first["error"],
        "the receiver answered 500 Internal Server Error"
    );
    assert_eq!(log[0]["log"][2]["error"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn kill_9_while_events_accumulate_loses_and_reorders_none_on_sqlite() {
    kill_9_while_events_accumulate(false).await
}

#[tokio::test]
async fn kill_9_while_events_accumulate_loses_and_reorders_none_on_postgres() {
    kill_9_while_events_accumulate(true).await
}

/// The `email.tracked` events written, as (id, seq, mailbox id) in `seq` order.
async fn tracked_events(database: &str) -> Vec<(String, i64, String)> {
    const SQL: &str = "SELECT id, seq, mailbox_id FROM webhook_events
        WHERE event_type = 'email.tracked' ORDER BY seq";
    if database.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(database).await.unwrap();
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::SqlitePool::connect(database).await.unwrap();
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

async fn kill_9_while_events_accumulate(postgres: bool) {
    const USERS: usize = 3;
    const BEFORE: usize = 20;
    const AFTER: usize = 5;
    let receiver = Receiver::start().await;
    receiver.fail_next(u64::MAX);
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // Retries every 0.2 s, never giving up within the test.
    let env = fast("0.2", 1000);
    let database = match postgres {
        true => Some(TestServers::from_env().fresh_postgres_url().await),
        false => None,
    };
    let first = Server::start_with(&data, database.as_deref(), "first.log", &pairs(&env)).await;
    let org = Org::set_up(&first, &data, USERS, &receiver).await;

    let mut expected = BTreeSet::new();
    for i in 0..BEFORE {
        for (_, user) in &org.users {
            expected.insert(deliver(user, &format!("Before {i}")).await);
        }
    }
    // Every email tracked (its event written), and the receiver refusing them
    // (each mailbox's first event a few times).
    let db = database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=ro", data.join("mailbridge.db").display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = tracked_events(&db).await.len();
        if n >= USERS * BEFORE && receiver.requests().len() >= 4 * USERS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} events after 60 s: {}",
            first.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let refused = receiver.requests().len();
    assert!(
        receiver.requests().iter().all(|r| !r.ok()),
        "nothing accepted before the kill"
    );

    // Mail that arrives while the service is down, then a healthy receiver.
    for i in 0..AFTER {
        for (_, user) in &org.users {
            expected.insert(deliver(user, &format!("After {i}")).await);
        }
    }
    receiver.fail_next(0);
    let second = Server::start_with(&data, database.as_deref(), "second.log", &pairs(&env)).await;
    let total = USERS * (BEFORE + AFTER);
    let accepted = wait("every event accepted", Duration::from_secs(120), || {
        let ok: Vec<Received> = receiver
            .requests()
            .into_iter()
            .filter(Received::ok)
            .collect();
        let unique: BTreeSet<String> = ok.iter().map(Received::id).collect();
        (unique.len() >= total).then_some(ok)
    })
    .await;
    // A few more polls deliver nothing twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let accepted_later = receiver.requests().into_iter().filter(Received::ok).count();
    eprintln!(
        "{refused} refused before the kill; {} accepted after the restart",
        accepted.len()
    );

    let events = tracked_events(&db).await;
    assert_eq!(events.len(), total, "one event per tracked email");
    let seq_of: BTreeMap<&str, (i64, &str)> = events
        .iter()
        .map(|(id, seq, m)| (id.as_str(), (*seq, m.as_str())))
        .collect();

    let ids: Vec<String> = accepted.iter().map(Received::id).collect();
    let unique: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let written: BTreeSet<&str> = seq_of.keys().copied().collect();
    assert_eq!(
        unique, written,
        "every event written was accepted, and nothing else"
    );
    assert_eq!(
        ids.len(),
        unique.len(),
        "none accepted twice (no crash interrupted an accepted one)"
    );
    assert_eq!(
        accepted_later,
        accepted.len(),
        "nothing delivered again later"
    );
    let message_ids: BTreeSet<String> = accepted
        .iter()
        .map(|r| r.json()["data"]["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(message_ids, expected, "every delivered message, once");

    // Per mailbox, in event order.
    let mut by_mailbox: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for r in &accepted {
        let (seq, mailbox) = seq_of[r.id().as_str()];
        assert_eq!(r.json()["data"]["mailbox_id"], mailbox);
        assert_eq!(verify(&org.secret, r), Ok(()));
        by_mailbox.entry(mailbox).or_default().push(seq);
    }
    assert_eq!(by_mailbox.len(), USERS);
    for (mailbox, seqs) in &by_mailbox {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "mailbox {mailbox} out of order: {seqs:?}"
        );
        assert_eq!(seqs.len(), BEFORE + AFTER);
    }
    // The refused attempts were in order too: each key's head only.
    let log = org.deliveries(&second).await;
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:?}");
    second.stop().await;
}
