//! The fault test's world: a store, the engine and the API in this process, a
//! profile whose servers are reached through fault proxies, one member whose
//! mailbox runs all three workloads, the user's calendar and address book app, and
//! the counts of what arrived where.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mailbridge_connectors::dav::{CollectionKind, DavClient, DavConfig, ItemFormat};
use mailbridge_domain::act::model::ActKind;
use mailbridge_domain::secret::Secret;
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

/// Short timings, so that a fault costs a second, not minutes. The retry budget is
/// production's (10 transient failures in a row before a workload stops); only its
/// delay is shortened, from 5 minutes to 1 s.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        tick: Duration::from_millis(100),
        lease: Duration::from_secs(10),
        timing: mailbridge_domain::schedule::Timing {
            poll: Duration::from_secs(1),
            max_idle_poll: Duration::from_secs(2),
            retry_delay: Duration::from_secs(1),
            ..Default::default()
        },
        // Short enough that a stall trips it, long enough for a loaded machine.
        network_timeout: Duration::from_secs(2),
        // Smaller batches: more checkpoints for the faults to fall between.
        fetch_batch: 50,
        ..EngineConfig::default()
    }
}

/// A Message-ID without its angle brackets.
pub fn norm_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

pub struct World {
    pub servers: TestServers,
    pub store: Store,
    base: String,
    client: reqwest::Client,
    admin: String,
    pub org: String,
    approver: String,
    profile: String,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A user whose mailbox runs incoming, outgoing and ACT on the profile.
pub struct Member {
    pub user: String,
    pub mailbox: String,
    pub login: TestUser,
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
            Backend::Sqlite => dir.path().join("faults.db").display().to_string(),
            Backend::Postgres => servers.fresh_postgres_url().await,
        };
        let key = Cipher::from_base64(&Cipher::generate_key()).unwrap();
        let store = Store::open(&url, key).await.unwrap();
        let admin = store.issue_system_admin_token("test").await.unwrap().token;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let engine = Engine::new(store.clone(), engine);
        let app = mailbridge_http::app_for_engine(&engine);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        tokio::spawn(engine.run(stopped));
        let mut w = World {
            servers,
            store,
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
                json!({"name": "Faults"}),
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
        w
    }

    /// The profile: IMAP, SMTP and CalDAV/CardDAV at these (proxy) addresses.
    pub async fn profile(&mut self, imap: SocketAddr, smtp: SocketAddr, dav: SocketAddr) {
        let p = self
            .post(
                "/email-server-profiles",
                json!({"name": "Dovecot behind fault proxies", "server_type": "imap_smtp",
                       "allow_plaintext": true,
                       "incoming_server_location": format!("imap://{imap}"),
                       "outgoing_server_location": format!("smtp://{smtp}"),
                       "dav_location": format!("http://{dav}/"),
                       "move_failed_to_undeliverable": true}),
            )
            .await;
        self.profile = p["id"].as_str().unwrap().to_owned();
    }

