//! Nothing lost, nothing twice: `kill -9` of the service in the middle of
//! ingesting 2,000 messages, then a restart.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const MESSAGES: usize = 2000;

const FAST: &[(&str, &str)] = &[
    ("MAILBRIDGE_LOG", "info,mailbridge_engine=debug"),
    ("MAILBRIDGE_TICK_MILLIS", "100"),
    ("MAILBRIDGE_POLL_INTERVAL_SECONDS", "1"),
    ("MAILBRIDGE_MAX_IDLE_POLL_SECONDS", "2"),
    ("MAILBRIDGE_RETRY_DELAY_SECONDS", "1"),
    ("MAILBRIDGE_LEASE_SECONDS", "5"),
];

async fn ok(s: &Server, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, v) = s.call(method.clone(), path, token, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

/// Every Message-ID of the organization's emails (all pages).
async fn message_ids(s: &Server, org: &str, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = ok(
            s,
            Method::GET,
            &format!("/api/v1/orgs/{org}/emails?limit=500{cursor}"),
            token,
            None,
        )
        .await;
        out.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message_id"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test]
async fn kill_9_mid_ingest_loses_and_duplicates_nothing() {
    let servers = mailbridge_testkit::TestServers::from_env();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let first = Server::start_with(&data, None, "first.log", FAST).await;
    let admin = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let org = ok(
        &first,
        Method::POST,
        "/api/v1/organizations",
        &admin,
        Some(json!({"name": "Crash"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/api/v1/orgs/{org}");
    let approver = ok(
        &first,
        Method::POST,
        &format!("{base}/users"),
        &admin,
        Some(json!({"full_name": "Ann", "role": "approver"})),
    )
    .await;
    let approver = ok(
        &first,
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
        &first,
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
    let name = format!("crash{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let login = servers.add_user(&name, "pw-crash").await;
    let user = ok(
        &first,
        Method::POST,
        &format!("{base}/users"),
        &admin,
        Some(json!({"full_name": "Carla", "email": login.address, "tracking_filter": "all"})),
    )
    .await;
    let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
    ok(
        &first,
        Method::PATCH,
        &format!("{base}/mailboxes/{mailbox}"),
        &admin,
        Some(
            json!({"profile_id": profile["id"], "password": "pw-crash", "outgoing_method": "none"}),
        ),
    )
    .await;
    ok(
        &first,
        Method::POST,
        &format!("{base}/mailboxes/approve"),
        &approver,
        Some(json!({"ids": [mailbox]})),
    )
    .await;
    let t0 = Instant::now();
    let mut expected = BTreeSet::new();
    for i in 0..MESSAGES {
        let id = format!("crash-{i}-{name}@test.example.org");
        let raw = format!(
            "From: sender{}@fabrikam.com\r\nTo: {}\r\nSubject: Message {i}\r\nMessage-ID: <{id}>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nBody {i}\r\n",
            i % 17,
            login.address
        );
        servers.write_to_inbox(&login.login, raw.as_bytes());
        expected.insert(id);
    }
    eprintln!("{MESSAGES} messages written in {:?}", t0.elapsed());
    let job = ok(
        &first,
        Method::POST,
        &format!("{base}/mailboxes/test-and-enable"),
        &admin,
        Some(json!({"ids": [mailbox]})),
    )
    .await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    // Kill in the middle: once a few hundred are in, well before all. The count
    // is read from the database file itself, which costs the server nothing.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        data.join("mailbridge.db").display()
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM emails")
            .fetch_one(&db)
            .await
            .unwrap();
        if n >= 300 {
            break n as usize;
        }
        assert!(
            Instant::now() < deadline,
            "ingest did not start: {n} after 120 s; job {job_id}: {}",
            first.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    db.close().await;
    eprintln!("killed with {at_kill} emails at {:?}", t0.elapsed());
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(
        at_kill < MESSAGES,
        "killed mid-ingest ({at_kill} of {MESSAGES})"
    );

    let second = Server::start_with(&data, None, "second.log", FAST).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let ids = loop {
        let ids = message_ids(&second, &org, &admin).await;
        let found = ids.iter().filter(|i| expected.contains(*i)).count();
        if found >= MESSAGES {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "only {found} of {MESSAGES} after the restart: {}",
            second.log_text()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    eprintln!("all {MESSAGES} after the restart at {:?}", t0.elapsed());
    let ours: Vec<&String> = ids.iter().filter(|i| expected.contains(*i)).collect();
    let unique: BTreeSet<&String> = ours.iter().copied().collect();
    assert_eq!(ours.len(), MESSAGES, "exactly {MESSAGES} email activities");
    assert_eq!(unique.len(), MESSAGES, "none duplicated");
    let log = second.stop().await;
    if std::env::var("CRASH_LOG").is_ok() {
        eprintln!("{log}");
    }
}
