//! A Microsoft Graph test server: the mail endpoints mailbridge uses, on 127.0.0.1,
//! built from Microsoft's published API behaviour, since no real tenant is
//! reachable from the test machines.
//!
//! Under `/v1.0`: message delta queries per folder with paging and delta links,
//! messages and their MIME, categories, moves, folders (well-known names too),
//! `sendMail` (JSON or MIME), `$batch`, and change-notification subscriptions;
//! calendar events, contacts and To Do tasks with their delta queries (`act.rs`).
//! Bearer tokens are checked as Graph does (RS256, audience, expiry, `roles`): 401
//! `InvalidAuthenticationToken`, 403 `ErrorAccessDenied`. Tests add users, deliver
//! MIME, change messages behind the client's back, expire delta tokens, throttle
//! the next requests, and read what the server saw (requests per endpoint, round
//! trips, the most requests in flight per mailbox, sent mail).
//!
//! ```no_run
//! # async fn example() {
//! use mailbridge_testkit::graph_server::{GraphTestServer, TestTokens};
//! let tokens = TestTokens::new("https://graph.microsoft.com");
//! let graph = GraphTestServer::start(tokens.token_check()).await;
//! let bob = graph.add_user("bob@example.org");
//! graph.deliver(&bob, "inbox", b"Subject: hi\r\n\r\nHello\r\n");
//! let token = tokens.app_token(&["Mail.ReadWrite", "Mail.Send"]);
//! // ... a client of graph.base_url() with `token`
//! # }
//! ```
//!
//! docs/TESTING.md lists what is verified only against this server.

// Handlers and their helpers return axum's `Response` as the error, as axum does.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, patch, post};

mod act;
mod act_state;
mod auth;
mod batch;
mod delta;
mod errors;
mod mail;
mod observe;
mod ops;
mod state;
mod subscriptions;

pub use auth::{TestTokens, TokenCheck};
pub use batch::MAX_BATCH;
pub use state::SentMail;

use state::{Fault, State};

/// Outlook's limit of concurrent requests per app per mailbox.
pub const MAILBOX_CONCURRENCY: u32 = 4;

/// The longest lifetime of a message subscription this server grants by default,
/// in minutes (the 4,230 of Graph's subscription documentation for mail).
pub const SUBSCRIPTION_MAX_MINUTES: i64 = 4230;

pub(crate) struct Shared {
    state: Mutex<State>,
    check: TokenCheck,
    /// `http://127.0.0.1:PORT/v1.0`.
    base: String,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent enough state for tests.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `http://127.0.0.1:PORT`.
    fn origin(&self) -> &str {
        self.base.strip_suffix("/v1.0").unwrap_or(&self.base)
    }

    /// Posts the queued change notifications, each on its own task.
    fn flush_notices(&self) {
        let posts: Vec<(String, serde_json::Value)> = {
            let mut st = self.lock();
            let notices = std::mem::take(&mut st.notices);
            notices
                .iter()
                .filter_map(|n| {
                    let s = st.subscriptions.get(&n.subscription_id)?;
                    Some((
                        s.notification_url.clone(),
                        subscriptions::change_payload(s, n.change_type, &n.user_id, &n.message_id),
                    ))
                })
                .collect()
        };
        for (url, body) in posts {
            let http = self.http.clone();
            tokio::spawn(async move {
                let _ = http
                    .post(url)
                    .json(&body)
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await;
            });
        }
    }
}

/// What one subscription looks like, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub id: String,
    pub resource: String,
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expiration: chrono::DateTime<chrono::Utc>,
}

/// One stored message, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub folder_id: String,
    pub internet_message_id: Option<String>,
    pub subject: String,
    pub categories: Vec<String>,
    pub is_read: bool,
    pub mime: Vec<u8>,
}

/// A running Graph test server; it stops when dropped.
pub struct GraphTestServer {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GraphTestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GraphTestServer {
    /// Starts the server on a free port of 127.0.0.1, trusting tokens as `check` says.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(check: TokenCheck) -> GraphTestServer {
        GraphTestServer::start_with(|_| check).await
    }