    /// A new user on Dovecot, the SMTP server and Radicale, and its mailbox on the
    /// profile: tracking all incoming email, sending, ACT by server-side sync; approved.
    pub async fn member(&self) -> Member {
        let name = format!("f{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
        let login = self.servers.add_user(&name, &format!("pw-{name}")).await;
        let user = self
            .post(
                "/users",
                json!({"full_name": format!("User {name}"), "email": login.address,
                       "tracking_filter": "all"}),
            )
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        self.patch(
            &format!("/mailboxes/{mailbox}"),
            json!({"profile_id": self.profile, "password": login.password,
                   "username": login.login, "act_method": "server_side_sync"}),
        )
        .await;
        let (status, v) = self
            .request(
                Method::POST,
                &format!("/api/v1/orgs/{}/mailboxes/approve", self.org),
                json!({"ids": [mailbox]}),
                &self.approver,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        Member {
            user: user["id"].as_str().unwrap().to_owned(),
            mailbox,
            login,
        }
    }

    /// Runs Test & Enable for the mailbox and waits (30 s at most) for its end.
    pub async fn test_and_enable(&self, mailbox: &str) -> Value {
        let job = self
            .post("/mailboxes/test-and-enable", json!({"ids": [mailbox]}))
            .await;
        let id = job["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let j = self.get(&format!("/jobs/{id}")).await;
            if j["status"] == "succeeded" || j["status"] == "failed" {
                return j;
            }
            assert!(Instant::now() < deadline, "Test & Enable: {j}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (30 s at most) for a successful ACT run: the collections are chosen.
    pub async fn wait_act_success(&self, mailbox: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.mailbox(mailbox).await;
            let chosen = !self
                .store
                .act_collections(&self.org, mailbox, ActKind::Contact)
                .await
                .unwrap()
                .is_empty();
            if m["act_status"] == "success" && chosen {
                return;
            }
            assert!(Instant::now() < deadline, "the first ACT run: {m}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn mailbox(&self, mailbox: &str) -> Value {
        self.get(&format!("/mailboxes/{mailbox}")).await
    }

    async fn request(&self, method: Method, path: &str, body: Value, token: &str) -> (u16, Value) {
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

    /// A request as the system administrator; panics unless it answers 2xx.
    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, v) = self.request(method.clone(), path, body, &self.admin).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let path = format!("/api/v1/orgs/{}{path}", self.org);
        self.call(Method::POST, &path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        let path = format!("/api/v1/orgs/{}{path}", self.org);
        self.call(Method::PATCH, &path, body).await
    }

    pub async fn get(&self, path: &str) -> Value {
        let path = format!("/api/v1/orgs/{}{path}", self.org);
        self.call(Method::GET, &path, Value::Null).await
    }

    /// Every item of a list (`path` with its query string), all pages.
    async fn all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        for _ in 0..100 {
            let page = self.get(&format!("{path}{cursor}")).await;
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return out,
            }
        }
        panic!("more than 100 pages of {path}");
    }

    /// What arrived where, counted against what the test expects.
    pub async fn counts(
        &self,
        m: &Member,
        app: &App,
        incoming: &BTreeSet<String>,
        outgoing: &BTreeSet<String>,
    ) -> Counts {
        let emails = self.all("/emails?limit=500").await;
        let email_ids: Vec<String> = emails
            .iter()
            .map(|e| norm_id(e["message_id"].as_str().unwrap_or_default()))
            .collect();
        let decisions = self
            .all(&format!(
                "/mailboxes/{}/messages?limit=500&folder=INBOX",
                m.mailbox
            ))
            .await;
        let decided: Vec<String> = decisions
            .iter()
            .map(|d| norm_id(d["message_id"].as_str().unwrap_or_default()))
            .collect();
        let at_sink: Vec<String> = self
            .servers
            .smtp_received()
            .iter()
            .filter_map(|r| r.header("Message-ID"))
            .map(|id| norm_id(&id))
            .collect();
        let unsent = emails
            .iter()
            .filter(|e| {
                let id = norm_id(e["message_id"].as_str().unwrap_or_default());
                outgoing.contains(&id) && e["status"] != "sent"
            })
            .map(|e| format!("{}: {}", e["message_id"], e["status"]))
            .collect();
        let mut store_items = BTreeMap::new();
        for (kind, path, field) in [
            (ActKind::Appointment, "/appointments?limit=200", "subject"),
            (ActKind::Contact, "/contacts?limit=200", "name"),
        ] {
            for r in self.all(path).await {
                let title = r[field].as_str().unwrap_or_default().to_owned();
                *store_items.entry((kind, title)).or_default() += 1;
            }
        }
        Counts {
            incoming: Tally::of(incoming, email_ids.iter().map(String::as_str)),
            decisions: Tally::of(incoming, decided.iter().map(String::as_str)),
            outgoing: Tally::of(outgoing, at_sink.iter().map(String::as_str)),
            outgoing_emails: Tally::of(outgoing, email_ids.iter().map(String::as_str)),
            unsent,
            store_items,
            server_items: app.titles().await,
        }
    }

    /// How many copies of each of `ids` the mailbox's Sent folder holds (read from
    /// the Maildir, not through the proxy).
    pub fn sent_copies(&self, m: &Member, ids: &BTreeSet<String>) -> BTreeMap<String, usize> {
        let sent = self.servers.maildir(&m.login.login).join(".Sent");
        let mut out = BTreeMap::new();
        for sub in ["cur", "new"] {
            let Ok(files) = std::fs::read_dir(sent.join(sub)) else {
                continue;
            };
            for f in files.flatten() {
                let raw = std::fs::read(f.path()).unwrap_or_default();
                let text = String::from_utf8_lossy(&raw);
                let id = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("message-id")
                        .then(|| norm_id(value))
                });
                if let Some(id) = id.filter(|id| ids.contains(id)) {
                    *out.entry(id).or_default() += 1;
                }
            }
        }
        out
    }
}

/// Exactly-once figures of one kind of thing, counted by id.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Expected ids never seen.
    pub lost: usize,
    /// Every copy beyond the first.
    pub duplicated: usize,
    /// The ids seen more than once, with their count.
    pub twice: BTreeMap<String, usize>,
}

impl Tally {
    /// Counts `seen` against `expected` (ids outside it are ignored).
    pub fn of<'a>(expected: &BTreeSet<String>, seen: impl IntoIterator<Item = &'a str>) -> Tally {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for id in seen {
            if expected.contains(id) {
                *counts.entry(id).or_default() += 1;
            }
        }
        let twice: BTreeMap<String, usize> = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| ((*id).to_owned(), *n))
            .collect();
        Tally {
            lost: expected.len() - counts.len(),
            duplicated: twice.values().map(|n| n - 1).sum(),
            twice,
        }
    }
}

