//! Exchange Online end to end: the engine against the testkit's test identity
//! provider and Graph test server, with a certificate generated through the API.

use std::time::Duration;

use mailbridge_testkit::graph_server::GraphTestServer;
use mailbridge_testkit::identity_server::{AppRegistration, TestIdentityProvider};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, World, fast_engine, message, unique, wait};

const APP: &str = "6f0e0b8e-2b3c-4c54-9f1d-8d2b9f0a1c11";

struct Exchange {
    w: World,
    idp: TestIdentityProvider,
    graph: GraphTestServer,
    tenant: String,
    profile: String,
}

/// A World with an `exchange_online` profile pointing at a test identity
/// provider and a Graph test server; the certificate generated through the API
/// is registered with the provider when `register` says so.
async fn exchange(backend: Backend, register: bool) -> Exchange {
    let w = World::start(backend, fast_engine()).await;
    let idp = TestIdentityProvider::start().await;
    let tenant = idp.add_tenant();
    let graph = GraphTestServer::start_with(|url| idp.graph_token_check(&tenant, url)).await;
    let graph_url = graph.base_url().trim_end_matches("/v1.0").to_owned();
    let cert = w
        .post(
            "/certificates/generate",
            json!({"name": "Exchange Online", "validity_days": 30}),
        )
        .await;
    let cert_id = cert["id"].as_str().unwrap().to_owned();
    if register {
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
    } else {
        idp.register_app(&tenant, AppRegistration::new(APP));
    }
    let profile = w
        .post(
            "/email-server-profiles",
            json!({"name": "Exchange Online", "server_type": "exchange_online", "allow_plaintext": true,
                   "application_id": APP, "use_default_tenant_id": false, "tenant_id": tenant,
                   "certificate_id": cert_id, "authority_url": idp.authority_url(), "graph_url": graph_url,
                   "move_failed_to_undeliverable": true}),
        )
        .await;
    let profile = profile["id"].as_str().unwrap().to_owned();
    Exchange {
        w,
        idp,
        graph,
        tenant,
        profile,
    }
}

impl Exchange {
    /// A user whose mailbox is on the Graph test server, on the profile, approved.
    async fn member(&self, filter: &str) -> (Value, String, String) {
        let address = format!("{}@contoso.example", unique("g"));
        self.graph.add_user(&address);
        let w = &self.w;
        let user = w
            .post("/users", json!({"full_name": format!("User {address}"), "email": address, "tracking_filter": filter}))
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
        (user, mailbox, address)
    }
}

#[tokio::test]
async fn exchange_online_mail_is_tracked_once_and_sent_through_graph() {
    tracked_once_and_sent(Backend::Sqlite).await;
}

#[tokio::test]
async fn exchange_online_mail_is_tracked_once_and_sent_through_graph_on_postgres() {
    tracked_once_and_sent(Backend::Postgres).await;
}

