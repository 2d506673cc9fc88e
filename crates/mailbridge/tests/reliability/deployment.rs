//! A deployment of the binary for fault tests: nodes on one database (SQLite in
//! the first node's data directory, or a PostgreSQL URL), an organization with an
//! approver, mailboxes on the test Dovecot, what the database holds counted from
//! the database itself, and the seeded generator that draws the fault points.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mailbridge_testkit::{TestServers, TestUser};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Server;

/// Short timings, so that a run resumes within a second of a restart. The log
/// stays at `info` (debug for the engine): at `trace`, 10,000 messages fill the disk.
pub const FAST: &[(&str, &str)] = &[
    ("MAILBRIDGE_LOG", "info,mailbridge_engine=debug"),
    ("MAILBRIDGE_TICK_MILLIS", "100"),
    ("MAILBRIDGE_POLL_INTERVAL_SECONDS", "1"),
    ("MAILBRIDGE_MAX_IDLE_POLL_SECONDS", "2"),
    ("MAILBRIDGE_RETRY_DELAY_SECONDS", "1"),
    ("MAILBRIDGE_LEASE_SECONDS", "5"),
];

/// The nodes' shared settings and the organization they serve.
pub struct Deployment {
    root: tempfile::TempDir,
    database: Option<String>,
    env: Vec<(String, String)>,
    pub admin: String,
    pub org: String,
    approver: String,
}

