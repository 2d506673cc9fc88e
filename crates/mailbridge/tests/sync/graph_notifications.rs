//! Exchange Online change notifications end to end: the engine keeps a Graph
//! subscription on each enabled mailbox's Inbox at the testkit's Graph test
//! server, which validates the notification URL and posts to it when mail is
//! delivered; the mailbox is then synced at once. The poll interval is a
//! minute, so only a notification explains a pickup within seconds.

use std::time::{Duration, Instant};

use chrono::Utc;
use mailbridge_engine::EngineConfig;
use mailbridge_testkit::graph_server::{GraphTestServer, SubscriptionInfo};
use mailbridge_testkit::identity_server::{AppRegistration, TestIdentityProvider};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, message, unique, wait};

const APP: &str = "0c4f3a9e-7d21-4b8a-a6f3-52e1d9c0b7a4";

/// A World whose engine subscribes to Graph notifications at `url`, polling
/// every minute.
fn notifying_engine(url: &str) -> EngineConfig {
    let mut e = fast_engine();
    e.push = false;
    e.timing.poll = Duration::from_secs(60);
    e.timing.max_idle_poll = Duration::from_secs(60);
    e.graph_notification_url = Some(url.to_owned());
    e.graph_subscription_check = Duration::from_millis(500);
    e
}

struct Exchange {
    w: World,
    _idp: TestIdentityProvider,
    graph: GraphTestServer,
    profile: String,
    /// Where Graph posts (this World's API, on a listener of its own).
    public: String,
}

/// A World with an `exchange_online` profile on a test identity provider and a
/// Graph test server (as in graph.rs), its engine subscribing to notifications.
/// `max_minutes` is the subscription lifetime the Graph test server grants.
async fn exchange(backend: Backend, max_minutes: Option<i64>) -> Exchange {
    // The notification URL must be known before the engine starts: the API is
    // served a second time on a listener bound first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let w = World::start(backend, notifying_engine(&public)).await;
    let app = mailbridge_http::app_for_engine(&w.engine);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let idp = TestIdentityProvider::start().await;
    let tenant = idp.add_tenant();
    let graph = GraphTestServer::start_with(|url| idp.graph_token_check(&tenant, url)).await;
    if let Some(m) = max_minutes {
        graph.set_subscription_max_minutes(m);
    }
    let graph_url = graph.base_url().trim_end_matches("/v1.0").to_owned();
    let cert = w
        .post(
            "/certificates/generate",
            json!({"name": "Exchange Online", "validity_days": 30}),
        )
        .await;
    let cert_id = cert["id"].as_str().unwrap().to_owned();
    let pem = w
        .client
        .get(format!(
            "{}/api/v1/orgs/{}/certificates/{cert_id}/certificate.pem",
            w.base, w.org
        ))
        .bearer_auth(&w.admin)
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
    let profile = w
        .post(
            "/email-server-profiles",
            json!({"name": "Exchange Online", "server_type": "exchange_online", "allow_plaintext": true,
                   "application_id": APP, "use_default_tenant_id": false, "tenant_id": tenant,
                   "certificate_id": cert_id, "authority_url": idp.authority_url(), "graph_url": graph_url}),
        )
        .await;
    let profile = profile["id"].as_str().unwrap().to_owned();
    Exchange {
        w,
        _idp: idp,
        graph,
        profile,
        public,
    }
}

