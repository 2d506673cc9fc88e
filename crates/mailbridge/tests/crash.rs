//! Nothing lost, nothing twice: `kill -9` of the service in the middle of
//! ingesting 2,000 messages over IMAP, or 1,500 through Microsoft Graph (the
//! testkit's Graph test server), then a restart.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mailbridge_testkit::graph_server::GraphTestServer;
use mailbridge_testkit::identity_server::{AppRegistration, TestIdentityProvider};
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const MESSAGES: usize = 2000;
const GRAPH_MESSAGES: usize = 1500;

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

/// A first run of the binary with an organization, an approver and their tokens;
/// the mailbox under test is ingested, killed with `kill -9` in the middle, and
/// checked after a restart.
struct Crash {
    _root: tempfile::TempDir,
    data: PathBuf,
    server: Server,
    admin: String,
    org: String,
    approver: String,
}

impl Crash {
    async fn start() -> Crash {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let server = Server::start_with(&data, None, "first.log", FAST).await;
        let admin = std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let org = ok(
            &server,
            Method::POST,
            "/api/v1/organizations",
            &admin,
            Some(json!({"name": "Crash"})),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut c = Crash {
            _root: root,
            data,
            server,
            admin,
            org,
            approver: String::new(),
        };
        let approver = c
            .post("/users", json!({"full_name": "Ann", "role": "approver"}))
            .await;
        c.approver = c.post("/tokens", json!({"user_id": approver["id"]})).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        c
    }

    /// A request under the organization as the administrator; 2xx expected.
    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/api/v1/orgs/{}{path}", self.org);
        ok(&self.server, method, &path, &self.admin, Some(body)).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(Method::POST, path, body).await
    }

    /// A user tracking all email whose mailbox is on `profile`, receive-only,
    /// approved (`settings` are patched onto the mailbox); returns the mailbox id.
    async fn mailbox(&self, address: &str, profile: &Value, settings: Value) -> String {
        let user = self
            .post(
                "/users",
                json!({"full_name": "Carla", "email": address, "tracking_filter": "all"}),
            )
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        let mut patch = json!({"profile_id": profile["id"], "outgoing_method": "none"});
        for (k, v) in settings.as_object().unwrap() {
            patch[k] = v.clone();
        }
        self.call(Method::PATCH, &format!("/mailboxes/{mailbox}"), patch)
            .await;
        ok(
            &self.server,
            Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/approve", self.org),
            &self.approver,
            Some(json!({"ids": [mailbox]})),
        )
        .await;
        mailbox
    }

    fn db_url(&self) -> String {
        format!(
            "sqlite://{}?mode=ro",
            self.data.join("mailbridge.db").display()
        )
    }