async fn tracked_once_and_sent(backend: Backend) {
    let x = exchange(backend, true).await;
    let _ = (&x.idp, &x.tenant);
    let w = &x.w;
    let (_, mailbox, address) = x.member("all").await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["incoming_status"], "success", "{m}");
    assert_eq!(m["outgoing_status"], "success", "{m}");
    assert!(
        x.graph
            .sent_mail()
            .iter()
            .any(|s| String::from_utf8_lossy(&s.mime).contains("Your mailbox is now connected")),
        "the test message went out through sendMail"
    );

    // Incoming: one email per Message-ID, with its decision.
    let mut ids = Vec::new();
    for i in 0..3 {
        let (raw, id) = message(
            "carol@fabrikam.example",
            &[&address],
            &format!("Order {i}"),
            "",
        );
        x.graph.deliver(&address, "inbox", &raw);
        ids.push(id);
    }
    // The same message delivered twice (two items, one Message-ID).
    let (raw, dup) = message("carol@fabrikam.example", &[&address], "Twice", "");
    x.graph.deliver(&address, "inbox", &raw);
    x.graph.deliver(&address, "inbox", &raw);
    ids.push(dup.clone());
    for id in &ids {
        let found = wait(
            "the email to be tracked",
            Duration::from_secs(20),
            || async {
                let e = w.emails(&format!("&message_id={}", id)).await;
                (!e.is_empty()).then_some(e)
            },
        )
        .await;
        assert_eq!(found.len(), 1, "one email per Message-ID: {found:?}");
    }
    let decisions = wait("the decisions", Duration::from_secs(10), || async {
        let d = w.decisions(&mailbox, "").await;
        let ours: Vec<Value> = d
            .into_iter()
            .filter(|d| {
                d["message_id"]
                    .as_str()
                    .is_some_and(|m| ids.iter().any(|i| m.contains(i.as_str())))
            })
            .collect();
        (ours.len() >= 5).then_some(ours)
    })
    .await;
    assert_eq!(decisions.len(), 5, "a decision per item: {decisions:?}");

    // An expired delta link: the folder is read again, nothing is duplicated.
    x.graph.expire_delta_tokens();
    let (raw, after) = message("carol@fabrikam.example", &[&address], "After expiry", "");
    x.graph.deliver(&address, "inbox", &raw);
    wait(
        "the email after expiry",
        Duration::from_secs(20),
        || async {
            let e = w.emails(&format!("&message_id={}", after)).await;
            (!e.is_empty()).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        let e = w.emails(&format!("&message_id={}", id)).await;
        assert_eq!(e.len(), 1, "not duplicated after the re-read: {e:?}");
    }
    let d = w.decisions(&mailbox, "").await;
    let ours = d
        .iter()
        .filter(|d| {
            d["message_id"]
                .as_str()
                .is_some_and(|m| ids.iter().any(|i| m.contains(i.as_str())))
        })
        .count();
    assert_eq!(ours, 5, "no decision twice after the re-read");

    // Outgoing: sent through sendMail and marked sent.
    let created = w
        .post(
            "/emails",
            json!({"from_mailbox_id": mailbox, "to": ["dave@fabrikam.example"], "subject": "Your quote",
                   "body_text": "Please find the quote.", "send": true}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let message_id = created["message_id"].as_str().unwrap().to_owned();
    let sent = wait("the email to be sent", Duration::from_secs(20), || async {
        let e = w.get(&format!("/emails/{id}")).await;
        (e["status"] == "sent" || e["status"] == "failed").then_some(e)
    })
    .await;
    assert_eq!(sent["status"], "sent", "{sent}");
    let out = x
        .graph
        .sent_mail()
        .into_iter()
        .find(|s| String::from_utf8_lossy(&s.mime).contains(&message_id))
        .expect("sent through sendMail");
    assert_eq!(out.from_upn, address);
    assert_eq!(out.recipients, vec!["dave@fabrikam.example".to_owned()]);
}

#[tokio::test]
async fn an_unregistered_certificate_fails_authentication() {
    let x = exchange(Backend::Sqlite, false).await;
    let w = &x.w;
    let (_, mailbox, _) = x.member("all").await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "failed", "{job}");
    let m = w.get(&format!("/mailboxes/{mailbox}")).await;
    assert_eq!(m["incoming_status"], "failure", "{m}");
    assert_eq!(m["incoming_enabled"], false);
    let alerts = w
        .get(&format!("/alerts?mailbox_id={mailbox}&severity=error"))
        .await;
    let text = alerts["items"][0]["message"].as_str().unwrap_or_default();
    assert!(text.contains("Failed Authentication"), "{alerts}");
}

#[tokio::test]
async fn the_tracked_category_tracks_a_skipped_message() {
    let x = exchange(Backend::Sqlite, true).await;
    let w = &x.w;
    let (_, mailbox, address) = x.member("none").await;
    let job = w.test_and_enable(&[&mailbox]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (raw, id) = message("erin@fabrikam.example", &[&address], "Untracked", "");
    let item = x.graph.deliver(&address, "inbox", &raw);
    let decision = wait("the skip", Duration::from_secs(20), || async {
        let d = w.decisions(&mailbox, &format!("&message_id={id}")).await;
        d.into_iter().next()
    })
    .await;
    assert_ne!(decision["outcome"], "tracked", "{decision}");
    assert!(w.emails(&format!("&message_id={id}")).await.is_empty());
    // Categorized in Outlook: tracked on the next run.
    x.graph.add_category(&address, &item, "Tracked");
    let found = wait(
        "the email to be tracked",
        Duration::from_secs(20),
        || async {
            let e = w.emails(&format!("&message_id={id}")).await;
            (!e.is_empty()).then_some(e)
        },
    )
    .await;
    assert_eq!(found.len(), 1);
}