impl Deployment {
    /// Starts the first node (`a`) on `database` (None: SQLite) with `env`, and
    /// creates an organization with an approver.
    pub async fn start(database: Option<String>, env: &[(&str, &str)]) -> (Deployment, Server) {
        let mut root = tempfile::tempdir().unwrap();
        // The nodes' logs and data, kept for a look after the run.
        if std::env::var("MAILBRIDGE_KEEP_TEST_DIR").as_deref() == Ok("1") {
            root.disable_cleanup(true);
            eprintln!("nodes' data and logs kept in {}", root.path().display());
        }
        let mut d = Deployment {
            root,
            database,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            admin: String::new(),
            org: String::new(),
            approver: String::new(),
        };
        let node = d.node("a", "a-0.log").await;
        // The other nodes read the store with the first node's key.
        let key = std::fs::read_to_string(d.data_dir("a").join("secret.key")).unwrap();
        d.env
            .push(("MAILBRIDGE_SECRET_KEY".to_owned(), key.trim().to_owned()));
        d.admin = std::fs::read_to_string(d.data_dir("a").join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let org = ok(
            &node,
            Method::POST,
            "/api/v1/organizations",
            &d.admin,
            json!({"name": "Reliability"}),
        )
        .await;
        d.org = org["id"].as_str().unwrap().to_owned();
        let approver = d
            .post(
                &node,
                "/users",
                json!({"full_name": "Ann", "role": "approver"}),
            )
            .await;
        let token = d
            .post(&node, "/tokens", json!({"user_id": approver["id"]}))
            .await;
        d.approver = token["token"].as_str().unwrap().to_owned();
        (d, node)
    }

    pub fn data_dir(&self, node: &str) -> PathBuf {
        self.root.path().join(node)
    }

    /// Starts node `name` (its data directory keeps its node id across restarts),
    /// logging to `log` beside the data directories; returns once /healthz answers.
    pub async fn node(&self, name: &str, log: &str) -> Server {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Server::start_with(&self.data_dir(name), self.database.as_deref(), log, &env).await
    }

    /// A request under the organization as the administrator; 2xx expected.
    pub async fn call(&self, s: &Server, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/api/v1/orgs/{}{path}", self.org);
        ok(s, method, &path, &self.admin, body).await
    }

    pub async fn post(&self, s: &Server, path: &str, body: Value) -> Value {
        self.call(s, Method::POST, path, body).await
    }

    /// A profile on the test Dovecot and the SMTP server at `smtp`; returns its id.
    pub async fn imap_profile(
        &self,
        s: &Server,
        servers: &TestServers,
        smtp: SocketAddr,
    ) -> String {
        let profile = self
            .post(
                s,
                "/email-server-profiles",
                json!({"name": "Dovecot", "server_type": "imap_smtp", "allow_plaintext": true,
                       "incoming_server_location": format!("imap://{}", servers.imap_addr()),
                       "outgoing_server_location": format!("smtp://{smtp}")}),
            )
            .await;
        profile["id"].as_str().unwrap().to_owned()
    }

    /// A user tracking all email, whose approved mailbox on `profile` signs in as
    /// `login`, sending email too when `outgoing`; returns the mailbox id.
    pub async fn mailbox(
        &self,
        s: &Server,
        profile: &str,
        login: &TestUser,
        outgoing: bool,
    ) -> String {
        let user = self
            .post(
                s,
                "/users",
                json!({"full_name": login.login, "email": login.address, "tracking_filter": "all"}),
            )
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        let outgoing_method = if outgoing { "server_side_sync" } else { "none" };
        self.call(
            s,
            Method::PATCH,
            &format!("/mailboxes/{mailbox}"),
            json!({"profile_id": profile, "password": login.password,
                   "outgoing_method": outgoing_method}),
        )
        .await;
        ok(
            s,
            Method::POST,
            &format!("/api/v1/orgs/{}/mailboxes/approve", self.org),
            &self.approver,
            json!({"ids": [mailbox]}),
        )
        .await;
        mailbox
    }

    /// Queues Test & Enable of `ids`; returns the job id.
    pub async fn test_and_enable(&self, s: &Server, ids: &[String]) -> String {
        let job = self
            .post(s, "/mailboxes/test-and-enable", json!({"ids": ids}))
            .await;
        job["id"].as_str().unwrap().to_owned()
    }

    /// Waits (bounded) until job `job` succeeded; panics when it failed.
    pub async fn wait_job(&self, s: &Server, job: &str) {
        until("the job", Duration::from_secs(60), || async {
            let path = format!("/jobs/{job}?items=false");
            let j = self.call(s, Method::GET, &path, Value::Null).await;
            match j["status"].as_str() {
                Some("succeeded") => Ok(()),
                Some("failed") => panic!("job {job} failed: {j}"),
                _ => Err(j.to_string()),
            }
        })
        .await;
    }

    /// The database, read beside the nodes (SQLite read-only).
    pub async fn reader(&self) -> Reader {
        match &self.database {
            Some(url) => Reader::Postgres(sqlx::PgPool::connect(url).await.unwrap()),
            None => {
                let file = self.data_dir("a").join("mailbridge.db");
                let url = format!("sqlite://{}?mode=ro", file.display());
                Reader::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap())
            }
        }
    }
}

