//! The harness every benchmark shares: a fresh store, the API on a loopback port
//! and the engine in this process (as `crates/mailbridge/tests/sync/common.rs`
//! does), an organization with an approver and a profile on the test servers.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mailbridge_engine::{Engine, EngineConfig};
use mailbridge_store::{Cipher, Store, with_db};
use mailbridge_testkit::{TestServers, TestUser};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Database;

/// A running engine: stop it to let its runs finish and its leases go.
pub struct RunningEngine {
    pub engine: Arc<Engine>,
    stop: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningEngine {
    pub fn start(engine: Arc<Engine>) -> RunningEngine {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let handle = tokio::spawn(engine.clone().run(stopped));
        RunningEngine {
            engine,
            stop,
            handle,
        }
    }

    /// Stops the engine, waiting at most `within` for its runs in flight.
    pub async fn stop(self, within: Duration) {
        let _ = self.stop.send(true);
        let mut handle = self.handle;
        if tokio::time::timeout(within, &mut handle).await.is_err() {
            handle.abort();
        }
    }
}

pub struct World {
    pub servers: TestServers,
    pub store: Store,
    pub base: String,
    pub client: reqwest::Client,
    pub admin: String,
    pub org: String,
    pub approver: String,
    pub profile: String,
    pub engine: Option<RunningEngine>,
    /// The engine of this world, which the API wakes; it runs between
    /// [`World::start_engine`] and [`World::stop_engine`].
    node: Arc<Engine>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// The engine's settings for benchmarks: the shipped defaults, with the poll
/// interval given (polling is the fallback when push is off).
pub fn engine_config(push: bool, poll: Duration) -> EngineConfig {
    let defaults = EngineConfig::default();
    EngineConfig {
        push,
        timing: mailbridge_domain::schedule::Timing {
            poll,
            max_idle_poll: poll,
            ..defaults.timing
        },
        ..defaults
    }
}

/// A name no earlier run used (Dovecot users outlive a run of the benchmark).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    )
}

impl World {
    /// A fresh store and API; the engine is started separately ([`World::start_engine`]).
    pub async fn start(database: Database, config: EngineConfig) -> Result<World> {
        let servers = TestServers::try_from_env().context(
            "the test servers are not running: run the benchmarks with scripts/bench \
             (or the tests with ./scripts/test)",
        )?;
        let dir = tempfile::tempdir()?;
        let url = match database {
            Database::Sqlite => dir.path().join("bench.db").display().to_string(),
            Database::Postgres => servers.fresh_postgres_url().await,
        };
        let store = Store::open(
            &url,
            Cipher::from_base64(&Cipher::generate_key()).map_err(anyhow::Error::msg)?,
        )
        .await?;
        let admin = store.issue_system_admin_token("bench").await?.token;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let node = Engine::new(store.clone(), config);
        let app = mailbridge_http::app_for_engine(&node);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut w = World {
            servers,
            store,
            base,
            client: reqwest::Client::new(),
            admin,
            org: String::new(),
            approver: String::new(),
            profile: String::new(),
            engine: None,
            node,
            server,
            _dir: dir,
        };
        let org = w
            .call(
                Method::POST,
                "/api/v1/organizations",
                json!({"name": "Bench"}),
            )
            .await?;
        w.org = str_of(&org, "id")?;
        let approver = w
            .post(
                "/users",
                json!({"full_name": "Ann Approver", "role": "approver"}),
            )
            .await?;
        let token = w
            .post("/tokens", json!({"user_id": approver["id"]}))
            .await?;
        w.approver = str_of(&token, "token")?;
        let (imap, smtp) = (w.servers.imap_addr(), w.servers.smtp_addr());
        let profile = w
            .post(
                "/email-server-profiles",
                json!({"name": "Test Dovecot", "server_type": "imap_smtp", "allow_plaintext": true,
                       "incoming_server_location": format!("imap://{imap}"),
                       "outgoing_server_location": format!("smtp://{smtp}")}),
            )
            .await?;
        w.profile = str_of(&profile, "id")?;
        Ok(w)
    }

    pub fn start_engine(&mut self) -> Arc<Engine> {
        let running = RunningEngine::start(self.node.clone());
        let engine = running.engine.clone();
        self.engine = Some(running);
        engine
    }

    pub async fn stop_engine(&mut self) {
        if let Some(e) = self.engine.take() {
            e.stop(Duration::from_secs(30)).await;
        }
    }

    /// Stops the engine and the API and closes the store.
    pub async fn shutdown(mut self) {
        self.stop_engine().await;
        self.server.abort();
        self.store.close().await;
    }

    pub async fn call(&self, method: Method, path: &str, body: Value) -> Result<Value> {
        self.call_as(method, path, body, &self.admin).await
    }