    /// Test & Enable of `mailbox`, `kill -9` once a few hundred of the `expected`
    /// messages are in, a restart; then every expected Message-ID is there
    /// exactly once, with exactly one decision each.
    async fn kill_mid_ingest_and_check(self, mailbox: &str, expected: &BTreeSet<String>) {
        let t0 = Instant::now();
        let total = expected.len();
        let db_url = self.db_url();
        let job = self
            .post("/mailboxes/test-and-enable", json!({"ids": [mailbox]}))
            .await;
        let job_id = job["id"].as_str().unwrap().to_owned();
        // Kill in the middle: once a few hundred are in, well before all. The
        // count is read from the database file itself, which costs the server
        // nothing.
        let db = sqlx::SqlitePool::connect(&db_url).await.unwrap();
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
                self.server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        db.close().await;
        eprintln!("killed with {at_kill} emails at {:?}", t0.elapsed());
        let mut first = self.server;
        first.child.kill().unwrap();
        first.child.wait().unwrap();
        assert!(at_kill < total, "killed mid-ingest ({at_kill} of {total})");

        let second = Server::start_with(&self.data, None, "second.log", FAST).await;
        let deadline = Instant::now() + Duration::from_secs(180);
        let ids = loop {
            let ids = message_ids(&second, &self.org, &self.admin).await;
            let found = ids.iter().filter(|i| expected.contains(*i)).count();
            if found >= total {
                break ids;
            }
            assert!(
                Instant::now() < deadline,
                "only {found} of {total} after the restart: {}",
                second.log_text()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        eprintln!("all {total} after the restart at {:?}", t0.elapsed());
        let ours: Vec<&String> = ids.iter().filter(|i| expected.contains(*i)).collect();
        let unique: BTreeSet<&String> = ours.iter().copied().collect();
        assert_eq!(ours.len(), total, "exactly {total} email activities");
        assert_eq!(unique.len(), total, "none duplicated");
        let log = second.stop().await;
        if std::env::var("CRASH_LOG").is_ok() {
            eprintln!("{log}");
        }
        // The decision trail: one decision per message, none taken twice.
        let db = sqlx::SqlitePool::connect(&db_url).await.unwrap();
        let decided: Vec<Option<String>> =
            sqlx::query_scalar("SELECT message_id FROM message_decisions WHERE mailbox_id = $1")
                .bind(mailbox)
                .fetch_all(&db)
                .await
                .unwrap();
        db.close().await;
        let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
        for id in decided.into_iter().flatten() {
            let id = id.trim_matches(|c| c == '<' || c == '>').to_owned();
            if expected.contains(&id) {
                *per_id.entry(id).or_default() += 1;
            }
        }
        let twice: Vec<(&String, &usize)> = per_id.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "decided more than once: {twice:?}");
        assert_eq!(per_id.len(), total, "a decision for every message");
    }
}

/// A message of the crash tests, with its Message-ID.
fn crash_message(i: usize, name: &str, to: &str) -> (String, String) {
    let id = format!("crash-{i}-{name}@test.example.org");
    let raw = format!(
        "From: sender{}@fabrikam.com\r\nTo: {to}\r\nSubject: Message {i}\r\nMessage-ID: <{id}>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nBody {i}\r\n",
        i % 17,
    );
    (raw, id)
}

fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

#[tokio::test]
async fn kill_9_mid_ingest_loses_and_duplicates_nothing() {
    let servers = mailbridge_testkit::TestServers::from_env();
    let c = Crash::start().await;
    let profile = c
        .post(
            "/email-server-profiles",
            json!({"name": "Dovecot", "server_type": "imap_smtp", "allow_plaintext": true,
                   "incoming_server_location": format!("imap://{}", servers.imap_addr()),
                   "outgoing_server_location": format!("smtp://{}", servers.smtp_addr())}),
        )
        .await;
    let name = unique_name("crash");
    let login = servers.add_user(&name, "pw-crash").await;
    let mailbox = c
        .mailbox(&login.address, &profile, json!({"password": "pw-crash"}))
        .await;
    let t0 = Instant::now();
    let mut expected = BTreeSet::new();
    for i in 0..MESSAGES {
        let (raw, id) = crash_message(i, &name, &login.address);
        servers.write_to_inbox(&login.login, raw.as_bytes());
        expected.insert(id);
    }
    eprintln!("{MESSAGES} messages written in {:?}", t0.elapsed());
    c.kill_mid_ingest_and_check(&mailbox, &expected).await;
}

/// The same against Exchange Online: the Graph test server and the test identity
/// provider live in this process, so they stay up across the kill and the
/// restart of the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_graph_ingest_loses_and_duplicates_nothing() {
    const APP: &str = "0b7c2a3e-5d1f-4e8a-9c6b-2f4d8e1a7b90";
    let idp = TestIdentityProvider::start().await;
    let tenant = idp.add_tenant();
    let graph = GraphTestServer::start_with(|url| idp.graph_token_check(&tenant, url)).await;
    let c = Crash::start().await;
    let cert = c
        .post(
            "/certificates/generate",
            json!({"name": "Exchange Online", "validity_days": 30}),
        )
        .await;
    let cert_id = cert["id"].as_str().unwrap().to_owned();
    let pem = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/orgs/{}/certificates/{cert_id}/certificate.pem",
            c.server.base, c.org
        ))
        .bearer_auth(&c.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    idp.register_app(
        &tenant,
        AppRegistration::new(APP).with_certificate_pem(&pem),
    );
    let profile = c
        .post(
            "/email-server-profiles",
            json!({"name": "Exchange Online", "server_type": "exchange_online", "allow_plaintext": true,
                   "application_id": APP, "use_default_tenant_id": false, "tenant_id": tenant,
                   "certificate_id": cert_id, "authority_url": idp.authority_url(),
                   "graph_url": graph.base_url().trim_end_matches("/v1.0")}),
        )
        .await;
    let name = unique_name("crash");
    let address = format!("{name}@contoso.example");
    graph.add_user(&address);
    let mailbox = c.mailbox(&address, &profile, json!({})).await;
    let mut expected = BTreeSet::new();
    for i in 0..GRAPH_MESSAGES {
        let (raw, id) = crash_message(i, &name, &address);
        graph.deliver(&address, "inbox", raw.as_bytes());
        expected.insert(id);
    }
    c.kill_mid_ingest_and_check(&mailbox, &expected).await;
    assert!(
        graph.requests_without_immutable_ids() == 0,
        "every mailbox request asked for immutable ids"
    );
}