async fn ok(s: &Server, method: Method, path: &str, token: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let (status, v) = s.call(method.clone(), path, token, body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

/// The database of a deployment, for counts the nodes' API would page through.
pub enum Reader {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Reader {
    /// `(key, count)` rows of a `SELECT key, COUNT(*) ... GROUP BY key` with one
    /// parameter.
    pub async fn groups(
        &self,
        sql: &'static str,
        param: &str,
    ) -> Result<Vec<(Option<String>, i64)>, sqlx::Error> {
        match self {
            Reader::Sqlite(p) => sqlx::query_as(sql).bind(param).fetch_all(p).await,
            Reader::Postgres(p) => sqlx::query_as(sql).bind(param).fetch_all(p).await,
        }
    }

    /// How many email activities the organization has.
    pub async fn emails(&self, org: &str) -> Result<i64, sqlx::Error> {
        const SQL: &str = "SELECT COUNT(*) FROM emails WHERE org_id = $1";
        match self {
            Reader::Sqlite(p) => sqlx::query_scalar(SQL).bind(org).fetch_one(p).await,
            Reader::Postgres(p) => sqlx::query_scalar(SQL).bind(org).fetch_one(p).await,
        }
    }

    /// The organization's email activities by Message-ID.
    pub async fn emails_by_message_id(&self, org: &str) -> BTreeMap<String, i64> {
        let rows = self
            .groups(
                "SELECT message_id, COUNT(*) FROM emails WHERE org_id = $1 GROUP BY message_id",
                org,
            )
            .await
            .unwrap();
        by_id(rows)
    }

    /// The decisions taken on the organization's messages, by Message-ID.
    pub async fn decisions_by_message_id(&self, org: &str) -> BTreeMap<String, i64> {
        let rows = self
            .groups(
                "SELECT message_id, COUNT(*) FROM message_decisions WHERE org_id = $1 GROUP BY message_id",
                org,
            )
            .await
            .unwrap();
        by_id(rows)
    }

    pub async fn close(self) {
        match self {
            Reader::Sqlite(p) => p.close().await,
            Reader::Postgres(p) => p.close().await,
        }
    }
}

/// Rows keyed by Message-ID without angle brackets (decisions keep them).
fn by_id(rows: Vec<(Option<String>, i64)>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (id, n) in rows {
        let id = id.unwrap_or_default();
        let id = id.trim_matches(|c| c == '<' || c == '>').to_owned();
        *out.entry(id).or_default() += n;
    }
    out
}

/// What became of the expected messages: the figures every fault test prints.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Rows for the expected Message-IDs.
    pub found: usize,
    /// Expected Message-IDs without a row.
    pub lost: usize,
    /// Rows beyond the first for an expected Message-ID.
    pub duplicated: usize,
}

pub fn tally(expected: &BTreeSet<String>, rows: &BTreeMap<String, i64>) -> Tally {
    let mut t = Tally::default();
    for id in expected {
        match rows.get(id).copied().unwrap_or(0) {
            0 => t.lost += 1,
            n => {
                t.found += n as usize;
                t.duplicated += n as usize - 1;
            }
        }
    }
    t
}

/// How many times the SMTP server received each email, by its name: the local
/// part of its recipient, one of its own (the subject gets the tracking token
/// appended, so it is not the name).
pub fn sent_counts(servers: &TestServers, names: &[String]) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = names.iter().map(|s| (s.clone(), 0)).collect();
    for m in servers.smtp_received() {
        for rcpt in &m.rcpt_tos {
            if let Some(n) = counts.get_mut(rcpt.split('@').next().unwrap_or_default()) {
                *n += 1;
            }
        }
    }
    counts
}

/// A tracked message to `to`, numbered `i`, with its Message-ID (without brackets).
pub fn message(tag: &str, i: usize, to: &str) -> (Vec<u8>, String) {
    let id = format!("{tag}-{i}@reliability.example.org");
    let raw = format!(
        "From: sender{}@fabrikam.com\r\nTo: {to}\r\nSubject: {tag} {i}\r\nMessage-ID: <{id}>\r\nDate: Thu, 26 Nov 2026 08:00:00 +0000\r\n\r\nBody {i}\r\n",
        i % 17,
    );
    (raw.into_bytes(), id)
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

/// Waits (bounded) until `probe` gives a value; panics with `what` and the
/// last value seen otherwise.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}; last: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `kill -9` of a node; waits for the process to be gone.
pub fn kill9(mut node: Server) {
    node.child.kill().unwrap();
    node.child.wait().unwrap();
}

/// Whether the node's process still runs.
pub fn alive(node: &mut Server) -> bool {
    matches!(node.child.try_wait(), Ok(None))
}

/// The variable that fixes the seed of the fault points, to replay a run.
pub const SEED_VAR: &str = "MAILBRIDGE_FAULT_SEED";

/// [`SEED_VAR`] when set (decimal), else a new seed from the clock.
pub fn fault_seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={v:?} is not a decimal u64")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            Rng(nanos ^ u64::from(std::process::id())).below(1_000_000_000)
        }
    }
}

/// SplitMix64: the same sequence for a seed on every platform and version.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