    pub async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Value,
        token: &str,
    ) -> Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v)
    }

    pub fn org_path(&self, path: &str) -> String {
        format!("/api/v1/orgs/{}{path}", self.org)
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(Method::POST, &self.org_path(path), body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Value> {
        self.call(Method::PATCH, &self.org_path(path), body).await
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, &self.org_path(path), Value::Null)
            .await
    }

    /// `n` Dovecot users (added together: one wait for Dovecot's passwd reload),
    /// each a mailbridge user whose mailbox is on the profile, approved, with the
    /// tracking filter given; outgoing is off unless `outgoing`.
    /// Returns (mailbox id, login) pairs.
    pub async fn members(
        &self,
        prefix: &str,
        n: usize,
        filter: &str,
        outgoing: bool,
    ) -> Result<Vec<(String, TestUser)>> {
        self.members_with(prefix, n, filter, outgoing, &[]).await
    }

    /// Like [`World::members`] (outgoing off), each Dovecot user calling this
    /// world's mail-events endpoint after every delivery
    /// (contrib/dovecot/mailbridge-push.lua).
    pub async fn members_with_push_hook(
        &self,
        prefix: &str,
        n: usize,
        filter: &str,
    ) -> Result<Vec<(String, TestUser)>> {
        let url = format!(
            "{}{}",
            self.base,
            self.org_path(&format!(
                "/email-server-profiles/{}/mail-events",
                self.profile
            ))
        );
        let hook = [
            ("mailbridge_push_url", url.as_str()),
            ("mailbridge_push_token", self.admin.as_str()),
        ];
        self.members_with(prefix, n, filter, false, &hook).await
    }

    async fn members_with(
        &self,
        prefix: &str,
        n: usize,
        filter: &str,
        outgoing: bool,
        userdb: &[(&str, &str)],
    ) -> Result<Vec<(String, TestUser)>> {
        let names: Vec<String> = (0..n).map(|_| unique(prefix)).collect();
        let passwords: Vec<String> = names.iter().map(|name| format!("pw-{name}")).collect();
        let logins = futures_join_all(
            names
                .iter()
                .zip(&passwords)
                .map(|(name, pw)| self.servers.add_user_with(name, pw, userdb)),
        )
        .await;
        let mut out = Vec::with_capacity(n);
        for login in logins {
            let user = self
                .post(
                    "/users",
                    json!({"full_name": format!("User {}", login.login), "email": login.address,
                           "tracking_filter": filter}),
                )
                .await?;
            let mailbox = str_of(&user, "mailbox_id")?;
            let mut change = json!({"profile_id": self.profile, "password": login.password});
            if !outgoing {
                change["outgoing_method"] = json!("none");
            }
            self.patch(&format!("/mailboxes/{mailbox}"), change).await?;
            out.push((mailbox, login));
        }
        for chunk in out.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|(m, _)| m.as_str()).collect();
            self.call_as(
                Method::POST,
                &self.org_path("/mailboxes/approve"),
                json!({"ids": ids}),
                &self.approver,
            )
            .await?;
        }
        Ok(out)
    }

    /// Starts Test & Enable for the mailboxes; returns the job id.
    pub async fn start_test_and_enable(&self, ids: &[String]) -> Result<String> {
        let job = self
            .post("/mailboxes/test-and-enable", json!({"ids": ids}))
            .await?;
        str_of(&job, "id")
    }

    /// Waits for a job to end; fails unless it succeeded.
    pub async fn wait_job(&self, id: &str, timeout: Duration) -> Result<Value> {
        let job = wait_for(
            "the Test & Enable job",
            timeout,
            Duration::from_millis(20),
            // The status alone (the API's job answer lists every item: a megabyte
            // at 10,000 mailboxes), then the whole job once.
            || async {
                let done = self
                    .count_with(
                        "SELECT COUNT(*) FROM jobs WHERE org_id = $1 AND id = $2
                           AND status IN ('succeeded', 'failed')",
                        id,
                    )
                    .await
                    .ok()?;
                (done == 1).then_some(())
            },
        )
        .await;
        job?;
        let job = self.get(&format!("/jobs/{id}")).await?;
        if job["status"] != "succeeded" {
            bail!("Test & Enable did not succeed: {job}");
        }
        Ok(job)
    }

    /// A count from the store (`$1` is the organization).
    pub async fn count(&self, sql: &'static str) -> Result<i64> {
        let n = with_db!(self.store.db(), p => sqlx::query_scalar::<_, i64>(sql).bind(&self.org).fetch_one(p).await)?;
        Ok(n)
    }

    /// A count from the store (`$1` is the organization, `$2` the argument).
    pub async fn count_with(&self, sql: &'static str, arg: &str) -> Result<i64> {
        let n = with_db!(self.store.db(), p => sqlx::query_scalar::<_, i64>(sql).bind(&self.org).bind(arg).fetch_one(p).await)?;
        Ok(n)
    }

    /// The organization's emails created after the email `after` (ids are UUID v7,
    /// so in creation order): (id, Message-ID).
    pub async fn emails_after(&self, after: &str) -> Result<Vec<(String, Option<String>)>> {
        let rows = with_db!(self.store.db(), p => sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT id, message_id FROM emails WHERE org_id = $1 AND id > $2 ORDER BY id")
            .bind(&self.org).bind(after).fetch_all(p).await)?;
        Ok(rows)
    }
}

fn str_of(v: &Value, field: &str) -> Result<String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {field} in {v}"))
}

/// Runs futures concurrently on this task (no extra dependency).
pub async fn futures_join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..futs.len()).map(|_| None).collect();
    let mut futs: Vec<Option<_>> = futs.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in futs.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future is done"))
        .collect()
}

/// Polls `probe` every `every` until it yields a value, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}