impl Exchange {
    /// A user whose mailbox is on the Graph test server, on the profile,
    /// approved, tested and enabled, its first run done. Returns (mailbox, address).
    async fn enabled_member(&self) -> (String, String) {
        let address = format!("{}@contoso.example", unique("n"));
        self.graph.add_user(&address);
        let w = &self.w;
        let user = w
            .post("/users", json!({"full_name": format!("User {address}"), "email": address, "tracking_filter": "all"}))
            .await;
        let mailbox = user["mailbox_id"].as_str().unwrap().to_owned();
        w.patch(
            &format!("/mailboxes/{mailbox}"),
            json!({"profile_id": self.profile}),
        )
        .await;
        let (status, v) = w
            .try_call(
                Method::POST,
                &format!("/api/v1/orgs/{}/mailboxes/approve", w.org),
                json!({"ids": [mailbox]}),
                &w.approver,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let job = w.test_and_enable(&[&mailbox]).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        self.last_run(&mailbox, Duration::from_secs(10)).await;
        (mailbox, address)
    }

    /// The mailbox's subscription at the Graph test server (other than `not`),
    /// once there is one and the store has recorded it.
    async fn subscription(
        &self,
        mailbox: &str,
        address: &str,
        not: Option<&str>,
    ) -> SubscriptionInfo {
        let needle = format!("users/{address}/");
        let s = wait(
            "the Graph subscription",
            Duration::from_secs(15),
            || async {
                self.graph
                    .subscriptions()
                    .into_iter()
                    .find(|s| s.resource.starts_with(&needle) && Some(s.id.as_str()) != not)
            },
        )
        .await;
        wait(
            "the stored subscription",
            Duration::from_secs(5),
            || async {
                let rows = self
                    .w
                    .store
                    .graph_subscriptions_of_mailbox(&self.w.org, mailbox)
                    .await
                    .unwrap();
                rows.iter()
                    .any(|r| r.subscription_id.as_deref() == Some(s.id.as_str()))
                    .then_some(())
            },
        )
        .await;
        s
    }

    /// When the mailbox's incoming workload last succeeded, once it has.
    async fn last_run(&self, mailbox: &str, timeout: Duration) -> chrono::DateTime<Utc> {
        wait("an incoming run", timeout, || async {
            self.w
                .store
                .one_mailbox_health(&self.w.org, mailbox, Utc::now())
                .await
                .unwrap()
                .last_incoming_success_at
        })
        .await
    }

    /// Whether an incoming run succeeds after `since` within `timeout`.
    async fn runs_after(
        &self,
        mailbox: &str,
        since: chrono::DateTime<Utc>,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.last_run(mailbox, timeout).await > since {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    async fn post_notification(&self, body: &Value) -> u16 {
        self.w
            .client
            .post(format!(
                "{}/api/v1/graph/notifications/{}",
                self.public, self.w.org
            ))
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Waits until a message is tracked; returns how long it took.
    async fn tracked_within(&self, address: &str, subject: &str, timeout: Duration) -> Duration {
        let (raw, id) = message("carol@fabrikam.example", &[address], subject, "");
        let started = Instant::now();
        self.graph.deliver(address, "inbox", &raw);
        wait("the notified email", timeout, || async {
            let e = self.w.emails(&format!("&message_id={id}")).await;
            (!e.is_empty()).then_some(())
        })
        .await;
        started.elapsed()
    }
}

#[tokio::test]
async fn a_graph_notification_syncs_the_mailbox_at_once() {
    notified(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_graph_notification_syncs_the_mailbox_at_once_on_postgres() {
    notified(Backend::Postgres).await;
}

async fn notified(backend: Backend) {
    let x = exchange(backend, None).await;
    let w = &x.w;
    let (mailbox, address) = x.enabled_member().await;
    let s = x.subscription(&mailbox, &address, None).await;
    let url = format!("{}/api/v1/graph/notifications/{}", x.public, w.org);
    assert_eq!(s.notification_url, url);
    assert_eq!(s.lifecycle_url.as_deref(), Some(url.as_str()));
    assert_eq!(s.change_type, "created");
    assert!(
        s.resource.to_ascii_lowercase().contains("inbox"),
        "{}",
        s.resource
    );
    let now = Utc::now();
    assert!(
        s.expiration <= now + chrono::Duration::minutes(4230)
            && s.expiration > now + chrono::Duration::minutes(4200),
        "the longest lifetime within the limit: {}",
        s.expiration
    );
    let state = s.client_state.clone().expect("a clientState");
    assert!(state.len() >= 32, "a real secret");
    let rows = w
        .store
        .graph_subscriptions_of_mailbox(&w.org, &mailbox)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].subscription_id.as_deref(), Some(s.id.as_str()));
    assert_eq!(rows[0].last_error, None);
    assert_eq!(rows[0].expires_at, Some(s.expiration));

    // New mail: picked up within seconds, though the next poll is a minute away.
    let took = x
        .tracked_within(&address, "Notified", Duration::from_secs(10))
        .await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // And again: the subscription stays.
    let took = x
        .tracked_within(&address, "Notified again", Duration::from_secs(10))
        .await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(x.graph.subscriptions().len(), 1);
    // The wake-ups and Graph's answers are counted.
    let exp = crate::metrics::scrape(w).await;
    let woken = crate::metrics::value(
        &exp,
        "mailbridge_push_wakeups",
        &[("source", "graph_notification")],
    );
    assert!(woken >= 2.0, "two notifications woke the mailbox: {woken}");
    let ok = crate::metrics::value(&exp, "mailbridge_graph_requests", &[("outcome", "ok")]);
    assert!(ok >= 4.0, "Graph answered the runs: {ok}");

    // Mail turned off for the mailbox: its subscription ends.
    w.patch(
        &format!("/mailboxes/{mailbox}"),
        json!({"incoming_method": "none"}),
    )
    .await;
    wait(
        "the subscription to end",
        Duration::from_secs(10),
        || async { x.graph.subscriptions().is_empty().then_some(()) },
    )
    .await;
    wait("the row to go", Duration::from_secs(5), || async {
        w.store
            .graph_subscriptions_of_mailbox(&w.org, &mailbox)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_client_state_mismatch_wakes_nothing() {
    let x = exchange(Backend::Sqlite, None).await;
    let w = &x.w;
    let (mailbox, address) = x.enabled_member().await;
    let s = x.subscription(&mailbox, &address, None).await;
    let before = x.last_run(&mailbox, Duration::from_secs(5)).await;
    let forged = |client_state: &str| {
        json!({"value": [{
            "subscriptionId": s.id, "changeType": "created", "clientState": client_state,
            "resource": format!("Users/{address}/Messages/AAMkforged"),
            "tenantId": "t", "subscriptionExpirationDateTime": s.expiration.to_rfc3339(),
        }]})
    };
    assert_eq!(x.post_notification(&forged("not-the-secret")).await, 202);
    assert_eq!(x.post_notification(&forged("")).await, 202);
    // An unknown subscription: accepted and ignored.
    let mut unknown = forged("whatever");
    unknown["value"][0]["subscriptionId"] = json!("00000000-0000-0000-0000-000000000000");
    assert_eq!(x.post_notification(&unknown).await, 202);
    wait("the rejections counted", Duration::from_secs(5), || async {
        let rows = w
            .store
            .graph_subscriptions_of_mailbox(&w.org, &mailbox)
            .await
            .unwrap();
        (rows[0].rejected_notifications == 2).then_some(())
    })
    .await;
    assert!(
        !x.runs_after(&mailbox, before, Duration::from_secs(3)).await,
        "a forged notification woke the mailbox"
    );
    // The control: the subscription's own clientState wakes it.
    let state = s.client_state.clone().unwrap();
    assert_eq!(x.post_notification(&forged(&state)).await, 202);
    assert!(
        x.runs_after(&mailbox, before, Duration::from_secs(5)).await,
        "the genuine notification did not wake the mailbox"
    );
    // Garbage is refused.
    let status = w
        .client
        .post(format!("{}/api/v1/graph/notifications/{}", x.public, w.org))
        .body("not json")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn lifecycle_events_renew_recreate_and_wake() {
    let x = exchange(Backend::Sqlite, None).await;
    let w = &x.w;
    let (mailbox, address) = x.enabled_member().await;
    let s = x.subscription(&mailbox, &address, None).await;

    // reauthorizationRequired: renewed at once (same id, later expiration).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        x.graph
            .send_lifecycle_event(&s.id, "reauthorizationRequired")
            .await,
        202
    );
    let renewed = wait("the renewal", Duration::from_secs(10), || async {
        x.graph
            .subscriptions()
            .into_iter()
            .find(|r| r.id == s.id && r.expiration > s.expiration)
    })
    .await;
    assert!(renewed.expiration <= Utc::now() + chrono::Duration::minutes(4230));

    // missed: the mailbox is read at once.
    let before = x.last_run(&mailbox, Duration::from_secs(5)).await;
    assert_eq!(x.graph.send_lifecycle_event(&s.id, "missed").await, 202);
    assert!(
        x.runs_after(&mailbox, before, Duration::from_secs(5)).await,
        "missed did not wake the mailbox"
    );

    // subscriptionRemoved: created again, and new mail still arrives at once.
    assert_eq!(
        x.graph
            .send_lifecycle_event(&s.id, "subscriptionRemoved")
            .await,
        202
    );
    let again = x.subscription(&mailbox, &address, Some(&s.id)).await;
    assert_ne!(again.client_state, s.client_state, "a new secret");
    wait("the row to follow", Duration::from_secs(5), || async {
        let rows = w
            .store
            .graph_subscriptions_of_mailbox(&w.org, &mailbox)
            .await
            .unwrap();
        (rows[0].subscription_id.as_deref() == Some(again.id.as_str())).then_some(())
    })
    .await;
    let took = x
        .tracked_within(&address, "After removal", Duration::from_secs(10))
        .await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(x.graph.subscriptions().len(), 1, "the old one is not kept");
}

#[tokio::test]
async fn a_short_lived_subscription_is_renewed() {
    // Graph grants one minute only: the engine takes what it is given and
    // renews before it lapses (when less than three quarters are left).
    let x = exchange(Backend::Sqlite, Some(1)).await;
    let w = &x.w;
    let (mailbox, address) = x.enabled_member().await;
    let s = x.subscription(&mailbox, &address, None).await;
    assert!(
        s.expiration <= Utc::now() + chrono::Duration::minutes(1),
        "{}",
        s.expiration
    );
    let renewed = wait("the renewal", Duration::from_secs(40), || async {
        x.graph
            .subscriptions()
            .into_iter()
            .find(|r| r.id == s.id && r.expiration > s.expiration)
    })
    .await;
    assert!(renewed.expiration <= Utc::now() + chrono::Duration::minutes(1));
    let rows = w
        .store
        .graph_subscriptions_of_mailbox(&w.org, &mailbox)
        .await
        .unwrap();
    assert_eq!(rows[0].lifetime_minutes, 1, "{rows:?}");
    assert_eq!(rows[0].last_error, None, "{rows:?}");
    let took = x
        .tracked_within(&address, "Short-lived", Duration::from_secs(10))
        .await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn the_validation_handshake_echoes_the_token() {
    let x = exchange(Backend::Sqlite, None).await;
    let token =
        "Validation: Testing client application reachability for subscription Request-Id: 1f8c&x=y";
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/graph/notifications/{}", x.public, x.w.org),
        &[("validationToken", token)],
    )
    .unwrap();
    let started = Instant::now();
    let resp =
        x.w.client
            .post(url)
            .header("content-type", "text/plain; charset=utf-8")
            .send()
            .await
            .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(resp.text().await.unwrap(), token);
    // No bearer token is needed, and none is asked for.
    let resp =
        x.w.client
            .post(format!(
                "{}/api/v1/graph/notifications/{}?validationToken=abc%20def",
                x.public, x.w.org
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "abc def");
}
