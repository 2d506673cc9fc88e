//! `World`: a store, the engine (with short timings) and the API, plus helpers
//! to make users whose mailboxes live on the test Dovecot.

use std::future::Future;
use std::time::{Duration, Instant};

use mailbridge_engine::{Engine, EngineConfig};
use mailbridge_store::{Cipher, Store};
use mailbridge_testkit::{TestServers, TestUser};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct World {
    pub servers: TestServers,
    pub engine: std::sync::Arc<Engine>,
    pub store: Store,

    pub base: String,
    pub client: reqwest::Client,
    pub admin: String,
    pub org: String,
    pub approver: String,
    pub profile: String,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// Short timings so that tests finish in seconds.
pub fn fast_engine() -> EngineConfig {
    let defaults = EngineConfig::default();
    EngineConfig {
        tick: Duration::from_millis(100),
        lease: Duration::from_secs(10),
        timing: mailbridge_domain::schedule::Timing {
            poll: Duration::from_secs(1),
            max_idle_poll: Duration::from_secs(2),
            retry_delay: Duration::from_secs(1),
            max_retries: 2,
        },
        network_timeout: Duration::from_secs(10),
        ..defaults
    }
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    )
}

impl World {
    pub async fn start(backend: Backend, engine: EngineConfig) -> World {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let servers = TestServers::from_env();
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Sqlite => dir.path().join("sync.db").display().to_string(),
            Backend::Postgres => servers.fresh_postgres_url().await,
        };
        let store: Store = Store::open(&url, Cipher::from_base64(&Cipher::generate_key()).unwrap())
            .await
            .unwrap();
        let admin = store.issue_system_admin_token("test").await.unwrap().token;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let engine = Engine::new(store.clone(), engine);
        let app = mailbridge_http::app_for_engine(&engine);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        tokio::spawn(engine.clone().run(stopped));
        let mut w = World {
            servers,
            engine,
            store: store.clone(),

            base,
            client: reqwest::Client::new(),
            admin,
            org: String::new(),
            approver: String::new(),
            profile: String::new(),
            stop,
            _dir: dir,
        };
        let org = w
            .call(
                Method::POST,
                "/api/v1/organizations",
                json!({"name": "Contoso"}),
            )
            .await;
        w.org = org["id"].as_str().unwrap().to_owned();
        let approver = w
            .post(
                "/users",
                json!({"full_name": "Ann Approver", "role": "approver"}),
            )
            .await;
        let token = w.post("/tokens", json!({"user_id": approver["id"]})).await;
        w.approver = token["token"].as_str().unwrap().to_owned();
        let (imap, smtp) = (w.servers.imap_addr(), w.servers.smtp_addr());
        let profile = w
            .post(
                "/email-server-profiles",
                json!({"name": "Test Dovecot", "server_type": "imap_smtp", "allow_plaintext": true,
                       "incoming_server_location": format!("imap://{imap}"),
                       "outgoing_server_location": format!("smtp://{smtp}"),
                       "move_failed_to_undeliverable": true}),
            )
            .await;
        w.profile = profile["id"].as_str().unwrap().to_owned();
        w
    }

    /// A request as the system administrator; panics unless it answers 2xx.
    pub async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, v) = self.try_call(method.clone(), path, body, &self.admin).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Value,
        token: &str,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POST under the organization.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(
            Method::POST,
            &format!("/api/v1/orgs/{}{path}", self.org),
            body,
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        self.call(
            Method::PATCH,
            &format!("/api/v1/orgs/{}{path}", self.org),
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(
            Method::GET,
            &format!("/api/v1/orgs/{}{path}", self.org),
            Value::Null,
        )
        .await
    }

    /// A Dovecot user and a mailbridge user on that address, with the mailbox's
    /// credentials set, on the test profile, approved. Returns (user, mailbox id, login).
    pub async fn member(&self, filter: &str) -> (Value, String, TestUser) {
        self.member_with(filter, &[]).await
    }

    /// Like [`World::member`], the Dovecot user calling this World's mail-events
    /// endpoint after each delivery (contrib/dovecot/mailbridge-push.lua).
    pub async fn member_with_push_hook(&self, filter: &str) -> (Value, String, TestUser) {
        let url = format!(
            "{}/api/v1/orgs/{}/email-server-profiles/{}/mail-events",
            self.base, self.org, self.profile
        );
        self.member_with(
            filter,
            &[
                ("mailbridge_push_url", &url),
                ("mailbridge_push_token", &self.admin),
            ],
        )
        .await
    }

    async fn member_with(
        &self,
        filter: &str,
        userdb: &[(&str, &str)],
    ) -> (Value, String, TestUser) {
        let name = unique("u");
        let login = self
            .servers
            .add_user_with(&name, &format!("pw-{name}"), userdb)
            .await;
        let user = self
            .post("/users", json!({"full_name": format!("User {name}"), "email": login.address, "tracking_filter": filter}))
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        self.patch(
            &format!("/mailboxes/{mailbox}"),
            json!({"profile_id": self.profile, "password": login.password}),
        )
        .await;
        let (status, v) = self
            .try_call(
                Method::POST,
                &format!("/api/v1/orgs/{}/mailboxes/approve", self.org),
                json!({"ids": [mailbox]}),
                &self.approver,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        (user, mailbox, login)
    }

    /// Runs Test & Enable for the mailboxes and waits for the job to end.
    pub async fn test_and_enable(&self, ids: &[&str]) -> Value {
        let job = self
            .post("/mailboxes/test-and-enable", json!({"ids": ids}))
            .await;
        let id = job["id"].as_str().unwrap().to_owned();
        wait("the Test & Enable job", Duration::from_secs(30), || async {
            let j = self.get(&format!("/jobs/{id}")).await;
            (j["status"] == "succeeded" || j["status"] == "failed").then_some(j)
        })
        .await
    }

    /// The emails of the organization matching a query string (all pages).
    pub async fn emails(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        for _ in 0..100 {
            let page = self.get(&format!("/emails?limit=500{query}{cursor}")).await;
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        out
    }

    /// The decisions of a mailbox matching a query string.
    pub async fn decisions(&self, mailbox: &str, query: &str) -> Vec<Value> {
        let page = self
            .get(&format!("/mailboxes/{mailbox}/messages?limit=500{query}"))
            .await;
        page["items"].as_array().unwrap().clone()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Polls `probe` every 50 ms until it yields a value or `timeout` passes.
pub async fn wait<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain message with a unique Message-ID; returns (bytes, Message-ID).
pub fn message(from: &str, to: &[&str], subject: &str, extra_headers: &str) -> (Vec<u8>, String) {
    let id = format!("{}@test.example.org", uuid::Uuid::now_v7().simple());
    let raw = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: {}\r\n{extra_headers}\r\nHello from the test.\r\n",
        to.join(", "),
        chrono::Utc::now().to_rfc2822(),
    );
    (raw.into_bytes(), id)
}

/// One email by Message-ID, once it exists.
pub async fn email_by_message_id(w: &World, id: &str, timeout: Duration) -> Value {
    wait(&format!("the email <{id}>"), timeout, || async {
        w.emails(&format!("&message_id={id}"))
            .await
            .into_iter()
            .next()
    })
    .await
}

/// The first decision of a mailbox on a Message-ID (with more of a query string),
/// once there is one.
pub async fn decision_on(
    w: &World,
    mailbox: &str,
    id: &str,
    query: &str,
    timeout: Duration,
) -> Value {
    wait(&format!("a decision on <{id}>"), timeout, || async {
        w.decisions(mailbox, &format!("&message_id={id}{query}"))
            .await
            .into_iter()
            .next()
    })
    .await
}