/// What arrived where.
#[derive(Debug)]
pub struct Counts {
    /// Incoming Message-IDs among the emails.
    pub incoming: Tally,
    /// Incoming Message-IDs among the Inbox's decisions.
    pub decisions: Tally,
    /// Outgoing Message-IDs among what the SMTP server received.
    pub outgoing: Tally,
    /// Outgoing Message-IDs among the emails (one each, whatever was sent).
    pub outgoing_emails: Tally,
    /// Outgoing emails not (yet) `sent`, with their status.
    pub unsent: Vec<String>,
    /// ACT records in the store and items on the server, by kind and title.
    pub store_items: BTreeMap<(ActKind, String), usize>,
    pub server_items: BTreeMap<(ActKind, String), usize>,
}

impl Counts {
    /// Everything expected is there (duplicates are judged after the clean phase).
    pub fn complete(&self, titles: &[(ActKind, String)]) -> bool {
        self.incoming.lost == 0
            && self.decisions.lost == 0
            && self.outgoing.lost == 0
            && self.unsent.is_empty()
            && titles.iter().all(|t| {
                self.store_items.get(t).is_some_and(|n| *n > 0)
                    && self.server_items.get(t).is_some_and(|n| *n > 0)
            })
    }

    pub fn summary(&self) -> String {
        let store: usize = self.store_items.values().sum();
        let server: usize = self.server_items.values().sum();
        format!(
            "incoming emails {:?}; decisions {:?}; at the SMTP server {:?}; outgoing emails {:?}, {} not sent; ACT records {store} in the store, {server} on the server",
            self.incoming,
            self.decisions,
            self.outgoing,
            self.outgoing_emails,
            self.unsent.len()
        )
    }
}

/// The user's calendar and address book app, straight on Radicale (no proxy).
pub struct App {
    dav: DavClient,
    calendar: String,
    contacts: String,
}

impl App {
    pub async fn new(w: &World, m: &Member) -> App {
        let dav = DavClient::new(DavConfig::new(
            w.servers.dav_url(),
            m.login.login.clone(),
            Secret::new(m.login.password.clone()),
        ))
        .unwrap();
        let href = |kind| async move {
            w.store
                .act_collections(&w.org, &m.mailbox, kind)
                .await
                .unwrap()
                .into_iter()
                .next()
                .map(|c| c.href)
                .expect("the collection the engine chose")
        };
        App {
            dav,
            calendar: href(ActKind::Appointment).await,
            contacts: href(ActKind::Contact).await,
        }
    }

    pub async fn create_event(&self, i: usize, summary: &str) {
        let uid = format!(
            "app-event-{i}-{}@app.example",
            uuid::Uuid::now_v7().simple()
        );
        let ics = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test app//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:2026061{i}T110000Z\r\nDTEND:2026061{i}T120000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
        self.dav
            .create(
                &self.calendar,
                &format!("event-{i}.ics"),
                ItemFormat::ICalendar,
                &ics,
            )
            .await
            .unwrap();
    }

    pub async fn create_contact(&self, i: usize, name: &str) {
        let uid = format!(
            "app-contact-{i}-{}@app.example",
            uuid::Uuid::now_v7().simple()
        );
        let (given, family) = name.split_once(' ').unwrap_or((name, ""));
        let vcf = format!(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{family};{given};;;\r\nEMAIL;TYPE=WORK:app{i}@fabrikam.example\r\nEND:VCARD\r\n"
        );
        self.dav
            .create(
                &self.contacts,
                &format!("contact-{i}.vcf"),
                ItemFormat::VCard,
                &vcf,
            )
            .await
            .unwrap();
    }

    /// Every item of the calendar and the address book, by kind and title
    /// (SUMMARY, FN), with how many items carry it.
    pub async fn titles(&self) -> BTreeMap<(ActKind, String), usize> {
        let mut out = BTreeMap::new();
        for (kind, href, ck, property) in [
            (
                ActKind::Appointment,
                &self.calendar,
                CollectionKind::Calendar,
                "SUMMARY",
            ),
            (
                ActKind::Contact,
                &self.contacts,
                CollectionKind::AddressBook,
                "FN",
            ),
        ] {
            let listing = self.dav.full_listing(href).await.unwrap();
            let hrefs: Vec<String> = listing.changed.iter().map(|v| v.href.clone()).collect();
            if hrefs.is_empty() {
                continue;
            }
            let fetched = self.dav.multiget(href, ck, &hrefs).await.unwrap();
            for item in fetched.items {
                for title in property_values(&item.data, property) {
                    *out.entry((kind, title)).or_default() += 1;
                }
            }
        }
        out
    }
}

/// The values of `property` in an iCalendar or vCard text (parameters skipped;
/// the test's titles are never folded).
fn property_values(text: &str, property: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            let name = name.split(';').next()?;
            name.eq_ignore_ascii_case(property)
                .then(|| value.trim_end().to_owned())
        })
        .collect()
}