    /// Like [`GraphTestServer::start`], the token check made from the server's
    /// own root URL (`http://127.0.0.1:PORT`, without `/v1.0`): for tokens whose
    /// audience is this server, as when a profile's `graph_url` points at it.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start_with(check: impl FnOnce(&str) -> TokenCheck) -> GraphTestServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding 127.0.0.1:0 for the Graph test server");
        let addr = listener.local_addr().expect("the bound address");
        let check = check(&format!("http://{addr}"));
        let state = State {
            mailbox_concurrency: MAILBOX_CONCURRENCY,
            subscription_max_minutes: SUBSCRIPTION_MAX_MINUTES,
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            check,
            base: format!("http://{addr}/v1.0"),
            http: reqwest::Client::new(),
        });
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        GraphTestServer { shared, task }
    }

    /// The API's base URL, `http://127.0.0.1:PORT/v1.0`.
    pub fn base_url(&self) -> &str {
        &self.shared.base
    }

    /// Adds a mailbox with the well-known folders; returns the user's id (a GUID).
    /// Adding an existing principal name returns the existing id.
    pub fn add_user(&self, upn: &str) -> String {
        self.shared.lock().add_user(upn)
    }

    /// The id of a folder named by an id, a well-known name (`inbox`, `sentitems`, ...)
    /// or a display name under the root or under another folder (`Parent/Child`).
    pub fn folder_id(&self, user: &str, folder: &str) -> Option<String> {
        let st = self.shared.lock();
        let u = &st.users[&st.user_key(user)?];
        if let Some(id) = u.folder_key(folder) {
            return Some(id);
        }
        let mut parent = u.root_id();
        for part in folder.split('/') {
            parent = u.child_named(&parent, part)?;
        }
        Some(parent)
    }

    /// Creates a folder (under the root when `parent` is `None`); returns its id.
    ///
    /// # Panics
    /// For an unknown user or parent, or an existing name.
    pub fn create_folder(&self, user: &str, parent: Option<&str>, name: &str) -> String {
        let parent = parent.map(|p| self.folder_id(user, p).expect("the parent folder"));
        let mut st = self.shared.lock();
        let uid = st.user_key(user).expect("a user of the Graph test server");
        let parent = parent.unwrap_or_else(|| st.users[&uid].root_id());
        ops::create_folder(&mut st, &uid, &parent, name).expect("a new folder")
    }

    /// Stores MIME bytes as a new unread message in the folder; returns its id.
    ///
    /// # Panics
    /// For an unknown user or folder.
    pub fn deliver(&self, user: &str, folder: &str, mime: &[u8]) -> String {
        let fid = self
            .folder_id(user, folder)
            .expect("a folder of the Graph test server");
        let id = {
            let mut st = self.shared.lock();
            let uid = st.user_key(user).expect("a user of the Graph test server");
            ops::deliver(&mut st, &uid, &fid, mime.to_vec(), false).expect("delivered")
        };
        self.shared.flush_notices();
        id
    }

    /// Replaces a message's categories, as a user in Outlook would.
    ///
    /// # Panics
    /// For an unknown user or message.
    pub fn set_categories(&self, user: &str, id: &str, categories: &[&str]) {
        {
            let mut st = self.shared.lock();
            let uid = st.user_key(user).expect("a user of the Graph test server");
            let categories = categories.iter().map(|c| (*c).to_owned()).collect();
            ops::update(&mut st, &uid, id, Some(categories), None).expect("a message");
        }
        self.shared.flush_notices();
    }

    /// Adds one category to a message (no-op when present).
    pub fn add_category(&self, user: &str, id: &str, category: &str) {
        let mut current = self.message(user, id).expect("a message").categories;
        if !current.iter().any(|c| c == category) {
            current.push(category.to_owned());
        }
        let refs: Vec<&str> = current.iter().map(String::as_str).collect();
        self.set_categories(user, id, &refs);
    }

    /// Removes one category from a message.
    pub fn remove_category(&self, user: &str, id: &str, category: &str) {
        let current = self.message(user, id).expect("a message").categories;
        let refs: Vec<&str> = current
            .iter()
            .map(String::as_str)
            .filter(|c| *c != category)
            .collect();
        self.set_categories(user, id, &refs);
    }

    /// Marks a message read or unread.
    pub fn set_read(&self, user: &str, id: &str, read: bool) {
        {
            let mut st = self.shared.lock();
            let uid = st.user_key(user).expect("a user of the Graph test server");
            ops::update(&mut st, &uid, id, None, Some(read)).expect("a message");
        }
        self.shared.flush_notices();
    }

    /// Moves a message to another folder (id, well-known or display name).
    pub fn move_message(&self, user: &str, id: &str, folder: &str) {
        let fid = self.folder_id(user, folder).expect("a folder");
        {
            let mut st = self.shared.lock();
            let uid = st.user_key(user).expect("a user of the Graph test server");
            ops::move_message(&mut st, &uid, id, &fid).expect("moved");
        }
        self.shared.flush_notices();
    }

    /// Deletes a message for good (delta queries report it `@removed`).
    pub fn delete_message(&self, user: &str, id: &str) {
        {
            let mut st = self.shared.lock();
            let uid = st.user_key(user).expect("a user of the Graph test server");
            ops::delete(&mut st, &uid, id).expect("deleted");
        }
        self.shared.flush_notices();
    }

    /// Moves a message's times (created, received, last modified) `by` into the
    /// past, as if it had arrived that long ago; its delta state is unchanged.
    ///
    /// # Panics
    /// For an unknown user or message.
    pub fn backdate(&self, user: &str, id: &str, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("a duration chrono can hold");
        let mut st = self.shared.lock();
        let uid = st.user_key(user).expect("a user of the Graph test server");
        let m = st
            .users
            .get_mut(&uid)
            .and_then(|u| u.messages.get_mut(id))
            .expect("a message of the Graph test server");
        m.created -= by;
        m.received -= by;
        m.modified -= by;
    }

    /// A stored message.
    pub fn message(&self, user: &str, id: &str) -> Option<StoredMessage> {
        let st = self.shared.lock();
        let m = st.users.get(&st.user_key(user)?)?.messages.get(id)?;
        Some(StoredMessage {
            id: m.id.clone(),
            folder_id: m.folder_id.clone(),
            internet_message_id: m.internet_message_id.clone(),
            subject: m.subject.clone(),
            categories: m.categories.clone(),
            is_read: m.is_read,
            mime: m.mime.clone(),
        })
    }

    /// The messages of a folder, oldest first.
    pub fn messages_in(&self, user: &str, folder: &str) -> Vec<StoredMessage> {
        let Some(fid) = self.folder_id(user, folder) else {
            return Vec::new();
        };
        let ids: Vec<(u64, String)> = {
            let st = self.shared.lock();
            let Some(uid) = st.user_key(user) else {
                return Vec::new();
            };
            let mut ids: Vec<(u64, String)> = st.users[&uid]
                .messages
                .values()
                .filter(|m| m.folder_id == fid)
                .map(|m| (m.changed_seq, m.id.clone()))
                .collect();
            ids.sort();
            ids
        };
        ids.iter()
            .filter_map(|(_, id)| self.message(user, id))
            .collect()
    }

    /// Forgets every delta state token: the next delta request with one gets 410.
    pub fn expire_delta_tokens(&self) {
        let mut st = self.shared.lock();
        st.rounds.clear();
        st.marks.clear();
    }

    /// The next `n` API requests get 429 with `Retry-After: retry_after` (whole seconds, rounded up).
    pub fn throttle_next(&self, n: usize, retry_after: Duration) {
        let mut st = self.shared.lock();
        st.faults.extend(std::iter::repeat_n(
            Fault {
                status: 429,
                retry_after,
            },
            n,
        ));
    }

    /// The next `n` API requests get 503 with `Retry-After: retry_after`.
    pub fn unavailable_next(&self, n: usize, retry_after: Duration) {
        let mut st = self.shared.lock();
        st.faults.extend(std::iter::repeat_n(
            Fault {
                status: 503,
                retry_after,
            },
            n,
        ));
    }

    /// The next `n` `sendMail` requests are accepted (sent, and saved to Sent
    /// Items) but answered 504, as when a gateway gives up before the answer.
    pub fn lose_next_send_answers(&self, n: usize) {
        self.shared.lock().lost_send_answers += n;
    }

    /// Every API request waits this long before it is handled (to make concurrency visible).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Requests at once per mailbox beyond which the server answers 429 (default 4).
    pub fn set_mailbox_concurrency(&self, limit: u32) {
        self.shared.lock().mailbox_concurrency = limit;
    }

    /// The longest subscription lifetime granted, in minutes (default 4,230).
    pub fn set_subscription_max_minutes(&self, minutes: i64) {
        self.shared.lock().subscription_max_minutes = minutes;
    }

    /// Requests per endpoint, as `METHOD /v1.0/route/{param}` (batched ones included).
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.shared.lock().counts.clone()
    }

    /// Requests to one endpoint, e.g. `POST /v1.0/users/{user}/messages/{id}/move`.
    pub fn request_count(&self, endpoint: &str) -> u64 {
        self.shared
            .lock()
            .counts
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// HTTP round trips (a `$batch` counts once).
    pub fn round_trips(&self) -> u64 {
        self.shared.lock().round_trips
    }

    /// Requests that arrived inside `$batch` envelopes.
    pub fn batched_requests(&self) -> u64 {
        self.shared.lock().batched
    }

    /// Mailbox requests without `Prefer: IdType="ImmutableId"`.
    pub fn requests_without_immutable_ids(&self) -> u64 {
        self.shared.lock().without_immutable_ids
    }

    /// The most requests that were in flight at once for the user's mailbox.
    pub fn max_concurrency(&self, user: &str) -> u32 {
        let st = self.shared.lock();
        let key = st
            .user_key(user)
            .unwrap_or_else(|| user.to_ascii_lowercase());
        st.max_in_flight.get(&key).copied().unwrap_or(0)
    }

    /// Everything sent with `sendMail`, in order.
    pub fn sent_mail(&self) -> Vec<SentMail> {
        self.shared.lock().sent.clone()
    }

    /// The active subscriptions.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.shared
            .lock()
            .subscriptions
            .values()
            .map(|s| SubscriptionInfo {
                id: s.id.clone(),
                resource: s.resource.clone(),
                change_type: s.change_type.clone(),
                notification_url: s.notification_url.clone(),
                lifecycle_url: s.lifecycle_url.clone(),
                client_state: s.client_state.clone(),
                expiration: s.expiration,
            })
            .collect()
    }

    /// Posts a lifecycle event (`reauthorizationRequired`, `subscriptionRemoved`,
    /// `missed`) to the subscription's lifecycle URL; `subscriptionRemoved` also
    /// ends the subscription. Returns the HTTP status the endpoint answered.
    ///
    /// # Panics
    /// For an unknown subscription or one without a lifecycle URL.
    pub async fn send_lifecycle_event(&self, subscription_id: &str, event: &str) -> u16 {
        let (url, body) = {
            let mut st = self.shared.lock();
            let s = st
                .subscriptions
                .get(subscription_id)
                .expect("a subscription")
                .clone();
            if event == "subscriptionRemoved" {
                st.subscriptions.remove(subscription_id);
            }
            (
                s.lifecycle_url
                    .clone()
                    .expect("a lifecycle notification URL"),
                subscriptions::lifecycle_payload(&s, event),
            )
        };
        self.shared
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16())
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(
            "/v1.0/users/{user}/mailFolders",
            get(mail::list_folders).post(mail::create_folder),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}",
            get(mail::get_folder),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}/childFolders",
            get(mail::list_children).post(mail::create_child),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages",
            get(mail::list_messages),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages/delta",
            get(delta::delta),
        )
        .route(
            "/v1.0/users/{user}/messages/{id}",
            get(mail::get_message)
                .patch(mail::patch_message)
                .delete(mail::delete_message),
        )
        .route(
            "/v1.0/users/{user}/messages/{id}/$value",
            get(mail::get_mime),
        )
        .route(
            "/v1.0/users/{user}/messages/{id}/move",
            post(mail::move_message),
        )
        .route("/v1.0/users/{user}/sendMail", post(mail::send_mail))
        .route("/v1.0/users/{user}/calendar", get(act::get_calendar))
        .route(
            "/v1.0/users/{user}/calendars/{id}",
            get(act::get_calendar).patch(act::patch_calendar),
        )
        .route(
            "/v1.0/users/{user}/calendarView/delta",
            get(act::calendar_delta),
        )
        .route(
            "/v1.0/users/{user}/calendar/events",
            post(act::create_event),
        )
        .route("/v1.0/users/{user}/events", post(act::create_event))
        .route(
            "/v1.0/users/{user}/events/{id}",
            get(act::get_event)
                .patch(act::patch_event)
                .delete(act::delete_event),
        )
        .route(
            "/v1.0/users/{user}/events/{id}/instances",
            get(act::instances),
        )
        .route(
            "/v1.0/users/{user}/contactFolders/{folder}",
            get(act::get_contact_folder),
        )
        .route(
            "/v1.0/users/{user}/contactFolders/{folder}/contacts",
            post(act::create_contact),
        )
        .route(
            "/v1.0/users/{user}/contactFolders/{folder}/contacts/delta",
            get(act::contacts_delta),
        )
        .route(
            "/v1.0/users/{user}/contacts/{id}",
            get(act::contact).patch(act::contact).delete(act::contact),
        )
        .route(
            "/v1.0/users/{user}/todo/lists",
            get(act::todo_lists).post(act::todo_lists),
        )
        .route(
            "/v1.0/users/{user}/todo/lists/{list}/tasks",
            post(act::create_task),
        )
        .route(
            "/v1.0/users/{user}/todo/lists/{list}/tasks/delta",
            get(act::tasks_delta),
        )
        .route(
            "/v1.0/users/{user}/todo/lists/{list}/tasks/{id}",
            get(act::task).patch(act::task).delete(act::task),
        )
        .route("/v1.0/subscriptions", post(subscriptions::create))
        .route(
            "/v1.0/subscriptions/{id}",
            patch(subscriptions::renew).delete(subscriptions::delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            observe::observe,
        ))
        .with_state(shared.clone());
    let inner = api.clone();
    let batch_shared = shared.clone();
    Router::new()
        .route(
            "/v1.0/$batch",
            post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    batch::batch(inner.clone(), batch_shared.clone(), headers, body)
                },
            ),
        )
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(
            shared,
            observe::round_trip,
        ))
}
